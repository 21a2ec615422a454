//! KEDA's cron scaler and the replica floor KEDA and the HPA hold for a ScaledObject of cron triggers.
//!
//! Activity (`pkg/scalers/cron_scaler.go`, `GetMetricsAndActivity`, KEDA v2.20): with
//! `nextStart = start.Next(now in timezone).Unix()`, `nextEnd` likewise and `now` in Unix seconds,
//!
//! ```text
//! case nextStart < nextEnd && now < nextStart: inactive, metric 1
//! case now <= nextEnd:                         active,   metric desiredReplicas
//! default:                                     inactive, metric 1
//! ```
//!
//! `Next` is strictly after `now`, so for schedules that fire this is "active exactly when the next end
//! is not after the next start": equal instants count as active. A schedule that never fires yields
//! Go's zero time, whose `Unix()` is -62135596800: a start that never fires leaves the trigger active
//! whenever its end fires, an end that never fires leaves it inactive. [`CronTrigger::is_active`]
//! evaluates the cases literally on those numbers.
//!
//! Floor: KEDA creates an HPA with `minReplicas = minReplicaCount` when that is above 0, else 1
//! (`controllers/keda/hpa.go`, `getHPAMinReplicas`), and `maxReplicas = maxReplicaCount` (default
//! 100). Each cron trigger is an External metric with an `AverageValue` target of 1, so its proposal
//! is its metric value: `desiredReplicas` when active, 1 when not. The HPA takes the largest proposal
//! and clamps it: below `minReplicas` it is `minReplicas`, else above `maxReplicas` it is
//! `maxReplicas`. When no trigger is active the scale executor
//! (`pkg/scaling/executor/scale_scaledobjects.go`, `RequestScale`) takes over: with `minReplicaCount`
//! 0 it scales to zero, else it keeps at least `minReplicaCount`; with `idleReplicaCount` set (which
//! the ScaledObject specification requires to be below `minReplicaCount`) it scales to that.
//!
//! [`ScaledObjectModel::floor`] is that target at one instant, the number of replicas the workload is
//! held at with every other metric at its lowest. What it leaves out, on purpose: `cooldownPeriod`
//! (default 300 s before scaling to zero or idle), the HPA's scale-down stabilisation window (default
//! 300 s), polling and sync delays (a change takes effect up to `pollingInterval` later), and the
//! HPA's tolerance (default 10 %): `GetExternalPerPodMetricReplicas` keeps the current replica count
//! while `desired / current` lies within 0.9..=1.1, so a trigger asking for 100 replicas leaves a
//! workload at 95 where it is. Only `minReplicas` is a hard floor.

use jiff::Timestamp;

use super::clock::Zone;
use super::cron::{CronError, Schedule};

/// Go's `time.Time{}.Unix()`: what KEDA compares when a schedule never fires.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// A KEDA cron trigger rejected as KEDA would reject it (or, for `Local`, as the oracle must).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("cron trigger: no timezone specified")]
    NoTimeZone,
    #[error("cron trigger: unknown timezone {0:?} (IANA names are case-sensitive)")]
    UnknownTimeZone(String),
    #[error("cron trigger: timezone \"Local\" is the KEDA operator's host zone; name an IANA zone")]
    LocalTimeZone,
    #[error("cron trigger start: {0}")]
    Start(CronError),
    #[error("cron trigger end: {0}")]
    End(CronError),
    #[error("cron trigger: start and end can not have exactly the same time input ({0:?})")]
    SameStartAndEnd(String),
}

/// One `type: cron` trigger: `start`, `end`, `timezone`, `desiredReplicas`.
#[derive(Debug, Clone, PartialEq)]
pub struct CronTrigger {
    start_spec: String,
    end_spec: String,
    timezone: String,
    start: Schedule,
    end: Schedule,
    zone: Zone,
    desired_replicas: i64,
}

