//! The README's command blocks, run by tests so that they cannot drift from what the programs do.
//!
//! Every fenced shell block (`sh`, `bash`, `shell`) of `README.md` runs in a test unless an HTML
//! comment right before it says otherwise:
//!
//! ```text
//! <!-- readme-test: skip: <why it cannot run in a test> -->   not run (a cluster, a benchmark)
//! <!-- readme-test: fails: <what it shows> -->                run; its last command must fail
//! <!-- readme-test: synopsis -->                              usage lines: each `--help` lists their flags
//! ```
//!
//! The blocks run in order in one bash (`set -euo pipefail`), so what one block sets (`AUTH`, an
//! id) is there for the next, as in the reader's terminal; `curl` fails on an HTTP error
//! (`--fail-with-body`). Blocks that run `freshplan-operator` or `promtool` are run by the
//! operator's test (`operator/tests/readme.rs`), the others by the CRM server's
//! (`crm-server/tests/api/readme.rs`), against a `crm-server serve --demo` of its own.

use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The fence languages that are shell commands.
const SHELL: [&str; 3] = ["sh", "bash", "shell"];

/// How long all blocks of one test may take (they take seconds); a command that never ends (a
/// live stream, a server) fails the test instead of hanging it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A fenced shell block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The line of its opening fence (1-based).
    pub line: usize,
    pub text: String,
    pub mark: Mark,
}

/// What the comment before a block asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    Run,
    Skip(String),
    Fails(String),
    Synopsis,
}

/// The test that runs a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Crm,
    Operator,
}

impl Block {
    /// Blocks that run the operator's binary or promtool (the operator's alerts) belong to the
    /// operator's test; everything else to the CRM server's.
    pub fn program(&self) -> Program {
        let commands = self.text.lines().map(|line| line.split('#').next().unwrap_or(""));
        if commands.clone().any(|c| c.contains("freshplan-operator") || c.contains("promtool")) {
            Program::Operator
        } else {
            Program::Crm
        }
    }
}

/// The repository's README.
pub fn readme_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

/// The shell blocks of `markdown` with their marks; a mark that is unknown, lacks its reason or
/// does not stand right before a shell block is an error.
pub fn blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut pending: Option<(usize, Mark)> = None;
    let mut lines = markdown.lines().enumerate().map(|(i, line)| (i + 1, line));
    while let Some((number, line)) = lines.next() {
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix("<!-- readme-test:") {
            let body = comment
                .strip_suffix("-->")
                .ok_or_else(|| format!("README.md:{number}: a readme-test comment ends on its line"))?;
            if let Some((earlier, _)) = pending {
                return Err(format!("README.md:{earlier}: a readme-test comment without a block after it"));
            }
            pending = Some((number, mark(body.trim()).map_err(|e| format!("README.md:{number}: {e}"))?));
        } else if let Some(info) = trimmed.strip_prefix("```") {
            let mut text = String::new();
            loop {
                match lines.next() {
                    Some((_, line)) if line.trim_start().starts_with("```") => break,
                    Some((_, line)) => {
                        text.push_str(line);
                        text.push('\n');
                    }
                    None => return Err(format!("README.md:{number}: the block never ends")),
                }
            }
            let language = info.split_whitespace().next().unwrap_or("");
            let mark = pending.take();
            if !SHELL.contains(&language) {
                if let Some((at, _)) = mark {
                    return Err(format!("README.md:{at}: a readme-test comment before a `{language}` block"));
                }
                continue;
            }
            blocks.push(Block { line: number, text, mark: mark.map_or(Mark::Run, |(_, m)| m) });
        } else if !trimmed.is_empty()
            && let Some((at, _)) = pending
        {
            return Err(format!("README.md:{at}: a readme-test comment must stand right before its block"));
        }
    }
    match pending {
        Some((at, _)) => Err(format!("README.md:{at}: a readme-test comment without a block after it")),
        None => Ok(blocks),
    }
}

fn mark(body: &str) -> Result<Mark, String> {
    let reason = |rest: &str| {
        let rest = rest.trim();
        if rest.is_empty() { Err("say why, after the colon".to_owned()) } else { Ok(rest.to_owned()) }
    };
    if let Some(rest) = body.strip_prefix("skip:") {
        Ok(Mark::Skip(reason(rest)?))
    } else if let Some(rest) = body.strip_prefix("fails:") {
        Ok(Mark::Fails(reason(rest)?))
    } else if body == "synopsis" {
        Ok(Mark::Synopsis)
    } else {
        Err(format!("`{body}` is not `skip: <why>`, `fails: <what>` or `synopsis`"))
    }
}

