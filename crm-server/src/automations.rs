//! The seeds' automations, as consumers of the published log:
//!
//! - `lead.converted` -> a product sample with the default kit for the customer
//!   (`sample.requested`), once per event: the sample remembers the event;
//! - `email.bounce` with a hard bounce -> the customer's contactability becomes HARD_BOUNCE with
//!   another channel required (`customer.contactability.changed`); a soft bounce marks
//!   SOFT_BOUNCE unless a stronger state is set. A redelivered bounce changes nothing more.
//!
//! Both run in their consumer's transaction under the server's own scope, so the effect and the
//! checkpoint commit together.

use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::actions::{self, SampleRequest};
use crate::db::{customers, samples};
use crate::domain::berlin;
use crate::domain::customer::ContactabilityStatus;
use crate::outbox::consumer::Handler;
use crate::outbox::{Actor, ActorKind, Origin, StoredEvent};

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// A sample for a converted lead is due this many days after the conversion is handled.
pub const LEAD_SAMPLE_DELIVERY_DAYS: i64 = 7;

fn origin(consumer: &str, event: &StoredEvent) -> Origin {
    Origin {
        actor: Actor { kind: ActorKind::System, id: consumer.to_owned() },
        correlation_id: event.correlation_id.clone(),
    }
}

fn data<T: for<'de> Deserialize<'de>>(event: &StoredEvent) -> Result<T, String> {
    serde_json::from_value(event.data.clone())
        .map_err(|e| format!("event {} has unusable data: {e}", event.id))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeadConverted {
    customer_id: Uuid,
}

/// `lead.converted` -> `sample.requested`.
pub struct LeadConvertedToSample;

impl Handler for LeadConvertedToSample {
    fn name(&self) -> &'static str {
        "automation.lead-converted"
    }

    fn wants(&self, event: &StoredEvent) -> bool {
        event.event_type == "lead.converted"
    }

    async fn handle(&self, tx: &mut Tx, event: &StoredEvent) -> Result<(), String> {
        let lead: LeadConverted = data(event)?;
        if samples::requested_for(tx, event.id).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        let customer = customers::find(tx, lead.customer_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("customer {} of the converted lead does not exist", lead.customer_id))?;
        let (kit, items) = samples::kit_items(tx, None)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the catalog has no default kit")?;
        let request = SampleRequest {
            kit_id: Some(&kit),
            items: &items,
            delivery_date: berlin::date(OffsetDateTime::now_utc())
                + Duration::days(LEAD_SAMPLE_DELIVERY_DAYS),
            delivery_address: None,
            contact_email: None,
            notes: Some("Automatisch angefordert: Lead konvertiert"),
            origin_event_id: Some(event.id),
        };
        actions::request_sample(tx, &origin(self.name(), event), &customer, &request)
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum BounceType {
    Hard,
    Soft,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailBounce {
    customer_id: Uuid,
    bounce_type: BounceType,
}

/// `email.bounce` -> `customer.contactability.changed`.
pub struct BounceToContactability;

impl Handler for BounceToContactability {
    fn name(&self) -> &'static str {
        "automation.email-bounce"
    }

    fn wants(&self, event: &StoredEvent) -> bool {
        event.event_type == "email.bounce"
    }

    async fn handle(&self, tx: &mut Tx, event: &StoredEvent) -> Result<(), String> {
        let bounce: EmailBounce = data(event)?;
        let Some(current) = customers::lock(tx, bounce.customer_id).await.map_err(|e| e.to_string())? else {
            return Err(format!("customer {} of the bounce does not exist", bounce.customer_id));
        };
        let mut draft = current.draft().map_err(|e| e.to_string())?;
        match bounce.bounce_type {
            BounceType::Hard => {
                draft.contactability = ContactabilityStatus::HardBounce;
                draft.alternate_channel_required = true;
            }
            // A soft bounce says less than a hard one or an opt-out: it never replaces them.
            BounceType::Soft if draft.contactability == ContactabilityStatus::Contactable => {
                draft.contactability = ContactabilityStatus::SoftBounce;
            }
            BounceType::Soft => {}
        }
        actions::update_customer(tx, &origin(self.name(), event), &current, &draft)
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok(())
    }
}
