//! `/settings/sync-reports`: the operator reports that it applied, or could not apply, a tenant's
//! effective settings to a TenantPolicy; this is the CRM's audit entry of each sync, beside the
//! Kubernetes Event the operator records.
//!
//! Posting a report is the one write the platform role may do (admins may too); each is stored
//! with who sent it, when and under which correlation id, and announced as `settings.synced` in
//! the same transaction. Like `POST /samples`, it requires `Idempotency-Key`: the operator derives
//! the key from the policy, the version and the outcome, so a retried report is stored once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::READERS;
use crate::auth::UserRole;
use crate::db::sync_reports::{self, NewSyncReport, SyncReportFilter, SyncReportRow};
use crate::domain::settings::Id;
use crate::domain::settings::sync::{Outcome, PolicyRef, RejectedSetting, SyncReport, SyncReportInput};
use crate::error::{Error, FieldError, Problem};
use crate::http::caller::Caller;
use crate::http::extract::{AppJson, AppQuery};
use crate::http::idempotency::{Idempotency, Reply, RequiredKey};
use crate::http::paging;
use crate::outbox::{self, EventType, NewEvent, rfc3339};
use crate::state::AppState;

/// Who may post a report: the operator (platform) and admins.
const REPORTERS: &[UserRole] = &[UserRole::Admin, UserRole::Platform];

/// A stored report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": "0193a3c4-0000-7000-8000-000000000001", "policy": "crm/acme", "tenant": "acme",
    "org": null, "version": 42, "outcome": "applied", "applied": ["gateway.rateLimit"], "rejected": [],
    "changes": ["gateway.rateLimit: {\"minute\":600} -> {\"minute\":900}"], "detail": null,
    "actor": "user:system:serviceaccount:freshplan:operator", "at": "2026-12-04T10:00:00Z",
    "correlationId": "5c0e9a4e6b1d4f0e"}))]
pub struct SyncReportView {
    id: Uuid,
    /// The TenantPolicy: `<namespace>/<name>`.
    policy: String,
    tenant: String,
    org: Option<String>,
    /// The effective version applied (or tried).
    version: i64,
    outcome: Outcome,
    applied: Vec<String>,
    rejected: Vec<RejectedSettingView>,
    changes: Vec<String>,
    detail: Option<String>,
    /// `user:<token subject>` of the reporter.
    actor: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// The correlation id of the request that posted the report.
    correlation_id: Option<String>,
}

/// A setting the operator did not apply, and why, as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedSettingView {
    key: String,
    /// Where its value came from: `global`, `tenant:<tenant>` or `org:<tenant>:<org>`.
    scope: String,
    reason: String,
}

impl From<RejectedSetting> for RejectedSettingView {
    fn from(r: RejectedSetting) -> Self {
        RejectedSettingView { key: r.key, scope: r.scope, reason: r.reason }
    }
}

impl TryFrom<SyncReportRow> for SyncReportView {
    type Error = Error;

    fn try_from(row: SyncReportRow) -> Result<Self, Error> {
        let outcome = Outcome::parse(&row.outcome)
            .ok_or_else(|| anyhow::anyhow!("sync report {} has outcome {}", row.id, row.outcome))?;
        let rejected: Vec<RejectedSetting> = serde_json::from_value(row.rejected)
            .map_err(|e| anyhow::anyhow!("sync report {} has malformed rejected settings: {e}", row.id))?;
        Ok(SyncReportView {
            id: row.id,
            policy: row.policy,
            tenant: row.tenant,
            org: row.org,
            version: row.version,
            outcome,
            applied: row.applied,
            rejected: rejected.into_iter().map(RejectedSettingView::from).collect(),
            changes: row.changes,
            detail: row.detail,
            actor: row.actor,
            at: row.at,
            correlation_id: row.correlation_id,
        })
    }
}