/// One bash script of the blocks to run (`Run` and `Fails`), in order, each after a marker line
/// naming it, with `substitutions` applied to their text.
pub fn script(blocks: &[&Block], substitutions: &[(&str, &str)]) -> String {
    let mut script = String::from(
        "set -euo pipefail\nexec 2>&1\n\
         # As the README's readers see failures: an HTTP error fails curl, with the problem shown.\n\
         curl() { command curl --fail-with-body \"$@\"; }\n",
    );
    for block in blocks {
        let mut text = block.text.clone();
        for (from, to) in substitutions {
            text = text.replace(from, to);
        }
        let line = block.line;
        match &block.mark {
            Mark::Run => {
                let _ = writeln!(script, "printf '\\n### README.md:{line}\\n'\n{text}");
            }
            Mark::Fails(_) => {
                let _ = writeln!(
                    script,
                    "printf '\\n### README.md:{line} (must fail)\\n'\nif (\n{text}); then\n  \
                     echo '### README.md:{line} succeeded, but the README says it fails'\n  exit 1\nfi"
                );
            }
            Mark::Skip(_) | Mark::Synopsis => {}
        }
    }
    script.push_str("printf '\\n### all blocks ran\\n'\n");
    script
}

/// Runs `script` with bash in `dir` with `env`; its output, or which block failed and what it
/// printed.
pub fn run(script: &str, dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Result<String, String> {
    let path = dir.join("readme-blocks.sh");
    std::fs::write(&path, script).map_err(|e| format!("writing {}: {e}", path.display()))?;
    // In a process group of its own, so that what the blocks started can be stopped with it.
    let mut child = Command::new("bash")
        .arg(&path)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("running bash: {e}"))?;
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut output = String::new();
        let _ = stdout.read_to_string(&mut output);
        output
    });
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Anything a block left running in the background would hold the output open.
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let output = reader.join().unwrap_or_default();
    match status {
        Some(status) if status.success() && output.ends_with("### all blocks ran\n") => Ok(output),
        status => {
            let why = match status {
                Some(status) => format!("exited with {status}"),
                None => format!("did not end within {}s", SCRIPT_TIMEOUT.as_secs()),
            };
            // What the failing block printed last, from its marker on.
            let (block, printed) = match output.rfind("### README.md:") {
                Some(at) => (output[at + 4..].lines().next().unwrap_or(""), &output[at..]),
                None => ("the script's start", output.as_str()),
            };
            let lines: Vec<&str> = printed.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            Err(format!("the README block at {block} {why}; what it printed last:\n{tail}"))
        }
    }
}

