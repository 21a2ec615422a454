//! Typed sales activities, the four kinds of the seeds, and the dynamic fields they feed.
//!
//! A request is the shared members ([`ActivityBase`]) and the members of its kind, side by side
//! in one object (`{"kind": "ROI_CONSULTATION", "customerId": ..., "roiScenarioId": ...}`); each
//! kind's members are a struct that refuses unknown ones, so a member of another kind is a 422
//! naming it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::dates;
use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivityKind {
    ProducttestFeedback,
    RoiConsultation,
    MenuIntegration,
    DecisionMakerAlignment,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 4] = [
        ActivityKind::ProducttestFeedback,
        ActivityKind::RoiConsultation,
        ActivityKind::MenuIntegration,
        ActivityKind::DecisionMakerAlignment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::ProducttestFeedback => "PRODUCTTEST_FEEDBACK",
            ActivityKind::RoiConsultation => "ROI_CONSULTATION",
            ActivityKind::MenuIntegration => "MENU_INTEGRATION",
            ActivityKind::DecisionMakerAlignment => "DECISION_MAKER_ALIGNMENT",
        }
    }

    pub fn parse(text: &str) -> Option<ActivityKind> {
        ActivityKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Members every activity has.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityBase {
    pub customer_id: Uuid,
    /// When it happened (default: now); not in the future.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub occurred_at: Option<OffsetDateTime>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub note: Option<String>,
    /// The earlier activity of the same customer this one follows up: its SLA is met by this one.
    #[serde(default)]
    pub follow_up_of: Option<Uuid>,
}

/// The members of `ActivityBase`, which are not the kind's.
const BASE_MEMBERS: [&str; 5] = ["kind", "customerId", "occurredAt", "note", "followUpOf"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeedbackOutcome {
    Success,
    Neutral,
    Fail,
}

/// Produkttest-Feedback: the customer's verdict on a delivered sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProducttestFeedback {
    /// A delivered sample of the same customer.
    pub sample_id: Uuid,
    #[schema(minimum = 1, maximum = 5)]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::integral::optional"
    )]
    pub rating: Option<u8>,
    pub outcome: FeedbackOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub sensoric_notes: Option<String>,
    /// Whether the product fits the customer's menu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_fit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1000)]
    pub next_step: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoiOutcome {
    Qualified,
    NeedsData,
    NoInterest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommitmentLevel {
    Low,
    Mid,
    High,
}

/// ROI-Beratung: a savings scenario worked through with the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoiConsultation {
    pub roi_scenario_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    pub assumptions_version: Option<String>,
    /// Expected savings in euros per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 10000000)]
    pub savings_per_month: Option<f64>,
    pub outcome: RoiOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment_level: Option<CommitmentLevel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MenuOutcome {
    MenuLocked,
    Draft,
    Dropped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DateWindow {
    pub start: Date,
    pub end: Date,
}

/// Menü-Integrations-Gespräch: which dishes go on the seasonal menu, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MenuIntegration {
    /// The season the menu is for, e.g. "Q4/Xmas", "Spargelzeit". Not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub season: String,
    /// At most 100, each 1 to 200 characters and not blank.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub planned_dishes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_window: Option<DateWindow>,
    pub outcome: MenuOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionRole {
    HeadChef,
    ManagingDirector,
    Buyer,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlignmentOutcome {
    Aligned,
    Partial,
    Misaligned,
}

/// Entscheider-Koordination: head chef, managing director and buying brought to one view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionMakerAlignment {
    /// At least one, each once.
    #[schema(min_items = 1)]
    pub roles: Vec<DecisionRole>,
    #[schema(minimum = 0, maximum = 100)]
    #[serde(deserialize_with = "crate::domain::integral::exact")]
    pub alignment_score: u8,
    pub outcome: AlignmentOutcome,
}

/// The members of one kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    ProducttestFeedback(ProducttestFeedback),
    RoiConsultation(RoiConsultation),
    MenuIntegration(MenuIntegration),
    DecisionMakerAlignment(DecisionMakerAlignment),
}

impl Payload {
    pub fn kind(&self) -> ActivityKind {
        match self {
            Payload::ProducttestFeedback(_) => ActivityKind::ProducttestFeedback,
            Payload::RoiConsultation(_) => ActivityKind::RoiConsultation,
            Payload::MenuIntegration(_) => ActivityKind::MenuIntegration,
            Payload::DecisionMakerAlignment(_) => ActivityKind::DecisionMakerAlignment,
        }
    }

    /// The outcome as the API spells it.
    pub fn outcome(&self) -> String {
        let value = match self {
            Payload::ProducttestFeedback(p) => json!(p.outcome),
            Payload::RoiConsultation(p) => json!(p.outcome),
            Payload::MenuIntegration(p) => json!(p.outcome),
            Payload::DecisionMakerAlignment(p) => json!(p.outcome),
        };
        value.as_str().unwrap_or_default().to_owned()
    }

    pub fn to_json(&self) -> Value {
        match self {
            Payload::ProducttestFeedback(p) => json!(p),
            Payload::RoiConsultation(p) => json!(p),
            Payload::MenuIntegration(p) => json!(p),
            Payload::DecisionMakerAlignment(p) => json!(p),
        }
    }

    /// Rules serde cannot express: ranges, lengths, uniqueness; each break named by pointer.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut text = |pointer: &str, value: Option<&str>, max: usize| {
            if value.is_some_and(|v| v.chars().count() > max) {
                errors.push(FieldError::new(pointer, format!("at most {max} characters")));
            }
        };
        match self {
            Payload::ProducttestFeedback(p) => {
                text("/sensoricNotes", p.sensoric_notes.as_deref(), 4000);
                text("/nextStep", p.next_step.as_deref(), 1000);
                if p.rating.is_some_and(|r| !(1..=5).contains(&r)) {
                    errors.push(FieldError::new("/rating", "between 1 and 5"));
                }
            }
            Payload::RoiConsultation(p) => {
                text("/assumptionsVersion", p.assumptions_version.as_deref(), 100);
                if p.savings_per_month.is_some_and(|s| !(0.0..=10_000_000.0).contains(&s)) {
                    errors.push(FieldError::new("/savingsPerMonth", "between 0 and 10000000 euros"));
                }
            }
            Payload::MenuIntegration(p) => {
                if p.season.trim().is_empty() || p.season.chars().count() > 100 {
                    errors.push(FieldError::new("/season", "1 to 100 characters"));
                }
                if p.planned_dishes.len() > 100 {
                    errors.push(FieldError::new("/plannedDishes", "at most 100 dishes"));
                }
                for (i, dish) in p.planned_dishes.iter().enumerate() {
                    if dish.trim().is_empty() || dish.chars().count() > 200 {
                        errors.push(FieldError::new(format!("/plannedDishes/{i}"), "1 to 200 characters"));
                    }
                }
                if let Some(window) = &p.rollout_window {
                    errors.extend(dates::check_date("/rolloutWindow/start", window.start));
                    errors.extend(dates::check_date("/rolloutWindow/end", window.end));
                    if window.end < window.start {
                        errors.push(FieldError::new("/rolloutWindow/end", "is before the start"));
                    }
                }
            }
            Payload::DecisionMakerAlignment(p) => {
                if p.roles.is_empty() {
                    errors.push(FieldError::new("/roles", "at least one role"));
                }
                let mut roles = p.roles.clone();
                roles.sort();
                roles.dedup();
                if roles.len() != p.roles.len() {
                    errors.push(FieldError::new("/roles", "each role once"));
                }
                if p.alignment_score > 100 {
                    errors.push(FieldError::new("/alignmentScore", "between 0 and 100"));
                }
            }
        }
        errors
    }
}

