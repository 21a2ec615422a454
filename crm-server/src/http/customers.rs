//! `/customers`: accounts (chains, their locations, single businesses), and search over the hot
//! projection.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::actions;
use crate::auth::UserRole;
use crate::db::customers;
use crate::db::search::{self, After, CustomerFilter, HotRow, Sort};
use crate::domain::customer::{CoveragePolicy, Customer, CustomerInput, is_territory};
use crate::domain::sample::SampleStatus;
use crate::domain::{cursor, dates};
use crate::error::{Error, FieldError, Problem};
use crate::http::caller::Caller;
use crate::http::extract::{AppJson, AppPath, AppQuery, merged};
use crate::http::idempotency::{Idempotency, OptionalKey, Reply};
use crate::http::paging;
use crate::http::preconditions::{IfMatch, Tagged};
use crate::outbox::{self, EventType, NewEvent};
use crate::state::AppState;

pub fn queries() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers))
        .routes(routes!(get_customer))
        .routes(routes!(list_locations))
}

pub fn commands() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_customer)).routes(routes!(patch_customer))
}

pub fn not_found(id: Uuid) -> Error {
    Error::NotFound(format!("no customer {id}"))
}

/// The customer a request body names at `/customerId`, which the caller is to change: a 422 when
/// there is none the caller can see, a 403 when they may only read it.
pub async fn named_for_write(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
) -> Result<customers::CustomerRow, Error> {
    let customer = customers::find(&mut *conn, id)
        .await?
        .ok_or_else(|| Error::Unprocessable(vec![FieldError::new("/customerId", "no such customer")]))?;
    if !crate::db::fields::writable(conn, id).await? {
        return Err(Error::Forbidden(format!("customer {id} is outside the customers you may change")));
    }
    Ok(customer)
}

/// Who may assign customers to reps and share chains (the seeds: team leads may reassign).
const ASSIGNERS: &[UserRole] = &[UserRole::TeamLead, UserRole::ChainManager, UserRole::Admin];

fn may_assign(caller: &Caller) -> bool {
    ASSIGNERS.iter().any(|r| caller.has(*r))
}

/// Create a customer: a single business, a chain (`isChain`), or a location of a chain
/// (`parentAccountId`). Emits `customer.created`.
#[utoipa::path(post, path = "/customers", tag = "customers", params(OptionalKey), request_body = CustomerInput, responses(
    (status = 409, description = "A request with the same Idempotency-Key is still in flight", body = Problem,
        content_type = "application/problem+json"),
    (status = 201, description = "Created; `Location` and `ETag` headers", body = Customer),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid members, each named by pointer (e.g. a parent that is not a chain)",
        body = Problem, content_type = "application/problem+json"),
))]
async fn create_customer(
    State(state): State<AppState>,
    caller: Caller,
    idempotency: Idempotency,
    AppJson(input): AppJson<CustomerInput>,
) -> Result<Reply, Error> {
    let mut draft = input.validate().map_err(Error::Unprocessable)?;
    match &draft.owner_subject {
        // A sales rep's new customer is theirs.
        None if caller.has(UserRole::SalesRep) && !may_assign(&caller) => {
            draft.owner_subject = Some(caller.identity.subject.clone())
        }
        Some(owner) if owner != &caller.identity.subject => {
            caller.require(ASSIGNERS, "assigning a customer to someone else")?
        }
        _ => {}
    }
    if draft.coverage_policy != CoveragePolicy::Own {
        caller.require(ASSIGNERS, "sharing a chain across its reps")?;
    }
    let mut tx = caller.begin(&state).await?;
    if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
        return Ok(replay);
    }
    if let Some(parent) = draft.parent_account_id {
        customers::check_parent(&mut tx, parent).await?;
    }
    let row = customers::insert(&mut tx, Uuid::now_v7(), &draft).await?;
    let customer = row.to_api()?;
    let event = NewEvent {
        event_type: EventType::CustomerCreated,
        subject: row.id.to_string(),
        territory: Some(row.territory.clone()),
        customer: Some(row.id),
        data: json!({ "customer": customer }),
    };
    outbox::enqueue(&mut tx, &caller.origin, event).await?;
    let headers = [Reply::location(format!("/customers/{}", row.id))?, Tagged::Customer.header(row.version)];
    let reply = Reply::json(StatusCode::CREATED, headers, &customer)?;
    idempotency.commit(tx, &caller, reply).await
}

