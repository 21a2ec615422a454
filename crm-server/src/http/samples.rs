//! `/samples`: Cook&Fresh product samples and their lifecycle; `/products` and `/sample-kits`,
//! the catalog they draw on.

use std::collections::BTreeMap;

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

use crate::actions::{self, SampleRequest};
use crate::db::customers;
use crate::db::samples::{self, SampleFilter, SampleRow, StatusChange};
use crate::domain::berlin;
use crate::domain::calendar::{self, State as GermanState};
use crate::domain::sample::{self, FOLLOWUP_BUSINESS_DAYS, Items, NewSample, SampleItem, SampleStatus};
use crate::error::{Error, FieldError, Problem};
use crate::http::caller::Caller;
use crate::http::customers::named_for_write;
use crate::http::extract::{AppJson, AppPath, AppQuery};
use crate::http::idempotency::{Idempotency, OptionalKey, Reply, RequiredKey};
use crate::http::paging;
use crate::http::preconditions::{IfMatch, Tagged};
use crate::outbox::{self, EventType, NewEvent, rfc3339};
use crate::state::AppState;

pub fn queries() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_samples))
        .routes(routes!(get_sample))
        .routes(routes!(list_products))
        .routes(routes!(list_kits))
}

pub fn commands() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_sample)).routes(routes!(change_status))
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound(format!("no sample {id}"))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    id: Uuid,
    customer_id: Uuid,
    /// The kit the items came from, if any.
    kit_id: Option<String>,
    status: SampleStatus,
    items: Vec<SampleItemView>,
    delivery_date: Date,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
    /// When the latest status change happened.
    #[serde(with = "time::serde::rfc3339")]
    last_event_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    delivered_at: Option<OffsetDateTime>,
    /// Once delivered: product-test feedback is due by the end of this day (5 business days of
    /// the customer's state).
    #[serde(skip_serializing_if = "Option::is_none")]
    followup_due: Option<Date>,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    followup_done_at: Option<OffsetDateTime>,
    /// The states this sample may move to next.
    allowed_transitions: Vec<SampleStatus>,
    version: i64,
    created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    /// Every status change, oldest first (only in `GET /samples/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<StatusChangeEntry>>,
}

/// An item of a sample or a kit, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SampleItemView {
    #[schema(example = "CF-3001")]
    sku: String,
    quantity: i32,
}

impl From<SampleItem> for SampleItemView {
    fn from(item: SampleItem) -> Self {
        SampleItemView { sku: item.sku, quantity: item.quantity }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChangeEntry {
    old_status: Option<SampleStatus>,
    new_status: SampleStatus,
    #[serde(with = "time::serde::rfc3339")]
    event_at: OffsetDateTime,
    actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
}

fn to_api(row: SampleRow, items: Vec<SampleItem>) -> Result<Sample, Error> {
    let status = row.status()?;
    Ok(Sample {
        id: row.id,
        customer_id: row.customer_id,
        kit_id: row.kit_id,
        status,
        items: items.into_iter().map(SampleItemView::from).collect(),
        delivery_date: row.delivery_date,
        delivery_address: row.delivery_address,
        contact_email: row.contact_email,
        notes: row.notes,
        last_event_at: row.last_event_at,
        delivered_at: row.delivered_at,
        followup_due: row.followup_due,
        followup_done_at: row.followup_done_at,
        allowed_transitions: status.next().to_vec(),
        version: row.version,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        history: None,
    })
}

/// Rows with their items, in the rows' order.
async fn with_items(conn: &mut sqlx::PgConnection, rows: Vec<SampleRow>) -> Result<Vec<Sample>, Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut items: BTreeMap<Uuid, Vec<SampleItem>> = BTreeMap::new();
    for (id, item) in samples::items(conn, &ids).await? {
        items.entry(id).or_default().push(item);
    }
    rows.into_iter()
        .map(|row| {
            let own = items.remove(&row.id).unwrap_or_default();
            to_api(row, own)
        })
        .collect()
}

/// Request a product sample for a customer. Without items and kit, the default kit "Cook&Fresh
/// Basis 5er" is sent. Requires `Idempotency-Key`. Emits `sample.requested`.
#[utoipa::path(post, path = "/samples", tag = "samples", params(RequiredKey), request_body = NewSample, responses(
    (status = 201, description = "Requested; `Location` and `ETag` headers", body = Sample),
    (status = 400, description = "Malformed JSON, or no or a malformed Idempotency-Key", body = Problem,
        content_type = "application/problem+json"),
    (status = 403, description = "The customer is outside the customers you may change", body = Problem,
        content_type = "application/problem+json"),
    (status = 409, description = "A request with the same Idempotency-Key is still in flight", body = Problem,
        content_type = "application/problem+json"),
    (status = 422, description = "Invalid members (an unknown customer, kit or SKU, a past delivery date), each named by pointer; or the Idempotency-Key was used with another body",
        body = Problem, content_type = "application/problem+json"),
))]
async fn create_sample(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: Idempotency,
    AppJson(body): AppJson<NewSample>,
) -> Result<Reply, Error> {
    idempotency.require()?;
    let draft = body.validate(berlin::date(OffsetDateTime::now_utc())).map_err(Error::Unprocessable)?;
    let mut tx = caller.begin(&state).await?;
    if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
        return Ok(replay);
    }
    let customer = named_for_write(&mut tx, draft.customer_id).await?;
    let (kit_id, items) = match draft.items {
        Items::Listed(items) => (None, items),
        Items::Kit(kit) => {
            samples::kit_items(&mut tx, Some(&kit)).await?.map(|(id, items)| (Some(id), items)).ok_or_else(
                || Error::Unprocessable(vec![FieldError::new("/kitId", format!("no kit `{kit}`"))]),
            )?
        }
        Items::DefaultKit => samples::kit_items(&mut tx, None)
            .await?
            .map(|(id, items)| (Some(id), items))
            .ok_or_else(|| anyhow::anyhow!("the catalog has no default kit"))?,
    };
    let skus: Vec<String> = items.iter().map(|i| i.sku.clone()).collect();
    let unknown = samples::unknown_skus(&mut tx, &skus).await?;
    if !unknown.is_empty() {
        let errors = skus
            .iter()
            .enumerate()
            .filter(|(_, sku)| unknown.contains(sku))
            .map(|(i, sku)| {
                FieldError::new(format!("/items/{i}/sku"), format!("`{sku}` is not in the product catalog"))
            })
            .collect();
        return Err(Error::Unprocessable(errors));
    }
    let request = SampleRequest {
        kit_id: kit_id.as_deref(),
        items: &items,
        delivery_date: draft.delivery_date,
        delivery_address: draft.delivery_address.as_deref(),
        contact_email: draft.contact_email.as_deref(),
        notes: draft.notes.as_deref(),
        origin_event_id: None,
    };
    let row = actions::request_sample(&mut tx, &caller.origin, &customer, &request).await?;
    let headers = [Reply::location(format!("/samples/{}", row.id))?, Tagged::Sample.header(row.version)];
    let reply = Reply::json(StatusCode::CREATED, headers, &to_api(row, items)?)?;
    idempotency.commit(tx, &caller, reply).await
}

