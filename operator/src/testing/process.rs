//! `freshplan-operator run` as a child process against a [`FakeApi`], as the end-to-end test and
//! the reconcile benchmark drive it: through a kubeconfig, with its log in a file.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::fake_api::FakeApi;

/// The running binary.
pub struct OperatorProcess {
    child: Child,
    admin: SocketAddr,
    log: PathBuf,
}

impl OperatorProcess {
    /// Starts `binary run` (`env!("CARGO_BIN_EXE_freshplan-operator")` of the caller) against
    /// `api`, with its files in `dir`, the admin server on a free loopback port, the lease in
    /// namespace crm as `operator-0`, JSON logs filtered by `log`, and `args` after those.
    pub fn start(binary: &Path, dir: &Path, api: &FakeApi, log: &str, args: &[String]) -> OperatorProcess {
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig()).expect("the kubeconfig written");
        let admin = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let log_file = dir.join("operator.log");
        let child = Command::new(binary)
            .arg("run")
            .args(["--admin-addr", &admin.to_string()])
            .args(["--lease-namespace", "crm", "--identity", "operator-0"])
            .args(["--log-format", "json", "--log", log])
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_file).expect("the log file"))
            .spawn()
            .expect("the operator binary starts");
        OperatorProcess { child, admin, log: log_file }
    }

    /// `http://<admin address><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The most memory it has held so far (`VmHWM`, the resident set's high-water mark), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// The memory it holds now (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The CPU time it has used so far (user and system).
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time(self.child.id())
    }

    /// Waits up to `timeout` for `done`; panics with the log if it does not come or the
    /// process exits first.
    pub async fn until(&mut self, what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done().await {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the operator exited with {status} waiting for {what}; its log:\n{}", self.log());
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; the operator's log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, as Kubernetes stops a pod; its exit status and log once it has exited.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM sent");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("a child to wait for") {
                return (status, self.log());
            }
            if tokio::time::Instant::now() > deadline {
                panic!("no exit 20 s after SIGTERM; the log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CPU time (user and system) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every architecture it runs on.
    Some(Duration::from_millis(ticks * 10))
}
