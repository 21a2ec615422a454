//! Write operations that several entry points share (HTTP handlers, the automations): each runs
//! in the caller's transaction, under the caller's scope, and writes its events there.

use serde_json::json;
use uuid::Uuid;

use crate::db::customers::{self, CustomerRow};
pub use crate::db::samples::SampleRequest;
use crate::db::samples::{self, NewSampleRow, SampleRow};
use crate::domain::customer::CustomerDraft;
use crate::error::Error;
use crate::outbox::{self, EventType, NewEvent, Origin};

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Requests a sample for `customer`: the sample with its items and history, the projection's
/// sample columns, and `sample.requested`.
pub async fn request_sample(
    tx: &mut Tx,
    origin: &Origin,
    customer: &CustomerRow,
    request: &SampleRequest<'_>,
) -> Result<SampleRow, Error> {
    let actor = format!("{}:{}", origin.actor.kind.as_str(), origin.actor.id);
    let new = NewSampleRow {
        id: Uuid::now_v7(),
        customer_id: customer.id,
        request,
        actor: &actor,
        correlation_id: origin.correlation_id.as_deref(),
    };
    let row = samples::insert(tx, &new).await?;
    samples::project(tx, &row).await?;
    let event = NewEvent {
        event_type: EventType::SampleRequested,
        subject: row.id.to_string(),
        territory: Some(customer.territory.clone()),
        customer: Some(customer.id),
        data: json!({"sampleId": row.id, "customerId": customer.id, "kitId": request.kit_id, "items": request.items,
                     "deliveryDate": row.delivery_date}),
    };
    outbox::enqueue(tx, origin, event).await?;
    Ok(row)
}

/// Writes `draft` over the locked customer `current` and its events: `customer.updated` with
/// the changed members, and `customer.contactability.changed` when contactability changed.
/// Nothing when nothing changed; the written row otherwise.
pub async fn update_customer(
    tx: &mut Tx,
    origin: &Origin,
    current: &CustomerRow,
    draft: &CustomerDraft,
) -> Result<Option<CustomerRow>, Error> {
    let before = current.draft()?;
    let changed = before.changed_members(draft);
    if changed.is_empty() {
        return Ok(None);
    }
    let id = current.id;
    let updated = customers::update(tx, id, draft).await?;
    let customer = updated.to_api()?;
    let territory = Some(updated.territory.clone());
    let event = NewEvent {
        event_type: EventType::CustomerUpdated,
        subject: id.to_string(),
        territory: territory.clone(),
        customer: Some(id),
        data: json!({ "customerId": id, "changed": changed, "customer": customer }),
    };
    outbox::enqueue(tx, origin, event).await?;
    if changed.contains(&"contactability") {
        let event = NewEvent {
            event_type: EventType::CustomerContactabilityChanged,
            subject: id.to_string(),
            territory,
            customer: Some(id),
            data: json!({
                "customerId": id,
                "status": draft.contactability,
                "previousStatus": before.contactability,
                "alternateChannelRequired": draft.alternate_channel_required,
            }),
        };
        outbox::enqueue(tx, origin, event).await?;
    }
    Ok(Some(updated))
}
