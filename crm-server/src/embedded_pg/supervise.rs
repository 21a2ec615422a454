//! Keeping the private PostgreSQL of `crm-server serve` running.
//!
//! A user of the embedded default has no supervisor around its database: when the postmaster
//! dies (killed, out of memory), the server would answer 503 for ever. So a supervisor thread owns
//! the [`Cluster`] and, when its postmaster exits without being asked to, starts it again on the
//! same port (crash recovery runs first; the pool's connections are tested before use and
//! replaced, the listener and the relay reconnect on their own). Restarts are bounded:
//! [`RestartPolicy::max_restarts`] within [`RestartPolicy::window`]; the next death within the
//! window, or a start that does not succeed within [`RESTART_DEADLINE`], is [`Status::Failed`]
//! and the server exits non-zero, for a supervisor of its own (systemd, Kubernetes) to act.
//!
//! [`Status`] is published on a watch channel: `/healthz` answers 503 unless it is `Running`.

use std::collections::VecDeque;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::mpsc::{self, RecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::{Cluster, PgError, STOP_TIMEOUT, io_err};

/// How long one restart may keep failing (old server processes still holding the shared memory,
/// the port taken for a moment) before the supervisor gives up.
pub const RESTART_DEADLINE: Duration = Duration::from_secs(60);

/// How often the private PostgreSQL may be restarted.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; the next death within it ends the server.
    pub max_restarts: u32,
    pub window: Duration,
}

/// The private PostgreSQL as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Running,
    /// It died and is being started again: restart `restart` of at most `of` within the window.
    Restarting {
        restart: u32,
        of: u32,
    },
    /// It cannot be kept running; the reason. The server is to exit non-zero.
    Failed(String),
}

/// What the supervisor and [`Supervised::stop`] share.
#[derive(Debug)]
struct Control {
    /// The current postmaster; `None` while there is none (its pid may be reused by then).
    pid: Option<Pid>,
    /// A stop was asked for: an exit is then the expected one, and no restart follows.
    stopping: bool,
}

/// A running cluster under supervision. Stop it with [`Supervised::stop`]; dropping it stops it
/// too.
#[derive(Debug)]
pub struct Supervised {
    root: std::path::PathBuf,
    port: u16,
    password: String,
    control: Arc<Mutex<Control>>,
    status: watch::Receiver<Status>,
    /// Closed when the supervisor thread has ended (the cluster stopped, or given up).
    ended: mpsc::Receiver<()>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Supervised {
    /// Hands `cluster` to a supervisor thread.
    pub fn start(cluster: Cluster, policy: RestartPolicy) -> Result<Supervised, PgError> {
        let control = Arc::new(Mutex::new(Control { pid: Some(cluster.pid), stopping: false }));
        let (status_tx, status) = watch::channel(Status::Running);
        let (ended_tx, ended) = mpsc::channel::<()>();
        let (root, port, password) = (cluster.root.clone(), cluster.port, cluster.password.clone());
        let thread = thread::Builder::new()
            .name("postgres-supervisor".into())
            .spawn({
                let control = control.clone();
                move || {
                    supervise(cluster, &control, &status_tx, policy);
                    drop(ended_tx);
                }
            })
            .map_err(io_err("starting the PostgreSQL supervisor thread"))?;
        Ok(Supervised { root, port, password, control, status, ended, thread: Some(thread) })
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the superuser over loopback TCP; it stays valid across
    /// restarts.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{}:{}@127.0.0.1:{}/{database}", super::SUPERUSER, self.password, self.port)
    }

    /// The supervisor's view, as it changes.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Fast shutdown, falling back to an immediate one after a minute; returns at once when the
    /// supervisor has already given up.
    pub fn stop(mut self) -> Result<(), PgError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), PgError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let pid = {
            let mut control = lock(&self.control);
            control.stopping = true;
            control.pid
        };
        // None: it is gone (the supervisor gave up, or is between two starts and sees the stop).
        if let Some(pid) = pid {
            let _ = kill(pid, Signal::SIGINT);
        }
        if let Err(mpsc::RecvTimeoutError::Timeout) = self.ended.recv_timeout(STOP_TIMEOUT)
            && let Some(pid) = lock(&self.control).pid
        {
            tracing::warn!(pid = pid.as_raw(), "fast shutdown timed out; stopping PostgreSQL immediately");
            let _ = kill(pid, Signal::SIGQUIT);
        }
        thread
            .join()
            .map_err(|_| io_err("stopping PostgreSQL")(io::Error::other("the supervisor thread panicked")))
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::error!(%error, "stopping PostgreSQL");
        }
    }
}

