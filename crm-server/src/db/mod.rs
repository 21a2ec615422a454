//! Where the database is (a given server or the private one), connecting, migrating, and
//! checking the schema version.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::DatabaseArgs;
use crate::embedded_pg::supervise::{RestartPolicy, Status, Supervised};
use crate::embedded_pg::{Cluster, Options, PgError, attach};

pub mod activities;
pub mod cockpit;
pub mod contacts;
pub mod customers;
pub mod fields;
pub mod idempotency;
pub mod projection;
pub mod samples;
pub mod scope;
pub mod search;
pub mod settings;
pub mod sync_reports;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// The database of the private PostgreSQL.
pub const EMBEDDED_DATABASE: &str = "freshplan";

/// The login the server uses on the embedded default and in the tests: a member of `crm_app` that
/// owns nothing, so every row-level security policy applies to it.
pub const APP_LOGIN: &str = "crm_server";

/// The database a command works on: the server at `DATABASE_URL`, or the private PostgreSQL of
/// the data folder: started (and stopped by [`Database::close`]) by this process, or, for the
/// operations commands beside a running server, that server's.
#[derive(Debug)]
pub struct Database {
    /// Owner URL (migrations, maintenance commands); with `DATABASE_URL`, the URL given.
    url: String,
    /// The URL the server's pool uses: `DATABASE_URL` itself, or the app login on the embedded
    /// default.
    app_url: String,
    embedded: Option<Private>,
}

/// The private PostgreSQL, by who runs it.
#[derive(Debug)]
enum Private {
    /// Started for a command of this process.
    Started(Cluster),
    /// Started for `serve`, and started again when it dies.
    Supervised(Supervised),
    /// Run by another process on the same folder (a running server): used, never stopped.
    Attached(attach::Running),
}

/// How long an operations command waits for the cluster of a running server that is starting or
/// restarting.
const ATTACH_WAIT: Duration = Duration::from_secs(90);

impl Database {
    /// For the operations commands (`migrate`, `events`, `projection`, `retention`): the server at
    /// `DATABASE_URL`; else the cluster of a process that runs on the data folder (a server), or
    /// one started for this command.
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Database> {
        if let Some(database) = Database::external(args) {
            return Ok(database);
        }
        let root = args.data_dir.resolve()?;
        let options = Options { root: root.clone(), ephemeral: false };
        let started = tokio::task::spawn_blocking(move || Cluster::start(&options))
            .await
            .context("starting PostgreSQL")?;
        let private = match started {
            Ok(cluster) => {
                tracing::info!(data_dir = %root.display(), port = cluster.port(), "started the private PostgreSQL");
                Private::Started(cluster)
            }
            Err(PgError::InUse(_)) => {
                let running = tokio::task::spawn_blocking(move || attach::find(&root, ATTACH_WAIT))
                    .await
                    .context("finding the running PostgreSQL")??;
                tracing::info!(
                    data_dir = %running.root().display(),
                    port = running.port(),
                    "the data folder is in use: working on the PostgreSQL running there"
                );
                Private::Attached(running)
            }
            Err(error) => return Err(error.into()),
        };
        Database::embedded(private).await
    }

    /// For `serve`: the server at `DATABASE_URL`, or the private PostgreSQL, started and kept
    /// running under `policy` (a folder another process uses is refused).
    pub async fn serve(args: &DatabaseArgs, policy: RestartPolicy) -> anyhow::Result<Database> {
        if let Some(database) = Database::external(args) {
            return Ok(database);
        }
        let root = args.data_dir.resolve()?;
        tracing::info!(data_dir = %root.display(), "no DATABASE_URL: starting the private PostgreSQL");
        let options = Options { root, ephemeral: false };
        let supervised = tokio::task::spawn_blocking(move || {
            Cluster::start(&options).and_then(|cluster| Supervised::start(cluster, policy))
        })
        .await
        .context("starting PostgreSQL")??;
        tracing::info!(port = supervised.port(), "private PostgreSQL is ready");
        Database::embedded(Private::Supervised(supervised)).await
    }