impl CronTrigger {
    /// Validates the trigger as KEDA's `parseCronMetadata` does: a timezone, both specs parse, the
    /// specs differ as strings. KEDA only loads the timezone when it evaluates the trigger (and then
    /// fails each poll); rejecting it here keeps the model total.
    pub fn new(
        start: &str,
        end: &str,
        timezone: &str,
        desired_replicas: i64,
    ) -> Result<CronTrigger, TriggerError> {
        if timezone.is_empty() {
            return Err(TriggerError::NoTimeZone);
        }
        let tz = match super::cron::load_location(timezone) {
            Some(Some(tz)) => tz,
            Some(None) => return Err(TriggerError::LocalTimeZone),
            None => return Err(TriggerError::UnknownTimeZone(timezone.to_owned())),
        };
        Self::build(start, end, timezone, Zone::new(tz), desired_replicas)
    }

    /// [`CronTrigger::new`] with a prepared zone (shared by all triggers of a ScaledObject, so its
    /// table is built once); `timezone` is the zone's IANA name.
    pub fn in_zone(
        start: &str,
        end: &str,
        zone: &Zone,
        desired_replicas: i64,
    ) -> Result<CronTrigger, TriggerError> {
        let timezone = zone.time_zone().iana_name().unwrap_or("UTC").to_owned();
        Self::build(start, end, &timezone, zone.clone(), desired_replicas)
    }

    fn build(
        start: &str,
        end: &str,
        timezone: &str,
        zone: Zone,
        desired_replicas: i64,
    ) -> Result<CronTrigger, TriggerError> {
        let start_schedule = Schedule::parse(start).map_err(TriggerError::Start)?;
        let end_schedule = Schedule::parse(end).map_err(TriggerError::End)?;
        if start == end {
            return Err(TriggerError::SameStartAndEnd(start.to_owned()));
        }
        Ok(CronTrigger {
            start_spec: start.to_owned(),
            end_spec: end.to_owned(),
            timezone: timezone.to_owned(),
            start: start_schedule,
            end: end_schedule,
            zone,
            desired_replicas,
        })
    }

    pub fn start(&self) -> &str {
        &self.start_spec
    }

    pub fn end(&self) -> &str {
        &self.end_spec
    }

    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    pub fn desired_replicas(&self) -> i64 {
        self.desired_replicas
    }

    /// The next start activation after `at` (robfig `Next` in the trigger's zone).
    pub fn next_start(&self, at: Timestamp) -> Option<Timestamp> {
        self.start.next_in(at, &self.zone)
    }

    /// The next end activation after `at`.
    pub fn next_end(&self, at: Timestamp) -> Option<Timestamp> {
        self.end.next_in(at, &self.zone)
    }

    /// Whether KEDA counts the trigger active at `at` (one instant for all three clock readings
    /// KEDA takes; they differ by microseconds).
    pub fn is_active(&self, at: Timestamp) -> bool {
        let unix = |t: Option<Timestamp>| t.map_or(GO_ZERO_TIME_UNIX, |t| t.as_second());
        let now = at.as_second();
        let next_start = unix(self.next_start(at));
        let next_end = unix(self.next_end(at));
        if next_start < next_end && now < next_start { false } else { now <= next_end }
    }

    /// The trigger's metric value: what its HPA metric proposes.
    pub fn metric(&self, at: Timestamp) -> i64 {
        if self.is_active(at) { self.desired_replicas } else { 1 }
    }
}

/// The replica bounds of a ScaledObject and its cron triggers (KEDA's defaults: min 0, max 100,
/// no idle count).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaledObjectModel {
    pub min_replica_count: i32,
    pub max_replica_count: i32,
    pub idle_replica_count: Option<i32>,
    pub triggers: Vec<CronTrigger>,
}

/// What KEDA does with a ScaledObject at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Indices into `triggers` of the active ones.
    pub active: Vec<usize>,
    /// The replica count held with every other metric at its lowest.
    pub floor: i64,
}

impl ScaledObjectModel {
    pub fn new(min_replica_count: i32, triggers: Vec<CronTrigger>) -> Self {
        ScaledObjectModel { min_replica_count, max_replica_count: 100, idle_replica_count: None, triggers }
    }

