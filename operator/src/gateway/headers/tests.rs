//! The generated Lua run under LuaJIT (or Lua 5.1) against a stand-in for the Kong PDK calls it
//! uses, for every method, header and policy combination.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::*;

/// The Lua interpreter Kong's dialect runs on: LuaJIT, or Lua 5.1 (`.ci/run` installs LuaJIT).
fn lua() -> &'static str {
    ["luajit", "lua5.1"]
        .into_iter()
        .find(|bin| Command::new(bin).arg("-v").output().is_ok())
        .expect("luajit or lua5.1 on PATH (apt-get install luajit)")
}

/// The stand-in: `kong.request` answers from `REQUEST`, header names case-insensitively as
/// nginx does; `kong.response.exit` records its arguments and ends the chunk with an error, as
/// Kong ends the request.
const PDK: &str = r#"
local function request(method, headers)
  local lower = {}
  for k, v in pairs(headers) do lower[string.lower(k)] = v end
  return {
    get_method = function() return method end,
    get_header = function(name) return lower[string.lower(name)] end,
  }
end
local EXIT = {}
function run(chunk, method, headers)
  local exited
  kong = {
    request = request(method, headers),
    response = { exit = function(status, body, hdrs) exited = {status, body, hdrs["Content-Type"]}; error(EXIT) end },
  }
  local fn = assert(loadstring(chunk))
  local ok, err = pcall(fn)
  if not ok and err ~= EXIT then error(err) end
  if exited then
    io.write(method, "\t", tostring(exited[1]), "\t", exited[3], "\t", exited[2], "\n")
  else
    io.write(method, "\tpass\n")
  end
end
"#;

/// What the chunk does with `method` and `headers`: None when it lets the request through, else
/// (status, content type, body).
fn outcomes(chunk: &str, cases: &[(&str, Vec<(&str, &str)>)]) -> Vec<Option<(u16, String, Value)>> {
    let mut script = String::from(PDK);
    script.push_str(&format!("local chunk = [==[{chunk}]==]\n"));
    for (method, headers) in cases {
        let table: Vec<String> = headers.iter().map(|(k, v)| format!("[ [=[{k}]=] ] = [=[{v}]=]")).collect();
        script.push_str(&format!("run(chunk, \"{method}\", {{{}}})\n", table.join(", ")));
    }
    let mut child = Command::new(lua())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{stdout}");
    lines
        .iter()
        .zip(cases)
        .map(|(line, (method, _))| {
            let fields: Vec<&str> = line.splitn(4, '\t').collect();
            assert_eq!(fields[0], *method);
            (fields[1] != "pass").then(|| {
                (fields[1].parse().unwrap(), fields[2].to_owned(), serde_json::from_str(fields[3]).unwrap())
            })
        })
        .collect()
}

#[test]
fn nothing_required_is_no_plugin() {
    assert_eq!(access_lua(&Requirements::default()), None);
}

const METHODS_AND_PREFLIGHT: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

#[test]
fn every_request_without_a_required_header_gets_its_problem_and_every_other_request_passes() {
    let header_sets: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("Idempotency-Key", "k-1")],
        vec![("if-match", "\"v3\"")],
        vec![("IDEMPOTENCY-KEY", "k-1"), ("If-Match", "\"v3\"")],
        vec![("Idempotency-Key", ""), ("If-Match", "")],
        vec![("x-tenant-id", "acme")],
        vec![("X-Tenant-ID", "acme"), ("Idempotency-Key", "k-1"), ("If-Match", "\"v3\"")],
        vec![("X-Tenant-ID", ""), ("Idempotency-Key", "k-1")],
    ];
    for idempotency_key in [false, true] {
        for if_match in [false, true] {
            for tenant_header in [None, Some("X-Tenant-ID".to_owned())] {
                let required =
                    Requirements { idempotency_key, if_match, tenant_header: tenant_header.clone() };
                let Some(chunk) = access_lua(&required) else {
                    assert!(!idempotency_key && !if_match && tenant_header.is_none());
                    continue;
                };
                let cases: Vec<(&str, Vec<(&str, &str)>)> = METHODS_AND_PREFLIGHT
                    .iter()
                    .flat_map(|m| header_sets.iter().map(move |h| (*m, h.clone())))
                    .collect();
                for ((method, headers), outcome) in cases.iter().zip(outcomes(&chunk, &cases)) {
                    let has = |name: &str| {
                        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
                    };
                    let lacks_tenant = tenant_header.is_some() && *method != "OPTIONS" && !has("X-Tenant-ID");
                    let lacks_key =
                        idempotency_key && matches!(*method, "POST" | "PATCH") && !has("Idempotency-Key");
                    let lacks_if_match = if_match && matches!(*method, "PATCH" | "PUT") && !has("If-Match");
                    let context = format!("{required:?} {method} {headers:?}");
                    let Some((status, content_type, body)) = outcome else {
                        assert!(!lacks_tenant && !lacks_key && !lacks_if_match, "passed: {context}");
                        continue;
                    };
                    assert_eq!(content_type, "application/problem+json", "{context}");
                    assert_eq!(body["status"], status, "{context}");
                    // The first missing header is named: the tenant's, Idempotency-Key, If-Match.
                    let (expected_status, problem, header) = if lacks_tenant {
                        (400, TENANT_HEADER_REQUIRED, "X-Tenant-ID")
                    } else if lacks_key {
                        (428, IDEMPOTENCY_KEY_REQUIRED, "Idempotency-Key")
                    } else {
                        assert!(lacks_if_match, "refused: {context}");
                        (428, IF_MATCH_REQUIRED, "If-Match")
                    };
                    assert_eq!(status, expected_status, "{context}");
                    assert_eq!(body["type"], problem, "{context}");
                    assert_eq!(body["title"], format!("{header} required"), "{context}");
                    assert!(body["detail"].as_str().unwrap().contains(header), "{context}");
                }
            }
        }
    }
}
