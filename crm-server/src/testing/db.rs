//! One PostgreSQL per test process, one database per test.
//!
//! The first test to ask starts a throwaway cluster (initdb into a temporary folder, a free
//! loopback port, durability off) and migrates a template database once; every test then gets a
//! database cloned from the template (`CREATE DATABASE .. TEMPLATE`, a file copy), so tests run
//! in parallel and in isolation without re-running migrations. With `TEST_DATABASE_URL` set, the
//! server at that URL is used instead (it must allow CREATE DATABASE) and nothing is started.
//!
//! When a test's [`TestDb`] is dropped, every event the test wrote to the outbox is checked
//! against its data schema and the CloudEvents schema (see [`super::events`]), and the database is
//! dropped. The cluster is stopped and its folder removed when the test process exits.

use std::sync::{Mutex, OnceLock};
use std::thread;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::db::{self, quote_ident};
use crate::embedded_pg::{Cluster, Options};

/// The server all tests of this process share.
struct Server {
    /// A URL of the server without the database name's part resolved: `{db}` is replaced.
    url_template: String,
    template_db: String,
}

impl Server {
    fn url(&self, database: &str) -> String {
        self.url_template.replace("{db}", database)
    }
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// The test servers' app login password (the role is cluster-wide, so it is fixed, and it guards
/// nothing but throwaway data).
const APP_PASSWORD: &str = "crmservertest";
/// What the process must undo when it exits.
enum Cleanup {
    /// The throwaway cluster and its folder (the template goes with them).
    Cluster(Cluster, tempfile::TempDir),
    /// The template database on a server given by `TEST_DATABASE_URL`.
    Template { admin_url: String, name: String },
}

static CLEANUP: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());

fn server() -> &'static Server {
    let server = SERVER.get_or_init(|| {
        // Started on a thread of its own: the caller is usually inside a tokio runtime, where a
        // second runtime cannot be started, and the embedded cluster's keeper thread must be
        // long-lived anyway.
        thread::spawn(start_server)
            .join()
            .unwrap_or_else(|_| Err("starting the test database panicked".into()))
    });
    match server {
        Ok(server) => server,
        Err(e) => panic!("no test database: {e}"),
    }
}

fn start_server() -> Result<Server, String> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let external = std::env::var("TEST_DATABASE_URL").ok();
    let url_template = match &external {
        Some(url) => with_database(url, "{db}")?,
        None => start_cluster()?,
    };
    // Unique per process, so that concurrent test binaries on one external server do not collide.
    let template_db = format!("freshplan_template_{}", uuid::Uuid::new_v4().simple());
    let server = Server { url_template, template_db };
    if external.is_some() {
        at_exit(Cleanup::Template { admin_url: server.url("postgres"), name: server.template_db.clone() });
    }
    runtime
        .block_on(async {
            db::create_database_if_missing(&server.url("postgres"), &server.template_db).await?;
            let pool = db::connect(&server.url(&server.template_db), 2).await?;
            db::migrate(&pool).await.map_err(sqlx::Error::from)?;
            pool.close().await;
            Ok::<_, sqlx::Error>(())
        })
        .map_err(|e| format!("preparing the template database: {e}"))?;
    // The login the test servers use: a member of crm_app that owns nothing, as in production.
    runtime
        .block_on(db::ensure_app_login(&server.url("postgres"), APP_PASSWORD))
        .map_err(|e| format!("creating the app login: {e}"))?;
    Ok(server)
}

/// Starts the throwaway cluster and registers its stop at process exit.
fn start_cluster() -> Result<String, String> {
    let dir = tempfile::Builder::new().prefix("freshplan-test-pg-").tempdir().map_err(|e| e.to_string())?;
    let cluster = Cluster::start(&Options { root: dir.path().to_owned(), ephemeral: true })
        .map_err(|e| format!("starting PostgreSQL for the tests: {e}"))?;
    let url = cluster.url("{db}");
    at_exit(Cleanup::Cluster(cluster, dir));
    Ok(url)
}