/// One customer, with its `ETag` for conditional writes.
#[utoipa::path(get, path = "/customers/{id}", tag = "customers", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The customer", body = Customer),
    (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
))]
async fn get_customer(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<impl IntoResponse, Error> {
    let mut tx = caller.begin(&state).await?;
    let row = customers::find(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    Ok(([Tagged::Customer.header(row.version)], Json(row.to_api()?)))
}

/// Change a customer with a JSON merge patch (RFC 7396) of its writable members; `null` removes
/// an optional member. Needs `If-Match` (unless the server is configured otherwise). Emits
/// `customer.updated`, and `customer.contactability.changed` when contactability changed.
#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", params(("id" = Uuid, Path), OptionalKey,
    ("If-Match" = String, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "The ETag from GET /customers/{id}")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "Members of CustomerInput to change"),
    responses(
        (status = 409, description = "A request with the same Idempotency-Key is still in flight", body = Problem,
            content_type = "application/problem+json"),
        (status = 200, description = "The changed customer, with its new ETag", body = Customer),
        (status = 400, description = "Malformed JSON or If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The customer changed since the ETag was read; the response carries the current ETag",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The patched customer breaks a rule", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is required", body = Problem, content_type = "application/problem+json"),
    ))]
async fn patch_customer(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
    if_match: IfMatch,
    idempotency: Idempotency,
    AppJson(patch): AppJson<serde_json::Value>,
) -> Result<Reply, Error> {
    let expected = if_match.expected(Tagged::Customer, state.http.require_if_match)?;
    let mut tx = caller.begin(&state).await?;
    if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
        return Ok(replay);
    }
    let Some(row) = customers::lock(&mut tx, id).await? else {
        // The lock needs write access: a customer the caller can only read is a 403, not a 404.
        return Err(match customers::find(&mut tx, id).await? {
            Some(_) => Error::Forbidden(format!("customer {id} is outside the customers you may change")),
            None => not_found(id),
        });
    };
    expected.check(Tagged::Customer, row.version)?;
    let current = row.draft()?;
    let draft = merged(&current.to_input(), &patch)?.validate().map_err(Error::Unprocessable)?;
    let changed = current.changed_members(&draft);
    if changed.is_empty() {
        return Reply::json(StatusCode::OK, [Tagged::Customer.header(row.version)], &row.to_api()?);
    }
    if changed.contains(&"ownerSubject") {
        caller.require(ASSIGNERS, "reassigning a customer")?;
    }
    if changed.contains(&"coveragePolicy") {
        caller.require(ASSIGNERS, "changing a chain's coverage policy")?;
    }
    if draft.parent_account_id != current.parent_account_id
        && let Some(parent) = draft.parent_account_id
    {
        customers::check_parent(&mut tx, parent).await?;
    }
    if current.is_chain && !draft.is_chain {
        let locations = customers::count_locations(&mut tx, id).await?;
        if locations > 0 {
            return Err(Error::Unprocessable(vec![FieldError::new(
                "/isChain",
                format!("the chain still has {locations} location(s); move them first"),
            )]));
        }
    }
    let updated = actions::update_customer(&mut tx, &caller.origin, &row, &draft)
        .await?
        .ok_or_else(|| anyhow::anyhow!("customer {id} changed members but nothing was written"))?;
    let customer = updated.to_api()?;
    let reply = Reply::json(StatusCode::OK, [Tagged::Customer.header(updated.version)], &customer)?;
    idempotency.commit(tx, &caller, reply).await
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RoiBucket {
    Low,
    Mid,
    High,
}

impl RoiBucket {
    fn as_str(self) -> &'static str {
        match self {
            RoiBucket::Low => "LOW",
            RoiBucket::Mid => "MID",
            RoiBucket::High => "HIGH",
        }
    }
}

/// The query of `GET /customers`. Unknown parameters are refused, so a typo is a 400 rather than
/// a silently unfiltered list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Status of the newest sample.
    #[param(inline)]
    sample_status: Option<SampleStatus>,
    #[param(inline)]
    roi_bucket: Option<RoiBucket>,
    /// With `season_to`: customers whose seasonal menu window overlaps `[season_from, season_to]`
    /// (either end may be left open).
    #[param(value_type = Option<String>, format = Date)]
    season_from: Option<Date>,
    #[param(value_type = Option<String>, format = Date)]
    season_to: Option<Date>,
    /// Supplier contract renews before this date.
    #[param(value_type = Option<String>, format = Date)]
    renewal_before: Option<Date>,
    exclusivity: Option<bool>,
    #[param(minimum = 0, maximum = 2147483647)]
    decision_maker_count_min: Option<i32>,
    /// Two or three capital letters.
    #[param(pattern = "^[A-Z]{2,3}$")]
    territory: Option<String>,
    /// Name prefix, case-insensitive; not blank.
    #[param(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    name: Option<String>,
    parent_account_id: Option<Uuid>,
    #[param(inline)]
    sort: Option<Sort>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page, as it was given (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]{1,1024}$")]
    cursor: Option<String>,
}

