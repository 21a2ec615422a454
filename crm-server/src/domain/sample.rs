//! Product samples: the lifecycle of a sample and the rules of a request.
//!
//! ```text
//! REQUESTED -> PACKED -> SHIPPED -> DELIVERED -> FEEDBACK_SUCCESS | FEEDBACK_NEUTRAL | FEEDBACK_FAIL
//!     \___________\__________\----> CANCELED (any state before DELIVERED)
//! ```

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::FieldError;

/// Follow-up of a delivery: product-test feedback within this many business days.
pub const FOLLOWUP_BUSINESS_DAYS: u32 = 5;
/// How far in the future an `eventAt` may lie (clock skew between client and server).
pub const MAX_EVENT_SKEW: time::Duration = time::Duration::minutes(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SampleStatus {
    Requested,
    Packed,
    Shipped,
    Delivered,
    FeedbackSuccess,
    FeedbackNeutral,
    FeedbackFail,
    Canceled,
}

impl SampleStatus {
    pub const ALL: [SampleStatus; 8] = [
        SampleStatus::Requested,
        SampleStatus::Packed,
        SampleStatus::Shipped,
        SampleStatus::Delivered,
        SampleStatus::FeedbackSuccess,
        SampleStatus::FeedbackNeutral,
        SampleStatus::FeedbackFail,
        SampleStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SampleStatus::Requested => "REQUESTED",
            SampleStatus::Packed => "PACKED",
            SampleStatus::Shipped => "SHIPPED",
            SampleStatus::Delivered => "DELIVERED",
            SampleStatus::FeedbackSuccess => "FEEDBACK_SUCCESS",
            SampleStatus::FeedbackNeutral => "FEEDBACK_NEUTRAL",
            SampleStatus::FeedbackFail => "FEEDBACK_FAIL",
            SampleStatus::Canceled => "CANCELED",
        }
    }

    pub fn parse(text: &str) -> Option<SampleStatus> {
        SampleStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The states this one may move to; empty for the final ones.
    pub fn next(self) -> &'static [SampleStatus] {
        use SampleStatus::*;
        match self {
            Requested => &[Packed, Canceled],
            Packed => &[Shipped, Canceled],
            Shipped => &[Delivered, Canceled],
            Delivered => &[FeedbackSuccess, FeedbackNeutral, FeedbackFail],
            FeedbackSuccess | FeedbackNeutral | FeedbackFail | Canceled => &[],
        }
    }

    pub fn is_feedback(self) -> bool {
        matches!(
            self,
            SampleStatus::FeedbackSuccess | SampleStatus::FeedbackNeutral | SampleStatus::FeedbackFail
        )
    }
}

impl std::fmt::Display for SampleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition the lifecycle does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sample in {from} cannot become {to}; allowed: {}", allowed_text(.from.next()))]
pub struct InvalidTransition {
    pub from: SampleStatus,
    pub to: SampleStatus,
}

fn allowed_text(allowed: &[SampleStatus]) -> String {
    if allowed.is_empty() {
        return "none, it is final".into();
    }
    allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

pub fn transition(from: SampleStatus, to: SampleStatus) -> Result<(), InvalidTransition> {
    if from.next().contains(&to) { Ok(()) } else { Err(InvalidTransition { from, to }) }
}

/// When a status change happened: not before the sample's previous change (the order of a
/// sample's changes is the order of their times) and not in the future.
pub fn check_event_at(
    at: OffsetDateTime,
    previous: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), FieldError> {
    if at < previous {
        return Err(FieldError::new(
            "/eventAt",
            format!("is before the sample's previous change ({previous})"),
        ));
    }
    if at > now + MAX_EVENT_SKEW {
        return Err(FieldError::new("/eventAt", "lies in the future"));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampleItem {
    /// A SKU of the product catalog (`GET /products`).
    #[schema(example = "CF-3001")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "crate::domain::integral::exact")]
    pub quantity: i32,
}

/// `POST /samples`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSample {
    pub customer_id: Uuid,
    /// A kit whose items to send (`GET /sample-kits`); without it and without items, the default
    /// kit "Cook&Fresh Basis 5er".
    #[serde(default)]
    pub kit_id: Option<String>,
    /// The items to send, at most 50, each SKU once; leave out (or empty) to send a kit.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub items: Vec<SampleItem>,
    /// Today (in Berlin) or later.
    pub delivery_date: Date,
    /// Blank means none.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub delivery_address: Option<String>,
    /// One `@`, a dot inside the domain, no spaces. Blank means none.
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^@\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^@\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.[^@\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)[^@.\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
    )]
    pub contact_email: Option<String>,
    /// Blank means none.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
}

/// Where a request's items come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Items {
    Listed(Vec<SampleItem>),
    Kit(String),
    DefaultKit,
}

/// A request that passed every check that needs no database.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleDraft {
    pub customer_id: Uuid,
    pub items: Items,
    pub delivery_date: Date,
    pub delivery_address: Option<String>,
    pub contact_email: Option<String>,
    pub notes: Option<String>,
}

/// Trimmed, blank as none; at most `max` characters as sent (as the document states it).
fn text(value: Option<String>, pointer: &str, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    let sent = value.as_ref()?.chars().count();
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())?;
    if sent > max {
        errors.push(FieldError::new(pointer, format!("at most {max} characters")));
    }
    Some(value)
}

