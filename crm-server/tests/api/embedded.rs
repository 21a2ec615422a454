//! The private PostgreSQL of the embedded default, and the `crm-server` binary on top of it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::Method;
use crm_server::embedded_pg::{Cluster, Options, PgError};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use super::served::{self, Served, alive, wait_until_gone};

fn options(dir: &Path) -> Options {
    Options { root: dir.join("pg"), ephemeral: true }
}

fn pid_of(dir: &Path) -> i32 {
    super::served::postmaster(&dir.join("pg"))
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
    let data = dir.path().join("pg");
    let mut server = Served::start(&data, &[], &[("CRM_LOG", "info,crm_server::http::observe=debug")]);
    let request = axum::http::Request::get(server.url("/readyz"))
        .header("x-correlation-id", "e2e-4711")
        .body(Default::default())
        .unwrap();
    let ready = crm_server::testing::app::fetch(request).await.unwrap();
    assert_eq!(ready.status, 200, "{}", ready.text());

    // The embedded default trusts tokens from `crm-server dev-token`, and only those.
    let anonymous = server.send(Method::GET, "/customers", None, None).await;
    assert_eq!(anonymous.status, 401);
    let token = served::dev_token(
        &data,
        &["--role", "sales-rep", "--territory", "BY", "--subject", "e2e-rep", "--ttl", "5m"],
    );
    let listed = server.send(Method::GET, "/customers", Some(&token), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let postgres = pid_of(dir.path());
    assert!(alive(postgres));

    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGINT).unwrap();
    let status = server.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "{status}");
    assert!(wait_until_gone(postgres), "PostgreSQL {postgres} survived the server");
    let rest = server.drain_log().to_vec();
    // The request's log line carries its correlation id.
    let request_line = rest.iter().find(|l| l.contains("request finished")).expect("an access log line");
    let request_line: serde_json::Value = serde_json::from_str(request_line).unwrap();
    assert_eq!(request_line["span"]["correlation_id"], "e2e-4711", "{request_line}");
    assert_eq!(request_line["span"]["route"], "/readyz", "{request_line}");
    let stopped = rest.iter().position(|l| l.contains("PostgreSQL stopped"));
    let pool_closed = rest.iter().position(|l| l.contains("database pool closed"));
    assert!(pool_closed.is_some() && stopped.is_some() && pool_closed < stopped, "{rest:#?}");
}

/// The private PostgreSQL is supervised. Killed (SIGKILL), it is started again on its port after
/// crash recovery: `/healthz` says so meanwhile, then requests succeed again and the relay
/// publishes what they write. Once the restarts allowed within the window are used up, the next
/// death ends the server, non-zero, for a supervisor of its own to act.
#[tokio::test]
async fn a_killed_postgres_is_restarted_and_the_server_exits_when_restarts_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pg");
    let mut server = Served::start(&data, &[], &[("CRM_PG_MAX_RESTARTS", "1")]);
    let token = served::dev_token(&data, &["--role", "admin"]);
    let create = |name: &str| json!({"name": name, "segment": "HOTEL", "territory": "BY"});
    let before = server.send(Method::POST, "/customers", Some(&token), Some(create("Vor dem Absturz"))).await;
    assert_eq!(before.status, 201, "{}", before.text());
    assert_eq!(server.send(Method::GET, "/healthz", None, None).await.status, 200);

    // One of its server processes is stopped before the postmaster is killed: it keeps the
    // shared memory attached, so the restart cannot finish until it is let go, and the server is
    // seen while it restarts.
    let postmaster = server.postmaster();
    let held = *served::children(postmaster).first().expect("postgres has server processes");
    kill(Pid::from_raw(held), Signal::SIGSTOP).unwrap();
    kill(Pid::from_raw(postmaster), Signal::SIGKILL).unwrap();
    let restarting = server.wait_for_status("/healthz", 503, Duration::from_secs(30)).await;
    let problem = restarting.problem(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(problem["detail"].as_str().unwrap().contains("restarted (restart 1 of at most 1)"), "{problem}");
    server.wait_for_log("PostgreSQL exited unexpectedly", Duration::from_secs(10));
    kill(Pid::from_raw(held), Signal::SIGCONT).unwrap();

    server.wait_for_status("/healthz", 200, Duration::from_secs(90)).await;
    server.wait_for_log("PostgreSQL is running again", Duration::from_secs(10));
    let restarted = server.postmaster();
    assert_ne!(restarted, postmaster);
    let after = server.send(Method::POST, "/customers", Some(&token), Some(create("Nach dem Absturz"))).await;
    assert_eq!(after.status, 201, "{}", after.text());
    let id = after.json()["id"].as_str().unwrap().to_owned();
    // The relay publishes again, the events written before the crash included.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let replay = server.send(Method::GET, "/events/replay?after=0&limit=100", Some(&token), None).await;
        assert_eq!(replay.status, 200, "{}", replay.text());
        let items = replay.json()["items"].as_array().cloned().unwrap_or_default();
        if items.iter().any(|e| e["type"] == "customer.created" && e["subject"] == id.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "the event of {id} was not published: {items:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The second death within the window is one more than allowed.
    let processes = served::children(restarted);
    kill(Pid::from_raw(restarted), Signal::SIGKILL).unwrap();
    let status = server.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{:#?}", server.drain_log());
    let log = server.drain_log().join("\n");
    assert!(log.contains("--pg-max-restarts"), "{log}");
    for pid in processes {
        assert!(wait_until_gone(pid), "postgres process {pid} outlived the server");
    }
}

/// The operations commands are needed while the server runs: beside it, on the same data folder,
/// they work on its PostgreSQL and leave it running.
#[tokio::test]
async fn operations_commands_work_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pg");
    let server = Served::start(&data, &[], &[]);
    let postmaster = server.postmaster();
    let commands: [&[&str]; 6] = [
        &["events", "status"],
        &["events", "redrive", "--consumer", "automation.lead-converted"],
        &["projection", "check"],
        &["projection", "rebuild"],
        &["retention", "run", "--dry-run"],
        &["migrate"],
    ];
    for args in commands {
        let output = served::run(&data, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "crm-server {}: {stderr}", args.join(" "));
        assert!(stderr.contains("working on the PostgreSQL running there"), "{stderr}");
        if args != ["migrate"] {
            let report: serde_json::Value = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|e| panic!("crm-server {}: not JSON ({e})", args.join(" ")));
            assert!(report.is_object() || report.is_array(), "{report}");
        }
    }
    assert_eq!(server.postmaster(), postmaster, "a command replaced the server's PostgreSQL");
    assert_eq!(server.send(Method::GET, "/readyz", None, None).await.status, 200);

    // A second server is refused, saying why.
    let second = served::run(&data, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another process") && stderr.contains("operations"), "{stderr}");
}

/// As root, PostgreSQL runs as `postgres` (or `nobody`); a data folder behind a folder that
/// account cannot enter (a 0700 parent) fails naming the folder, the account and the way out,
/// not with a bare "Permission denied".
#[test]
fn a_data_folder_postgres_cannot_reach_is_named_with_the_account_and_the_way_out() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: only root hands PostgreSQL to another account");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = dir.path().join("pg");
    let output = served::command(&data, &["serve", "--listen", "127.0.0.1:0"])
        .env("CRM_LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let account = match nix::unistd::User::from_name("postgres") {
        Ok(Some(_)) => "postgres",
        _ => "nobody",
    };
    let closed = std::fs::canonicalize(dir.path()).unwrap();
    for needle in [
        format!("cannot use the data folder {}", data.display()),
        format!("`{account}` cannot enter {} (mode 0700", closed.display()),
        "--data-dir or CRM_DATA_DIR".to_owned(),
        "/var/lib/freshplan/crm-server".to_owned(),
    ] {
        assert!(stderr.contains(&needle), "{needle:?} missing from: {stderr}");
    }
}