impl ListQuery {
    /// The filter, sort, page size and start the query asks for; every bad parameter is a 400
    /// naming it.
    fn parse(self) -> Result<(CustomerFilter, Sort, i64, Option<After>), Error> {
        let mut errors = Vec::new();
        if let Some(territory) = &self.territory
            && !is_territory(territory)
        {
            errors.push(FieldError::parameter("territory", "two or three capital letters, e.g. BY"));
        }
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > 100)
        {
            errors.push(FieldError::parameter("name", "a name prefix of 1 to 100 characters"));
        }
        if let (Some(from), Some(to)) = (self.season_from, self.season_to)
            && from > to
        {
            errors.push(FieldError::parameter("season_to", "season_to is before season_from"));
        }
        errors.extend(dates::check_date_parameter("season_from", self.season_from));
        errors.extend(dates::check_date_parameter("season_to", self.season_to));
        errors.extend(dates::check_date_parameter("renewal_before", self.renewal_before));
        if self.decision_maker_count_min.is_some_and(|n| n < 0) {
            errors.push(FieldError::parameter("decision_maker_count_min", "must not be negative"));
        }
        let limit = paging::limit(self.limit, &mut errors);
        let filter = CustomerFilter {
            sample_status: self.sample_status.map(|s| s.as_str().to_owned()),
            roi_bucket: self.roi_bucket.map(|b| b.as_str().to_owned()),
            season: (self.season_from.is_some() || self.season_to.is_some())
                .then_some((self.season_from, self.season_to)),
            renewal_before: self.renewal_before,
            exclusivity: self.exclusivity,
            decision_maker_count_min: self.decision_maker_count_min,
            territory: self.territory,
            name_prefix: self.name.map(|n| n.trim().to_owned()),
            parent_account_id: self.parent_account_id,
        };
        let sort = self.sort.unwrap_or(Sort::Name);
        let after = paging::after(
            self.cursor.as_deref(),
            &list_name(sort),
            &filter.fingerprint(),
            After::from_json,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(Error::BadRequest { detail: "invalid query parameters".into(), errors });
        }
        Ok((filter, sort, limit, after))
    }
}

fn list_name(sort: Sort) -> String {
    format!("customers:{}", sort.name())
}

/// The hot fields of a customer, as the list shows them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HotFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    sample_last_event_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roi_bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roi_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision_maker_count: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    has_exec_alignment: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    season_start: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    season_end: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    renewal_date: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exclusivity: Option<bool>,
}

impl From<HotRow> for HotFields {
    fn from(row: HotRow) -> Self {
        HotFields {
            sample_status: row.sample_status,
            sample_last_event_at: row.sample_last_event_at,
            roi_bucket: row.roi_bucket,
            roi_value: row.roi_value,
            decision_maker_count: row.decision_maker_count,
            has_exec_alignment: row.has_exec_alignment,
            season_start: row.season_start,
            season_end: row.season_end,
            renewal_date: row.renewal_date,
            exclusivity: row.exclusivity,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerListItem {
    #[serde(flatten)]
    customer: Customer,
    hot: HotFields,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerPage {
    items: Vec<CustomerListItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Search customers by hot fields, territory and name, in pages (keyset cursor).
#[utoipa::path(get, path = "/customers", tag = "customers", params(ListQuery), responses(
    (status = 200, description = "A page of customers", body = CustomerPage),
    (status = 400, description = "A bad parameter (named in `errors[].parameter`), including a tampered cursor",
        body = Problem, content_type = "application/problem+json"),
))]
async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<CustomerPage>, Error> {
    let (filter, sort, limit, after) = query.parse()?;
    page(&state, &caller, filter, sort, limit, after).await
}

async fn page(
    state: &AppState,
    caller: &Caller,
    filter: CustomerFilter,
    sort: Sort,
    limit: i64,
    after: Option<After>,
) -> Result<Json<CustomerPage>, Error> {
    let mut tx = caller.begin(state).await?;
    let page = search::search(&mut tx, &filter, sort, after.as_ref(), limit).await?;
    let next_cursor =
        page.next.map(|next| cursor::encode(&list_name(sort), &filter.fingerprint(), next.to_json()));
    let items = page
        .rows
        .into_iter()
        .map(|row| Ok(CustomerListItem { customer: row.customer.to_api()?, hot: row.hot.into() }))
        .collect::<Result<_, Error>>()?;
    Ok(Json(CustomerPage { items, next_cursor }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LocationsQuery {
    #[param(inline)]
    sort: Option<Sort>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page, as it was given (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]{1,1024}$")]
    cursor: Option<String>,
}

/// The locations of a chain, in pages; the same as `GET /customers?parent_account_id={id}`.
#[utoipa::path(get, path = "/customers/{id}/locations", tag = "customers", params(("id" = Uuid, Path), LocationsQuery),
    responses(
        (status = 200, description = "A page of locations", body = CustomerPage),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_locations(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<LocationsQuery>,
) -> Result<Json<CustomerPage>, Error> {
    let mut tx = caller.begin(&state).await?;
    customers::find(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    drop(tx);
    let query = ListQuery {
        parent_account_id: Some(id),
        sort: query.sort,
        limit: query.limit,
        cursor: query.cursor,
        ..ListQuery::default()
    };
    let (filter, sort, limit, after) = query.parse()?;
    page(&state, &caller, filter, sort, limit, after).await
}