impl NewSample {
    /// Checks everything but the catalog: `today` is the current date where the customer is.
    pub fn validate(self, today: Date) -> Result<SampleDraft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let items = match (self.kit_id, self.items.is_empty()) {
            (Some(_), false) => {
                errors.push(FieldError::new("/kitId", "give either items or a kit, not both"));
                Items::DefaultKit
            }
            (Some(kit), true) => Items::Kit(kit),
            (None, true) => Items::DefaultKit,
            (None, false) => Items::Listed(self.items),
        };
        if let Items::Listed(items) = &items {
            let mut seen = std::collections::BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                if !(1..=1000).contains(&item.quantity) {
                    errors.push(FieldError::new(format!("/items/{i}/quantity"), "between 1 and 1000"));
                }
                if !seen.insert(item.sku.as_str()) {
                    errors
                        .push(FieldError::new(format!("/items/{i}/sku"), "listed twice; give one quantity"));
                }
            }
            if items.len() > 50 {
                errors.push(FieldError::new("/items", "at most 50 items"));
            }
        }
        if self.delivery_date < today {
            errors.push(FieldError::new("/deliveryDate", format!("is in the past (today is {today})")));
        }
        let delivery_address = text(self.delivery_address, "/deliveryAddress", 500, &mut errors);
        let notes = text(self.notes, "/notes", 4000, &mut errors);
        let contact_email = text(self.contact_email, "/contactEmail", 254, &mut errors);
        if let Some(email) = &contact_email
            && !looks_like_email(email)
        {
            errors.push(FieldError::new("/contactEmail", "is not an e-mail address"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SampleDraft {
            customer_id: self.customer_id,
            items,
            delivery_date: self.delivery_date,
            delivery_address,
            contact_email,
            notes,
        })
    }
}

/// One `@` with something on both sides and a dot in the domain: enough to catch typos without
/// refusing real addresses.
fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    fn request() -> NewSample {
        serde_json::from_value(serde_json::json!({
            "customerId": Uuid::nil(), "deliveryDate": "2026-12-10"
        }))
        .unwrap()
    }

    #[test]
    fn the_lifecycle_runs_forward_and_cancels_only_before_delivery() {
        use SampleStatus::*;
        for (from, to) in
            [(Requested, Packed), (Packed, Shipped), (Shipped, Delivered), (Delivered, FeedbackFail)]
        {
            assert_eq!(transition(from, to), Ok(()));
        }
        for from in [Requested, Packed, Shipped] {
            assert_eq!(transition(from, Canceled), Ok(()));
        }
        let err = transition(Delivered, Canceled).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a sample in DELIVERED cannot become CANCELED; allowed: FEEDBACK_SUCCESS, FEEDBACK_NEUTRAL, FEEDBACK_FAIL"
        );
        assert_eq!(
            transition(Canceled, Packed).unwrap_err().to_string(),
            "a sample in CANCELED cannot become PACKED; allowed: none, it is final"
        );
    }

    proptest! {
        /// Every sequence of requested changes either follows the lifecycle or is refused, and an
        /// accepted walk never revisits a state, never leaves a final one, and never cancels after
        /// delivery.
        #[test]
        fn no_sequence_of_changes_breaks_the_lifecycle(steps in prop::collection::vec(0..8usize, 0..20)) {
            let mut status = SampleStatus::Requested;
            let mut seen = vec![status];
            for step in steps {
                let to = SampleStatus::ALL[step];
                match transition(status, to) {
                    Ok(()) => {
                        prop_assert!(!seen.contains(&to), "{to} twice");
                        prop_assert!(!status.next().is_empty());
                        prop_assert!(!(to == SampleStatus::Canceled && seen.contains(&SampleStatus::Delivered)));
                        status = to;
                        seen.push(to);
                    }
                    Err(e) => prop_assert!(!status.next().contains(&to), "{e}"),
                }
            }
            prop_assert_eq!(SampleStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn without_items_or_kit_the_default_kit_is_sent() {
        let draft = request().validate(date!(2026 - 12 - 02)).unwrap();
        assert_eq!(draft.items, Items::DefaultKit);
        let kit = NewSample { kit_id: Some("cf-festtag".into()), ..request() };
        assert_eq!(kit.validate(date!(2026 - 12 - 02)).unwrap().items, Items::Kit("cf-festtag".into()));
    }

    #[test]
    fn bad_requests_name_each_offending_value() {
        let bad = NewSample {
            kit_id: None,
            items: vec![
                SampleItem { sku: "CF-1001".into(), quantity: 0 },
                SampleItem { sku: "CF-1001".into(), quantity: 2 },
            ],
            delivery_date: date!(2026 - 12 - 01),
            contact_email: Some("chef at krone.de".into()),
            ..request()
        };
        let errors = bad.validate(date!(2026 - 12 - 02)).unwrap_err();
        let pointers: Vec<&str> = errors.iter().filter_map(|e| e.pointer.as_deref()).collect();
        assert_eq!(pointers, ["/items/0/quantity", "/items/1/sku", "/deliveryDate", "/contactEmail"]);
        let both = NewSample {
            kit_id: Some("cf-basis-5".into()),
            items: vec![SampleItem { sku: "CF-1001".into(), quantity: 1 }],
            ..request()
        };
        assert_eq!(both.validate(date!(2026 - 12 - 02)).unwrap_err()[0].pointer.as_deref(), Some("/kitId"));
    }

    #[test]
    fn event_times_move_forward_and_stay_out_of_the_future() {
        let previous = datetime!(2026-12-01 10:00 UTC);
        let now = datetime!(2026-12-02 10:00 UTC);
        assert!(check_event_at(previous, previous, now).is_ok());
        assert!(check_event_at(now + time::Duration::minutes(4), previous, now).is_ok());
        assert!(check_event_at(previous - time::Duration::seconds(1), previous, now).is_err());
        assert!(check_event_at(now + time::Duration::minutes(6), previous, now).is_err());
    }
}
