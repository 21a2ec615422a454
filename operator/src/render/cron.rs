//! A floor over time as KEDA cron triggers.
//!
//! KEDA's cron scaler counts a trigger active exactly when its next end comes before its next
//! start, and the HPA it feeds holds the highest `desiredReplicas` of the active triggers, never
//! less than `minReplicaCount`. Cron has no year, so a trigger fires again next year on the same
//! days. The compiler therefore works from the floor's step function over a bounded horizon, not
//! from the calendar's rules:
//!
//! - `minReplicaCount` is the lowest floor within the horizon; every stretch of time with a higher
//!   floor is a segment that needs a trigger with that floor.
//! - Segments with the same floor, the same start and end times of day and the same day offset
//!   between start and end, whose starts lie in one month and whose ends lie in one month, share
//!   one trigger: `start: "0 22 19-30 9 *"`, `end: "30 1 20-30 9 *"`. A segment whose end is in
//!   another month than its start's group, or that lies in a month of its own, gets its own. That
//!   is the split at month edges; days that do not exist are never written, because only days
//!   on which a segment actually starts or ends are.
//! - Times are the wall-clock times of the calendar's zone, so that SREs can read them; a segment
//!   with a boundary in a repeated hour (when clocks go back), or whose start's time the clocks
//!   skip on the same date next year, is written in UTC instead, where every minute exists once
//!   (robfig/cron skips a time that does not exist, so that start would come round a year late). A stretch that starts on February 29 and ends on another day is
//!   written in a zone where its start falls on the 28th or on March 1 (UTC, or UTC-12 or UTC+14):
//!   its start fires only in leap years, its end every year, so after the end the next end would
//!   come before the next start, and KEDA would count the trigger active for years.
//! - Every stretch within [`HORIZON`] (364 days) is written, cut at its end. A cron pair fires
//!   on the same days every year, and the rule "active when the next end comes before the next
//!   start" would turn a trigger on early if its end's days came round between now and its start:
//!   with every end within a year of now, last year's end is in the past, and last year's start
//!   too; next year's firings lie beyond the horizon.
//! - `next_change` is the instant the set must be compiled again by: the horizon's end, where the
//!   stretches cut there go on. Until then the set is right at every minute without the
//!   controller; compiling again earlier is always safe.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, civil};

use super::zone::{Wall, ZoneSpan};

/// How far ahead triggers are written: less than a year, so that no trigger's start or end comes
/// round again within it.
pub const HORIZON: SignedDuration = SignedDuration::from_hours(364 * 24);

/// The zones a trigger is written in when the calendar's own cannot say it: UTC first.
pub const FALLBACK_ZONES: [&str; 3] = ["Etc/UTC", "Etc/GMT+12", "Etc/GMT-14"];

/// One `cron` trigger of a ScaledObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronTrigger {
    /// 5-field cron: minute, hour, day of month, month, day of week (always `*`).
    pub start: String,
    pub end: String,
    /// IANA name of the zone `start` and `end` are read in.
    pub timezone: String,
    pub desired_replicas: u32,
}

/// What a ScaledObject needs from the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggers {
    pub min_replica_count: u32,
    pub triggers: Vec<CronTrigger>,
    /// The instant by which the set must be compiled again (the end of the horizon).
    pub next_change: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("the floor has no value at {0}: the steps start after it")]
    NoFloorAt(Timestamp),
    #[error("the steps must cover at least the horizon after {now} (they end at {until})")]
    TooShort { now: Timestamp, until: Timestamp },
    #[error("the floor changes at {0}, which is not on a whole minute")]
    NotOnMinute(Timestamp),
    #[error("the time zone has no IANA name, which KEDA needs")]
    UnnamedZone,
    #[error("the steps are not in increasing order at {0}")]
    Unordered(Timestamp),
    #[error("no time zone lets a cron trigger say the stretch starting at {0}")]
    Inexpressible(Timestamp),
}

/// A stretch of time with one floor.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: Timestamp,
    end: Timestamp,
    floor: u32,
}

