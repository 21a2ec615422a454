//! Reading the registry: the key catalog, a tenant's effective settings, one setting and its
//! history. The two views with an `ETag` answer `If-None-Match` with 304, which is how the
//! operator polls cheaply.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{READERS, Setting, key_param, not_set, scope_param};
use crate::db::settings;
use crate::domain::settings::keys::KeyDefinition;
use crate::domain::settings::{self as domain, Id, SettingScope};
use crate::error::{Error, FieldError, Problem};
use crate::http::caller::Caller;
use crate::http::extract::{AppPath, AppQuery};
use crate::http::paging;
use crate::http::preconditions::{IfNoneMatch, Tagged, etag_header};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingKeys {
    keys: Vec<KeyDefinition>,
}

/// The catalog of setting keys: each key, what it overrides in the TenantPolicy, and the JSON
/// Schema (draft 2020-12) its values must match.
#[utoipa::path(get, path = "/settings/keys", tag = "settings", responses(
    (status = 200, description = "The catalog", body = SettingKeys),
    (status = 403, description = "Neither admin nor platform", body = Problem, content_type = "application/problem+json"),
))]
pub(super) async fn keys(State(state): State<AppState>, caller: Caller) -> Result<Json<SettingKeys>, Error> {
    caller.require(READERS, "reading settings")?;
    Ok(Json(SettingKeys { keys: state.settings.definitions().into_iter().cloned().collect() }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EffectiveQuery {
    /// The tenant (required), e.g. `acme`: a DNS label.
    #[param(required = true, max_length = 63, pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    tenant: Option<String>,
    /// One of the tenant's orgs, e.g. `munich`; without it, the tenant's own view.
    #[param(max_length = 63, pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    org: Option<String>,
}

/// A key's winning value and where it comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectiveSetting {
    #[schema(value_type = serde_json::Value)]
    value: Value,
    /// The scope whose value wins: the most specific one in the chain that has one.
    scope: String,
    /// The number of the change that wrote that value.
    version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"tenant": "acme", "org": "munich", "version": 1234,
    "settings": {"gateway.rateLimit": {"value": {"minute": 600}, "scope": "tenant:acme", "version": 1200}}}))]
pub struct Effective {
    tenant: String,
    /// `null` when no org was asked for.
    org: Option<String>,
    /// The number of the last change at any scope of the chain (global, the tenant, the org), 0
    /// when none ever changed. It rises with every change that could alter this view, deletes
    /// included.
    version: i64,
    /// The keys with a value somewhere in the chain.
    settings: BTreeMap<String, EffectiveSetting>,
}

/// The strong ETag of an effective view. The version alone is not enough: two tenants' views can
/// have the same version.
fn effective_etag(tenant: &Id, org: Option<&Id>, version: i64) -> String {
    match org {
        Some(org) => format!("\"e{version}:{tenant}:{org}\""),
        None => format!("\"e{version}:{tenant}\""),
    }
}

fn not_modified(etag: &str) -> Response {
    (StatusCode::NOT_MODIFIED, [etag_header(etag)]).into_response()
}