/// Checks the usage lines of a synopsis block against `binary` (`program` in the text): every
/// line's subcommand (alternatives written `a|b`) has a `--help`, and it lists each `--flag` the
/// line names.
pub fn check_synopsis(block: &Block, program: &str, binary: &Path) -> Result<(), String> {
    for line in block.text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut tokens = line.split_whitespace();
        if tokens.next() != Some(program) {
            return Err(format!("README.md:{}: `{line}` does not start with {program}", block.line));
        }
        let tokens: Vec<&str> = tokens.collect();
        let words: Vec<&str> =
            tokens.iter().copied().take_while(|t| !t.starts_with(['-', '[', '<'])).collect();
        let flags: Vec<&str> = tokens
            .iter()
            .filter_map(|t| t.trim_start_matches('[').strip_prefix("--"))
            .map(|t| t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).next().unwrap_or(""))
            .collect();
        let mut commands: Vec<Vec<&str>> = vec![Vec::new()];
        for word in words {
            commands = commands
                .into_iter()
                .flat_map(|prefix| word.split('|').map(move |alt| [prefix.clone(), vec![alt]].concat()))
                .collect();
        }
        for command in commands {
            let output = Command::new(binary)
                .args(&command)
                .arg("--help")
                .output()
                .map_err(|e| format!("running {}: {e}", binary.display()))?;
            let help = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                return Err(format!(
                    "README.md:{}: `{program} {} --help` fails: {}",
                    block.line,
                    command.join(" "),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            for flag in &flags {
                let listed = help.match_indices(&format!("--{flag}")).any(|(at, m)| {
                    !help[at + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                });
                if !listed {
                    return Err(format!(
                        "README.md:{}: `{program} {}` has no --{flag}",
                        block.line,
                        command.join(" ")
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A folder to run blocks in, standing for the repository root the README's reader is in: a
/// link to each of its top-level entries (`examples/`, `charts/`...), so that files a block
/// writes (`wiesn.svg`) land here.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("readme-").tempdir().expect("a temporary folder");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for entry in std::fs::read_dir(&root).expect("the repository root").map_while(Result::ok) {
        let name = entry.file_name();
        if name != "target" && name != ".git" {
            std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).expect("a link");
        }
    }
    dir
}

/// A folder holding `name`, a link to `binary`, for `PATH`: blocks say `crm-server ...` as the
/// reader with an installed binary does.
pub fn bin_dir(name: &str, binary: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("readme-bin-").tempdir().expect("a temporary folder");
    std::os::unix::fs::symlink(binary, dir.path().join(name)).expect("a link");
    dir
}

/// `PATH` with `dir` first.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_owned()];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).expect("a PATH")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_blocks_are_found_with_their_marks_and_lines() {
        let markdown = "# T\n\n```sh\necho one\n```\n\n<!-- readme-test: skip: needs a cluster -->\n```sh\nkubectl get pods\n```\n\
                        ```yaml\na: 1\n```\n<!-- readme-test: fails: shows a 422 -->\n\n```bash\nfalse\n```\n\
                        <!-- readme-test: synopsis -->\n```sh\ncrm-server serve [--demo]\n```\n";
        let found = blocks(markdown).unwrap();
        let marks: Vec<(usize, &Mark)> = found.iter().map(|b| (b.line, &b.mark)).collect();
        assert_eq!(
            marks,
            [
                (3, &Mark::Run),
                (8, &Mark::Skip("needs a cluster".into())),
                (16, &Mark::Fails("shows a 422".into())),
                (20, &Mark::Synopsis)
            ]
        );
        assert_eq!(found[0].text, "echo one\n");
    }

    #[test]
    fn a_mark_without_a_reason_or_away_from_its_block_is_an_error() {
        for (markdown, error) in [
            ("<!-- readme-test: skip: -->\n```sh\nx\n```\n", "say why"),
            ("<!-- readme-test: later -->\n```sh\nx\n```\n", "is not `skip"),
            ("<!-- readme-test: skip: why -->\ntext\n```sh\nx\n```\n", "right before"),
            ("<!-- readme-test: skip: why -->\n```json\n{}\n```\n", "before a `json` block"),
            ("<!-- readme-test: skip: why -->\n", "without a block"),
            ("```sh\nx\n", "never ends"),
        ] {
            let found = blocks(markdown).unwrap_err();
            assert!(found.contains(error), "{markdown:?}: {found}");
        }
    }

    #[test]
    fn blocks_go_to_the_test_of_the_program_they_run() {
        let block = |text: &str| Block { line: 1, text: text.into(), mark: Mark::Run };
        assert_eq!(block("cargo run -p freshplan-operator -- render -f x\n").program(), Program::Operator);
        assert_eq!(block("promtool check rules a.yaml\n").program(), Program::Operator);
        assert_eq!(block("crm-server events status   # not freshplan-operator\n").program(), Program::Crm);
    }

    #[test]
    fn the_script_stops_at_the_first_failing_block_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let ok = Block { line: 3, text: "X=1\n".into(), mark: Mark::Run };
        let uses = Block { line: 9, text: "test \"$X\" = 1\nfalse\necho never\n".into(), mark: Mark::Run };
        let error = run(&script(&[&ok, &uses], &[]), dir.path(), &[]).unwrap_err();
        assert!(error.starts_with("the README block at README.md:9 exited"), "{error}");
        assert!(!error.contains("never"), "{error}");

        let fails = Block { line: 5, text: "false\n".into(), mark: Mark::Fails("x".into()) };
        let swapped = Block { line: 7, text: "echo A >/dev/null\n".into(), mark: Mark::Run };
        let output = run(&script(&[&fails, &swapped], &[("A", "B")]), dir.path(), &[]).unwrap();
        assert!(output.contains("### README.md:7"), "{output}");
        let wrongly = Block { line: 5, text: "true\n".into(), mark: Mark::Fails("x".into()) };
        assert!(run(&script(&[&wrongly], &[]), dir.path(), &[]).unwrap_err().contains("succeeded, but"));
    }

    #[test]
    fn what_a_block_leaves_running_is_stopped_with_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let background = Block { line: 2, text: "sleep 600 &\necho $! > sleeper\n".into(), mark: Mark::Run };
        run(&script(&[&background], &[]), dir.path(), &[]).unwrap();
        let pid = std::fs::read_to_string(dir.path().join("sleeper")).unwrap();
        // The kill is sent when the script ends; the kernel ends the process a moment later.
        let gone = || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
            (stat.is_empty() || stat.contains(") Z ")).then_some(()).ok_or(stat)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while gone().is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Err(stat) = gone() {
            panic!("the background sleep survived: {stat}");
        }
    }
}