/// Splits a request into its kind, the shared members and the kind's own members.
pub fn split(body: Value) -> Result<(ActivityKind, Value, Value), FieldError> {
    let Value::Object(mut members) = body else {
        return Err(FieldError::new("", "an activity is a JSON object"));
    };
    let kind = match members.get("kind") {
        Some(Value::String(kind)) => ActivityKind::parse(kind).ok_or_else(|| {
            let known: Vec<&str> = ActivityKind::ALL.iter().map(|k| k.as_str()).collect();
            FieldError::new("/kind", format!("`{kind}` is not one of {}", known.join(", ")))
        })?,
        Some(_) => return Err(FieldError::new("/kind", "must be a string")),
        None => return Err(FieldError::new("/kind", "is required")),
    };
    let mut base = Map::new();
    for member in BASE_MEMBERS {
        if let Some(value) = members.remove(member)
            && member != "kind"
        {
            base.insert(member.to_owned(), value);
        }
    }
    Ok((kind, Value::Object(base), Value::Object(members)))
}

/// Savings per month from which an ROI counts as MID and as HIGH.
pub const ROI_MID_FROM: f64 = 500.0;
pub const ROI_HIGH_FROM: f64 = 1500.0;

/// The dynamic fields an activity writes, so that its hot data reaches the projection through
/// the one field write (with its audit and event): an ROI consultation with savings sets
/// `roi_potential`; an alignment sets `decision_makers` (the count never drops below what is
/// known; executive alignment is an ALIGNED outcome with the managing director in the room).
/// `current_decision_makers` is the customer's current value of that field.
pub fn field_writes(payload: &Payload, current_decision_makers: Option<&Value>) -> Vec<(String, Value)> {
    match payload {
        Payload::RoiConsultation(p) => {
            let Some(value) = p.savings_per_month else {
                return Vec::new();
            };
            let bucket = match (p.outcome, value) {
                (RoiOutcome::NoInterest, _) => "LOW",
                (_, v) if v >= ROI_HIGH_FROM => "HIGH",
                (_, v) if v >= ROI_MID_FROM => "MID",
                _ => "LOW",
            };
            let value = (value * 100.0).round() / 100.0;
            vec![("roi_potential".into(), json!({"bucket": bucket, "value": value}))]
        }
        Payload::DecisionMakerAlignment(p) => {
            let known = current_decision_makers.and_then(|v| v["count"].as_u64()).unwrap_or(0);
            let count = known.max(p.roles.len() as u64);
            let exec =
                p.outcome == AlignmentOutcome::Aligned && p.roles.contains(&DecisionRole::ManagingDirector);
            vec![("decision_makers".into(), json!({"count": count, "has_exec_alignment": exec}))]
        }
        Payload::ProducttestFeedback(_) | Payload::MenuIntegration(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roi(savings: Option<f64>, outcome: RoiOutcome) -> Payload {
        Payload::RoiConsultation(RoiConsultation {
            roi_scenario_id: Uuid::nil(),
            assumptions_version: None,
            savings_per_month: savings,
            outcome,
            commitment_level: None,
        })
    }

    #[test]
    fn a_request_splits_into_kind_base_and_the_kinds_members() {
        let body = json!({"kind": "ROI_CONSULTATION", "customerId": Uuid::nil(), "note": "gut", "outcome": "QUALIFIED"});
        let (kind, base, rest) = split(body).unwrap();
        assert_eq!(kind, ActivityKind::RoiConsultation);
        assert_eq!(base, json!({"customerId": Uuid::nil(), "note": "gut"}));
        assert_eq!(rest, json!({"outcome": "QUALIFIED"}));
        assert_eq!(split(json!({"kind": "CALL"})).unwrap_err().pointer.as_deref(), Some("/kind"));
        assert_eq!(split(json!({})).unwrap_err().pointer.as_deref(), Some("/kind"));
        assert_eq!(split(json!([])).unwrap_err().pointer.as_deref(), Some(""));
    }

    #[test]
    fn roi_buckets_follow_the_savings_unless_there_is_no_interest() {
        let bucket = |p: &Payload| field_writes(p, None)[0].1["bucket"].clone();
        assert_eq!(bucket(&roi(Some(499.99), RoiOutcome::Qualified)), "LOW");
        assert_eq!(bucket(&roi(Some(500.0), RoiOutcome::NeedsData)), "MID");
        assert_eq!(bucket(&roi(Some(1500.0), RoiOutcome::Qualified)), "HIGH");
        assert_eq!(bucket(&roi(Some(9000.0), RoiOutcome::NoInterest)), "LOW");
        assert!(field_writes(&roi(None, RoiOutcome::Qualified), None).is_empty());
    }

    #[test]
    fn an_alignment_never_forgets_known_decision_makers() {
        let alignment = |roles: Vec<DecisionRole>, outcome| {
            Payload::DecisionMakerAlignment(DecisionMakerAlignment { roles, alignment_score: 80, outcome })
        };
        let both = alignment(
            vec![DecisionRole::HeadChef, DecisionRole::ManagingDirector],
            AlignmentOutcome::Aligned,
        );
        assert_eq!(field_writes(&both, None)[0].1, json!({"count": 2, "has_exec_alignment": true}));
        let current = json!({"count": 5, "has_exec_alignment": true});
        let chef = alignment(vec![DecisionRole::HeadChef], AlignmentOutcome::Aligned);
        assert_eq!(
            field_writes(&chef, Some(&current))[0].1,
            json!({"count": 5, "has_exec_alignment": false})
        );
        let partial = alignment(vec![DecisionRole::ManagingDirector], AlignmentOutcome::Partial);
        assert_eq!(field_writes(&partial, None)[0].1["has_exec_alignment"], false);
    }

    #[test]
    fn payload_rules_name_their_pointers() {
        let menu = Payload::MenuIntegration(MenuIntegration {
            season: " ".into(),
            planned_dishes: vec!["Gans".into(), "".into()],
            rollout_window: Some(DateWindow {
                start: time::macros::date!(2026 - 12 - 01),
                end: time::macros::date!(2026 - 11 - 01),
            }),
            outcome: MenuOutcome::Draft,
        });
        let pointers: Vec<String> = menu.check().into_iter().filter_map(|e| e.pointer).collect();
        assert_eq!(pointers, ["/season", "/plannedDishes/1", "/rolloutWindow/end"]);
        let twice = Payload::DecisionMakerAlignment(DecisionMakerAlignment {
            roles: vec![DecisionRole::Buyer, DecisionRole::Buyer],
            alignment_score: 101,
            outcome: AlignmentOutcome::Partial,
        });
        let pointers: Vec<String> = twice.check().into_iter().filter_map(|e| e.pointer).collect();
        assert_eq!(pointers, ["/roles", "/alignmentScore"]);
        assert_eq!(
            roi(Some(-1.0), RoiOutcome::Qualified).check()[0].pointer.as_deref(),
            Some("/savingsPerMonth")
        );
    }
}
