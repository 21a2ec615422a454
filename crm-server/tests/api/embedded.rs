//! The private PostgreSQL of the embedded default, and the `crm-server` binary on top of it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crm_server::embedded_pg::{Cluster, Options, PgError};
use sqlx::{Connection, PgConnection};

fn options(dir: &Path) -> Options {
    Options { root: dir.join("pg"), ephemeral: true }
}

fn pid_of(dir: &Path) -> i32 {
    let text = std::fs::read_to_string(dir.join("pg/data/postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn wait_until_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// `Cluster::start`, off the async runtime (it waits for the server).
async fn start(options: &Options) -> Cluster {
    let options = options.clone();
    tokio::task::spawn_blocking(move || Cluster::start(&options)).await.unwrap().unwrap()
}

/// `Cluster::stop`, off the async runtime.
async fn stop(cluster: Cluster) {
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_second_start_reuses_the_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path());

    let cluster = start(&options).await;
    let mut conn = PgConnection::connect(&cluster.url("postgres")).await.unwrap();
    sqlx::raw_sql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let pid = pid_of(dir.path());
    stop(cluster).await;
    assert!(wait_until_gone(pid), "postgres {pid} still runs after stop");

    let cluster = start(&options).await;
    let mut conn = PgConnection::connect(&cluster.url("postgres")).await.unwrap();
    let v: i32 = sqlx::query_scalar("SELECT v FROM kept").fetch_one(&mut conn).await.unwrap();
    assert_eq!(v, 7);
    conn.close().await.unwrap();
    stop(cluster).await;
}

#[test]
fn a_data_folder_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Cluster::start(&options(dir.path())).unwrap();
    let second = Cluster::start(&options(dir.path()));
    assert!(matches!(second, Err(PgError::InUse(_))), "{second:?}");
    first.stop().unwrap();
}

#[test]
fn dropping_a_cluster_stops_its_server() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&options(dir.path())).unwrap();
    let pid = pid_of(dir.path());
    drop(cluster);
    assert!(wait_until_gone(pid));
}

#[test]
fn a_server_left_running_by_an_earlier_run_is_stopped_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&options(dir.path())).unwrap();
    let orphan = pid_of(dir.path());
    // Simulate a crashed owner: the lock goes away, the server stays.
    std::mem::forget(cluster);
    std::fs::remove_file(dir.path().join("pg/lock")).unwrap();
    let cluster = Cluster::start(&options(dir.path())).unwrap();
    assert!(!alive(orphan), "the orphan {orphan} survived");
    assert_ne!(pid_of(dir.path()), orphan);
    cluster.stop().unwrap();
}

/// The binary as a user runs it: serves on its own PostgreSQL, answers, and on Ctrl-C (SIGINT)
/// stops cleanly, leaving no PostgreSQL process behind.
#[tokio::test]
async fn the_binary_serves_on_its_private_database_and_stops_it_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crm-server"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("CRM_DATA_DIR", dir.path().join("pg"))
        .env("CRM_LOG", "info,crm_server::http::observe=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The JSON log line "serving the CRM API" carries the bound address.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let address = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no address logged: {log:#?}"));
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        log.push(line);
        if json["message"] == "serving the CRM API" {
            break json["address"].as_str().unwrap().to_owned();
        }
    };
    let request = axum::http::Request::get(format!("http://{address}/readyz"))
        .header("x-correlation-id", "e2e-4711")
        .body(Default::default())
        .unwrap();
    let ready = crm_server::testing::app::fetch(request).await.unwrap();
    assert_eq!(ready.status, 200, "{}", ready.text());

    // The embedded default trusts tokens from `crm-server dev-token`, and only those.
    let customers = format!("http://{address}/customers");
    let anonymous = crm_server::testing::app::get_url(&customers).await.unwrap();
    assert_eq!(anonymous.status, 401);
    let token = Command::new(env!("CARGO_BIN_EXE_crm-server"))
        .args([
            "dev-token",
            "--role",
            "sales-rep",
            "--territory",
            "BY",
            "--subject",
            "e2e-rep",
            "--ttl",
            "5m",
        ])
        .env("CRM_DATA_DIR", dir.path().join("pg"))
        .output()
        .unwrap();
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap();
    let request = axum::http::Request::get(&customers)
        .header("authorization", format!("Bearer {}", token.trim()))
        .body(Default::default())
        .unwrap();
    let listed = crm_server::testing::app::fetch(request).await.unwrap();
    assert_eq!(listed.status, 200, "{}", listed.text());
    let postgres = pid_of(dir.path());
    assert!(alive(postgres));

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    assert!(wait_until_gone(postgres), "PostgreSQL {postgres} survived the server");
    let rest: Vec<String> = rx.try_iter().collect();
    // The request's log line carries its correlation id.
    let request_line = rest.iter().find(|l| l.contains("request finished")).expect("an access log line");
    let request_line: serde_json::Value = serde_json::from_str(request_line).unwrap();
    assert_eq!(request_line["span"]["correlation_id"], "e2e-4711", "{request_line}");
    assert_eq!(request_line["span"]["route"], "/readyz", "{request_line}");
    let stopped = rest.iter().position(|l| l.contains("PostgreSQL stopped"));
    let pool_closed = rest.iter().position(|l| l.contains("database pool closed"));
    assert!(pool_closed.is_some() && stopped.is_some() && pool_closed < stopped, "{rest:#?}");
}

