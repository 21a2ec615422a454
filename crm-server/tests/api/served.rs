//! The `crm-server` binary as a user runs it: `serve` as a child process on a data folder of the
//! test's, with its JSON log lines, and the other commands beside it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Method, Request};
use crm_server::testing::TestResponse;
use http_body_util::Full;

pub const BINARY: &str = env!("CARGO_BIN_EXE_crm-server");

/// `crm-server <args>` on the data folder `data` (through `CRM_DATA_DIR`), without a database URL.
pub fn command(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args).env_remove("DATABASE_URL").env("CRM_DATA_DIR", data);
    command
}

/// Runs `crm-server <args>` on `data` to its end.
pub fn run(data: &Path, args: &[&str]) -> Output {
    command(data, args).output().expect("crm-server runs")
}

/// A token of the development key in `data`.
pub fn dev_token(data: &Path, args: &[&str]) -> String {
    let output = run(data, &[&["dev-token"], args].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A running `crm-server serve`. Killed when dropped.
pub struct Served {
    pub child: Child,
    pub address: String,
    pub data: PathBuf,
    lines: mpsc::Receiver<String>,
    /// Every log line read so far.
    pub log: Vec<String>,
}

impl Served {
    /// Starts `crm-server serve --listen 127.0.0.1:0 <args>` on `data` with `env`, and waits for
    /// its "serving the CRM API" line.
    pub fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut command = command(data, &[&["serve", "--listen", "127.0.0.1:0"], args].concat());
        command.envs(env.iter().copied()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("crm-server serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut served =
            Served { child, address: String::new(), data: data.to_owned(), lines, log: Vec::new() };
        let line = served.wait_for_log("serving the CRM API", Duration::from_secs(120));
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        served.address = json["address"].as_str().unwrap().to_owned();
        served
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Waits for a log line containing `needle` and returns it; panics with the log after
    /// `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    assert!(
                        serde_json::from_str::<serde_json::Value>(&line).is_ok(),
                        "not a JSON log line: {line}"
                    );
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line with {needle:?} within {timeout:?}: {:#?}", self.log),
            }
        }
    }

    /// The log lines so far, including those not yet read.
    pub fn drain_log(&mut self) -> &[String] {
        self.log.extend(self.lines.try_iter());
        &self.log
    }

    /// Sends `method path` with `token` (if any) and a JSON `body` (if any).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(self.url(path));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        crm_server::testing::app::fetch(request.body(Full::new(body)).unwrap())
            .await
            .expect("the server answers")
    }

    /// Polls `GET path` until its status is `status`; the last answer. Panics after `timeout`.
    pub async fn wait_for_status(&self, path: &str, status: u16, timeout: Duration) -> TestResponse {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.send(Method::GET, path, None, None).await;
            if answer.status == status {
                return answer;
            }
            assert!(Instant::now() < deadline, "GET {path} is not {status} within {timeout:?}: {answer:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server still runs after {timeout:?}: {:#?}",
                self.drain_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The pid of the postmaster running on the data folder now.
    pub fn postmaster(&self) -> i32 {
        postmaster(&self.data)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pid in `<data>/data/postmaster.pid`.
pub fn postmaster(data: &Path) -> i32 {
    let text = std::fs::read_to_string(data.join("data/postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

/// The processes whose parent is `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().map_while(Result::ok) {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses, so split after the last `)`.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if parent.and_then(|p| p.parse::<i32>().ok()) == Some(pid) {
            children.push(child);
        }
    }
    children
}

/// Whether `pid` runs: a zombie (dead, not reaped yet, as orphans in a container whose init does
/// not reap) does not.
pub fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z")
}

/// Waits up to 20 s for `pid` to be gone.
pub fn wait_until_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}
