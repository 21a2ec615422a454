//! Checks over the repository's own files: migrations stay expand/contract friendly, and event
//! schemas only ever change additively over their whole git history.

use std::path::{Path, PathBuf};
use std::process::Command;

use crm_server::testing::migration_lint::{lint, load_dir};
use crm_server::testing::schema_compat::breaking_changes;
use serde_json::Value;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn migrations_are_expand_contract_friendly() {
    let migrations = load_dir(&crate_dir().join("../migrations")).unwrap();
    assert!(!migrations.is_empty());
    let findings: Vec<String> = lint(&migrations).iter().map(ToString::to_string).collect();
    assert!(findings.is_empty(), "migrations break the expand/contract rules:\n{}", findings.join("\n"));
}

fn git(args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(crate_dir())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("this check reads the schemas' git history and needs git: {e}"));
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

const SCHEMAS: &str = "crm-server/schemas/events";

/// Every committed version of a schema, oldest first, then the working tree's.
fn versions(repo: &Path, path: &str) -> Vec<(String, Value)> {
    let mut versions: Vec<(String, Value)> = git(&["log", "--format=%H", "--reverse", "--", path])
        .lines()
        .map(|commit| {
            let text = git(&["show", &format!("{commit}:{path}")]);
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} at {commit}: {e}"));
            (commit[..12].to_owned(), json)
        })
        .collect();
    if let Ok(text) = std::fs::read_to_string(repo.join(path)) {
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        versions.push(("working tree".to_owned(), json));
    }
    versions
}

#[test]
fn event_schemas_only_ever_change_additively() {
    let repo = PathBuf::from(git(&["rev-parse", "--show-toplevel"]).trim());
    let mut paths: Vec<String> = git(&["log", "--format=", "--name-only", "--", SCHEMAS])
        .lines()
        .filter(|l| l.ends_with(".json"))
        .map(str::to_owned)
        .collect();
    for entry in std::fs::read_dir(repo.join(SCHEMAS)).unwrap() {
        paths.push(format!("{SCHEMAS}/{}", entry.unwrap().file_name().to_string_lossy()));
    }
    paths.sort();
    paths.dedup();
    assert!(!paths.is_empty());

    let mut problems = Vec::new();
    for path in &paths {
        // Consumers and replays still need the schema of every type ever published.
        if !repo.join(path).exists() {
            problems.push(format!("{path}: a published schema was deleted"));
            continue;
        }
        for pair in versions(&repo, path).windows(2) {
            let ((from, old), (to, new)) = (&pair[0], &pair[1]);
            for change in breaking_changes(old, new) {
                problems.push(format!("{path} {from} -> {to}: {change}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "event schemas changed in a breaking way (publish a new version instead):\n{}",
        problems.join("\n")
    );
}
