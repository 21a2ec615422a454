//! Contacts of customers and their roles there (head chef, buyer, managing director, owner). A
//! contact may hold roles at several accounts, e.g. the buyer of a whole chain.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::db::{contacts, customers};
use crate::domain::customer::{Contact, ContactInput, ContactRole, validate_roles};
use crate::error::{Error, Problem};
use crate::http::caller::Caller;
use crate::http::customers::not_found as customer_not_found;
use crate::http::extract::{AppJson, AppPath, merged};
use crate::http::idempotency::{Idempotency, OptionalKey, Reply};
use crate::http::preconditions::{IfMatch, Tagged};
use crate::outbox::{self, EventType, NewEvent};
use crate::state::AppState;

pub fn queries() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_contacts)).routes(routes!(get_contact))
}

pub fn commands() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_contact))
        .routes(routes!(patch_contact))
        .routes(routes!(set_roles, unlink_contact))
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound(format!("no contact {id}"))
}

/// A new contact at an account, with its roles there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewContact {
    /// Not blank, no control characters; stored trimmed.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    first_name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    last_name: String,
    /// One `@`, a dot inside the domain, no spaces. Blank means none.
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = r"^[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^@\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^@\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.[^@\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)[^@.\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
    )]
    email: Option<String>,
    /// Digits, spaces and `+ - / ( )`. Blank means none.
    #[serde(default)]
    #[schema(
        max_length = 40,
        pattern = r"^[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9 +/()-]*[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    phone: Option<String>,
    /// The contact's roles at this customer: at least one, each once.
    #[schema(min_items = 1)]
    roles: Vec<ContactRole>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// At least one, each once.
    #[schema(min_items = 1)]
    roles: Vec<ContactRole>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactList {
    items: Vec<Contact>,
}

/// Add a contact to a customer. Emits `contact.created`.
#[utoipa::path(post, path = "/customers/{id}/contacts", tag = "contacts", params(("id" = Uuid, Path), OptionalKey),
    request_body = NewContact, responses(
        (status = 409, description = "A request with the same Idempotency-Key is still in flight", body = Problem,
            content_type = "application/problem+json"),
        (status = 201, description = "Created; `Location` and `ETag` headers", body = Contact),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid members", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_contact(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(account): AppPath<Uuid>,
    idempotency: Idempotency,
    AppJson(body): AppJson<NewContact>,
) -> Result<Reply, Error> {
    let input = ContactInput {
        first_name: body.first_name,
        last_name: body.last_name,
        email: body.email,
        phone: body.phone,
    };
    let (draft, roles) = match (input.validate(), validate_roles("/roles", &body.roles)) {
        (Ok(draft), Ok(roles)) => (draft, roles),
        (draft, roles) => {
            let mut errors = draft.err().unwrap_or_default();
            errors.extend(roles.err());
            return Err(Error::Unprocessable(errors));
        }
    };
    let mut tx = caller.begin(&state).await?;
    if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
        return Ok(replay);
    }
    let customer = customers::find(&mut tx, account).await?.ok_or_else(|| customer_not_found(account))?;
    let id = Uuid::now_v7();
    contacts::insert(&mut tx, id, &draft).await?;
    contacts::set_roles(&mut tx, id, account, &roles).await?;
    let row = contacts::find(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("contact {id} vanished"))?;
    let contact = row.to_api()?;
    let event = NewEvent {
        event_type: EventType::ContactCreated,
        subject: id.to_string(),
        territory: Some(customer.territory),
        customer: Some(customer.id),
        data: json!({ "contact": contact }),
    };
    outbox::enqueue(&mut tx, &caller.origin, event).await?;
    let headers = [Reply::location(format!("/contacts/{id}"))?, Tagged::Contact.header(row.version)];
    idempotency.commit(tx, &caller, Reply::json(StatusCode::CREATED, headers, &contact)?).await
}

/// The contacts of a customer, each with its roles at this customer.
#[utoipa::path(get, path = "/customers/{id}/contacts", tag = "contacts", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The contacts", body = ContactList),
    (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
))]
async fn list_contacts(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(account): AppPath<Uuid>,
) -> Result<Json<ContactList>, Error> {
    let mut conn = caller.begin(&state).await?;
    customers::find(&mut conn, account).await?.ok_or_else(|| customer_not_found(account))?;
    let rows = contacts::of_account(&mut conn, account).await?;
    let items = rows.iter().map(|row| row.to_api()).collect::<Result<_, _>>()?;
    Ok(Json(ContactList { items }))
}

/// One contact with its roles at every account, and its `ETag`.
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The contact", body = Contact),
    (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
))]
async fn get_contact(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<impl IntoResponse, Error> {
    let mut conn = caller.begin(&state).await?;
    let row = contacts::find(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
    Ok(([Tagged::Contact.header(row.version)], Json(row.to_api()?)))
}

/// Change a contact's own members with a JSON merge patch; needs `If-Match`. Emits
/// `contact.updated`.
#[utoipa::path(patch, path = "/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path), OptionalKey,
    ("If-Match" = String, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "The ETag from GET /contacts/{id}")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "Members of ContactInput to change"),
    responses(
        (status = 409, description = "A request with the same Idempotency-Key is still in flight", body = Problem,
            content_type = "application/problem+json"),
        (status = 200, description = "The changed contact", body = Contact),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the ETag was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid members", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is required", body = Problem, content_type = "application/problem+json"),
    ))]
