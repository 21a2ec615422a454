//! What every handler can reach.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::{HttpArgs, Role};
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
}

impl AppState {
    pub fn new(db: PgPool, role: Role, http: HttpArgs, log_filter: LogFilter) -> Self {
        AppState { db, role, http: Arc::new(http), metrics: Arc::new(Metrics::new()), log_filter }
    }
}