    /// The floor at `at`; see the module documentation for the rule and what it leaves out.
    pub fn floor(&self, at: Timestamp) -> i64 {
        let mut any_active = false;
        let mut highest = 1;
        for trigger in &self.triggers {
            if trigger.is_active(at) {
                any_active = true;
                highest = highest.max(trigger.desired_replicas);
            }
        }
        self.floor_from(any_active, highest)
    }

    /// [`ScaledObjectModel::floor`] with the active triggers listed.
    pub fn evaluate(&self, at: Timestamp) -> Evaluation {
        let active: Vec<usize> =
            (0..self.triggers.len()).filter(|&i| self.triggers[i].is_active(at)).collect();
        let highest = active.iter().map(|&i| self.triggers[i].desired_replicas).fold(1, i64::max);
        Evaluation { floor: self.floor_from(!active.is_empty(), highest), active }
    }

    fn floor_from(&self, any_active: bool, highest_active: i64) -> i64 {
        let min = i64::from(self.min_replica_count);
        if !any_active {
            return match self.idle_replica_count {
                Some(idle) => i64::from(idle),
                None => min.max(0),
            };
        }
        // The HPA: the largest proposal (inactive triggers propose 1), then the replica calculator's
        // clamp, which checks the minimum first (`convertDesiredReplicasWithRules`).
        let hpa_min = if min > 0 { min } else { 1 };
        let max = i64::from(self.max_replica_count);
        if highest_active < hpa_min {
            hpa_min
        } else if highest_active > max {
            max
        } else {
            highest_active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn trigger(start: &str, end: &str, desired: i64) -> CronTrigger {
        CronTrigger::new(start, end, "Europe/Berlin", desired).unwrap()
    }

    #[test]
    fn active_between_start_and_end() {
        // 08:00-18:00 Berlin (CEST in June: 06:00Z-16:00Z).
        let t = trigger("0 8 * * *", "0 18 * * *", 5);
        assert!(!t.is_active(at("2026-06-10T05:59:00Z")));
        assert!(t.is_active(at("2026-06-10T06:00:00Z")));
        assert!(t.is_active(at("2026-06-10T15:59:59Z")));
        assert!(!t.is_active(at("2026-06-10T16:00:00Z")));
        assert_eq!(t.metric(at("2026-06-10T12:00:00Z")), 5);
        assert_eq!(t.metric(at("2026-06-10T20:00:00Z")), 1);
    }

    #[test]
    fn equal_next_start_and_end_counts_as_active() {
        // Both fire at 10:00 (start every hour, end every day at 10): at 09:30 both next are 10:00.
        let t = trigger("0 * * * *", "0 10 * * *", 3);
        assert!(t.is_active(at("2026-06-10T07:30:00Z")));
        // At 10:30 next start 11:00 < next end tomorrow: inactive.
        assert!(!t.is_active(at("2026-06-10T08:30:00Z")));
    }

    #[test]
    fn schedules_that_never_fire() {
        // A start that never fires: active whenever the end fires (Go's zero time is far in the past).
        let never_starts = trigger("0 0 30 2 *", "0 18 * * *", 4);
        assert!(never_starts.is_active(at("2026-06-10T12:00:00Z")));
        // An end that never fires: never active.
        let never_ends = trigger("0 8 * * *", "0 0 31 4 *", 4);
        assert!(!never_ends.is_active(at("2026-06-10T12:00:00Z")));
        let neither = trigger("0 0 30 2 *", "0 0 31 4 *", 4);
        assert!(!neither.is_active(at("2026-06-10T12:00:00Z")));
    }

    #[test]
    fn trigger_validation() {
        assert_eq!(CronTrigger::new("0 8 * * *", "0 9 * * *", "", 1).unwrap_err(), TriggerError::NoTimeZone);
        assert_eq!(
            CronTrigger::new("0 8 * * *", "0 9 * * *", "Local", 1).unwrap_err(),
            TriggerError::LocalTimeZone
        );
        assert!(matches!(
            CronTrigger::new("0 8 * * *", "0 9 * * *", "Europe/Munich", 1),
            Err(TriggerError::UnknownTimeZone(_))
        ));
        assert!(matches!(CronTrigger::new("0 25 * * *", "0 9 * * *", "UTC", 1), Err(TriggerError::Start(_))));
        assert!(matches!(CronTrigger::new("0 8 * * *", "@daily", "UTC", 1), Err(TriggerError::End(_))));
        assert!(matches!(
            CronTrigger::new("0 8 * * *", "0 8 * * *", "UTC", 1),
            Err(TriggerError::SameStartAndEnd(_))
        ));
        // Equal as schedules but not as strings: KEDA accepts it. Both fire together, so the next end
        // always equals the next start: always active.
        let same = CronTrigger::new("0 8 * * *", "0 08 * * *", "UTC", 2).unwrap();
        assert!(same.is_active(at("2026-06-10T12:00:00Z")));
        assert_eq!(
            CronTrigger::new("0 8 * * *", "0 9 * * 8", "UTC", 1).unwrap_err().to_string(),
            r#"cron trigger end: cron schedule "0 9 * * 8": day-of-week field "8": 8 is above the maximum 6"#
        );
    }

    #[test]
    fn triggers_in_a_shared_zone_behave_as_triggers_by_name() {
        let zone = Zone::new(jiff::tz::TimeZone::get("Europe/Berlin").unwrap());
        let shared = CronTrigger::in_zone("0 8 * * *", "0 18 * * *", &zone, 5).unwrap();
        assert_eq!(shared.timezone(), "Europe/Berlin");
        assert_eq!(shared, trigger("0 8 * * *", "0 18 * * *", 5));
    }

    #[test]
    fn floor_takes_the_maximum_of_min_and_active_triggers() {
        let so = ScaledObjectModel::new(
            2,
            vec![trigger("0 8 * * *", "0 18 * * *", 5), trigger("0 12 * * *", "0 14 * * *", 9)],
        );
        assert_eq!(so.floor(at("2026-06-10T04:00:00Z")), 2);
        assert_eq!(so.floor(at("2026-06-10T07:00:00Z")), 5);
        assert_eq!(so.floor(at("2026-06-10T10:30:00Z")), 9);
        assert_eq!(so.evaluate(at("2026-06-10T10:30:00Z")), Evaluation { active: vec![0, 1], floor: 9 });
        // A trigger asking for fewer than minReplicaCount cannot lower the floor.
        let low = ScaledObjectModel::new(4, vec![trigger("0 8 * * *", "0 18 * * *", 1)]);
        assert_eq!(low.floor(at("2026-06-10T07:00:00Z")), 4);
    }

    #[test]
    fn floor_with_zero_min_idle_and_max() {
        let mut so = ScaledObjectModel::new(0, vec![trigger("0 8 * * *", "0 18 * * *", 0)]);
        // Nothing active and min 0: scaled to zero.
        assert_eq!(so.floor(at("2026-06-10T04:00:00Z")), 0);
        // Active but asking for 0: the HPA's minReplicas is at least 1.
        assert_eq!(so.floor(at("2026-06-10T07:00:00Z")), 1);
        so.triggers = vec![trigger("0 8 * * *", "0 18 * * *", 500)];
        assert_eq!(so.floor(at("2026-06-10T07:00:00Z")), 100);
        so.max_replica_count = 7;
        assert_eq!(so.floor(at("2026-06-10T07:00:00Z")), 7);
        // idleReplicaCount replaces minReplicaCount while nothing is active.
        so.min_replica_count = 3;
        so.idle_replica_count = Some(0);
        assert_eq!(so.floor(at("2026-06-10T04:00:00Z")), 0);
        assert_eq!(so.floor(at("2026-06-10T07:00:00Z")), 7);
        // With no triggers at all nothing is ever active.
        let empty = ScaledObjectModel::new(3, vec![]);
        assert_eq!(empty.floor(at("2026-06-10T07:00:00Z")), 3);
    }
}
