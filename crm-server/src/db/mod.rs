//! Where the database is (a given server or the private one), connecting, migrating, and
//! checking the schema version.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

pub mod contacts;
pub mod customers;
pub mod fields;
pub mod projection;
pub mod search;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// The database of the private PostgreSQL.
pub const EMBEDDED_DATABASE: &str = "freshplan";

/// The database a command works on: the server at `DATABASE_URL`, or the private PostgreSQL
/// started for this process, which [`Database::close`] stops.
#[derive(Debug)]
pub struct Database {
    url: String,
    embedded: Option<crate::embedded_pg::Cluster>,
}

impl Database {
    pub async fn open(args: &crate::config::DatabaseArgs) -> anyhow::Result<Database> {
        if let Some(url) = &args.database_url {
            return Ok(Database { url: url.expose().to_owned(), embedded: None });
        }
        let root = match &args.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        tracing::info!(data_dir = %root.display(), "no DATABASE_URL: starting the private PostgreSQL");
        let options = crate::embedded_pg::Options { root, ephemeral: false };
        let cluster = tokio::task::spawn_blocking(move || crate::embedded_pg::Cluster::start(&options))
            .await
            .context("starting PostgreSQL")??;
        tracing::info!(port = cluster.port(), "private PostgreSQL is ready");
        create_database_if_missing(&cluster.url("postgres"), EMBEDDED_DATABASE).await?;
        Ok(Database { url: cluster.url(EMBEDDED_DATABASE), embedded: Some(cluster) })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Stops the private PostgreSQL, if this process started one. Close pools first.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Some(cluster) = self.embedded {
            tokio::task::spawn_blocking(move || cluster.stop()).await.context("stopping PostgreSQL")??;
        }
        Ok(())
    }
}

/// The user's data folder, or `/var/lib/freshplan/crm-server` for root, whose home folder
/// PostgreSQL's unprivileged account could not enter.
fn default_data_dir() -> anyhow::Result<PathBuf> {
    use etcetera::BaseStrategy;
    if nix::unistd::Uid::effective().is_root() {
        return Ok(PathBuf::from("/var/lib/freshplan/crm-server"));
    }
    let base =
        etcetera::choose_base_strategy().context("finding the user's data folder; set CRM_DATA_DIR")?;
    Ok(base.data_dir().join("freshplan").join("crm-server"))
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