    fn external(args: &DatabaseArgs) -> Option<Database> {
        let url = args.database_url.as_ref()?.expose().to_owned();
        Some(Database { app_url: url.clone(), url, embedded: None })
    }

    /// The URLs of the private PostgreSQL: its database created on first use, and the app login's
    /// password kept next to the superuser's.
    async fn embedded(private: Private) -> anyhow::Result<Database> {
        let (admin_url, url) = match &private {
            Private::Started(c) => (c.url("postgres"), c.url(EMBEDDED_DATABASE)),
            Private::Supervised(c) => (c.url("postgres"), c.url(EMBEDDED_DATABASE)),
            Private::Attached(c) => (c.url("postgres"), c.url(EMBEDDED_DATABASE)),
        };
        create_database_if_missing(&admin_url, EMBEDDED_DATABASE).await?;
        let password_path = private.root().join("app-password");
        let password = match std::fs::read_to_string(&password_path) {
            Ok(password) => password.trim().to_owned(),
            Err(_) => {
                let password = uuid::Uuid::new_v4().simple().to_string();
                std::fs::write(&password_path, &password)
                    .with_context(|| format!("writing {}", password_path.display()))?;
                password
            }
        };
        let app_url = with_login(&url, APP_LOGIN, &password)?;
        Ok(Database { url, app_url, embedded: Some(private) })
    }

    /// The owner's URL: for migrations and maintenance.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL the server connects with.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// The data folder of the embedded default, if this is it.
    pub fn data_dir(&self) -> Option<&Path> {
        self.embedded.as_ref().map(Private::root)
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// The supervisor's view of the private PostgreSQL of `serve`; `None` for a database this
    /// process does not keep running.
    pub fn supervision(&self) -> Option<watch::Receiver<Status>> {
        match &self.embedded {
            Some(Private::Supervised(supervised)) => Some(supervised.status()),
            _ => None,
        }
    }

    /// Stops the private PostgreSQL, if this process started one. Close pools first.
    pub async fn close(self) -> anyhow::Result<()> {
        let stop = match self.embedded {
            Some(Private::Started(cluster)) => tokio::task::spawn_blocking(move || cluster.stop()),
            Some(Private::Supervised(supervised)) => tokio::task::spawn_blocking(move || supervised.stop()),
            Some(Private::Attached(_)) | None => return Ok(()),
        };
        stop.await.context("stopping PostgreSQL")??;
        Ok(())
    }
}

impl Private {
    fn root(&self) -> &Path {
        match self {
            Private::Started(c) => c.root(),
            Private::Supervised(c) => c.root(),
            Private::Attached(c) => c.root(),
        }
    }
}

/// The migrations in `migrations/`, compiled into the binary so that `crm-server migrate` needs no
/// files next to it.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        // A request waits at most this long for a connection, then gets a 503 rather than hanging.
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.application_name("crm-server").log_statements(tracing::log::LevelFilter::Trace))
        .await
}

/// [`connect`], waiting up to `wait` for a server that is not there yet (starting, restarting, or
/// its Service not routed yet): a process started beside its database does not exit and crash-loop
/// because it came up first. Retries only what can pass (no connection, a server starting up or
/// shutting down); a refused login or an unknown database fails at once. Each retry is logged.
pub async fn connect_waiting(url: &str, max_connections: u32, wait: Duration) -> Result<PgPool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(200);
    loop {
        match connect(url, max_connections).await {
            Ok(pool) => return Ok(pool),
            Err(error) if retryable(&error) && tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "PostgreSQL is not reachable yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether a failed connect can succeed later: the server is unreachable, or it answers that it is
/// starting up or shutting down (SQLSTATE class 57, operator intervention).
fn retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("57")),
        _ => false,
    }
}

/// Applies pending migrations. sqlx takes an advisory lock, so replicas migrating at once are safe.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Creates `name` on the server of `admin_url` unless it exists.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        // The name is quoted as an identifier; CREATE DATABASE takes no parameters.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {}", quote_ident(name))))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await
}

