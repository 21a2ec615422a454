//! `GET /projection/staleness`: how far the hot projection is from its sources, now.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::UserRole;
use crate::db::projection::{self, CheckReport};
use crate::db::scope::Scope;
use crate::error::{Error, Problem};
use crate::http::caller::Caller;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Staleness {
    #[serde(flatten)]
    report: CheckReport,
    #[serde(with = "time::serde::rfc3339")]
    checked_at: OffsetDateTime,
}

/// Compares every projection row with a recompute from the source tables (a full scan: about a
/// second per 100,000 customers) and updates the staleness metrics. `crm-server projection
/// rebuild` repairs what it finds.
#[utoipa::path(get, path = "/projection/staleness", tag = "operations", responses(
    (status = 200, description = "The drift of the hot projection", body = Staleness),
    (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The database is unreachable", body = Problem, content_type = "application/problem+json"),
))]
pub async fn staleness(State(state): State<AppState>, caller: Caller) -> Result<Json<Staleness>, Error> {
    caller.require(&[UserRole::Admin], "checking the projection")?;
    let report = projection::check(&state.db, &Scope::system(), 1000).await?;
    let checked_at = OffsetDateTime::now_utc();
    state.metrics.observe_projection_check(&report, checked_at);
    Ok(Json(Staleness { report, checked_at }))
}
