//! `timeline` against `floor`: over thousands of random calendars, the step function the
//! timeline computes from occurrence boundaries has, at every minute checked, the value `floor`
//! computes from the definitions; and its steps are strictly increasing real changes.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::strategies::{ZONES, any_baseline, any_calendars, any_target};
use super::{Baseline, Calendar, floor, next_transition, timeline};
use crate::component::Component;

fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// A whole minute from mid-2025 to mid-2031, where the random calendars have their days.
fn any_minute() -> impl Strategy<Value = Timestamp> {
    let start = "2025-06-01T00:00:00Z".parse::<Timestamp>().unwrap();
    (0i64..6 * 365 * 24 * 60).prop_map(move |n| start + minutes(n))
}

/// The changes of the clocks in the zones under test, 2026 to 2030.
fn dst_changes() -> Vec<Timestamp> {
    let (from, to): (Timestamp, Timestamp) =
        ("2026-01-01T00:00:00Z".parse().unwrap(), "2031-01-01T00:00:00Z".parse().unwrap());
    ZONES
        .iter()
        .flat_map(|zone| {
            let tz = TimeZone::get(zone).unwrap();
            tz.following(from).map(|t| t.timestamp()).take_while(|&t| t < to).collect::<Vec<_>>()
        })
        .collect()
}

/// A query: which calendars, profile, territory and component.
struct Query<'a> {
    calendars: &'a [Calendar],
    baseline: &'a Baseline,
    territory: &'a str,
    component: Component,
}

impl Query<'_> {
    fn floor(&self, at: Timestamp) -> Option<u32> {
        floor(self.calendars, self.baseline, self.territory, self.component, at)
    }

    fn timeline(&self, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, u32)> {
        timeline(self.calendars, self.baseline, self.territory, self.component, from, to)
    }

    /// The timeline of `[from, to)` is well formed and `floor` agrees with it at every minute.
    fn agrees_every_minute(&self, from: Timestamp, to: Timestamp) -> Result<(), TestCaseError> {
        let steps = self.timeline(from, to);
        well_formed(&steps, from, to, self.floor(from).is_some())?;
        let mut at = from;
        let mut step = 0;
        while at < to {
            while steps.get(step + 1).is_some_and(|&(change, _)| change <= at) {
                step += 1;
            }
            let expected = steps.get(step).map(|&(_, value)| value);
            prop_assert_eq!(self.floor(at), expected, "at {}", at);
            at += minutes(1);
        }
        Ok(())
    }
}

fn well_formed(
    steps: &[(Timestamp, u32)],
    from: Timestamp,
    to: Timestamp,
    scaled: bool,
) -> Result<(), TestCaseError> {
    if !scaled {
        prop_assert!(steps.is_empty());
        return Ok(());
    }
    prop_assert_eq!(steps.first().map(|&(at, _)| at), Some(from));
    for pair in steps.windows(2) {
        prop_assert!(pair[0].0 < pair[1].0, "instants increase: {:?}", pair);
        prop_assert_ne!(pair[0].1, pair[1].1, "each step changes the value: {:?}", pair);
        prop_assert!(pair[1].0 < to);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Spans of up to a day, placed around one of the floor's changes so they have something to
    /// show (found with a long timeline; the check itself is floor's, minute by minute).
    #[test]
    fn timeline_agrees_with_floor_at_every_minute_around_changes(
        calendars in any_calendars(),
        baseline in any_baseline(),
        (territory, component) in any_target(),
        start in any_minute(),
        pick in any::<usize>(),
        lead in 0i64..720,
        length in 1i64..=1440,
    ) {
        let query = Query { calendars: &calendars, baseline: &baseline, territory, component };
        let changes = query.timeline(start, start + SignedDuration::from_hours(24 * 400));
        let anchor = match changes.len() {
            0 | 1 => start,
            n => changes[1 + pick % (n - 1)].0,
        };
        let from = anchor - minutes(lead);
        query.agrees_every_minute(from, from + minutes(length))?;
    }

    /// Spans of up to two days across the clock changes of 2026 to 2030.
    #[test]
    fn timeline_agrees_with_floor_at_every_minute_across_dst_changes(
        calendars in any_calendars(),
        baseline in any_baseline(),
        (territory, component) in any_target(),
        pick in any::<usize>(),
        lead in 0i64..1440,
        length in 1i64..=2880,
    ) {
        let changes = dst_changes();
        let from = changes[pick % changes.len()] - minutes(lead);
        let query = Query { calendars: &calendars, baseline: &baseline, territory, component };
        query.agrees_every_minute(from, from + minutes(length))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Over up to two years: floor has the step's value at each change, the old value a minute
    /// before, and the step's value at random minutes.
    #[test]
    fn timeline_agrees_with_floor_at_its_changes_over_years(
        calendars in any_calendars(),
        baseline in any_baseline(),
        (territory, component) in any_target(),
        from in any_minute(),
        days in 1i64..=730,
        probes in prop::collection::vec(any::<u32>(), 64),
    ) {
        let query = Query { calendars: &calendars, baseline: &baseline, territory, component };
        let to = from + SignedDuration::from_hours(24 * days);
        let steps = query.timeline(from, to);
        well_formed(&steps, from, to, query.floor(from).is_some())?;
        for pair in steps.windows(2) {
            let ((_, before), (change, after)) = (pair[0], pair[1]);
            prop_assert_eq!(query.floor(change), Some(after), "at {}", change);
            prop_assert_eq!(query.floor(change - minutes(1)), Some(before), "just before {}", change);
        }
        let span = days * 24 * 60;
        for probe in probes {
            let at = from + minutes(i64::from(probe) % span);
            let expected = steps.iter().rev().find(|&&(change, _)| change <= at).map(|&(_, value)| value);
            prop_assert_eq!(query.floor(at), expected, "at {}", at);
        }
    }

    /// The next transition is the first instant where floor differs from its value now.
    #[test]
    fn next_transition_is_the_first_change_of_floor(
        calendars in any_calendars(),
        baseline in any_baseline(),
        (territory, component) in any_target(),
        after in any_minute(),
        probes in prop::collection::vec(any::<u32>(), 32),
    ) {
        let query = Query { calendars: &calendars, baseline: &baseline, territory, component };
        let now = query.floor(after);
        let next = next_transition(&calendars, &baseline, territory, component, after);
        let until = match next {
            Some(next) => {
                prop_assert!(next > after);
                prop_assert_ne!(query.floor(next), now, "at {}", next);
                next
            }
            None => after + SignedDuration::from_hours(24 * super::HORIZON_DAYS),
        };
        let span = until.duration_since(after).as_mins();
        for probe in probes {
            let at = after + minutes(i64::from(probe) % span);
            prop_assert_eq!(query.floor(at), now, "at {}, before the next change", at);
        }
        if let Some(next) = next {
            prop_assert_eq!(query.floor(next - minutes(1)), now);
        }
    }
}
