//! The README's CRM blocks run as written against `crm-server serve --demo` (see
//! `crm_server::testing::readme` for which blocks run where and how they are marked).

use std::path::Path;

use crm_server::testing::readme::{self, Mark, Program};

use super::served::{BINARY, Served};

#[tokio::test]
async fn the_readme_commands_of_the_crm_server_run_as_written() {
    for tool in ["curl", "jq"] {
        let found =
            std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: the README's examples use it (apt-get install {tool})");
    }
    let text = std::fs::read_to_string(readme::readme_path()).unwrap();
    let blocks = readme::blocks(&text).unwrap_or_else(|e| panic!("{e}"));
    let crm: Vec<&readme::Block> = blocks.iter().filter(|b| b.program() == Program::Crm).collect();
    assert!(crm.iter().filter(|b| b.mark == Mark::Run).count() >= 10, "{crm:#?}");
    for block in crm.iter().filter(|b| b.mark == Mark::Synopsis) {
        readme::check_synopsis(block, "crm-server", Path::new(BINARY)).unwrap_or_else(|e| panic!("{e}"));
    }

    // The reader's server: `./demo`, i.e. `serve --demo`, on a data folder of its own.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pg");
    let server = Served::start(&data, &["--demo"], &[]);
    let script = readme::script(
        &crm,
        &[("cargo run -q -p crm-server --", "crm-server"), ("localhost:8080", server.address.as_str())],
    );
    let bin = readme::bin_dir("crm-server", Path::new(BINARY));
    let work = readme::workdir();
    let path = readme::path_with(bin.path());
    let ran = tokio::task::spawn_blocking(move || {
        readme::run(&script, work.path(), &[("PATH", path.as_os_str()), ("CRM_DATA_DIR", data.as_os_str())])
    })
    .await
    .unwrap();
    match ran {
        // Shown with --nocapture.
        Ok(output) => println!("{output}"),
        Err(failure) => panic!("{failure}"),
    }
    drop(server);
}
