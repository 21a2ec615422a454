//! A private PostgreSQL cluster run from the machine's own server binaries.
//!
//! `crm-server serve` uses it when no `DATABASE_URL` is given, and the test harness uses it for a
//! throwaway cluster per test run. Nothing is downloaded: `initdb` and `postgres` come from `PATH`,
//! from `PG_BIN_DIR`, or from the newest `/usr/lib/postgresql/<major>/bin`.
//!
//! # Layout of the cluster's folder
//! ```text
//! <root>/lock           held (flock) for as long as a process runs the cluster
//! <root>/password       the superuser's password, mode 0600
//! <root>/data/          PGDATA, created by initdb (atomically: initdb writes data.init, then renames)
//! <root>/postgres.log   the server's output, appended
//! ```
//!
//! # Process model
//! `postgres` is started directly (not through `pg_ctl`) as a child of a keeper thread that lives
//! as long as the server:
//! - in its own process group, so a Ctrl-C in the terminal reaches only `crm-server`, which then
//!   drains requests, closes its pool and only then stops the database;
//! - with a parent-death signal (Linux), so a `crm-server` killed with SIGKILL does not leave an
//!   orphaned server behind; the keeper thread is the "parent" the kernel watches, which is why it
//!   must outlive the server and not be a short-lived worker thread;
//! - as an unprivileged account when running as root (PostgreSQL refuses to run as root): the
//!   `postgres` account if it exists, else `nobody`.
//!
//! Any PostgreSQL found running on `data/` while we hold the lock is an orphan of an
//! earlier run that could not stop it; it is shut down before the new server starts.
//!
//! # Beside a running owner
//! One process owns a folder's cluster at a time (the lock). `crm-server serve` hands its
//! cluster to a [`supervise::Supervised`] keeper, which starts it again when it dies. The
//! operations commands, finding the lock held, connect to the owner's cluster instead
//! ([`attach`]): PostgreSQL records its port and state in `data/postmaster.pid`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User};

mod access;
pub mod attach;
pub mod supervise;

/// The superuser initdb creates; the server and tests connect as this role.
pub const SUPERUSER: &str = "freshplan";

