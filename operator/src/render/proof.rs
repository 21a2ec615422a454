//! The proof: what KEDA does with the compiled triggers is the calendar's floor.
//!
//! A simulated controller compiles at a start instant and again at every `next_change`; between
//! two compilations KEDA (the oracle, written from robfig/cron and KEDA's sources, independently
//! of the compiler) holds the triggers of the last one. At every minute the oracle's floor must
//! equal `calendar::floor`, the specification.
//!
//! Both sides are step functions: the specification changes only at its timeline's steps, and a
//! cron trigger's activity only when its start or end fires. The long runs therefore check every
//! minute at and just before each of those instants over two years (every change on either side,
//! including a trigger firing where it should not), and a sample of the minutes between; the short
//! runs and the DST days check every single minute.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::cron::{self, HORIZON};
use crate::calendar::strategies::{any_baseline, any_calendars, any_target};
use crate::calendar::{Baseline, Calendar, floor, timeline};
use crate::component::Component;
use crate::oracle::{CronTrigger, ScaledObjectModel};

const MINUTE: SignedDuration = SignedDuration::from_mins(1);
/// How far past the horizon the compiler is shown the floor.
const BEYOND: SignedDuration = SignedDuration::from_hours(40 * 24);

struct Case<'a> {
    calendars: &'a [Calendar],
    baseline: &'a Baseline,
    territory: &'a str,
    component: Component,
}

