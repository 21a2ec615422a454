//! The README's operator blocks (the CLI, promtool on the alerts) run as written (see
//! `crm_server::testing::readme` for which blocks run where and how they are marked).

use std::path::Path;

use crm_server::testing::readme::{self, Mark, Program};

const BINARY: &str = env!("CARGO_BIN_EXE_freshplan-operator");

#[test]
fn the_readme_commands_of_the_operator_run_as_written() {
    let text = std::fs::read_to_string(readme::readme_path()).unwrap();
    let blocks = readme::blocks(&text).unwrap_or_else(|e| panic!("{e}"));
    let operator: Vec<&readme::Block> = blocks.iter().filter(|b| b.program() == Program::Operator).collect();
    let runs = |b: &&&readme::Block| matches!(b.mark, Mark::Run | Mark::Fails(_));
    assert!(operator.iter().filter(runs).count() >= 4, "{operator:#?}");
    if operator.iter().filter(runs).any(|b| b.text.contains("promtool")) {
        let found = std::process::Command::new("promtool")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "promtool is missing: apt-get install prometheus (Debian's package ships it)");
    }
    let script = readme::script(
        &operator,
        &[
            ("cargo run -q -p freshplan-operator --", "freshplan-operator"),
            ("cargo run -p freshplan-operator --", "freshplan-operator"),
        ],
    );
    let bin = readme::bin_dir("freshplan-operator", Path::new(BINARY));
    let work = readme::workdir();
    let path = readme::path_with(bin.path());
    match readme::run(&script, work.path(), &[("PATH", path.as_os_str())]) {
        // Shown with --nocapture.
        Ok(output) => println!("{output}"),
        Err(failure) => panic!("{failure}"),
    }
}