/// `dev-token` and `serve` find the data folder alike (flag, CRM_DATA_DIR, default), say whose
/// key signs or is trusted, and a token of another folder's key is refused naming the folder the
/// server trusts.
#[tokio::test]
async fn a_token_of_another_folders_key_is_refused_naming_the_folder_the_server_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let (trusted, other) = (dir.path().join("trusted"), dir.path().join("other"));
    // The server is given its folder by flag; the environment names another.
    let mut server = Served::start(&other, &["--data-dir", trusted.to_str().unwrap()], &[]);

    let minted = served::run(&other, &["dev-token", "--role", "admin"]);
    assert!(minted.status.success());
    let said = String::from_utf8_lossy(&minted.stderr);
    assert!(said.contains(&format!("signed with the development key in {}", other.display())), "{said}");
    assert!(said.contains("no server has used this folder yet"), "{said}");
    let token = String::from_utf8(minted.stdout).unwrap();
    let refused = server.send(Method::GET, "/customers", Some(token.trim()), None).await;
    let problem = refused.problem(axum::http::StatusCode::UNAUTHORIZED);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("trusts the development key in {}", trusted.display())), "{detail}");
    assert!(detail.contains(&format!("dev-token --data-dir {}", trusted.display())), "{detail}");
    let logged = server.wait_for_log("trusted_key_folder", Duration::from_secs(10));
    assert!(logged.contains(&trusted.display().to_string()), "{logged}");

    // The flag wins over the environment for dev-token as for serve.
    let minted =
        served::run(&other, &["dev-token", "--role", "admin", "--data-dir", trusted.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&minted.stderr);
    assert!(said.contains(&format!("signed with the development key in {}", trusted.display())), "{said}");
    assert!(!said.contains("no server has used"), "{said}");
    let token = String::from_utf8(minted.stdout).unwrap();
    let listed = server.send(Method::GET, "/customers", Some(token.trim()), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
}

/// Without `--subject`, tokens of different roles (and territories) are different users: an
/// admin's stored idempotent replies are not a sales rep's.
#[test]
fn dev_tokens_of_different_roles_have_different_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let subject = |args: &[&str]| {
        let token = served::dev_token(dir.path(), args);
        let claims = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
        )
        .unwrap();
        claims["sub"].as_str().unwrap().to_owned()
    };
    assert_eq!(subject(&["--role", "admin"]), "dev-admin");
    assert_eq!(subject(&["--role", "sales-rep", "--territory", "BY"]), "dev-sales-rep-BY");
    assert_eq!(subject(&["--role", "sales-rep", "--territory", "NW"]), "dev-sales-rep-NW");
    assert_eq!(subject(&["--role", "admin", "--subject", "anna"]), "anna");
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