impl Case<'_> {
    fn floor(&self, at: Timestamp) -> Option<u32> {
        floor(self.calendars, self.baseline, self.territory, self.component, at)
    }

    /// What the controller writes at `now`: the oracle's model of it, and when it compiles next.
    fn compile(&self, now: Timestamp) -> Result<(ScaledObjectModel, Timestamp), TestCaseError> {
        let until = now + HORIZON + BEYOND;
        let steps = timeline(self.calendars, self.baseline, self.territory, self.component, now, until);
        let tz = self.calendars.first().map_or(jiff::tz::TimeZone::UTC, |c| c.timezone.clone());
        let compiled =
            cron::compile(&steps, until, now, &tz).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let max = self.baseline.get(self.component).map_or(100, |r| r.max());
        let triggers = compiled
            .triggers
            .iter()
            .map(|t| {
                CronTrigger::new(&t.start, &t.end, &t.timezone, i64::from(t.desired_replicas))
                    .map_err(|e| TestCaseError::fail(format!("KEDA refuses {t:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut model = ScaledObjectModel::new(compiled.min_replica_count as i32, triggers);
        model.max_replica_count = max.max(compiled.min_replica_count) as i32;
        Ok((model, compiled.next_change))
    }

    /// Checks `[from, to)`: every minute when `every_minute`, else the minutes at and before each
    /// change of either side and every `sample`th minute between.
    fn check(&self, from: Timestamp, to: Timestamp, every_minute: bool) -> Result<(), TestCaseError> {
        let mut now = from;
        while now < to {
            let (model, next) = self.compile(now)?;
            prop_assert!(next > now, "next_change {next} is not after {now}");
            let held_until = next.min(to);
            for at in self.instants(&model, now, held_until, every_minute) {
                let want = self.floor(at).map(i64::from);
                let got = model.floor(at);
                prop_assert_eq!(
                    Some(got),
                    want,
                    "at {} (compiled at {}): KEDA holds {} but the calendar asks for {:?}; triggers {:#?}",
                    at,
                    now,
                    got,
                    want,
                    model
                        .triggers
                        .iter()
                        .map(|t| (t.start(), t.end(), t.timezone(), t.desired_replicas()))
                        .collect::<Vec<_>>()
                );
            }
            now = held_until;
        }
        Ok(())
    }

    fn instants(
        &self,
        model: &ScaledObjectModel,
        from: Timestamp,
        to: Timestamp,
        every_minute: bool,
    ) -> Vec<Timestamp> {
        if every_minute {
            let mut all = Vec::new();
            let mut at = from;
            while at < to {
                all.push(at);
                at += MINUTE;
            }
            return all;
        }
        let mut points = vec![from];
        for (at, _) in timeline(self.calendars, self.baseline, self.territory, self.component, from, to) {
            points.extend([at - MINUTE, at]);
        }
        for trigger in &model.triggers {
            for next in [
                CronTrigger::next_start as fn(&CronTrigger, Timestamp) -> Option<Timestamp>,
                CronTrigger::next_end,
            ] {
                let mut at = from - MINUTE;
                while let Some(fired) = next(trigger, at).filter(|t| *t < to) {
                    points.extend([fired - MINUTE, fired]);
                    at = fired;
                }
            }
        }
        // Between the changes, a minute every six hours.
        let mut at = from;
        while at < to {
            points.push(at);
            at += SignedDuration::from_hours(6);
        }
        points.retain(|at| *at >= from && *at < to);
        points.sort();
        points.dedup();
        points
    }
}

fn any_start() -> impl Strategy<Value = Timestamp> {
    // 2025-06-01 to about 2027-06: the random calendars' days lie around there.
    let base = "2025-06-01T00:00:00Z".parse::<Timestamp>().unwrap();
    (0i64..(2 * 365 * 24 * 60)).prop_map(move |minutes| base + SignedDuration::from_mins(minutes))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Two years after a random start, every change on either side.
    #[test]
    fn keda_holds_the_calendar_floor_over_two_years(
        calendars in any_calendars(),
        baseline in any_baseline(),
        (territory, component) in any_target(),
        start in any_start(),
    ) {
        let case = Case { calendars: &calendars, baseline: &baseline, territory, component };
        prop_assume!(case.floor(start).is_some());
        case.check(start, start + SignedDuration::from_hours(2 * 366 * 24), false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A month after a random start, every single minute.
    #[test]
    fn keda_holds_the_calendar_floor_at_every_minute(
        calendars in any_calendars(),
        baseline in any_baseline(),
        (territory, component) in any_target(),
        start in any_start(),
    ) {
        let case = Case { calendars: &calendars, baseline: &baseline, territory, component };
        prop_assume!(case.floor(start).is_some());
        case.check(start, start + SignedDuration::from_hours(31 * 24), true)?;
    }
}

/// The calendars of the DST regression cases: hours inside, across and at the edges of the hour
/// the clocks skip or repeat, a window crossing midnight with pre-warm, and whole days around the
/// changes.
const DST_CALENDAR: &str = r#"
timezone: Europe/Berlin
windows:
  - name: inside-the-hour
    yearly: {from: "01-01", to: "12-31"}
    hours: {from: "02:15", to: "02:45"}
    floors: {query: 7}
  - name: across-the-hour
    yearly: {from: "03-20", to: "11-05"}
    hours: {from: "01:30", to: "03:30"}
    floors: {query: 5, command: 3}
  - name: over-midnight
    yearly: {from: "03-15", to: "11-10"}
    hours: {from: "22:00", to: "02:30"}
    preWarm: 45m
    floors: {query: 4, relay: 2}
  - name: whole-days
    yearly: {from: "10-24", to: "10-27"}
    floors: {command: 6}
darkPeriods:
  - name: early
    hours: {from: "03:00", to: "04:00"}
    floors: {query: 1, command: 1}
"#;

/// Every change of the clocks in Europe/Berlin from 2026 to 2030, each checked at every minute
/// from two days before to two days after, compiled three days before.
#[test]
fn keda_holds_the_floor_through_every_berlin_dst_change_2026_to_2030() {
    let spec: crate::crd::SeasonalWindowSpec = serde_saphyr::from_str(DST_CALENDAR).unwrap();
    let calendars = [crate::validate::calendar(&spec).unwrap()];
    let baseline: Baseline = [
        (Component::Query, crate::calendar::Replicas::new(2, 10).unwrap()),
        (Component::Command, crate::calendar::Replicas::new(0, 10).unwrap()),
        (Component::Relay, crate::calendar::Replicas::new(1, 2).unwrap()),
    ]
    .into_iter()
    .collect();
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let mut changes = Vec::new();
    let mut at = "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap();
    while let Some(transition) = tz.following(at).next() {
        if transition.timestamp().as_second()
            >= "2031-01-01T00:00:00Z".parse::<Timestamp>().unwrap().as_second()
        {
            break;
        }
        changes.push(transition.timestamp());
        at = transition.timestamp();
    }
    assert_eq!(changes.len(), 10, "two changes a year: {changes:?}");
    for change in changes {
        for territory in ["BY", "NW"] {
            for component in Component::ALL {
                let case = Case { calendars: &calendars, baseline: &baseline, territory, component };
                let day = SignedDuration::from_hours(24);
                let compiled_at = change - 3 * day;
                // Compile three days before, then check every minute of the four days around it.
                let (model, next) = case.compile(compiled_at).unwrap();
                assert!(next > change + 2 * day);
                let mut minute = change - 2 * day;
                while minute < change + 2 * day {
                    let want = case.floor(minute).map(i64::from);
                    assert_eq!(
                        Some(model.floor(minute)),
                        want,
                        "{component} in {territory} at {minute} (change at {change})"
                    );
                    minute += MINUTE;
                }
            }
        }
    }
}