/// Compiles the floor given by `steps` (its value from each instant on, in increasing order, the
/// first at or before `now`) and known until `until`, into cron triggers for the time after `now`,
/// in the zone `tz`. `until` must lie at least [`HORIZON`] after `now`; the set is right until
/// `next_change`.
pub fn compile(
    steps: &[(Timestamp, u32)],
    until: Timestamp,
    now: Timestamp,
    tz: &TimeZone,
) -> Result<Triggers, CompileError> {
    // The stretch under way starts now, on the minute.
    let now_minute = now
        .round(jiff::TimestampRound::new().smallest(jiff::Unit::Minute).mode(jiff::RoundMode::Trunc))
        .unwrap_or(now);
    let horizon_end = now_minute + HORIZON;
    // Every instant converted lies within the horizon, or a year after one (`expressible`).
    let span =
        |zone: &TimeZone| ZoneSpan::new(zone, now_minute, horizon_end + SignedDuration::from_hours(367 * 24));
    let mut zones = vec![(tz.iana_name().ok_or(CompileError::UnnamedZone)?.to_owned(), span(tz))];
    for name in FALLBACK_ZONES {
        zones.push((name.to_owned(), span(&TimeZone::get(name).map_err(|_| CompileError::UnnamedZone)?)));
    }
    if until < horizon_end {
        return Err(CompileError::TooShort { now, until });
    }
    // The floor within the horizon, cut at its ends; its lowest value needs no trigger.
    let relevant: Vec<Segment> = segments(steps, until, now)?
        .into_iter()
        .filter(|s| s.end > now && s.start < horizon_end)
        // The stretch under way starts on the minute even when `now`, and so the first step of
        // a timeline that begins at `now`, does not.
        .map(|s| Segment {
            start: if s.start <= now { now_minute } else { s.start },
            end: s.end.min(horizon_end),
            floor: s.floor,
        })
        .collect();
    let min_replica_count = relevant.iter().map(|s| s.floor).min().ok_or(CompileError::NoFloorAt(now))?;

    // Each segment with its start and end on the wall clock of its group's zone.
    let mut groups: BTreeMap<GroupKey, Vec<(Segment, civil::DateTime, civil::DateTime)>> = BTreeMap::new();
    let mut serial = 0u32;
    for segment in relevant.iter().filter(|s| s.floor > min_replica_count) {
        let Some((zone_of, start, end)) = zones
            .iter()
            .enumerate()
            .find_map(|(n, (_, zone))| expressible(segment, zone).map(|(s, e)| (n, s, e)))
        else {
            return Err(CompileError::Inexpressible(segment.start));
        };
        for at in [start, end] {
            if at.second() != 0 || at.subsec_nanosecond() != 0 {
                return Err(CompileError::NotOnMinute(segment.start));
            }
        }
        let mut key = GroupKey {
            zone: zone_of,
            floor: segment.floor,
            start_month: (start.year(), start.month()),
            end_month: (end.year(), end.month()),
            start_time: (start.hour(), start.minute()),
            end_time: (end.hour(), end.minute()),
            day_offset: (end.date() - start.date()).get_days(),
            serial: 0,
        };
        // Two segments can share a trigger only with time between them: when one ends as the
        // next begins, the next end and the next start would fall on the same minute.
        loop {
            match groups.get(&key).and_then(|members| members.last()) {
                Some((last, _, _)) if last.end >= segment.start => {
                    serial += 1;
                    key.serial = serial;
                }
                _ => break,
            }
        }
        groups.entry(key).or_default().push((*segment, start, end));
    }

    let mut triggers: Vec<(Timestamp, CronTrigger)> = groups
        .into_iter()
        .map(|(key, members)| {
            let zone = &zones[key.zone].0;
            let starts: Vec<civil::DateTime> = members.iter().map(|(_, start, _)| *start).collect();
            let ends: Vec<civil::DateTime> = members.iter().map(|(_, _, end)| *end).collect();
            let trigger = CronTrigger {
                start: spec(key.start_time, &starts),
                end: spec(key.end_time, &ends),
                timezone: zone.clone(),
                desired_replicas: key.floor,
            };
            (members[0].0.start, trigger)
        })
        .collect();
    triggers.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.start.cmp(&b.1.start)));

    let next_change = horizon_end;
    Ok(Triggers { min_replica_count, triggers: triggers.into_iter().map(|(_, t)| t).collect(), next_change })
}

