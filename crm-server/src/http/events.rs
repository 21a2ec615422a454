//! `/events`: the published log to read back (replay), to follow live (Server-Sent Events), and
//! the door for events from other systems (inbound).
//!
//! Readers see the events of customers they can read (row-level security on the outbox); events
//! are CloudEvents 1.0 JSON with their `position`, the order of the log.

use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{Error, FieldError, Problem};
use crate::http::caller::Caller;
use crate::http::customers::named_for_write;
use crate::http::extract::{AppJson, AppQuery};
use crate::http::paging;
use crate::outbox::{self, EventType, NewEvent, StoredEvent};
use crate::state::AppState;

/// Events a live stream reads per query.
const STREAM_BATCH: i64 = 200;
/// A live stream looks for events at least this often even without a notification.
const STREAM_POLL: Duration = Duration::from_secs(2);

pub fn queries() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(replay)).routes(routes!(stream))
}

pub fn commands() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(inbound))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    /// Only events after this position (default 0: from the start).
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    after: Option<i64>,
    /// Comma-separated event types, e.g. `sample.status.changed,activity.created`.
    types: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayPage {
    /// CloudEvents 1.0, each with its `position`.
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
    /// The position to ask `after` next time (the last one returned, or `after` when none).
    next_after: i64,
}

fn types(text: Option<&str>, errors: &mut Vec<FieldError>) -> Vec<String> {
    // ASCII whitespace only, as the document's pattern says.
    let types: Vec<String> = text
        .unwrap_or("")
        .split(',')
        .map(str::trim_ascii)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    for t in &types {
        if !EventType::ALL.iter().any(|known| known.name() == t) {
            errors.push(FieldError::parameter("types", format!("`{t}` is not an event type")));
        }
    }
    types
}

