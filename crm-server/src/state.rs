//! What every handler can reach.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::auth::Verifier;
use crate::config::{HttpArgs, Role};
use crate::domain::fields::FieldCatalog;
use crate::domain::settings::keys::SettingCatalog;
use crate::liveness::Liveness;
use crate::metrics::Metrics;
use crate::telemetry::LogFilter;

/// One context for all handlers rather than a dependency per handler: the set is small, and a new
/// dependency is then one field instead of a signature change across the router.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: PgPool,
    pub role: Role,
    pub http: Arc<HttpArgs>,
    pub metrics: Arc<Metrics>,
    pub log_filter: LogFilter,
    /// The field catalog, loaded at start: it changes only with migrations, which come with a
    /// new release.
    pub catalog: Arc<FieldCatalog>,
    /// The setting keys with their compiled schemas; part of the binary.
    pub settings: Arc<SettingCatalog>,
    /// Verifies bearer tokens.
    pub verifier: Arc<Verifier>,
    /// The last outbox position known to be published: raised by the relay of this process or
    /// by its notifications, and awaited by consumers and live streams.
    pub published: Arc<watch::Sender<i64>>,
    /// Raised when the server starts shutting down, so that live streams end and the server can
    /// drain instead of waiting for them until its timeout.
    pub stopping: Arc<watch::Sender<bool>>,
    /// What `/healthz` looks at: the private PostgreSQL and the background jobs, registered as
    /// they start.
    pub liveness: Liveness,
}

impl AppState {
    /// Loads what the handlers need from the (migrated) database.
    pub async fn load(
        db: PgPool,
        role: Role,
        http: HttpArgs,
        log_filter: LogFilter,
        verifier: Verifier,
    ) -> anyhow::Result<Self> {
        let catalog = Arc::new(crate::db::fields::load_catalog(&db).await?);
        let settings = Arc::new(SettingCatalog::new().map_err(anyhow::Error::msg)?);
        Ok(AppState {
            db,
            role,
            http: Arc::new(http),
            metrics: Arc::new(Metrics::new()),
            log_filter,
            catalog,
            settings,
            verifier: Arc::new(verifier),
            published: Arc::new(watch::Sender::new(0)),
            stopping: Arc::new(watch::Sender::new(false)),
            liveness: Liveness::default(),
        })
    }
}
