//! `/activities` and `/customers/{id}/activities`: typed sales activities with their SLA.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::db::activities::{self, ActivityFilter, ActivityRow, NewActivityRow};
use crate::db::{customers, fields, samples};
use crate::domain::activity::{self, ActivityBase, ActivityKind, Payload};
use crate::domain::fields::FieldWrite;
use crate::domain::sla::{self, SlaStatus};
use crate::domain::{berlin, dates, sample};
use crate::error::{Error, FieldError, Problem};
use crate::http::caller::Caller;
use crate::http::customers::{named_for_write, not_found as customer_not_found};
use crate::http::extract::{AppJson, AppPath, AppQuery, from_value};
use crate::http::idempotency::{Idempotency, Reply, RequiredKey};
use crate::http::paging;
use crate::outbox::{self, EventType, NewEvent, rfc3339};
use crate::state::AppState;

pub fn queries() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_activity)).routes(routes!(list_activities))
}

pub fn commands() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_activity))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaView {
    /// Due by the end of this (German) date.
    #[serde(skip_serializing_if = "Option::is_none")]
    due: Option<Date>,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    met_at: Option<OffsetDateTime>,
    status: SlaStatus,
}

/// An activity: the shared members, the members of its kind, and its SLA.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    id: Uuid,
    customer_id: Uuid,
    kind: ActivityKind,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    follow_up_of: Option<Uuid>,
    sla: SlaView,
    created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// The members of the kind (`sampleId`, `rating`, ... for PRODUCTTEST_FEEDBACK).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    members: Value,
}

fn to_api(row: ActivityRow, today: Date) -> Result<Activity, Error> {
    let kind = ActivityKind::parse(&row.kind)
        .ok_or_else(|| anyhow::anyhow!("activity {} has kind {}", row.id, row.kind))?;
    // The stored members of the kind include its outcome, which the activity shows once, as a
    // shared member: flattened beside it, a second `outcome` would repeat the name.
    let mut members = row.payload;
    if let Value::Object(own) = &mut members {
        own.remove("outcome");
    }
    Ok(Activity {
        id: row.id,
        customer_id: row.customer_id,
        kind,
        occurred_at: row.occurred_at,
        outcome: row.outcome,
        note: row.note,
        follow_up_of: row.follow_up_of,
        sla: SlaView {
            due: row.sla_due,
            met_at: row.sla_met_at,
            status: sla::status(row.sla_due, row.sla_met_at, today),
        },
        created_by: row.created_by,
        created_at: row.created_at,
        members,
    })
}

fn unprocessable(pointer: &str, detail: impl Into<String>) -> Error {
    Error::Unprocessable(vec![FieldError::new(pointer, detail)])
}

/// The request as a kind, its shared members and its own members, each value checked.
fn parse(body: Value) -> Result<(ActivityBase, Payload), Error> {
    let (kind, base, members) = activity::split(body).map_err(|e| Error::Unprocessable(vec![e]))?;
    let base: ActivityBase = from_value(base)?;
    let payload = match kind {
        ActivityKind::ProducttestFeedback => Payload::ProducttestFeedback(from_value(members)?),
        ActivityKind::RoiConsultation => Payload::RoiConsultation(from_value(members)?),
        ActivityKind::MenuIntegration => Payload::MenuIntegration(from_value(members)?),
        ActivityKind::DecisionMakerAlignment => Payload::DecisionMakerAlignment(from_value(members)?),
    };
    let mut errors = payload.check();
    errors.extend(base.occurred_at.and_then(|at| dates::check_time("/occurredAt", at)));
    if base.note.as_ref().is_some_and(|n| n.chars().count() > 4000) {
        errors.push(FieldError::new("/note", "at most 4000 characters"));
    }
    if !errors.is_empty() {
        return Err(Error::Unprocessable(errors));
    }
    Ok((base, payload))
}