/// What segments must share to share a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    /// Index into the zones: the calendar's, then [`FALLBACK_ZONES`].
    zone: usize,
    floor: u32,
    start_month: (i16, i8),
    end_month: (i16, i8),
    start_time: (i8, i8),
    end_time: (i8, i8),
    day_offset: i32,
    serial: u32,
}

/// The wall-clock times of a segment's start and end in `zone`, if a cron pair there says it: both
/// times occur once, a start on February 29 ends on that day too, and the start's time exists on
/// its date next year.
///
/// The last rule: after this year's last end, the next end is next year's, and so must the next
/// start be. When the clocks skip the start's time on that date next year (the start is at 02:30
/// on a day that is the last Sunday of March next year), robfig/cron skips that firing, the next
/// start comes a year after the next end, and KEDA would count the trigger active from this
/// year's end until the set is compiled again.
fn expressible(segment: &Segment, zone: &ZoneSpan) -> Option<(civil::DateTime, civil::DateTime)> {
    let (start, end) = (zone.civil_once(segment.start)?, zone.civil_once(segment.end)?);
    let leap_day = |at: civil::DateTime| at.month() == 2 && at.day() == 29;
    if leap_day(start) && !(leap_day(end) && start.date() == end.date()) {
        return None;
    }
    // February 29 has no date next year: its start fires again in four years, with its end.
    if let Ok(next_year) = start.with().year(start.year() + 1).build()
        && zone.wall(next_year) == Wall::Never
    {
        return None;
    }
    Some((start, end))
}

/// The stretches of one floor, from the steps.
fn segments(
    steps: &[(Timestamp, u32)],
    until: Timestamp,
    now: Timestamp,
) -> Result<Vec<Segment>, CompileError> {
    match steps.first() {
        Some((first, _)) if *first <= now => {}
        _ => return Err(CompileError::NoFloorAt(now)),
    }
    let mut segments = Vec::new();
    for (i, &(start, floor)) in steps.iter().enumerate() {
        let end = steps.get(i + 1).map_or(until, |next| next.0);
        if end < start {
            return Err(CompileError::Unordered(end));
        }
        if end > start {
            segments.push(Segment { start, end, floor });
        }
    }
    Ok(segments)
}

/// `minute hour days month *` for the given instants (all in one month, all at `time`).
fn spec(time: (i8, i8), at: &[civil::DateTime]) -> String {
    let mut days: Vec<i8> = at.iter().map(|d| d.day()).collect();
    days.sort_unstable();
    days.dedup();
    let month = at.first().map_or(1, |d| d.month());
    format!("{} {} {} {} *", time.1, time.0, day_list(&days), month)
}