/// Any range of the published log, in order: page with `after` = the last `nextAfter`.
#[utoipa::path(get, path = "/events/replay", tag = "events", params(ReplayQuery), responses(
    (status = 200, description = "A page of events", body = ReplayPage),
    (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
))]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<ReplayQuery>,
) -> Result<Json<ReplayPage>, Error> {
    let mut errors = Vec::new();
    let limit = paging::limit(query.limit, &mut errors);
    let after = query.after.unwrap_or(0);
    if after < 0 {
        errors.push(FieldError::parameter("after", "a position, 0 or more"));
    }
    let types = types(query.types.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(Error::BadRequest { detail: "invalid query parameters".into(), errors });
    }
    let mut tx = caller.begin(&state).await?;
    let events = outbox::published_after(&mut tx, after, &types, limit).await?;
    let next_after = events.last().and_then(|e| e.position).unwrap_or(after);
    Ok(Json(ReplayPage { items: events.iter().map(StoredEvent::to_cloudevent).collect(), next_after }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this position; `Last-Event-ID` (sent by a reconnecting EventSource) wins. Without
    /// either, the stream starts with the next event published.
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    after: Option<i64>,
    /// Comma-separated event types.
    types: Option<String>,
}

/// A live feed of published events as Server-Sent Events (`id:` is the position, `event:` the
/// type, `data:` the CloudEvent), for the cockpit. Resumes after `Last-Event-ID`. The stream ends
/// when the bearer token it was opened with expires (its `exp` plus the server's leeway, 30 s by
/// default); reconnect with a fresh token and `Last-Event-ID` to go on without a gap.
#[utoipa::path(get, path = "/events/stream", tag = "events", params(StreamQuery,
    ("Last-Event-ID" = Option<i64>, Header, minimum = 0, maximum = 9223372036854775807_i64,
        description = "The last position received, to resume after")),
    responses(
        (status = 200, description = "text/event-stream of CloudEvents", content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppQuery(query): AppQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Error> {
    let mut errors = Vec::new();
    let resume = match headers
        .get("last-event-id")
        .map(|v| v.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()))
    {
        Some(Some(position)) if position >= 0 => Some(position),
        Some(_) => {
            errors.push(FieldError::parameter("Last-Event-ID", "a position, 0 or more"));
            None
        }
        None => query.after,
    };
    // Checked even when Last-Event-ID wins over it: a bad parameter is never silently ignored.
    if query.after.is_some_and(|after| after < 0) {
        errors.push(FieldError::parameter("after", "a position, 0 or more"));
    }
    let types = types(query.types.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(Error::BadRequest { detail: "invalid stream parameters".into(), errors });
    }
    let after = match resume {
        Some(after) => after,
        None => {
            let mut tx = caller.begin(&state).await?;
            sqlx::query_scalar("SELECT last_position FROM outbox_relay").fetch_one(&mut *tx).await?
        }
    };
    let published = state.published.subscribe();
    let expires = token_deadline(&caller, state.verifier.leeway);
    let events = futures::stream::unfold(
        (state, caller, types, after, published, Vec::<StoredEvent>::new()),
        move |(state, caller, types, mut after, mut published, mut pending)| async move {
            loop {
                // The server is shutting down, or the token the stream was opened with has
                // expired: end the stream (the client reconnects, elsewhere or with a fresh
                // token, after its Last-Event-ID and loses nothing).
                if *state.stopping.borrow() || tokio::time::Instant::now() >= expires {
                    return None;
                }
                if let Some(event) = (!pending.is_empty()).then(|| pending.remove(0)) {
                    after = event.position.unwrap_or(after);
                    let sse = SseEvent::default()
                        .id(after.to_string())
                        .event(event.event_type.clone())
                        .data(event.to_cloudevent().to_string());
                    return Some((Ok(sse), (state, caller, types, after, published, pending)));
                }
                let read = async {
                    let mut tx = caller.begin(&state).await?;
                    Ok::<_, Error>(outbox::published_after(&mut tx, after, &types, STREAM_BATCH).await?)
                };
                match read.await {
                    Ok(events) if !events.is_empty() => pending = events,
                    Ok(_) => {
                        let mut stopping = state.stopping.subscribe();
                        tokio::select! {
                            _ = tokio::time::timeout(STREAM_POLL, published.changed()) => {}
                            _ = stopping.wait_for(|stopping| *stopping) => {}
                            () = tokio::time::sleep_until(expires) => {}
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "reading the live stream failed; retrying");
                        tokio::time::sleep(STREAM_POLL).await;
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// When a stream opened by `caller` must end: at its token's `exp` plus the leeway the verifier
/// grants, the moment the same token would no longer be let in. A token without `exp` (none the
/// verifier accepts) ends it at once.
fn token_deadline(caller: &Caller, leeway: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    let Some(exp) = caller.identity.expires_at else {
        return now;
    };
    let now_unix = time::OffsetDateTime::now_utc().unix_timestamp();
    let left = exp.saturating_add(leeway.as_secs() as i64).saturating_sub(now_unix).max(0);
    // Bounded so that the addition cannot overflow an Instant.
    now + Duration::from_secs(left.min(i64::from(u32::MAX)) as u64)
}

/// An event another system sends: CloudEvents 1.0 JSON of a type this server consumes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub struct InboundEvent {
    /// "1.0".
    #[schema(pattern = r"^1\.0$")]
    specversion: String,
    /// Unique within `source`: a resent event (same source and id) is accepted once. Not blank.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    id: String,
    /// A URI reference (RFC 3986), e.g. `crm.lead-management` or `urn:freshplan:mail`: it becomes
    /// the CloudEvent's `source`.
    #[schema(
        format = "uri-reference",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    source: String,
    /// `lead.converted` or `email.bounce`.
    #[serde(rename = "type")]
    #[schema(pattern = r"^(lead\.converted|email\.bounce)$")]
    event_type: String,
    #[serde(default)]
    subject: Option<String>,
    /// `application/json` (parameters may follow).
    #[serde(default)]
    #[schema(pattern = "^application/json")]
    datacontenttype: Option<String>,
    /// Validated against the type's schema (`GET` the `dataschema` of the type).
    #[schema(value_type = Object)]
    data: Value,
    /// Other CloudEvents attributes and extensions are accepted and not kept.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    _extensions: serde_json::Map<String, Value>,
}

/// A CloudEvent's `source` is a URI reference (CloudEvents 1.0, section 3.1.1); the same check as
/// the JSON Schema format, so that what is accepted here is what the envelope's schema accepts.
static URI_REFERENCE: LazyLock<Option<jsonschema::Validator>> = LazyLock::new(|| {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&serde_json::json!({"type": "string", "format": "uri-reference"}))
        .ok()
});

fn is_uri_reference(text: &str) -> bool {
    URI_REFERENCE.as_ref().is_some_and(|v| v.is_valid(&Value::String(text.to_owned())))
}

/// The inbound types, and the member of their data that names the customer.
const INBOUND: [(EventType, &str); 2] =
    [(EventType::LeadConverted, "customerId"), (EventType::EmailBounce, "customerId")];

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundAccepted {
    /// The id the event has in this server's log.
    id: Option<Uuid>,
    /// False when this source and id were accepted before (nothing is done twice).
    accepted: bool,
}

/// Accept an event from another system for the automations (`lead.converted`: a sample request;
/// `email.bounce`: contactability). The caller must be allowed to change the customer the event
/// names. 202 when accepted, 200 when the same source and id were accepted before.
#[utoipa::path(post, path = "/events/inbound", tag = "events", request_body = InboundEvent, responses(
    (status = 202, description = "Accepted; the automations will act on it", body = InboundAccepted),
    (status = 200, description = "Accepted before; nothing more happens", body = InboundAccepted),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "The customer is outside the customers you may change", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Not a CloudEvent of an inbound type, or data that breaks its schema (named by pointer)",
        body = Problem, content_type = "application/problem+json"),
))]
async fn inbound(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(event): AppJson<InboundEvent>,
) -> Result<(StatusCode, Json<InboundAccepted>), Error> {
    let mut errors = Vec::new();
    if event.specversion != "1.0" {
        errors.push(FieldError::new("/specversion", "must be \"1.0\""));
    }
    for (pointer, value) in [("/id", &event.id), ("/source", &event.source)] {
        if value.trim().is_empty() || value.chars().count() > 255 {
            errors.push(FieldError::new(pointer, "1 to 255 characters"));
        }
    }
    if !is_uri_reference(&event.source) {
        errors.push(FieldError::new("/source", "a URI reference (RFC 3986), e.g. crm.lead-management"));
    }
    if event.datacontenttype.as_deref().is_some_and(|t| !t.starts_with("application/json")) {
        errors.push(FieldError::new("/datacontenttype", "must be application/json"));
    }
    let kind = INBOUND.iter().find(|(t, _)| t.name() == event.event_type);
    if kind.is_none() {
        let known: Vec<&str> = INBOUND.iter().map(|(t, _)| t.name()).collect();
        errors.push(FieldError::new("/type", format!("must be one of {}", known.join(", "))));
    }
    if !errors.is_empty() {
        return Err(Error::Unprocessable(errors));
    }
    let (event_type, customer_member) = kind.copied().ok_or_else(|| anyhow::anyhow!("checked above"))?;
    event_type.validate(&event.data).map_err(|problems| {
        Error::Unprocessable(problems.into_iter().map(|p| FieldError::new("/data", p)).collect())
    })?;
    let schema: Value = serde_json::from_str(event_type.schema_source()).map_err(anyhow::Error::from)?;
    let mut dates = Vec::new();
    crate::domain::fields::insane_dates(&schema, &event.data, "/data", &mut dates);
    if !dates.is_empty() {
        return Err(Error::Unprocessable(dates));
    }
    let customer: Uuid =
        event.data[customer_member].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
            Error::Unprocessable(vec![FieldError::new(format!("/data/{customer_member}"), "a customer id")])
        })?;
    let mut tx = caller.begin(&state).await?;
    let customer = named_for_write(&mut tx, customer).await.map_err(|e| match e {
        Error::Unprocessable(_) => Error::Unprocessable(vec![FieldError::new(
            format!("/data/{customer_member}"),
            "no such customer",
        )]),
        other => other,
    })?;
    let new = NewEvent {
        event_type,
        subject: event.subject.clone().unwrap_or_else(|| customer.id.to_string()),
        territory: Some(customer.territory.clone()),
        customer: Some(customer.id),
        data: event.data,
    };
    let enqueued = outbox::enqueue_inbound(&mut tx, &caller.origin, &event.source, &event.id, new).await?;
    tx.commit().await?;
    Ok(match enqueued {
        Some(e) => (StatusCode::ACCEPTED, Json(InboundAccepted { id: Some(e.id), accepted: true })),
        None => (StatusCode::OK, Json(InboundAccepted { id: None, accepted: false })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_are_checked_against_the_known_ones() {
        let mut errors = Vec::new();
        assert_eq!(
            types(Some("sample.requested, activity.created"), &mut errors),
            ["sample.requested", "activity.created"]
        );
        assert!(errors.is_empty());
        types(Some("sample.lost"), &mut errors);
        assert_eq!(errors[0].parameter.as_deref(), Some("types"));
        assert!(types(None, &mut Vec::new()).is_empty());
    }

    #[test]
    fn an_inbound_source_is_a_uri_reference() {
        for good in ["crm.lead-management", "urn:freshplan:mail", "https://mail.example/bounces", "/mail"] {
            assert!(is_uri_reference(good), "{good}");
        }
        for bad in ["two words", "\u{7}bell", "a\\b", "%zz"] {
            assert!(!is_uri_reference(bad), "{bad}");
        }
    }

    #[test]
    fn the_inbound_types_have_schemas_naming_the_customer() {
        for (t, member) in INBOUND {
            let schema: Value = serde_json::from_str(t.schema_source()).unwrap();
            assert!(schema["required"].as_array().unwrap().contains(&json!(member)), "{t}");
        }
    }
}