async fn patch_contact(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<Uuid>,
    if_match: IfMatch,
    idempotency: Idempotency,
    AppJson(patch): AppJson<serde_json::Value>,
) -> Result<Reply, Error> {
    let expected = if_match.expected(Tagged::Contact, state.http.require_if_match)?;
    let mut tx = caller.begin(&state).await?;
    if let Some(replay) = idempotency.replay(&mut tx, &caller).await? {
        return Ok(replay);
    }
    let Some(version) = contacts::lock(&mut tx, id).await? else {
        return Err(match contacts::find(&mut tx, id).await? {
            Some(_) => Error::Forbidden(format!("contact {id} is outside the contacts you may change")),
            None => not_found(id),
        });
    };
    expected.check(Tagged::Contact, version)?;
    let row = contacts::find(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    let current = row.draft();
    let draft = merged(&current.to_input(), &patch)?.validate().map_err(Error::Unprocessable)?;
    let changed: Vec<&str> = [
        ("firstName", current.first_name != draft.first_name),
        ("lastName", current.last_name != draft.last_name),
        ("email", current.email != draft.email),
        ("phone", current.phone != draft.phone),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    if changed.is_empty() {
        return Reply::json(StatusCode::OK, [Tagged::Contact.header(row.version)], &row.to_api()?);
    }
    contacts::update(&mut tx, id, &draft).await?;
    let row = contacts::find(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    let contact = row.to_api()?;
    let event = NewEvent {
        event_type: EventType::ContactUpdated,
        subject: id.to_string(),
        territory: None,
        customer: None,
        data: json!({ "contactId": id, "changed": changed, "contact": contact }),
    };
    outbox::enqueue(&mut tx, &caller.origin, event).await?;
    idempotency
        .commit(tx, &caller, Reply::json(StatusCode::OK, [Tagged::Contact.header(row.version)], &contact)?)
        .await
}

/// Set a contact's roles at a customer, linking an existing contact to another account (e.g. a
/// chain's buyer at a new location). Emits `contact.roles.changed`.
#[utoipa::path(put, path = "/customers/{id}/contacts/{contact_id}/roles", tag = "contacts",
    params(("id" = Uuid, Path), ("contact_id" = Uuid, Path)), request_body = Roles, responses(
        (status = 200, description = "The contact with its roles", body = Contact),
        (status = 404, description = "No such customer or contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No roles, or a role twice", body = Problem, content_type = "application/problem+json"),
    ))]
async fn set_roles(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((account, id)): AppPath<(Uuid, Uuid)>,
    AppJson(body): AppJson<Roles>,
) -> Result<Json<Contact>, Error> {
    let roles = validate_roles("/roles", &body.roles).map_err(|e| Error::Unprocessable(vec![e]))?;
    change_roles(&state, &caller, account, id, &roles).await.map(Json)
}

/// Remove a contact from a customer (all its roles there). Emits `contact.roles.changed` with no
/// roles.
#[utoipa::path(delete, path = "/customers/{id}/contacts/{contact_id}/roles", tag = "contacts",
    params(("id" = Uuid, Path), ("contact_id" = Uuid, Path)), responses(
        (status = 200, description = "The contact with its remaining roles", body = Contact),
        (status = 404, description = "No such customer or contact", body = Problem, content_type = "application/problem+json"),
    ))]
async fn unlink_contact(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((account, id)): AppPath<(Uuid, Uuid)>,
) -> Result<Json<Contact>, Error> {
    change_roles(&state, &caller, account, id, &[]).await.map(Json)
}

async fn change_roles(
    state: &AppState,
    caller: &Caller,
    account: Uuid,
    id: Uuid,
    roles: &[ContactRole],
) -> Result<Contact, Error> {
    let mut tx = caller.begin(state).await?;
    let customer = customers::find(&mut tx, account).await?.ok_or_else(|| customer_not_found(account))?;
    // Linking needs write access to the account (the policies check the roles written), not to
    // the contact's other accounts.
    contacts::find(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    let previous = contacts::set_roles(&mut tx, id, account, roles).await?;
    let contact = contacts::find(&mut tx, id).await?.ok_or_else(|| not_found(id))?.to_api()?;
    if previous != roles {
        let event = NewEvent {
            event_type: EventType::ContactRolesChanged,
            subject: id.to_string(),
            territory: Some(customer.territory),
            customer: Some(account),
            data: json!({ "contactId": id, "accountId": account, "roles": roles, "previousRoles": previous }),
        };
        outbox::enqueue(&mut tx, &caller.origin, event).await?;
        tx.commit().await?;
    }
    Ok(contact)
}