/// One sample with its items and status history.
#[utoipa::path(get, path = "/samples/{id}", tag = "samples", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The sample; its `ETag`", body = Sample),
    (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such sample", body = Problem, content_type = "application/problem+json"),
))]
async fn get_sample(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Reply, Error> {
    let mut tx = caller.begin(&state).await?;
    let row = samples::find(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    let version = row.version;
    let history = samples::history(&mut tx, id).await?;
    let mut sample = with_items(&mut tx, vec![row]).await?.remove(0);
    sample.history = Some(
        history
            .into_iter()
            .map(|h| {
                Ok(StatusChangeEntry {
                    old_status: h.old_status.as_deref().and_then(SampleStatus::parse),
                    new_status: SampleStatus::parse(&h.new_status)
                        .ok_or_else(|| anyhow::anyhow!("a history entry has status {}", h.new_status))?,
                    event_at: h.event_at,
                    actor: h.actor,
                    correlation_id: h.correlation_id,
                })
            })
            .collect::<Result<_, Error>>()?,
    );
    Reply::json(StatusCode::OK, [Tagged::Sample.header(version)], &sample)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    customer_id: Option<Uuid>,
    status: Option<SampleStatus>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page, as it was given (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]{1,1024}$")]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SamplePage {
    items: Vec<Sample>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Samples the caller may see, newest first, by customer and status.
#[utoipa::path(get, path = "/samples", tag = "samples", params(ListQuery), responses(
    (status = 200, description = "A page of samples", body = SamplePage),
    (status = 400, description = "A bad parameter, named in `errors[].parameter`", body = Problem,
        content_type = "application/problem+json"),
))]
async fn list_samples(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<SamplePage>, Error> {
    const LIST: &str = "samples";
    let filter = SampleFilter { customer: query.customer_id, status: query.status };
    let filters = format!("{:?}:{:?}", filter.customer, filter.status);
    let mut errors = Vec::new();
    let limit = paging::limit(query.limit, &mut errors);
    let before = paging::after(
        query.cursor.as_deref(),
        LIST,
        &filters,
        |v| v.as_str().and_then(|s| s.parse().ok()),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(Error::BadRequest { detail: "invalid query parameters".into(), errors });
    }
    let mut tx = caller.begin(&state).await?;
    let mut rows = samples::list(&mut tx, &filter, before, limit + 1).await?;
    let next_cursor = paging::next(&mut rows, limit, LIST, &filters, |row| json!(row.id));
    Ok(Json(SamplePage { items: with_items(&mut tx, rows).await?, next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusChangeRequest {
    new_status: SampleStatus,
    /// When it happened (default: now); not before the sample's previous change, not in the
    /// future.
    #[serde(default, with = "time::serde::rfc3339::option")]
    event_at: Option<OffsetDateTime>,
}

/// Move a sample along its lifecycle. A transition the lifecycle does not have is a 409 naming
/// the allowed ones. `If-Match` is honoured when given. Emits `sample.status.changed`; a
/// delivery starts the product-test follow-up SLA.
#[utoipa::path(patch, path = "/samples/{id}/status", tag = "samples", params(("id" = Uuid, Path), OptionalKey,
    ("If-Match" = Option<String>, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "The ETag from GET /samples/{id}")),
    request_body = StatusChangeRequest, responses(
        (status = 200, description = "Changed; the new `ETag`", body = Sample),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sample", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a transition of the lifecycle (`allowedTransitions` lists the ones there are), or a request with the same Idempotency-Key is in flight",
            body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The sample changed since the ETag was read", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A bad eventAt or status", body = Problem, content_type = "application/problem+json"),
    ))]
async fn change_status(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
    if_match: IfMatch,
    idempotency: Idempotency,
    AppJson(body): AppJson<StatusChangeRequest>,
) -> Result<Reply, Error> {
    let expected = if_match.expected(Tagged::Sample, false)?;
    let now = OffsetDateTime::now_utc();
    let mut tx = caller.begin(&state).await?;
    if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
        return Ok(replay);
    }
    let Some(current) = samples::lock(&mut tx, id).await? else {
        return Err(match samples::find(&mut tx, id).await? {
            Some(_) => Error::Forbidden(format!("sample {id} is outside the customers you may change")),
            None => not_found(id),
        });
    };
    expected.check(Tagged::Sample, current.version)?;
    let from = current.status()?;
    sample::transition(from, body.new_status).map_err(|e| Error::InvalidTransition {
        detail: e.to_string(),
        allowed: from.next().iter().map(|s| s.as_str()).collect(),
    })?;
    let event_at = body.event_at.unwrap_or(now);
    sample::check_event_at(event_at, current.last_event_at, now)
        .map_err(|e| Error::Unprocessable(vec![e]))?;
    let customer = customers::find(&mut tx, current.customer_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the customer of sample {id} is gone"))?;
    let followup_due = (body.new_status == SampleStatus::Delivered).then(|| {
        let state = customer.region.as_deref().and_then(GermanState::from_region);
        calendar::add_business_days(berlin::date(event_at), FOLLOWUP_BUSINESS_DAYS, state)
    });
    let actor = caller.audit_name();
    let change = StatusChange {
        to: body.new_status,
        event_at,
        followup_due,
        actor: &actor,
        correlation_id: caller.correlation_id(),
    };
    let row = samples::change_status(&mut tx, id, &change).await?;
    samples::project(&mut tx, &row).await?;
    let event = NewEvent {
        event_type: EventType::SampleStatusChanged,
        subject: id.to_string(),
        territory: Some(customer.territory),
        customer: Some(row.customer_id),
        data: json!({"sampleId": id, "customerId": row.customer_id, "oldStatus": from, "newStatus": body.new_status,
                     "eventAt": rfc3339(event_at)}),
    };
    outbox::enqueue(&mut tx, &caller.origin, event).await?;
    let version = row.version;
    let sample = with_items(&mut tx, vec![row]).await?.remove(0);
    idempotency
        .commit(tx, &caller, Reply::json(StatusCode::OK, [Tagged::Sample.header(version)], &sample)?)
        .await
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    #[schema(example = "CF-3001")]
    sku: String,
    name: String,
    pack_size: String,
    category: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    items: Vec<Product>,
}

/// The Cook&Fresh product catalog that samples draw on.
#[utoipa::path(get, path = "/products", tag = "samples", responses((status = 200, description = "Active products", body = ProductList)))]
async fn list_products(State(state): State<AppState>, caller: Caller) -> Result<Json<ProductList>, Error> {
    let mut tx = caller.begin(&state).await?;
    let items =
        sqlx::query_as("SELECT sku, name, pack_size, category FROM product WHERE active ORDER BY sku")
            .fetch_all(&mut *tx)
            .await?;
    Ok(Json(ProductList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Kit {
    id: String,
    name: String,
    is_default: bool,
    items: Vec<SampleItemView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KitList {
    items: Vec<Kit>,
}

/// Sample kits: fixed sets of items (`kitId` of `POST /samples`).
#[utoipa::path(get, path = "/sample-kits", tag = "samples", responses((status = 200, description = "The kits", body = KitList)))]
async fn list_kits(State(state): State<AppState>, caller: Caller) -> Result<Json<KitList>, Error> {
    let mut tx = caller.begin(&state).await?;
    let rows: Vec<(String, String, bool, Value)> = sqlx::query_as(
        "SELECT k.id, k.name, k.is_default,
                jsonb_agg(jsonb_build_object('sku', i.sku, 'quantity', i.quantity) ORDER BY i.sku)
           FROM sample_kit k JOIN sample_kit_item i ON i.kit_id = k.id GROUP BY k.id ORDER BY k.id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let items = rows
        .into_iter()
        .map(|(id, name, is_default, items)| {
            Ok(Kit {
                id,
                name,
                is_default,
                items: serde_json::from_value::<Vec<SampleItem>>(items)
                    .map_err(anyhow::Error::from)?
                    .into_iter()
                    .map(SampleItemView::from)
                    .collect(),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Json(KitList { items }))
}