/// Days as cron writes them: runs as ranges, `1-5,7,9-12`.
fn day_list(days: &[i8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < days.len() {
        let mut j = i;
        while j + 1 < days.len() && days[j + 1] == days[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            let _ = write!(out, "{}-{}", days[i], days[j]);
        } else {
            let _ = write!(out, "{}", days[i]);
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse::<civil::DateTime>().unwrap().to_zoned(berlin()).unwrap().timestamp()
    }

    #[test]
    fn runs_of_days_are_ranges() {
        assert_eq!(day_list(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(day_list(&[31]), "31");
    }

    #[test]
    fn daily_hours_over_a_range_share_one_trigger_per_month() {
        // Oktoberfest-like: 8 from 10:00 to 23:30, Sep 19 to Oct 4, otherwise 2.
        let mut steps = vec![(at("2026-09-01T00:00"), 2)];
        let mut day = civil::date(2026, 9, 19);
        while day <= civil::date(2026, 10, 4) {
            steps.push((day.at(10, 0, 0, 0).to_zoned(berlin()).unwrap().timestamp(), 8));
            steps.push((day.at(23, 30, 0, 0).to_zoned(berlin()).unwrap().timestamp(), 2));
            day = day.tomorrow().unwrap();
        }
        let now = at("2026-09-10T12:00");
        let compiled =
            compile(&steps, now + HORIZON + SignedDuration::from_hours(24), now, &berlin()).unwrap();
        assert_eq!(compiled.min_replica_count, 2);
        let specs: Vec<(&str, &str)> =
            compiled.triggers.iter().map(|t| (t.start.as_str(), t.end.as_str())).collect();
        assert_eq!(specs, [("0 10 19-30 9 *", "30 23 19-30 9 *"), ("0 10 1-4 10 *", "30 23 1-4 10 *")]);
        assert!(compiled.triggers.iter().all(|t| t.timezone == "Europe/Berlin" && t.desired_replicas == 8));
        assert_eq!(compiled.next_change, now + HORIZON);
    }

    #[test]
    fn a_boundary_in_the_repeated_hour_is_written_in_utc() {
        // 2026-10-25: 02:00-03:00 happens twice in Berlin. A floor of 5 from the second 02:30
        // (01:30 UTC) to 04:00 local.
        let second = "2026-10-25T01:30:00Z".parse::<Timestamp>().unwrap();
        let steps = vec![(at("2026-10-20T00:00"), 1), (second, 5), (at("2026-10-25T04:00"), 1)];
        let now = at("2026-10-21T00:00");
        let compiled =
            compile(&steps, now + HORIZON + SignedDuration::from_hours(1), now, &berlin()).unwrap();
        assert_eq!(
            compiled.triggers,
            [CronTrigger {
                start: "30 1 25 10 *".into(),
                end: "0 3 25 10 *".into(),
                timezone: FALLBACK_ZONES[0].into(),
                desired_replicas: 5
            }]
        );
    }

    #[test]
    fn a_start_the_clocks_skip_next_year_is_written_in_utc() {
        // 2028-03-25 02:00-07:11 at 5: in 2029, March 25 is the spring-forward day and 02:00 does
        // not exist in Berlin, so a Berlin trigger's next start after 07:11 would be in 2030, after
        // its next end in 2029: active all year.
        let steps =
            vec![(at("2028-03-20T00:00"), 1), (at("2028-03-25T02:00"), 5), (at("2028-03-25T07:11"), 1)];
        let now = at("2028-03-21T00:00");
        let compiled =
            compile(&steps, now + HORIZON + SignedDuration::from_hours(1), now, &berlin()).unwrap();
        assert_eq!(
            compiled.triggers,
            [CronTrigger {
                start: "0 1 25 3 *".into(),
                end: "11 6 25 3 *".into(),
                timezone: FALLBACK_ZONES[0].into(),
                desired_replicas: 5
            }]
        );
        // The same hours a day earlier exist in 2029, and stay in the calendar's zone.
        let steps =
            vec![(at("2028-03-20T00:00"), 1), (at("2028-03-24T02:00"), 5), (at("2028-03-24T07:11"), 1)];
        let compiled =
            compile(&steps, now + HORIZON + SignedDuration::from_hours(1), now, &berlin()).unwrap();
        assert_eq!(compiled.triggers[0].timezone, "Europe/Berlin");
        assert_eq!(compiled.triggers[0].start, "0 2 24 3 *");
    }

    #[test]
    fn steps_that_do_not_reach_the_horizon_are_refused() {
        let now = at("2026-01-01T00:00");
        let steps = [(now, 1)];
        assert!(matches!(
            compile(&steps, now + SignedDuration::from_hours(24), now, &berlin()),
            Err(CompileError::TooShort { .. })
        ));
        assert!(matches!(
            compile(&steps, now + HORIZON, now - SignedDuration::from_hours(1), &berlin()),
            Err(CompileError::NoFloorAt(_))
        ));
    }
}