/// libtest ends the process with `exit()`, which never drops statics; an atexit hook is the one
/// place left to stop the server, remove its folder or drop the template. (If the process is
/// killed, the embedded server still stops: see the parent-death signal in `embedded_pg`.)
#[allow(unsafe_code)]
fn at_exit(cleanup: Cleanup) {
    extern "C" fn run_cleanups() {
        let cleanups = std::mem::take(&mut *CLEANUP.lock().unwrap_or_else(|p| p.into_inner()));
        for cleanup in cleanups {
            match cleanup {
                Cleanup::Cluster(cluster, dir) => {
                    let _ = cluster.stop();
                    let _ = dir.close();
                }
                Cleanup::Template { admin_url, name } => {
                    let _ = block_on_thread(async move { drop_database(&admin_url, &name).await });
                }
            }
        }
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    CLEANUP.lock().unwrap_or_else(|p| p.into_inner()).push(cleanup);
    // SAFETY: atexit only stores the function pointer; `run_cleanups` does not unwind (every
    // error is ignored) and touches only this module's statics.
    REGISTERED.call_once(|| unsafe {
        libc::atexit(run_cleanups);
    });
}

/// Runs `future` to completion on a new thread with a runtime of its own: for `Drop` and the exit
/// hook, which cannot await and may be called from inside a runtime.
fn block_on_thread<F>(future: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(future)
    })
    .join()
    .unwrap_or_else(|_| Err("a test database task panicked".into()))
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let mut admin = PgConnection::connect(admin_url).await.map_err(|e| e.to_string())?;
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.map_err(|e| e.to_string())?;
    admin.close().await.map_err(|e| e.to_string())
}

/// `url` with its database (the path) replaced by `database`.
fn with_database(url: &str, database: &str) -> Result<String, String> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").ok_or_else(|| format!("TEST_DATABASE_URL is not a URL: {url}"))? + 3;
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// A database of its own for one test, cloned from the migrated template.
#[derive(Debug)]
pub struct TestDb {
    /// A pool of the superuser, which row-level security does not apply to: for setting up and
    /// inspecting data behind the server's back.
    pub pool: PgPool,
    /// The superuser's URL of the test's database.
    pub url: String,
    /// The URL the test's server connects with: the app login, under row-level security.
    pub app_url: String,
    name: String,
}

impl TestDb {
    /// A database migrated to the newest version.
    pub async fn new() -> TestDb {
        TestDb::create(Some(&server().template_db)).await
    }

    /// A database migrated up to and including `version` only, for tests of what a later
    /// migration does to existing data; [`TestDb::migrate`] applies the rest.
    pub async fn migrated_until(version: i64) -> TestDb {
        let db = TestDb::create(None).await;
        let migrator = sqlx::migrate::Migrator {
            migrations: db::MIGRATOR.migrations.iter().filter(|m| m.version <= version).cloned().collect(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        migrator.run(&db.pool).await.expect("the earlier migrations");
        db
    }

    /// Applies every migration not applied yet.
    pub async fn migrate(&self) {
        db::migrate(&self.pool).await.expect("the remaining migrations");
    }

    async fn create(template: Option<&str>) -> TestDb {
        let server = server();
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin =
            PgConnection::connect(&server.url("postgres")).await.expect("connecting to the test server");
        let sql = match template {
            Some(template) => {
                format!("CREATE DATABASE {} TEMPLATE {}", quote_ident(&name), quote_ident(template))
            }
            None => format!("CREATE DATABASE {}", quote_ident(&name)),
        };
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.expect("creating the test database");
        let _ = admin.close().await;
        let url = server.url(&name);
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect(&url)
            .await
            .expect("connecting to the test database");
        let app_url = db::with_login(&url, db::APP_LOGIN, APP_PASSWORD).expect("the app login's URL");
        TestDb { pool, url, app_url, name }
    }

    /// The name of the test's database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the events the test wrote, then drops the database.
    fn finish(&self) -> Result<(), String> {
        let (url, admin_url, name) = (self.url.clone(), server().url("postgres"), self.name.clone());
        let check = !thread::panicking();
        block_on_thread(async move {
            let verdict = if check { check_outbox(&url).await } else { Ok(()) };
            drop_database(&admin_url, &name).await?;
            verdict
        })
    }
}

async fn check_outbox(url: &str) -> Result<(), String> {
    let mut conn = PgConnection::connect(url).await.map_err(|e| e.to_string())?;
    let events = crate::outbox::events_after(&mut conn, 0, i64::MAX).await.map_err(|e| e.to_string())?;
    let problems = super::events::check(&events);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("invalid events in the outbox:\n{}", problems.join("\n")))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Err(e) = self.finish()
            && !thread::panicking()
        {
            panic!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(with_database("postgres://u:p@h:5/x", "y").unwrap(), "postgres://u:p@h:5/y");
        assert_eq!(with_database("postgres://h", "y").unwrap(), "postgres://h/y");
        assert_eq!(
            with_database("postgres://h/x?sslmode=disable", "y").unwrap(),
            "postgres://h/y?sslmode=disable"
        );
        assert!(with_database("nonsense", "y").is_err());
    }
}
