//! Schemathesis, a property-based fuzzer of OpenAPI documents, against the real server: every
//! operation, every check, every phase (the stateful one follows the document's links), as an
//! admin. It fails with Schemathesis' report on any failure. The few exceptions a JSON Schema
//! cannot avoid are in `tests/schemathesis/schemathesis.toml`, each with why.
//!
//! The CLI is a Python package, pinned in `.ci/run`; without it this test fails and says how to
//! install it.

use std::process::Command;

use crm_server::auth::UserRole;
use crm_server::testing::TestApp;

/// The version `.ci/run` installs.
const VERSION: &str = "4.32.5";

/// Cases per operation and phase. The coverage phase adds its own deterministic cases (every
/// bound, enum value and missing member of the document) whatever this says; ten random cases
/// on top (and 60 stateful scenarios, see the configuration) keep one run at about two minutes on
/// two cores, most of it the server's work.
const MAX_EXAMPLES: &str = "10";

/// A fixed seed: a failure found once is found again on the next run.
const SEED: &str = "20261207";

fn cli() -> Command {
    // `schemathesis` first: another program may be called `st`.
    for name in ["schemathesis", "st"] {
        let output = Command::new(name).arg("--version").output();
        if output
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(", version "))
        {
            return Command::new(name);
        }
    }
    panic!(
        "schemathesis is not installed: `python3 -m pip install schemathesis=={VERSION}` \
         (add --break-system-packages on a system Python); CI installs it in .ci/run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_failure_in_any_operation() {
    let mut command = cli();
    let version = String::from_utf8_lossy(&cli().arg("--version").output().unwrap().stdout).into_owned();
    assert!(version.contains(VERSION), "schemathesis {VERSION} is pinned, found {version}");
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json").await.json();
    // Schemathesis leaves out the operation it loads the document from.
    let operations: usize =
        doc["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum::<usize>()
            - 1;
    let token = app.token("schemathesis", &[UserRole::Admin], &[], &[]);
    let work = tempfile::tempdir().expect("a folder for schemathesis' files");
    let here = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis");
    command
        .current_dir(work.path())
        .env("SCHEMATHESIS_HOOKS", format!("{here}/hooks.py"))
        .env("CRM_TOKEN", token)
        .args(["--no-color", "--config-file", &format!("{here}/schemathesis.toml"), "run"])
        .arg(app.url("/openapi.json"))
        .args(["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED, "--workers", "2"])
        .args(["--generation-database", "none"]);
    let output =
        tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("running schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures (exit {:?}):\n{report}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(&format!("Tested: {operations}")), "not every operation was tested:\n{report}");
}