/// `crm-server migrate` against a server given by DATABASE_URL, twice: the second run finds
/// nothing to do and succeeds.
#[tokio::test]
async fn migrate_is_idempotent_and_never_starts_a_server_of_its_own() {
    let db = crm_server::testing::TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let output = Command::new(env!("CARGO_BIN_EXE_crm-server"))
            .arg("migrate")
            .env("DATABASE_URL", &db.url)
            .env("CRM_DATA_DIR", dir.path().join("must-stay-empty"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("migrations are current"));
    }
    assert!(!dir.path().join("must-stay-empty").exists());
}

/// A server that row-level security would not apply to refuses to start, as does one with
/// neither an issuer nor the embedded default's development key.
#[tokio::test]
async fn the_server_refuses_to_serve_as_an_owner_or_without_an_issuer() {
    let db = crm_server::testing::TestDb::new().await;
    let key = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/ed.pub.pem");
    let run = |url: &str, issuer: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crm-server"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", url)
            .env("CRM_LOG_FORMAT", "text");
        if issuer {
            command.args(["--oidc-issuer", "https://sso.test", "--jwt-public-key"]).arg(&key);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let as_owner = run(&db.url, true);
    assert!(as_owner.contains("bypasses row-level security"), "{as_owner}");
    let without_issuer = run(&db.app_url, false);
    assert!(without_issuer.contains("no token issuer is configured"), "{without_issuer}");
}

/// A server started before its database waits for it instead of exiting (and crash-looping);
/// what cannot pass by waiting, a refused login, fails at once.
#[tokio::test]
async fn the_first_connect_waits_for_a_database_that_comes_up_later() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path());
    let cluster = start(&options).await;
    let (url, port) = (cluster.url("postgres"), cluster.port());
    stop(cluster).await;

    let waiting = tokio::spawn({
        let url = url.clone();
        async move { crm_server::db::connect_waiting(&url, 1, Duration::from_secs(60)).await }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "it gave up while the database was down: {:?}", waiting.await);
    let cluster =
        tokio::task::spawn_blocking(move || Cluster::start_on_port(&options, port)).await.unwrap().unwrap();
    let pool = waiting.await.unwrap().expect("connected once the database was up");
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await.unwrap();
    assert_eq!(one, 1);
    pool.close().await;

    let wrong = url.replacen("://freshplan:", "://freshplan:x", 1);
    assert_ne!(wrong, url);
    let started = Instant::now();
    let refused = crm_server::db::connect_waiting(&wrong, 1, Duration::from_secs(60)).await;
    assert!(matches!(refused, Err(sqlx::Error::Database(_))), "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "a refused login is not retried");
    stop(cluster).await;
}
