//! Service levels of sales work, from the seeds:
//!
//! | what | due | met by |
//! |---|---|---|
//! | a sample delivery | 5 business days of the customer's state after delivery | product-test feedback (the activity, or a FEEDBACK_* status) |
//! | product-test feedback | its sample's follow-up date | itself |
//! | ROI consultation | 7 days after it (none when the outcome is NO_INTEREST) | a follow-up activity (`followUpOf`) |
//! | menu integration | the end of the customer's season window | itself when it happens inside the window, else a follow-up |
//! | decision-maker alignment | 30 days before the contract renewal | itself when ALIGNED, else a follow-up |
//!
//! Dates are German calendar days; an item is due by the end of its due date. Without the date
//! it depends on (no season window, no renewal date) an activity has no SLA.

use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};
use utoipa::ToSchema;

use crate::domain::activity::{AlignmentOutcome, Payload, RoiOutcome};
use crate::domain::berlin;

pub const ROI_FOLLOWUP_DAYS: i64 = 7;
pub const ALIGNMENT_LEAD_DAYS: i64 = 30;

/// What an activity's SLA depends on besides the activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The customer's seasonal menu window.
    pub season: Option<(Date, Date)>,
    pub renewal: Option<Date>,
    /// For product-test feedback: the follow-up date of its sample.
    pub sample_followup_due: Option<Date>,
}

/// An activity's SLA when it is recorded: when it is due, and whether it met it itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    pub due: Option<Date>,
    pub met_at: Option<OffsetDateTime>,
}

pub fn of_activity(payload: &Payload, occurred_at: OffsetDateTime, context: &Context) -> Sla {
    let day = berlin::date(occurred_at);
    let (due, met_itself) = match payload {
        Payload::ProducttestFeedback(_) => (context.sample_followup_due, true),
        Payload::RoiConsultation(p) if p.outcome == RoiOutcome::NoInterest => (None, false),
        Payload::RoiConsultation(_) => (day.checked_add(Duration::days(ROI_FOLLOWUP_DAYS)), false),
        Payload::MenuIntegration(_) => match context.season {
            Some((start, end)) => (Some(end), day >= start),
            None => (None, false),
        },
        Payload::DecisionMakerAlignment(p) => (
            context.renewal.and_then(|r| r.checked_sub(Duration::days(ALIGNMENT_LEAD_DAYS))),
            p.outcome == AlignmentOutcome::Aligned,
        ),
    };
    Sla { due, met_at: (due.is_some() && met_itself).then_some(occurred_at) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlaStatus {
    /// No service level applies.
    None,
    /// Not met yet, and not due yet.
    Open,
    /// Not met, and past due.
    Overdue,
    Met,
    /// Met, but after it was due.
    Late,
}

/// The status on `today` (a German date) of an item due on `due` and met at `met_at`.
pub fn status(due: Option<Date>, met_at: Option<OffsetDateTime>, today: Date) -> SlaStatus {
    match (due, met_at.map(berlin::date)) {
        (None, _) => SlaStatus::None,
        (Some(due), Some(met)) if met <= due => SlaStatus::Met,
        (Some(_), Some(_)) => SlaStatus::Late,
        (Some(due), None) if today <= due => SlaStatus::Open,
        (Some(_), None) => SlaStatus::Overdue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::activity::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};
    use uuid::Uuid;

    fn roi(outcome: RoiOutcome) -> Payload {
        Payload::RoiConsultation(RoiConsultation {
            roi_scenario_id: Uuid::nil(),
            assumptions_version: None,
            savings_per_month: Some(800.0),
            outcome,
            commitment_level: None,
        })
    }

    fn menu() -> Payload {
        Payload::MenuIntegration(MenuIntegration {
            season: "Q4/Xmas".into(),
            planned_dishes: vec![],
            rollout_window: None,
            outcome: MenuOutcome::MenuLocked,
        })
    }

    fn alignment(outcome: AlignmentOutcome) -> Payload {
        Payload::DecisionMakerAlignment(DecisionMakerAlignment {
            roles: vec![DecisionRole::ManagingDirector],
            alignment_score: 70,
            outcome,
        })
    }

    #[test]
    fn each_kind_is_due_as_the_seeds_say() {
        let at = datetime!(2026-11-02 09:00 UTC);
        let none = Context::default();
        assert_eq!(
            of_activity(&roi(RoiOutcome::Qualified), at, &none),
            Sla { due: Some(date!(2026 - 11 - 09)), met_at: None }
        );
        assert_eq!(of_activity(&roi(RoiOutcome::NoInterest), at, &none), Sla { due: None, met_at: None });

        let season =
            Context { season: Some((date!(2026 - 11 - 01), date!(2026 - 12 - 20))), ..Context::default() };
        assert_eq!(
            of_activity(&menu(), at, &season),
            Sla { due: Some(date!(2026 - 12 - 20)), met_at: Some(at) }
        );
        let early = datetime!(2026-10-15 09:00 UTC);
        assert_eq!(
            of_activity(&menu(), early, &season).met_at,
            None,
            "before the window: not fixed inside it"
        );
        assert_eq!(of_activity(&menu(), at, &none).due, None, "no window, no SLA");

        let renewal = Context { renewal: Some(date!(2027 - 03 - 01)), ..Context::default() };
        assert_eq!(
            of_activity(&alignment(AlignmentOutcome::Aligned), at, &renewal),
            Sla { due: Some(date!(2027 - 01 - 30)), met_at: Some(at) }
        );
        assert_eq!(of_activity(&alignment(AlignmentOutcome::Partial), at, &renewal).met_at, None);
    }

    #[test]
    fn status_reads_due_and_met_as_german_dates() {
        let due = Some(date!(2026 - 11 - 27));
        assert_eq!(status(None, None, date!(2030 - 01 - 01)), SlaStatus::None);
        assert_eq!(status(due, None, date!(2026 - 11 - 27)), SlaStatus::Open);
        assert_eq!(status(due, None, date!(2026 - 11 - 28)), SlaStatus::Overdue);
        // 23:30 UTC on the 27th is the 28th in Germany: late.
        assert_eq!(status(due, Some(datetime!(2026-11-27 22:30 UTC)), date!(2026 - 12 - 01)), SlaStatus::Met);
        assert_eq!(
            status(due, Some(datetime!(2026-11-27 23:30 UTC)), date!(2026 - 12 - 01)),
            SlaStatus::Late
        );
    }

    proptest! {
        /// Whatever the dates: an item without a due date has no status, a met item stays met or
        /// late whatever the day, and an unmet one turns from open to overdue exactly after its
        /// due date.
        #[test]
        fn status_is_consistent_over_time(due_in in proptest::option::of(0i64..400), met_in in proptest::option::of(0i64..400), today_in in 0i64..400) {
            let base = date!(2026 - 01 - 01);
            let due = due_in.map(|d| base + Duration::days(d));
            let met = met_in.map(|d| (base + Duration::days(d)).with_hms(10, 0, 0).unwrap().assume_utc());
            let today = base + Duration::days(today_in);
            let s = status(due, met, today);
            match (due, met) {
                (None, _) => prop_assert_eq!(s, SlaStatus::None),
                (Some(d), Some(m)) => prop_assert_eq!(s, if m.date() <= d { SlaStatus::Met } else { SlaStatus::Late }),
                (Some(d), None) => prop_assert_eq!(s, if today <= d { SlaStatus::Open } else { SlaStatus::Overdue }),
            }
            if let (Some(_), Some(_)) = (due, met) {
                prop_assert_eq!(s, status(due, met, today + Duration::days(365)));
            }
        }
    }
}