/// The settings in force for a tenant, and one of its orgs if given: per key, the value of the
/// most specific scope that has one (org, else tenant, else global), whole. Strong `ETag`;
/// `If-None-Match` with it answers 304 until something in the chain changes.
#[utoipa::path(get, path = "/settings/effective", tag = "settings", params(EffectiveQuery,
    ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "The ETag of a view read before")),
    responses(
        (status = 200, description = "The effective settings", body = Effective),
        (status = 304, description = "Not modified: the If-None-Match tag is current"),
        (status = 400, description = "A missing or malformed tenant or org, named in errors[].parameter", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Neither admin nor platform", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn effective(
    State(state): State<AppState>,
    caller: Caller,
    if_none_match: IfNoneMatch,
    AppQuery(query): AppQuery<EffectiveQuery>,
) -> Result<Response, Error> {
    caller.require(READERS, "reading settings")?;
    let mut errors = Vec::new();
    let mut id = |name: &str, text: Option<&str>| {
        text.and_then(|text| Id::parse(text).map_err(|e| errors.push(FieldError::parameter(name, e))).ok())
    };
    let tenant = id("tenant", query.tenant.as_deref());
    let org = id("org", query.org.as_deref());
    if query.tenant.is_none() {
        errors.push(FieldError::parameter("tenant", "required: the tenant whose settings to read"));
    }
    let Some(tenant) = tenant.filter(|_| errors.is_empty()) else {
        return Err(Error::BadRequest { detail: "invalid query parameters".into(), errors });
    };
    let chain = SettingScope::chain(&tenant, org.as_ref());
    let mut conn = caller.begin(&state).await?;
    let (stored, versions) = settings::chain(&mut conn, &chain).await?;
    let version = domain::effective_version(&chain, versions.iter().map(|(scope, v)| (scope, *v)));
    let etag = effective_etag(&tenant, org.as_ref(), version);
    if if_none_match.matches(Some(&etag)) {
        return Ok(not_modified(&etag));
    }
    let settings = domain::effective(&chain, stored)
        .into_iter()
        .map(|(key, s)| {
            (key, EffectiveSetting { value: s.value, scope: s.scope.to_string(), version: s.version })
        })
        .collect();
    let body = Effective { tenant: tenant.to_string(), org: org.map(|o| o.to_string()), version, settings };
    Ok(([etag_header(&etag)], Json(body)).into_response())
}

/// One setting as stored at its scope (not the effective value), with its `ETag` for writes.
#[utoipa::path(get, path = "/settings/{scope}/{key}", tag = "settings", params(
    ("scope" = String, Path, pattern = r"^(global|tenant:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?|org:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$", description = "`global`, `tenant:<tenant>` or `org:<tenant>:<org>`", example = "tenant:acme"),
    ("key" = String, Path, description = "A key of GET /settings/keys", example = "gateway.rateLimit"),
    ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "The ETag of a copy read before")),
    responses(
        (status = 200, description = "The setting", body = Setting),
        (status = 304, description = "Not modified: the If-None-Match tag is current"),
        (status = 400, description = "Not a scope", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Neither admin nor platform", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key, or not set at this scope", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub(super) async fn get_setting(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((scope, key)): AppPath<(String, String)>,
    if_none_match: IfNoneMatch,
) -> Result<Response, Error> {
    caller.require(READERS, "reading settings")?;
    let (scope, key) = (scope_param(&scope)?, key_param(&key)?);
    let mut conn = caller.begin(&state).await?;
    let row = settings::find(&mut conn, &scope.to_string(), key.name())
        .await?
        .ok_or_else(|| not_set(&scope, key))?;
    let etag = Tagged::Setting.etag(row.version);
    if if_none_match.matches(Some(&etag)) {
        return Ok(not_modified(&etag));
    }
    Ok(([Tagged::Setting.header(row.version)], Json(Setting::from(row))).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page, as it was given (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]{1,1024}$")]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingChange {
    /// The change's number; never given to another change.
    version: i64,
    /// `set` or `delete`.
    action: String,
    /// `null`: the setting was new.
    #[schema(value_type = Option<serde_json::Value>)]
    old_value: Option<Value>,
    /// `null`: the setting was deleted.
    #[schema(value_type = Option<serde_json::Value>)]
    new_value: Option<Value>,
    /// `user:<token subject>`.
    actor: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// The request's correlation id (`X-Correlation-ID`).
    correlation_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingHistory {
    items: Vec<SettingChange>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Every change of a key at a scope, newest first, deletes included (the history outlives the
/// setting): old and new value, who, when, and the request's correlation id.
#[utoipa::path(get, path = "/settings/{scope}/{key}/history", operation_id = "setting_history", tag = "settings", params(
    ("scope" = String, Path, pattern = r"^(global|tenant:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?|org:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$", description = "`global`, `tenant:<tenant>` or `org:<tenant>:<org>`", example = "tenant:acme"),
    ("key" = String, Path, description = "A key of GET /settings/keys", example = "gateway.rateLimit"),
    HistoryQuery),
    responses(
        (status = 200, description = "A page of changes", body = SettingHistory),
        (status = 400, description = "Not a scope, or a bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Neither admin nor platform", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((scope, key)): AppPath<(String, String)>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> Result<Json<SettingHistory>, Error> {
    caller.require(READERS, "reading settings")?;
    let (scope, key) = (scope_param(&scope)?, key_param(&key)?);
    const LIST: &str = "setting-history";
    let filters = format!("{scope}/{key}");
    let mut errors = Vec::new();
    let limit = paging::limit(query.limit, &mut errors);
    let before = paging::after(query.cursor.as_deref(), LIST, &filters, Value::as_i64, &mut errors);
    if !errors.is_empty() {
        return Err(Error::BadRequest { detail: "invalid query parameters".into(), errors });
    }
    let mut conn = caller.begin(&state).await?;
    let mut rows = settings::history(&mut conn, &scope.to_string(), key.name(), before, limit + 1).await?;
    let next_cursor = paging::next(&mut rows, limit, LIST, &filters, |row| json!(row.version));
    let items = rows
        .into_iter()
        .map(|row| SettingChange {
            version: row.version,
            action: row.action,
            old_value: row.old_value,
            new_value: row.new_value,
            actor: row.actor,
            at: row.at,
            correlation_id: row.correlation_id,
        })
        .collect();
    Ok(Json(SettingHistory { items, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_tags_name_the_tenant_and_org_as_well_as_the_version() {
        let (acme, zeta, munich) =
            (Id::parse("acme").unwrap(), Id::parse("zeta").unwrap(), Id::parse("munich").unwrap());
        let tags = [
            effective_etag(&acme, None, 7),
            effective_etag(&zeta, None, 7),
            effective_etag(&acme, Some(&munich), 7),
            effective_etag(&acme, None, 8),
        ];
        assert_eq!(tags[0], "\"e7:acme\"");
        assert_eq!(tags[2], "\"e7:acme:munich\"");
        let distinct: std::collections::BTreeSet<&String> = tags.iter().collect();
        assert_eq!(distinct.len(), tags.len());
    }
}
