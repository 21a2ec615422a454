//! Operations endpoints that change the running process.
//!
//! Admins only.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::UserRole;
use crate::error::{Error, FieldError, Problem};
use crate::http::caller::Caller;
use crate::http::extract::AppJson;
use crate::state::AppState;

/// A new log filter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogLevel {
    /// tracing EnvFilter directives, e.g. `info,crm_server=debug,sqlx=warn`.
    #[schema(example = "info,crm_server=debug")]
    pub filter: String,
}

/// The log filter in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveLogLevel {
    #[schema(example = "info,crm_server=debug")]
    pub filter: String,
}

/// The active log filter.
#[utoipa::path(get, path = "/admin/log-level", tag = "operations",
    responses((status = 200, description = "The active filter", body = ActiveLogLevel)))]
pub async fn get_log_level(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<ActiveLogLevel>, Error> {
    caller.require(&[UserRole::Admin], "reading the log filter")?;
    let filter = state.log_filter.current().ok_or_else(|| anyhow::anyhow!("the log subscriber is gone"))?;
    Ok(axum::Json(ActiveLogLevel { filter }))
}

/// Replace the log filter without a restart, e.g. to get debug logs of one module during an
/// incident. The change lasts until the process restarts.
#[utoipa::path(put, path = "/admin/log-level", tag = "operations", request_body = LogLevel, responses(
    (status = 200, description = "Installed", body = ActiveLogLevel),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "The filter does not parse (`errors[0].pointer` is `/filter`)", body = Problem,
        content_type = "application/problem+json"),
))]
pub async fn put_log_level(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<LogLevel>,
) -> Result<axum::Json<ActiveLogLevel>, Error> {
    caller.require(&[UserRole::Admin], "changing the log filter")?;
    state
        .log_filter
        .set(&body.filter)
        .map_err(|e| Error::Unprocessable(vec![FieldError::new("/filter", e)]))?;
    tracing::info!(filter = body.filter, "log filter changed");
    Ok(axum::Json(ActiveLogLevel { filter: body.filter }))
}