/// Record that the operator applied (or could not apply) the effective settings of a tenant to a
/// TenantPolicy. Requires `Idempotency-Key`; a retry with the same key and body is answered with
/// the stored report (`Idempotent-Replayed: true`) and stores nothing. Emits `settings.synced`.
#[utoipa::path(post, path = "/settings/sync-reports", tag = "settings", params(RequiredKey),
    request_body = SyncReportInput,
    responses(
        (status = 201, description = "Stored", body = SyncReportView),
        (status = 400, description = "Malformed JSON, or no or a malformed Idempotency-Key", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Neither admin nor platform", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with the same Idempotency-Key is still in flight", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad values, each named by pointer (a policy that is not <namespace>/<name>, a \
            tenant or org that is not an id, a negative version, a list over 100 entries, a string over its bound); \
            or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn create_report(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: Idempotency,
    AppJson(input): AppJson<SyncReportInput>,
) -> Result<Reply, Error> {
    caller.require(REPORTERS, "reporting a settings sync")?;
    idempotency.require()?;
    let report = input.check().map_err(Error::Unprocessable)?;
    let mut tx = caller.begin(&state).await?;
    if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
        return Ok(replay);
    }
    let actor = caller.audit_name();
    let rejected = serde_json::to_value(&report.rejected).map_err(anyhow::Error::from)?;
    let new = NewSyncReport {
        id: Uuid::now_v7(),
        policy: report.policy.as_str(),
        tenant: report.tenant.as_str(),
        org: report.org.as_ref().map(Id::as_str),
        version: report.version,
        outcome: report.outcome.as_str(),
        applied: &report.applied,
        rejected: &rejected,
        changes: &report.changes,
        detail: report.detail.as_deref(),
        actor: &actor,
        correlation_id: caller.correlation_id(),
    };
    let row = sync_reports::insert(&mut tx, new).await?;
    outbox::enqueue(&mut tx, &caller.origin, synced_event(&report, row.id, &actor)).await?;
    let reply = Reply::json(StatusCode::CREATED, [], &SyncReportView::try_from(row)?)?;
    idempotency.commit(tx, &caller, reply).await
}

/// `settings.synced` for one report. The subject is the policy; like `settings.changed`, the
/// event has no customer or territory, so the feeds show it to admins and the platform role only.
fn synced_event(report: &SyncReport, id: Uuid, actor: &str) -> NewEvent {
    NewEvent {
        event_type: EventType::SettingsSynced,
        subject: report.policy.as_str().to_owned(),
        territory: None,
        customer: None,
        data: json!({
            "reportId": id,
            "policy": report.policy.as_str(),
            "tenant": report.tenant.as_str(),
            "org": report.org.as_ref().map(Id::as_str),
            "version": report.version,
            "outcome": report.outcome.as_str(),
            "applied": report.applied,
            "rejected": report.rejected,
            "changes": report.changes,
            "detail": report.detail,
            "actor": actor,
        }),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Only this tenant's reports, e.g. `acme`.
    #[param(max_length = 63, pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    tenant: Option<String>,
    /// Only this TenantPolicy's reports: `<namespace>/<name>`, e.g. `crm/acme`.
    #[param(
        max_length = 507,
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    )]
    policy: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page, as it was given (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]{1,1024}$")]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncReportPage {
    items: Vec<SyncReportView>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The operator's sync reports, newest first, by tenant and policy; paged like every list.
#[utoipa::path(get, path = "/settings/sync-reports", tag = "settings", params(ReportsQuery),
    responses(
        (status = 200, description = "A page of reports", body = SyncReportPage),
        (status = 400, description = "A bad parameter, named in errors[].parameter", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Neither admin nor platform", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_reports(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<ReportsQuery>,
) -> Result<Json<SyncReportPage>, Error> {
    caller.require(READERS, "reading sync reports")?;
    const LIST: &str = "settings-sync-reports";
    let mut errors = Vec::new();
    let tenant = query
        .tenant
        .as_deref()
        .and_then(|text| Id::parse(text).map_err(|e| errors.push(FieldError::parameter("tenant", e))).ok());
    let policy = query.policy.as_deref().and_then(|text| {
        PolicyRef::parse(text).map_err(|e| errors.push(FieldError::parameter("policy", e))).ok()
    });
    let filter = SyncReportFilter {
        tenant: tenant.map(|t| t.as_str().to_owned()),
        policy: policy.map(|p| p.as_str().to_owned()),
    };
    let filters = format!("{:?}/{:?}", filter.tenant, filter.policy);
    let limit = paging::limit(query.limit, &mut errors);
    let after = paging::after(query.cursor.as_deref(), LIST, &filters, parse_key, &mut errors);
    if !errors.is_empty() {
        return Err(Error::BadRequest { detail: "invalid query parameters".into(), errors });
    }
    let mut conn = caller.begin(&state).await?;
    let mut rows = sync_reports::list(&mut conn, &filter, after, limit + 1).await?;
    let next_cursor = paging::next(&mut rows, limit, LIST, &filters, |row| json!([rfc3339(row.at), row.id]));
    let items = rows.into_iter().map(SyncReportView::try_from).collect::<Result<_, _>>()?;
    Ok(Json(SyncReportPage { items, next_cursor }))
}

fn parse_key(key: &Value) -> Option<(OffsetDateTime, Uuid)> {
    let at =
        OffsetDateTime::parse(key.get(0)?.as_str()?, &time::format_description::well_known::Rfc3339).ok()?;
    Some((at, key.get(1)?.as_str()?.parse().ok()?))
}
