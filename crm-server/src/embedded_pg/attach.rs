//! The cluster another process runs on a data folder, for the operations commands (`events`,
//! `projection`, `retention`, `migrate`): they are needed exactly while `crm-server serve` runs,
//! and it holds the folder's lock.
//!
//! PostgreSQL itself records where it listens and how it is doing in `data/postmaster.pid`
//! (line 1 its pid, line 4 its port, line 8 `ready` once it accepts connections), so the owner
//! needs to publish nothing else; the superuser's password is in `<root>/password`. While the
//! owner's supervisor restarts a crashed cluster the record is stale or says `starting`: the
//! command waits for it.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::{PgError, SUPERUSER, is_postgres, read_password, read_pid_file};

/// A cluster run by another process.
#[derive(Debug)]
pub struct Running {
    root: PathBuf,
    port: u16,
    password: String,
}

impl Running {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the superuser over loopback TCP.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}", self.password, self.port)
    }
}

/// The cluster running on `root`, waiting up to `wait` for one that is starting or restarting.
pub fn find(root: &Path, wait: Duration) -> Result<Running, PgError> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(port) = ready_port(&root.join("data")) {
            let password = read_password(root)?;
            return Ok(Running { root: root.to_owned(), port, password });
        }
        if Instant::now() > deadline {
            return Err(PgError::NotReady(root.to_owned(), wait.as_secs()));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The port of a live postmaster on `data` that is ready for connections.
fn ready_port(data: &Path) -> Option<u16> {
    let lines = read_pid_file(data)?;
    let pid = Pid::from_raw(lines.first()?.trim().parse().ok()?);
    let port = lines.get(3)?.trim().parse().ok()?;
    let ready = lines.get(7).is_some_and(|status| status.trim() == "ready");
    (ready && is_postgres(pid)).then_some(port)
}
