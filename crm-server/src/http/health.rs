//! Liveness, readiness, metrics and the API description: unauthenticated, for the platform.

use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::config::Role;
use crate::db;
use crate::error::{Error, Problem};
use crate::state::AppState;

/// How long readiness waits for the database before reporting it unreachable.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process is up and serving HTTP.
    status: &'static str,
    role: Role,
    version: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    status: &'static str,
    /// Migrations applied in the database (including ones newer than this binary).
    applied_migrations: usize,
}

/// The process is up and can do its work: the private PostgreSQL it keeps (the embedded default)
/// runs, and no background job has stopped. Never queries the database, so an outage of a
/// database given by `DATABASE_URL` does not get pods killed (that is `/readyz`'s business).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses(
    (status = 200, description = "The process is up", body = Health),
    (status = 503, description = "The process cannot do its work: its private PostgreSQL died and is \
        being restarted or could not be, or a background job stopped; `detail` says which", body = Problem,
        content_type = "application/problem+json"),
))]
pub async fn healthz(State(state): State<AppState>) -> Result<axum::Json<Health>, Error> {
    if let Some(problem) = state.liveness.problem() {
        return Err(unavailable(problem, []));
    }
    Ok(axum::Json(Health { status: "ok", role: state.role, version: env!("CARGO_PKG_VERSION") }))
}

/// Ready to serve: the database answers and every migration this binary needs is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "The database is unreachable or migrations are pending; \
        `pendingMigrations` and `mismatchedMigrations` list versions", body = Problem, content_type = "application/problem+json"),
))]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Readiness>, Error> {
    let status = tokio::time::timeout(DB_CHECK_TIMEOUT, db::schema_status(&state.db))
        .await
        .map_err(|_| unavailable("the database did not answer within 2s", []))?
        .map_err(|e| unavailable(format!("the database is unreachable: {e}"), []))?;
    if !status.is_current() {
        return Err(unavailable(
            "the database schema is not at this binary's version; run `crm-server migrate`",
            [
                ("pendingMigrations", json!(status.pending)),
                ("mismatchedMigrations", json!(status.mismatched)),
            ],
        ));
    }
    Ok(axum::Json(Readiness { status: "ready", applied_migrations: status.applied }))
}

fn unavailable<const N: usize>(
    detail: impl Into<String>,
    extensions: [(&str, serde_json::Value); N],
) -> Error {
    let extensions = extensions.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
    Error::Unavailable { detail: detail.into(), extensions }
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, Error> {
    state.metrics.observe_pool(&state.db);
    let text = state.metrics.encode().map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text))
}

static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string_pretty(&super::openapi()).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
});

/// This document: the OpenAPI 3.1 description of every endpoint, generated from the handlers.
/// Open like the probes: it is the public contract and holds no data.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON.as_str())
}