/// Record an activity of one of the four kinds; the members of the kind sit beside the shared
/// ones. Requires `Idempotency-Key`. Its SLA is computed from the customer's state, season window
/// and renewal date; `followUpOf` meets the SLA of an earlier activity; product-test feedback
/// completes its sample's follow-up. ROI consultations with savings and alignments write the
/// customer's `roi_potential` and `decision_makers` fields. Emits `activity.created` (and
/// `customer.fields.changed`).
#[utoipa::path(post, path = "/activities", tag = "activities", params(RequiredKey),
    request_body(content = Object, description = "ActivityBase members plus those of the kind: ProducttestFeedback, RoiConsultation, MenuIntegration or DecisionMakerAlignment",
        example = json!({"kind": "PRODUCTTEST_FEEDBACK", "customerId": "0193a3c4-0000-7000-8000-000000000001",
                         "sampleId": "0193a3c4-0000-7000-8000-000000000002", "rating": 4, "outcome": "SUCCESS",
                         "sensoricNotes": "Sauce cremig, Salz passt", "menuFit": true})),
    responses(
        (status = 201, description = "Recorded; `Location` header", body = Activity),
        (status = 400, description = "Malformed JSON, or no or a malformed Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The customer is outside the customers you may change", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with the same Idempotency-Key is still in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown kind, members of another kind, bad values, an unknown customer, sample or followed-up activity; each named by pointer",
            body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_activity(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: Idempotency,
    AppJson(body): AppJson<Value>,
) -> Result<Reply, Error> {
    idempotency.require()?;
    let (base, payload) = parse(body)?;
    let now = OffsetDateTime::now_utc();
    let occurred_at = base.occurred_at.unwrap_or(now);
    if occurred_at > now + sample::MAX_EVENT_SKEW {
        return Err(unprocessable("/occurredAt", "lies in the future"));
    }
    let mut tx = caller.begin(&state).await?;
    if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
        return Ok(replay);
    }
    let customer = named_for_write(&mut tx, base.customer_id).await?;
    // The customer's fields stay locked to the end: the activity may write some.
    let fields_version = fields::lock_version(&mut tx, customer.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the fields of writable customer {} are gone", customer.id))?;
    let (season_start, season_end, renewal) = activities::customer_dates(&mut tx, customer.id).await?;
    let mut context =
        sla::Context { season: season_start.zip(season_end), renewal, sample_followup_due: None };
    let sample_id = match &payload {
        Payload::ProducttestFeedback(feedback) => {
            let sample = samples::find(&mut tx, feedback.sample_id)
                .await?
                .filter(|s| s.customer_id == customer.id)
                .ok_or_else(|| unprocessable("/sampleId", "no such sample of this customer"))?;
            if sample.delivered_at.is_none() {
                return Err(unprocessable(
                    "/sampleId",
                    format!("the sample is {}, not delivered yet", sample.status),
                ));
            }
            context.sample_followup_due = sample.followup_due;
            Some(sample.id)
        }
        _ => None,
    };
    if let Some(earlier) = base.follow_up_of {
        activities::find(&mut tx, earlier)
            .await?
            .filter(|a| a.customer_id == customer.id && a.occurred_at <= occurred_at)
            .ok_or_else(|| unprocessable("/followUpOf", "no earlier activity of this customer"))?;
    }
    let sla = sla::of_activity(&payload, occurred_at, &context);
    let actor = caller.audit_name();
    let members = payload.to_json();
    let outcome = payload.outcome();
    let row = activities::insert(
        &mut tx,
        &NewActivityRow {
            id: Uuid::now_v7(),
            customer_id: customer.id,
            kind: payload.kind(),
            occurred_at,
            outcome: &outcome,
            note: base.note.as_deref().map(str::trim).filter(|n| !n.is_empty()),
            payload: &members,
            sample_id,
            follow_up_of: base.follow_up_of,
            sla_due: sla.due,
            sla_met_at: sla.met_at,
            actor: &actor,
            correlation_id: caller.correlation_id(),
        },
    )
    .await?;
    if let Some(earlier) = base.follow_up_of {
        activities::meet_sla(&mut tx, earlier, occurred_at).await?;
    }
    if let Some(sample) = sample_id {
        samples::complete_followup(&mut tx, sample, occurred_at).await?;
    }
    feed_fields(&mut tx, &caller, &state, customer.id, fields_version, &payload).await?;
    let event = NewEvent {
        event_type: EventType::ActivityCreated,
        subject: row.id.to_string(),
        territory: Some(customer.territory),
        customer: Some(customer.id),
        data: json!({"activityId": row.id, "customerId": customer.id, "kind": payload.kind(),
                     "occurredAt": rfc3339(occurred_at), "outcome": outcome}),
    };
    outbox::enqueue(&mut tx, &caller.origin, event).await?;
    let headers = [Reply::location(format!("/activities/{}", row.id))?];
    let reply = Reply::json(StatusCode::CREATED, headers, &to_api(row, berlin::date(now))?)?;
    idempotency.commit(tx, &caller, reply).await
}

/// Writes the fields the activity carries hot data for, through the one field write.
async fn feed_fields(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    caller: &Caller,
    state: &AppState,
    customer: Uuid,
    version: i64,
    payload: &Payload,
) -> Result<(), Error> {
    let current = fields::values(tx, customer).await?;
    let decision_makers =
        current.as_ref().and_then(|v| v.values.get("decision_makers")).map(|(value, ..)| value);
    let writes: Vec<FieldWrite> = activity::field_writes(payload, decision_makers)
        .into_iter()
        .map(|(key, value)| FieldWrite { key, value: Some(value) })
        .collect();
    if writes.is_empty() {
        return Ok(());
    }
    // The values are built to the catalog's schemas; checking them again keeps one rule for what
    // a field may hold.
    let patch = Value::Object(
        writes.iter().map(|w| (w.key.clone(), w.value.clone().unwrap_or(Value::Null))).collect(),
    );
    state
        .catalog
        .validate_patch(&patch)
        .map_err(|errors| anyhow::anyhow!("an activity derived invalid fields: {errors:?}"))?;
    match fields::patch(tx, customer, &[version], &writes, &caller.audit_name(), caller.correlation_id())
        .await?
    {
        fields::PatchOutcome::Applied { version, territory, changes } => {
            if !changes.is_empty() {
                let event = crate::http::fields::changed_event(customer, version, territory, &changes);
                outbox::enqueue(tx, &caller.origin, event).await?;
            }
            Ok(())
        }
        other => {
            Err(anyhow::anyhow!("the locked fields of customer {customer} could not be written: {other:?}")
                .into())
        }
    }
}

/// One activity.
#[utoipa::path(get, path = "/activities/{id}", tag = "activities", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The activity", body = Activity),
    (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such activity", body = Problem, content_type = "application/problem+json"),
))]
async fn get_activity(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Activity>, Error> {
    let mut tx = caller.begin(&state).await?;
    let row =
        activities::find(&mut tx, id).await?.ok_or_else(|| Error::NotFound(format!("no activity {id}")))?;
    Ok(Json(to_api(row, berlin::date(OffsetDateTime::now_utc()))?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    kind: Option<ActivityKind>,
    /// Occurred at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<OffsetDateTime>,
    /// Occurred before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<OffsetDateTime>,
    /// Full-text search (German) over the note and every text of the activity, in web search
    /// syntax: `Sauce`, `"Sauce Hollandaise"`, `Braten -Schwein`. Blank means none.
    #[param(max_length = 200, pattern = r"^[^\u0000]*$")]
    q: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page, as it was given (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]{1,1024}$")]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityPage {
    items: Vec<Activity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A customer's activities, newest first, by kind, time and text.
#[utoipa::path(get, path = "/customers/{id}/activities", tag = "activities", params(("id" = Uuid, Path), ListQuery),
    responses(
        (status = 200, description = "A page of activities", body = ActivityPage),
        (status = 400, description = "A bad parameter, named in `errors[].parameter`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_activities(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<ActivityPage>, Error> {
    const LIST: &str = "activities";
    let mut errors = Vec::new();
    // The length is that of the text as sent, as the document states it.
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        errors.push(FieldError::parameter("q", "at most 200 characters"));
    }
    let filter = ActivityFilter {
        kind: query.kind,
        from: query.from,
        to: query.to,
        q: query.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()),
    };
    let filters = format!("{id}:{filter:?}");
    errors.extend(dates::check_time_parameter("from", filter.from));
    errors.extend(dates::check_time_parameter("to", filter.to));
    let limit = paging::limit(query.limit, &mut errors);
    let after = paging::after(query.cursor.as_deref(), LIST, &filters, parse_key, &mut errors);
    if !errors.is_empty() {
        return Err(Error::BadRequest { detail: "invalid query parameters".into(), errors });
    }
    let mut tx = caller.begin(&state).await?;
    customers::find(&mut tx, id).await?.ok_or_else(|| customer_not_found(id))?;
    let mut rows = activities::list(&mut tx, id, &filter, after, limit + 1).await?;
    let next_cursor =
        paging::next(&mut rows, limit, LIST, &filters, |row| json!([rfc3339(row.occurred_at), row.id]));
    let today = berlin::date(OffsetDateTime::now_utc());
    let items = rows.into_iter().map(|row| to_api(row, today)).collect::<Result<_, _>>()?;
    Ok(Json(ActivityPage { items, next_cursor }))
}

fn parse_key(key: &Value) -> Option<(OffsetDateTime, Uuid)> {
    let at =
        OffsetDateTime::parse(key.get(0)?.as_str()?, &time::format_description::well_known::Rfc3339).ok()?;
    Some((at, key.get(1)?.as_str()?.parse().ok()?))
}
