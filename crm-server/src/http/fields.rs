//! The field bridge: `GET/PATCH /customers/{id}/fields` with strong ETags, the catalog, and the
//! audit trail.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::UserRole;
use crate::db::fields::{self, Change, PatchOutcome};
use crate::domain::fields::FieldDefinition;
use crate::error::{Error, Problem};
use crate::http::caller::Caller;
use crate::http::customers::not_found;
use crate::http::extract::{AppJson, AppPath, AppQuery};
use crate::http::idempotency::{Idempotency, OptionalKey, Reply};
use crate::http::paging;
use crate::http::preconditions::{Expected, IfMatch, Tagged};
use crate::outbox::{self, EventType, NewEvent};
use crate::state::AppState;

pub fn queries() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(catalog)).routes(routes!(get_fields)).routes(routes!(history))
}

pub fn commands() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(patch_fields))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Catalog {
    fields: Vec<FieldDefinition>,
}

/// The catalog of dynamic fields: each key, the JSON Schema of its value, whether it is hot
/// (searchable) and who may write it.
#[utoipa::path(get, path = "/fields", tag = "fields", responses((status = 200, description = "The catalog", body = Catalog)))]
async fn catalog(State(state): State<AppState>, _caller: Caller) -> Json<Catalog> {
    Json(Catalog { fields: state.catalog.definitions().cloned().collect() })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    by: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldValues {
    customer_id: Uuid,
    /// The fields' version; the ETag is `"f<version>"`.
    version: i64,
    /// Every field with a value, by key.
    #[schema(value_type = Object)]
    values: BTreeMap<String, Value>,
    /// When and by whom each value was last written.
    updated: BTreeMap<String, Written>,
}

/// All dynamic field values of a customer, with a strong `ETag` that changes on every write.
#[utoipa::path(get, path = "/customers/{id}/fields", tag = "fields", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The values", body = FieldValues),
    (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
))]
async fn get_fields(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<impl IntoResponse, Error> {
    let mut conn = caller.begin(&state).await?;
    let current = fields::values(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
    let mut values = BTreeMap::new();
    let mut updated = BTreeMap::new();
    for (key, (value, at, by)) in current.values {
        values.insert(key.clone(), value);
        updated.insert(key, Written { at, by });
    }
    let body = FieldValues { customer_id: id, version: current.version, values, updated };
    Ok(([Tagged::CustomerFields.header(current.version)], Json(body)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    key: String,
    /// `null`: the field had no value.
    #[schema(value_type = Option<serde_json::Value>)]
    old_value: Option<Value>,
    /// `null`: the field was removed.
    #[schema(value_type = Option<serde_json::Value>)]
    new_value: Option<Value>,
}

impl From<Change> for FieldChange {
    fn from(change: Change) -> Self {
        FieldChange { key: change.key, old_value: change.old, new_value: change.new }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldsWritten {
    customer_id: Uuid,
    /// The new version; the response's `ETag` is `"f<version>"`.
    version: i64,
    /// What changed (writing a value equal to the current one is not a change).
    changes: Vec<FieldChange>,
}

/// How often a write without `If-Match` (where the server allows that) retries when another
/// write slips in between reading the version and writing.
const UNCONDITIONAL_ATTEMPTS: usize = 5;

/// Write several fields in one transaction: a JSON object of keys to values, `null` removing a
/// field. Hot fields update the projection in the same transaction. Emits
/// `customer.fields.changed`.
#[utoipa::path(patch, path = "/customers/{id}/fields", tag = "fields", params(("id" = Uuid, Path), OptionalKey,
    ("If-Match" = String, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "The ETag from GET /customers/{id}/fields")),
    request_body(content = Object, description = "Field keys to new values; null removes",
        example = json!({"roi_potential": {"bucket": "HIGH", "value": 1800}, "current_supplier_contracts": {"renewal_date": "2027-03-01", "exclusivity": true}})),
    responses(
        (status = 409, description = "A request with the same Idempotency-Key is still in flight; or, with \
            `If-Match: *` (or none, where the server allows that), other writes kept changing the fields \
            between reading and writing them: read again and retry", body = Problem,
            content_type = "application/problem+json"),
        (status = 200, description = "Written; the new ETag is in the header", body = FieldsWritten),
        (status = 400, description = "Malformed JSON or If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The fields changed since the ETag was read; the response carries the current ETag",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown keys, read-only fields or values of the wrong shape, each named by pointer; nothing is written",
            body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is required", body = Problem, content_type = "application/problem+json"),
    ))]
async fn patch_fields(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
    if_match: IfMatch,
    idempotency: Idempotency,
    AppJson(patch): AppJson<Value>,
) -> Result<Reply, Error> {
    let expected = if_match.expected(Tagged::CustomerFields, state.http.require_if_match)?;
    let writes = state.catalog.validate_patch(&patch).map_err(Error::Unprocessable)?;
    // The catalog names who may write each field (contract and price fields: chain managers).
    let denied: Vec<&str> = writes
        .iter()
        .filter(|w| !caller.has(UserRole::Admin) && !state.catalog.may_write(&w.key, &caller.identity.roles))
        .map(|w| w.key.as_str())
        .collect();
    if !denied.is_empty() {
        return Err(Error::Forbidden(format!("your roles may not write {}", denied.join(", "))));
    }
    let actor = caller.audit_name();
    for _ in 0..UNCONDITIONAL_ATTEMPTS {
        // Without a version from the client, take the current one: the write then still cannot
        // overwrite a change it did not see in its own snapshot.
        let versions = match &expected {
            Expected::OneOf(versions) => versions.clone(),
            Expected::Any => {
                let mut conn = caller.begin(&state).await?;
                vec![fields::version(&mut conn, id).await?.ok_or_else(|| not_found(id))?]
            }
        };
        let mut tx = caller.begin(&state).await?;
        if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
            return Ok(replay);
        }
        match fields::patch(&mut tx, id, &versions, &writes, &actor, caller.correlation_id()).await? {
            PatchOutcome::NotFound => return Err(not_found(id)),
            // The policies hide rows the caller may read but not write from the write, which
            // then looks stale: tell the two apart.
            PatchOutcome::Stale { .. } if !fields::writable(&mut tx, id).await? => {
                return Err(Error::Forbidden(format!(
                    "customer {id} is outside the customers you may change"
                )));
            }
            PatchOutcome::Stale { current } => {
                if matches!(expected, Expected::Any) {
                    continue;
                }
                return Err(Tagged::CustomerFields.stale(current));
            }
            PatchOutcome::Applied { version, territory, changes } => {
                if !changes.is_empty() {
                    outbox::enqueue(&mut tx, &caller.origin, changed_event(id, version, territory, &changes))
                        .await?;
                }
                let body = FieldsWritten {
                    customer_id: id,
                    version,
                    changes: changes.into_iter().map(FieldChange::from).collect(),
                };
                let reply = Reply::json(StatusCode::OK, [Tagged::CustomerFields.header(version)], &body)?;
                return idempotency.commit(tx, &caller, reply).await;
            }
        }
    }
    Err(Error::Conflict(format!("the fields of customer {id} kept changing; retry")))
}

/// `customer.fields.changed` for the changes of one field write.
pub fn changed_event(customer: Uuid, version: i64, territory: String, changes: &[Change]) -> NewEvent {
    NewEvent {
        event_type: EventType::CustomerFieldsChanged,
        subject: customer.to_string(),
        territory: Some(territory),
        customer: Some(customer),
        data: json!({
            "customerId": customer,
            "fieldsVersion": version,
            "changes": changes.iter().map(|c| json!({"key": c.key, "oldValue": c.old, "newValue": c.new})).collect::<Vec<_>>(),
        }),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only changes of this field.
    #[param(pattern = r"^[^\u0000]*$")]
    key: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page, as it was given (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]{1,1024}$")]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    key: String,
    #[schema(value_type = Option<serde_json::Value>)]
    old_value: Option<Value>,
    #[schema(value_type = Option<serde_json::Value>)]
    new_value: Option<Value>,
    actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    changed_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    items: Vec<HistoryEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Every change of a customer's fields, newest first: old and new value, actor, time and
/// correlation id.
#[utoipa::path(get, path = "/customers/{id}/fields/history", operation_id = "field_history", tag = "fields", params(("id" = Uuid, Path), HistoryQuery),
    responses(
        (status = 200, description = "A page of changes", body = HistoryPage),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    ))]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, Error> {
    const LIST: &str = "field-history";
    let filters = format!("{id}:{:?}", query.key);
    let mut errors = Vec::new();
    let limit = paging::limit(query.limit, &mut errors);
    let before = paging::after(query.cursor.as_deref(), LIST, &filters, Value::as_i64, &mut errors);
    if !errors.is_empty() {
        return Err(Error::BadRequest { detail: "invalid query parameters".into(), errors });
    }
    let mut conn = caller.begin(&state).await?;
    fields::version(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
    let mut rows = fields::history(&mut conn, id, query.key.as_deref(), before, limit + 1).await?;
    let next_cursor = paging::next(&mut rows, limit, LIST, &filters, |row| json!(row.id));
    let items = rows
        .into_iter()
        .map(|row| HistoryEntry {
            key: row.field_key,
            old_value: row.old_value,
            new_value: row.new_value,
            actor: row.actor,
            correlation_id: row.correlation_id,
            changed_at: row.changed_at,
        })
        .collect();
    Ok(Json(HistoryPage { items, next_cursor }))
}