/// How long a start may take before it is reported as failed (crash recovery after an unclean
/// stop can take a while on a large data folder).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a fast shutdown may take before the server is stopped immediately (no checkpoint;
/// crash recovery at the next start, which is safe but slower).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a held lock of the data folder is waited for before it counts as another owner's.
const LOCK_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) were not found on PATH, in PG_BIN_DIR or under \
         /usr/lib/postgresql/*/bin; install them (Debian: `apt-get install postgresql`) or set DATABASE_URL \
         to use an existing server"
    )]
    BinariesNotFound,
    #[error(
        "the data folder {0} is in use by another process (its lock file is held): a running `crm-server \
         serve`, or a command that started its PostgreSQL; a second server cannot share it (the operations \
         commands can)"
    )]
    InUse(PathBuf),
    #[error("running as root, but no unprivileged account (postgres or nobody) exists to run PostgreSQL")]
    NoUnprivilegedUser,
    #[error(
        "the data folder {0} is in use by another process, but no PostgreSQL became ready on it within \
         {1}s; see {0}/postgres.log"
    )]
    NotReady(PathBuf, u64),
    /// PostgreSQL's account (as root) cannot reach the data folder; the text says why and what to do.
    #[error("{0}")]
    Unreachable(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("initdb failed ({status}):\n{output}")]
    Initdb { status: ExitStatus, output: String },
    #[error("PostgreSQL did not start ({reason}); the end of {log}:\n{tail}")]
    Start { reason: String, log: PathBuf, tail: String },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> PgError {
    let context = context.into();
    move |source| PgError::Io { context, source }
}

/// How the cluster is run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cluster's folder (see the module docs for its layout).
    pub root: PathBuf,
    /// A throwaway cluster (tests): initdb without fsync and a server that trades durability for
    /// speed. Never for data anyone wants to keep.
    pub ephemeral: bool,
}

/// A running PostgreSQL server. Stop it with [`Cluster::stop`]; dropping it stops it too.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    port: u16,
    password: String,
    pid: Pid,
    exited: mpsc::Receiver<io::Result<ExitStatus>>,
    stopped: bool,
    /// What a start again needs ([`Cluster::respawn`]).
    bin: PathBuf,
    run_as: Option<RunAs>,
    ephemeral: bool,
    /// Held for the cluster's lifetime; the OS releases it if the process dies.
    _lock: File,
}

impl Cluster {
    /// Initialises the folder if needed (a second start reuses it), starts the server on a free
    /// loopback port and waits until it accepts connections.
    pub fn start(options: &Options) -> Result<Cluster, PgError> {
        Cluster::start_with(options, None)
    }

    /// [`Cluster::start`] on the given loopback port, without falling back to another one: to
    /// start a stopped cluster again where its clients reconnect (the restart tests).
    pub fn start_on_port(options: &Options, port: u16) -> Result<Cluster, PgError> {
        Cluster::start_with(options, Some(port))
    }

    fn start_with(options: &Options, fixed_port: Option<u16>) -> Result<Cluster, PgError> {
        let bin = find_bin_dir().ok_or(PgError::BinariesNotFound)?;
        let run_as = run_as()?;
        let root = &options.root;
        create_root(root, run_as.is_some())?;

        let lock =
            File::create(root.join("lock")).map_err(io_err(format!("creating {}/lock", root.display())))?;
        // A lock just released can still be held for a moment: by a process that is exiting, or
        // by a child another thread of this process forked before its exec closed the copy of
        // the descriptor. Only a lock held for longer means another owner.
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => return Err(PgError::InUse(root.clone())),
                Err(fs::TryLockError::Error(e)) => return Err(io_err("locking the data folder")(e)),
            }
        }

        let data = root.join("data");
        let password = if data.join("PG_VERSION").exists() {
            read_password(root)?
        } else {
            initdb(&bin, root, run_as.as_ref(), options.ephemeral)?
        };
        stop_orphan(&data)?;

        // Another process may take the port between our probe and the server's bind; try again
        // with a fresh port rather than failing the start.
        let mut attempt = 1;
        loop {
            let port = match fixed_port {
                Some(port) => port,
                None => free_port().map_err(io_err("finding a free port"))?,
            };
            match spawn(&bin, root, port, run_as.as_ref(), options.ephemeral) {
                Ok((pid, exited)) => {
                    return Ok(Cluster {
                        root: root.clone(),
                        port,
                        password,
                        pid,
                        exited,
                        stopped: false,
                        bin,
                        run_as,
                        ephemeral: options.ephemeral,
                        _lock: lock,
                    });
                }
                Err(PgError::Start { tail, .. })
                    if fixed_port.is_none() && attempt < 3 && tail.contains("could not bind") =>
                {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts the server again, on the same port (its clients' URLs stay valid), after its keeper
    /// reported that it exited: what the supervisor does after a crash. PostgreSQL runs crash
    /// recovery before it reports ready.
    fn respawn(&mut self) -> Result<(), PgError> {
        let (pid, exited) = spawn(&self.bin, &self.root, self.port, self.run_as.as_ref(), self.ephemeral)?;
        self.pid = pid;
        self.exited = exited;
        self.stopped = false;
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A connection URL for `database` as the superuser over loopback TCP.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}", self.password, self.port)
    }

    /// Fast shutdown (active sessions are disconnected, a checkpoint is written); falls back to an
    /// immediate shutdown when that takes longer than a minute.
    pub fn stop(mut self) -> Result<(), PgError> {
        self.shutdown()
    }

    /// Immediate shutdown (no checkpoint), as a crash: the next start runs crash recovery, which
    /// empties unlogged tables. For tests of what survives one.
    pub fn crash(mut self) -> Result<(), PgError> {
        self.stopped = true;
        let _ = kill(self.pid, Signal::SIGQUIT);
        let status = self.exited.recv().unwrap_or_else(|_| Err(io::Error::other("keeper thread vanished")));
        let status = status.map_err(io_err("waiting for PostgreSQL to exit"))?;
        tracing::info!(%status, "PostgreSQL stopped immediately");
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), PgError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        // ESRCH means it is already gone, which is what we want.
        let _ = kill(self.pid, Signal::SIGINT);
        let status = match self.exited.recv_timeout(STOP_TIMEOUT) {
            Ok(status) => status,
            Err(_) => {
                tracing::warn!(
                    pid = self.pid.as_raw(),
                    "fast shutdown timed out; stopping PostgreSQL immediately"
                );
                let _ = kill(self.pid, Signal::SIGQUIT);
                self.exited.recv().unwrap_or_else(|_| Err(io::Error::other("keeper thread vanished")))
            }
        };
        let status = status.map_err(io_err("waiting for PostgreSQL to exit"))?;
        tracing::info!(%status, "PostgreSQL stopped");
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::error!(%error, "stopping PostgreSQL");
        }
    }
}

/// The folder holding `initdb` and `postgres`, from `PG_BIN_DIR`, `PATH`, or the newest
/// `/usr/lib/postgresql/<major>/bin`.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return Some(PathBuf::from(dir)).filter(|d| has_both(d));
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_both(d))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// The account PostgreSQL runs as when we are root; `None` runs it as ourselves.
#[derive(Debug, Clone)]
struct RunAs {
    name: &'static str,
    uid: Uid,
    gid: Gid,
}

fn run_as() -> Result<Option<RunAs>, PgError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(user)) = User::from_name(name) {
            return Ok(Some(RunAs { name, uid: user.uid, gid: user.gid }));
        }
    }
    Err(PgError::NoUnprivilegedUser)
}

/// The error for a failed start of `program` (initdb, postgres) in `root`: when PostgreSQL's
/// account was denied access, which folder stops it and what to do, since the bare "Permission
/// denied" of a child's chdir names neither.
fn start_failed(program: &str, root: &Path, run_as: Option<&RunAs>, error: io::Error) -> PgError {
    match run_as {
        Some(account) if error.kind() == io::ErrorKind::PermissionDenied => {
            PgError::Unreachable(access::explain(root, account, &error))
        }
        _ => io_err(format!("running {program}"))(error),
    }
}

fn create_root(root: &Path, shared_with_other_user: bool) -> Result<(), PgError> {
    // When PostgreSQL runs as another account it must be able to reach data/ through this folder.
    let mode = if shared_with_other_user { 0o755 } else { 0o700 };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(root)
        .map_err(io_err(format!("creating {}", root.display())))?;
    if shared_with_other_user {
        fs::set_permissions(root, fs::Permissions::from_mode(mode))
            .map_err(io_err(format!("making {} reachable for PostgreSQL", root.display())))?;
    }
    Ok(())
}

fn read_password(root: &Path) -> Result<String, PgError> {
    let path = root.join("password");
    fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(io_err(format!("reading {}", path.display())))
}

/// Runs initdb into `data.init` and renames it to `data`, so an interrupted initdb never leaves a
/// half-made cluster behind. Returns the new superuser password.
fn initdb(bin: &Path, root: &Path, run_as: Option<&RunAs>, ephemeral: bool) -> Result<String, PgError> {
    let staging = root.join("data.init");
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_err(format!("removing {}", staging.display())))?;
    }
    let password = uuid::Uuid::new_v4().simple().to_string();
    write_private(&root.join("password"), &password)?;
    // initdb reads the password from a file; it must be readable by the account initdb runs as,
    // and exists only for the duration of the call.
    let pwfile = root.join("password.initdb");
    write_private(&pwfile, &password)?;
    // initdb accepts an existing empty folder; creating it ourselves means PostgreSQL's account
    // needs no write access to <root>.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(io_err(format!("creating {}", staging.display())))?;
    if let Some(user) = run_as {
        for path in [&staging, &pwfile] {
            nix::unistd::chown(path, Some(user.uid), Some(user.gid)).map_err(|e| {
                io_err(format!("handing {} to PostgreSQL's account", path.display()))(e.into())
            })?;
        }
    }

    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("--pgdata")
        .arg(&staging)
        .args(["--username", SUPERUSER, "--encoding", "UTF8", "--no-locale"])
        .args(["--auth-host", "scram-sha-256", "--auth-local", "peer"])
        .arg(format!("--pwfile={}", pwfile.display()));
    if ephemeral {
        cmd.arg("--no-sync");
    }
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    // initdb needs a working directory the account can read.
    cmd.current_dir(root);
    let output = cmd.output().map_err(|e| start_failed("initdb", root, run_as, e));
    let _ = fs::remove_file(&pwfile);
    let output = output?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        return Err(PgError::Initdb { status: output.status, output: text });
    }
    fs::rename(&staging, root.join("data")).map_err(io_err("moving the new cluster into place"))?;
    Ok(password)
}

/// Writes `contents` to a file only its owner may read.
fn write_private(path: &Path, contents: &str) -> Result<(), PgError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(io_err(format!("writing {}", path.display())))
}

/// Stops a server still running on `data` from an earlier run (we hold the lock, so it cannot
/// belong to a live crm-server).
fn stop_orphan(data: &Path) -> Result<(), PgError> {
    let Some(pid) = read_pid_file(data).and_then(|lines| lines.first()?.trim().parse::<i32>().ok()) else {
        return Ok(());
    };
    let pid = Pid::from_raw(pid);
    if kill(pid, None).is_err() || !is_postgres(pid) {
        return Ok(());
    }
    tracing::warn!(
        pid = pid.as_raw(),
        "stopping a PostgreSQL left running on this data folder by an earlier run"
    );
    let _ = kill(pid, Signal::SIGINT);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while kill(pid, None).is_ok() {
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGQUIT);
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn is_postgres(pid: Pid) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "postgres")
}

fn read_pid_file(data: &Path) -> Option<Vec<String>> {
    let text = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    Some(text.lines().map(str::to_owned).collect())
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `postgres` from a keeper thread and waits until its pid file says "ready".
fn spawn(
    bin: &Path,
    root: &Path,
    port: u16,
    run_as: Option<&RunAs>,
    ephemeral: bool,
) -> Result<(Pid, mpsc::Receiver<io::Result<ExitStatus>>), PgError> {
    let data = root.join("data");
    let log_path = root.join("postgres.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io_err(format!("opening {}", log_path.display())))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log.try_clone().map_err(io_err("duplicating the log handle"))?;

    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D").arg(&data).arg("-p").arg(port.to_string());
    let mut settings = vec![
        ("listen_addresses", "127.0.0.1"),
        // TCP only: a socket folder would have to be writable by the server's account and short
        // enough for sun_path, and nothing here needs it.
        ("unix_socket_directories", ""),
    ];
    if ephemeral {
        settings.extend([
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_connections", "400"),
        ]);
    }
    for (name, value) in settings {
        cmd.arg("-c").arg(format!("{name}={value}"));
    }
    cmd.stdin(Stdio::null()).stdout(log).stderr(log_err).current_dir(root).process_group(0);
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    set_parent_death_signal(&mut cmd);

    let (pid_tx, pid_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    thread::Builder::new()
        .name("postgres-keeper".into())
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = pid_tx.send(Ok(child.id()));
                let _ = exit_tx.send(child.wait());
            }
            Err(e) => {
                let _ = pid_tx.send(Err(e));
            }
        })
        .map_err(io_err("starting the postgres keeper thread"))?;
    let raw_pid = pid_rx
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("keeper thread vanished")))
        .map_err(|e| start_failed("postgres", root, run_as, e))?;
    let pid = Pid::from_raw(raw_pid as i32);

    let failed = |reason: String| PgError::Start {
        reason,
        log: log_path.clone(),
        tail: log_tail(&log_path, log_start),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match exit_rx.try_recv() {
            Ok(status) => {
                let reason = match status {
                    Ok(s) => match s.signal() {
                        Some(sig) => format!("postgres was killed by signal {sig}"),
                        None => format!("postgres exited with {s}"),
                    },
                    Err(e) => format!("waiting for postgres: {e}"),
                };
                return Err(failed(reason));
            }
            Err(mpsc::TryRecvError::Disconnected) => return Err(failed("the keeper thread vanished".into())),
            Err(mpsc::TryRecvError::Empty) => {}
        }
        // Line 1 is the pid (so a stale file from another run is not mistaken for ours) and
        // line 8 the postmaster's status.
        if let Some(lines) = read_pid_file(&data) {
            let ours = lines.first().is_some_and(|l| l.trim() == raw_pid.to_string());
            if ours && lines.get(7).is_some_and(|l| l.trim() == "ready") {
                return Ok((pid, exit_rx));
            }
        }
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGQUIT);
            return Err(failed(format!("not ready after {}s", START_TIMEOUT.as_secs())));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// On Linux, ask the kernel to send SIGQUIT (PostgreSQL's immediate shutdown) to the server when
/// its parent thread dies, so that SIGKILL of crm-server leaves no server behind.
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
        // system calls (prctl, getppid), as pre_exec requires. std applies uid/gid before running
        // it, and a credential change would clear the setting, so the order matters and is right.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() != parent {
                    return Err(io::Error::other("parent exited during start"));
                }
                Ok(())
            });
        }
    }
}

/// What the server logged since `from`, at most the last 4 KiB, for error messages.
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = from.max(len.saturating_sub(4096));
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.read_to_string(&mut text);
        }
    }
    text
}