/// `url` with its user and password replaced.
pub fn with_login(url: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let mut options: PgConnectOptions = url.parse().context("parsing the database URL")?;
    options = options.username(user).password(password);
    let host = options.get_host().to_owned();
    let port = options.get_port();
    let database = options.get_database().unwrap_or("postgres").to_owned();
    Ok(format!("postgres://{user}:{password}@{host}:{port}/{database}"))
}

/// Creates (or updates the password of) the app login on the server of `admin_url`: a member of
/// `crm_app` that owns nothing. Requires the migrations (which create `crm_app`) and CREATEROLE.
pub async fn ensure_app_login(admin_url: &str, password: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        password.bytes().all(|b| b.is_ascii_alphanumeric()),
        "the app password must be alphanumeric"
    );
    let mut conn = PgConnection::connect(admin_url).await?;
    let sql = format!(
        "DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_LOGIN}') THEN
                CREATE ROLE {APP_LOGIN} LOGIN PASSWORD '{password}' IN ROLE crm_app;
            ELSE
                ALTER ROLE {APP_LOGIN} LOGIN PASSWORD '{password}';
            END IF;
         END $$"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Refuses to serve as a role the row-level security policies would not apply to: a superuser,
/// a role with BYPASSRLS, or one with the privileges of the tables' owner.
pub async fn check_app_role(pool: &PgPool) -> anyhow::Result<()> {
    let (user, superuser, bypass, owner, member): (String, bool, bool, bool, bool) = sqlx::query_as(
        "SELECT current_user::text, r.rolsuper, r.rolbypassrls,
                pg_has_role(current_user, c.relowner, 'USAGE'), pg_has_role(current_user, 'crm_app', 'MEMBER')
           FROM pg_roles r, pg_class c
          WHERE r.rolname = current_user AND c.oid = 'customer'::regclass",
    )
    .fetch_one(pool)
    .await
    .context("checking the database role")?;
    anyhow::ensure!(
        !superuser && !bypass && !owner,
        "the server connects as `{user}`, which {} row-level security; connect as a login that is a member of \
         crm_app and owns nothing (see the README)",
        if superuser {
            "as a superuser bypasses"
        } else if bypass {
            "has BYPASSRLS and bypasses"
        } else {
            "owns the tables and bypasses"
        }
    );
    anyhow::ensure!(
        member,
        "the server's login `{user}` is not a member of crm_app; GRANT crm_app TO {user}"
    );
    Ok(())
}

/// Quotes an SQL identifier (`"` doubled), for the few statements that cannot take parameters.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How the database's schema compares with the migrations this binary carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchemaStatus {
    pub applied: usize,
    /// Versions this binary needs that the database lacks.
    pub pending: Vec<i64>,
    /// Versions applied with a different checksum or left failed: someone edited an applied
    /// migration, or a migration broke half way.
    pub mismatched: Vec<i64>,
}

impl SchemaStatus {
    /// Migrations newer than this binary are fine: expand/contract keeps old binaries working on a
    /// newer schema, which is what a rolling deploy needs.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.mismatched.is_empty()
    }
}

pub async fn schema_status(pool: &PgPool) -> Result<SchemaStatus, sqlx::Error> {
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(pool).await?;
    let applied: BTreeMap<i64, (Vec<u8>, bool)> = if table_exists {
        sqlx::query_as::<_, (i64, Vec<u8>, bool)>("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|(version, checksum, success)| (version, (checksum, success)))
            .collect()
    } else {
        BTreeMap::new()
    };
    let mut status = SchemaStatus { applied: applied.len(), ..SchemaStatus::default() };
    for migration in MIGRATOR.iter().filter(|m| m.migration_type.is_up_migration()) {
        match applied.get(&migration.version) {
            None => status.pending.push(migration.version),
            Some((checksum, success)) if !success || checksum[..] != migration.checksum[..] => {
                status.mismatched.push(migration.version)
            }
            Some(_) => {}
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote_ident("crm"), "\"crm\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn the_binary_carries_migrations_with_increasing_versions() {
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert!(!versions.is_empty());
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    }
}