fn lock(control: &Mutex<Control>) -> MutexGuard<'_, Control> {
    control.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The supervisor thread: waits for the postmaster to exit, and starts it again unless a stop
/// was asked for or the restarts are used up.
fn supervise(
    mut cluster: Cluster,
    control: &Mutex<Control>,
    status: &watch::Sender<Status>,
    policy: RestartPolicy,
) {
    let mut deaths: VecDeque<Instant> = VecDeque::new();
    loop {
        let exit = cluster.exited.recv();
        // The process is gone: dropping the cluster must not try to stop it again.
        cluster.stopped = true;
        {
            let mut control = lock(control);
            control.pid = None;
            if control.stopping {
                tracing::info!(status = %describe(&exit), "PostgreSQL stopped");
                return;
            }
        }
        let died = describe(&exit);
        tracing::error!(pid = cluster.pid.as_raw(), status = %died, "PostgreSQL exited unexpectedly");
        // Its server processes notice and quit, but until the last one has, it holds the shared
        // memory and a new postmaster refuses to start: tell them all to quit now.
        let _ = killpg(cluster.pid, Signal::SIGQUIT);

        let now = Instant::now();
        while deaths.front().is_some_and(|death| now.duration_since(*death) > policy.window) {
            deaths.pop_front();
        }
        if deaths.len() as u32 >= policy.max_restarts {
            let reason = format!(
                "the private PostgreSQL died ({died}) after {} restart(s) within {}s, more than \
                 --pg-max-restarts allows; exiting so that a supervisor can act",
                deaths.len(),
                policy.window.as_secs()
            );
            tracing::error!(%reason, "giving up on PostgreSQL");
            status.send_replace(Status::Failed(reason));
            return;
        }
        deaths.push_back(now);
        let restart = deaths.len() as u32;
        status.send_replace(Status::Restarting { restart, of: policy.max_restarts });
        tracing::warn!(restart, of = policy.max_restarts, "restarting PostgreSQL (crash recovery)");
        match restart_until_deadline(&mut cluster, control) {
            Ok(true) => {
                tracing::info!(
                    pid = cluster.pid.as_raw(),
                    port = cluster.port,
                    "PostgreSQL is running again"
                );
                status.send_replace(Status::Running);
            }
            Ok(false) => return,
            Err(error) => {
                let reason = format!("the private PostgreSQL died ({died}) and did not start again: {error}");
                tracing::error!(%reason, "giving up on PostgreSQL");
                status.send_replace(Status::Failed(reason));
                return;
            }
        }
    }
}

/// Starts the cluster again, retrying for up to [`RESTART_DEADLINE`]: right after a crash, old
/// server processes may still hold its shared memory. `Ok(false)`: a stop was asked for instead.
fn restart_until_deadline(cluster: &mut Cluster, control: &Mutex<Control>) -> Result<bool, PgError> {
    let deadline = Instant::now() + RESTART_DEADLINE;
    let mut pause = Duration::from_millis(100);
    loop {
        if lock(control).stopping {
            return Ok(false);
        }
        match cluster.respawn() {
            Ok(()) => {
                let mut control = lock(control);
                control.pid = Some(cluster.pid);
                // A stop that came during the start signalled the dead postmaster: pass it on.
                if control.stopping {
                    let _ = kill(cluster.pid, Signal::SIGINT);
                }
                return Ok(true);
            }
            Err(error) if Instant::now() + pause < deadline => {
                tracing::warn!(
                    error = %first_line(&error.to_string()),
                    retry_in_ms = pause.as_millis() as u64,
                    "PostgreSQL did not start again yet"
                );
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error),
        }
    }
}

fn describe(exit: &Result<io::Result<ExitStatus>, RecvError>) -> String {
    match exit {
        Ok(Ok(status)) => match status.signal() {
            Some(signal) => format!("killed by signal {signal}"),
            None => status.to_string(),
        },
        Ok(Err(error)) => format!("waiting for it failed: {error}"),
        Err(RecvError) => "its keeper thread vanished".to_owned(),
    }
}

/// The reason without the log tail a start error carries; the log has it.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
