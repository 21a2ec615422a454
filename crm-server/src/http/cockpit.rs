//! `/cockpit/summary` (the sales cockpit's KPIs) and `/sla/overdue` (what is late).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Date, Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::db::{cockpit, projection};
use crate::domain::customer::is_territory;
use crate::domain::{berlin, dates};
use crate::error::{Error, FieldError, Problem};
use crate::http::caller::Caller;
use crate::http::extract::AppQuery;
use crate::http::paging;
use crate::state::AppState;

/// The focus list of renewals looks this far ahead.
const RENEWALS_AHEAD_DAYS: i64 = 90;
const RENEWALS_LISTED: i64 = 20;
/// The default period of the sample KPIs.
const DEFAULT_PERIOD_DAYS: i64 = 90;
/// A projection check older than this no longer vouches for the projection.
const CHECK_VALID_FOR: Duration = Duration::hours(1);

pub fn queries() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(summary)).routes(routes!(overdue))
}

fn territory(value: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let value = value?;
    if !is_territory(&value) {
        errors.push(FieldError::parameter("territory", "a territory code such as BY or NRW"));
    }
    Some(value)
}

fn bad_request(errors: Vec<FieldError>) -> Result<(), Error> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::BadRequest { detail: "invalid query parameters".into(), errors })
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Only this territory (within those the caller may see): two or three capital letters.
    #[param(pattern = "^[A-Z]{2,3}$")]
    territory: Option<String>,
    /// Start of the period of the sample figures (RFC 3339; default: 90 days ago).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<OffsetDateTime>,
    /// End of the period, exclusive (default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SampleKpis {
    requested: i64,
    feedback_success: i64,
    feedback_neutral: i64,
    feedback_fail: i64,
    /// Success over all feedback in the period; absent without feedback.
    #[serde(skip_serializing_if = "Option::is_none")]
    success_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoiBucketKpi {
    bucket: String,
    customers: i64,
    /// Sum of the expected monthly savings, euros.
    savings_per_month: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverdueKpis {
    sample_followups: i64,
    activities: i64,
    /// Overdue activities by kind.
    by_kind: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Renewal {
    customer_id: Uuid,
    name: String,
    territory: String,
    renewal_date: String,
    exclusivity: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionLag {
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    checked_at: Option<OffsetDateTime>,
    drifted_rows: i64,
    /// How long the oldest change the last check found unrefreshed has waited, seconds.
    lag_seconds: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(with = "time::serde::rfc3339")]
    as_of: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    territory: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
    samples: SampleKpis,
    roi_pipeline: Vec<RoiBucketKpi>,
    overdue: OverdueKpis,
    /// Contracts renewing in the next 90 days, soonest first (up to 20): the alignment window.
    renewals_due: Vec<Renewal>,
    projection: ProjectionLag,
    /// The hot projection (behind search and lists) lags beyond `--cockpit-stale-after`, or its
    /// last check is over an hour old: lists may not match these figures.
    stale: bool,
}

/// The cockpit: sample success rate, ROI pipeline, overdue SLAs and renewals due, computed from
/// the source tables within the caller's scope, with the projection's lag.
#[utoipa::path(get, path = "/cockpit/summary", tag = "cockpit", params(SummaryQuery), responses(
    (status = 200, description = "The figures", body = Summary),
    (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
))]
async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<SummaryQuery>,
) -> Result<Json<Summary>, Error> {
    let now = OffsetDateTime::now_utc();
    let mut errors = Vec::new();
    let territory = territory(query.territory, &mut errors);
    errors.extend(dates::check_time_parameter("from", query.from));
    errors.extend(dates::check_time_parameter("to", query.to));
    bad_request(std::mem::take(&mut errors))?;
    let to = query.to.unwrap_or(now);
    let from = query.from.unwrap_or(to - Duration::days(DEFAULT_PERIOD_DAYS));
    if from >= to {
        errors.push(FieldError::parameter("from", "must be before `to`"));
    }
    bad_request(errors)?;
    let t = territory.as_deref();
    let today = berlin::date(now);
    let mut tx = caller.begin(&state).await?;

    let feedback: BTreeMap<String, i64> =
        cockpit::feedback(&mut tx, t, from, to).await?.into_iter().collect();
    let count = |status: &str| feedback.get(status).copied().unwrap_or(0);
    let (success, neutral, fail) =
        (count("FEEDBACK_SUCCESS"), count("FEEDBACK_NEUTRAL"), count("FEEDBACK_FAIL"));
    let all = success + neutral + fail;
    let samples = SampleKpis {
        requested: cockpit::requested(&mut tx, t, from, to).await?,
        feedback_success: success,
        feedback_neutral: neutral,
        feedback_fail: fail,
        success_rate: (all > 0).then(|| success as f64 / all as f64),
    };

    let mut roi_pipeline: Vec<RoiBucketKpi> = cockpit::roi_pipeline(&mut tx, t)
        .await?
        .into_iter()
        .map(|(bucket, customers, savings)| RoiBucketKpi { bucket, customers, savings_per_month: savings })
        .collect();
    let order = |b: &str| ["HIGH", "MID", "LOW"].iter().position(|x| *x == b);
    roi_pipeline.sort_by_key(|k| order(&k.bucket));

    let mut overdue = OverdueKpis { sample_followups: 0, activities: 0, by_kind: BTreeMap::new() };
    for (item, kind, n) in cockpit::overdue_counts(&mut tx, today, t).await? {
        match kind {
            None if item == "SAMPLE_FOLLOWUP" => overdue.sample_followups += n,
            kind => {
                overdue.activities += n;
                *overdue.by_kind.entry(kind.unwrap_or_default()).or_default() += n;
            }
        }
    }

    let until = today + Duration::days(RENEWALS_AHEAD_DAYS);
    let renewals_due = cockpit::renewals(&mut tx, t, today, until, RENEWALS_LISTED)
        .await?
        .into_iter()
        .map(|(customer_id, name, territory, contract)| Renewal {
            customer_id,
            name,
            territory,
            renewal_date: contract["renewal_date"].as_str().unwrap_or_default().to_owned(),
            exclusivity: contract["exclusivity"].as_bool().unwrap_or(false),
        })
        .collect();

    let last = projection::last_check(&mut tx).await?;
    let lag =
        last.and_then(|(_, _, oldest)| oldest).map_or(0.0, |oldest| (now - oldest).as_seconds_f64().max(0.0));
    let checked_at = last.map(|(at, ..)| at);
    let stale = lag > state.http.cockpit_stale_after.as_secs_f64()
        || checked_at.is_none_or(|at| now - at > CHECK_VALID_FOR);
    let projection =
        ProjectionLag { checked_at, drifted_rows: last.map_or(0, |(_, n, _)| n), lag_seconds: lag };
    Ok(Json(Summary {
        as_of: now,
        territory,
        from,
        to,
        samples,
        roi_pipeline,
        overdue,
        renewals_due,
        projection,
        stale,
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverdueQuery {
    /// Two or three capital letters.
    #[param(pattern = "^[A-Z]{2,3}$")]
    territory: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page, as it was given (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]{1,1024}$")]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OverdueKind {
    /// A delivered sample still waiting for product-test feedback.
    SampleFollowup,
    /// An activity whose SLA passed unmet.
    Activity,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverdueItem {
    item: OverdueKind,
    /// The sample's or the activity's id.
    id: Uuid,
    customer_id: Uuid,
    territory: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    due: Date,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverduePage {
    items: Vec<OverdueItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Everything past its SLA and not done, oldest due first: delivered samples without feedback
/// and activities without their follow-up.
#[utoipa::path(get, path = "/sla/overdue", tag = "cockpit", params(OverdueQuery), responses(
    (status = 200, description = "A page of overdue items", body = OverduePage),
    (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
))]
async fn overdue(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<OverdueQuery>,
) -> Result<Json<OverduePage>, Error> {
    const LIST: &str = "sla-overdue";
    let mut errors = Vec::new();
    let territory = territory(query.territory, &mut errors);
    let filters = format!("{territory:?}");
    let limit = paging::limit(query.limit, &mut errors);
    let after = paging::after(query.cursor.as_deref(), LIST, &filters, parse_key, &mut errors);
    bad_request(errors)?;
    let today = berlin::date(OffsetDateTime::now_utc());
    let mut tx = caller.begin(&state).await?;
    let mut rows = cockpit::overdue(&mut tx, today, territory.as_deref(), after, limit + 1).await?;
    let next_cursor =
        paging::next(&mut rows, limit, LIST, &filters, |row| json!([row.due.to_string(), row.id]));
    let items = rows
        .into_iter()
        .map(|row| OverdueItem {
            item: if row.item == "ACTIVITY" { OverdueKind::Activity } else { OverdueKind::SampleFollowup },
            id: row.id,
            customer_id: row.customer_id,
            territory: row.territory,
            kind: row.kind,
            due: row.due,
        })
        .collect();
    Ok(Json(OverduePage { items, next_cursor }))
}

fn parse_key(key: &serde_json::Value) -> Option<(Date, Uuid)> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let due = Date::parse(key.get(0)?.as_str()?, &format).ok()?;
    Some((due, key.get(1)?.as_str()?.parse().ok()?))
}
