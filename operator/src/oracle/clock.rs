//! Go's `time` package, as far as robfig/cron's `SpecSchedule.Next` uses it, on Unix seconds.
//!
//! robfig's loop works on wall-clock time in a location and moves with three kinds of step whose
//! DST behaviour differs: `t.Add(d)` moves the instant, `t.AddDate(..)` and `time.Date(..)` go through
//! the wall clock and Go's own rule for local times that do not exist or exist twice. Reproducing the
//! oracle exactly means reproducing those rules, not jiff's (or anybody's) disambiguation:
//!
//! - `time.Date` (go/src/time/time.go) normalises overflowing fields (October 32 is November 1), reads
//!   the wall time as if it were UTC (`unix`), looks up the zone offset *at that instant*, and keeps it
//!   when `unix - offset` falls in the same zone period, else takes the offset at `unix - offset`. Both
//!   branches give `unix - offset_at(unix - offset_at(unix))`. In a gap this is not always "the first
//!   instant after the gap": Europe/Berlin 02:30 on the spring day becomes 03:30 CEST, but
//!   America/New_York 02:30 becomes 01:30 EST; in a repeated hour Berlin picks the second (CET)
//!   occurrence and New York the first (EDT). Which one depends on the sign of the offset.
//! - `AddDate(y, m, d)` is `Date(year+y, month+m, day+d, hour, min, sec, nsec, loc)`.
//! - `Truncate(time.Minute)` works on the absolute time, not the wall clock; the zero time is a whole
//!   number of minutes before the Unix epoch, so it is a floor of Unix seconds.
//!
//! Offsets come from jiff's bundled tz database; the oracle is as right as that data (the same IANA
//! rules KEDA's Go runtime loads).

use std::cell::Cell;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub(crate) const SECONDS_PER_DAY: i64 = 86_400;

/// The wall-clock fields of an instant in a location (Go's `t.Date()`, `t.Clock()`, `t.Weekday()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday, as Go's `time.Weekday` and cron's day-of-week field.
    pub weekday: u32,
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (month 1..=12, any day >= 1 adds on).
/// Howard Hinnant's `days_from_civil`, exact for all i64 years that do not overflow.
pub(crate) fn days_from_civil(year: i64, month: u32, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(crate) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Wall-clock fields of `local` seconds (Unix seconds plus the zone offset).
fn civil_of_local(local: i64) -> Civil {
    let days = local.div_euclid(SECONDS_PER_DAY);
    let secs = local.rem_euclid(SECONDS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u32,
    }
}

/// A span of instants `[start, end)` with one UTC offset.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: i64,
    end: i64,
    offset: i64,
}

impl Segment {
    fn contains(&self, secs: i64) -> bool {
        self.start <= secs && secs < self.end
    }
}

/// A time zone with its offset periods from 2000 to 2100 laid out for binary search: the oracle
/// looks offsets up several times per step, and a tz database lookup costs far more than that.
/// Cloning is cheap: the table is shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    tz: TimeZone,
    /// Period `i` is `[starts[i], starts[i + 1])` (the last one ends at `end`), with `offsets[i]`.
    starts: Arc<[i64]>,
    offsets: Arc<[i64]>,
    end: i64,
    /// Every local midnight in the table's range is one plain wall time: `time.Date(y, m, d, 0, 0, 0)`
    /// lands on an instant whose wall clock reads exactly that (no gap or fold at midnight).
    midnights_regular: bool,
}

/// 2000-01-01 and 2100-01-01: calendars are about now; anything else takes the slow path. (From
/// 1970, Lord Howe's early rules would make its midnights irregular for the whole table.)
const TABLE_FROM: i64 = 946_684_800;
const TABLE_TO: i64 = 4_102_444_800;

impl Zone {
    pub fn new(tz: TimeZone) -> Zone {
        let first = Clock::new(&tz).lookup(TABLE_FROM);
        let (mut starts, mut offsets) = (vec![first.start], vec![first.offset]);
        let mut end = first.end;
        while end <= TABLE_TO {
            let seg = Clock::new(&tz).lookup(end);
            starts.push(seg.start);
            offsets.push(seg.offset);
            end = seg.end;
        }
        let mut zone =
            Zone { tz, starts: starts.into(), offsets: offsets.into(), end, midnights_regular: false };
        zone.midnights_regular = zone.check_midnights();
        zone
    }

    /// Midnights more than two days from every offset change are plain (the offset is the same for
    /// longer than any offset is large); the ones near a change are checked one by one.
    fn check_midnights(&self) -> bool {
        let clock = Clock::with_table(self);
        self.starts.iter().skip(1).filter(|&&t| t > TABLE_FROM && t < TABLE_TO).all(|&t| {
            let local_day = (t + clock.offset(t)).div_euclid(SECONDS_PER_DAY);
            (local_day - 3..=local_day + 3).all(|day| {
                let (y, m, d) = civil_from_days(day);
                let c = clock.civil(clock.date(y, i64::from(m), i64::from(d), 0, 0, 0));
                (c.year, c.month, c.day, c.hour, c.minute, c.second) == (y, m, d, 0, 0, 0)
            })
        })
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    fn segment(&self, secs: i64) -> Option<Segment> {
        if secs < self.starts[0] || secs >= self.end {
            return None;
        }
        let i = self.starts.partition_point(|&s| s <= secs) - 1;
        let end = self.starts.get(i + 1).copied().unwrap_or(self.end);
        Some(Segment { start: self.starts[i], end, offset: self.offsets[i] })
    }
}

/// Go's `time` operations in one location. Remembers the last two offset periods it looked up (one
/// `next` call mostly stays in one or two), so the inner loops cost a comparison, not a lookup.
pub(crate) struct Clock<'a> {
    tz: &'a TimeZone,
    table: Option<&'a Zone>,
    cache: Cell<[Option<Segment>; 2]>,
}

impl<'a> Clock<'a> {
    pub(crate) fn new(tz: &'a TimeZone) -> Self {
        Clock { tz, table: None, cache: Cell::new([None, None]) }
    }

    pub(crate) fn with_table(zone: &'a Zone) -> Self {
        Clock { tz: &zone.tz, table: Some(zone), cache: Cell::new([None, None]) }
    }

    /// The offset period containing `secs`.
    fn segment(&self, secs: i64) -> Segment {
        let mut cache = self.cache.get();
        for seg in cache.iter().flatten() {
            if seg.contains(secs) {
                return *seg;
            }
        }
        let seg = self.table.and_then(|z| z.segment(secs)).unwrap_or_else(|| self.lookup(secs));
        cache[1] = cache[0];
        cache[0] = Some(seg);
        self.cache.set(cache);
        seg
    }

    fn lookup(&self, secs: i64) -> Segment {
        // Instants outside jiff's range take the offset at its edge: the search gives up long
        // before (five years), so this only keeps extreme inputs from panicking.
        let ts =
            Timestamp::from_second(secs).unwrap_or(if secs < 0 { Timestamp::MIN } else { Timestamp::MAX });
        let offset = i64::from(self.tz.to_offset(ts).seconds());
        // `preceding` yields transitions strictly before its argument: one second later includes
        // a transition exactly at `secs`.
        let after = Timestamp::from_second(secs.saturating_add(1)).unwrap_or(ts);
        let start = self.tz.preceding(after).next().map_or(i64::MIN, |t| t.timestamp().as_second());
        let end = self.tz.following(ts).next().map_or(i64::MAX, |t| t.timestamp().as_second());
        Segment { start, end, offset }
    }

    pub(crate) fn offset(&self, secs: i64) -> i64 {
        self.segment(secs).offset
    }

    /// Go's `t.In(loc)` field accessors.
    pub(crate) fn civil(&self, secs: i64) -> Civil {
        civil_of_local(secs + self.offset(secs))
    }

    /// Go's `time.Date(year, month, day, hour, min, sec, 0, loc)`, fields possibly out of range.
    pub(crate) fn date(&self, year: i64, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> i64 {
        // Normalise the month into the year, then everything else is a plain count of seconds
        // from the first of that month, which days_from_civil handles for any day count.
        let m0 = month - 1;
        let year = year + m0.div_euclid(12);
        let month = (m0.rem_euclid(12) + 1) as u32;
        let wall =
            (days_from_civil(year, month, 1) + (day - 1)) * SECONDS_PER_DAY + hour * 3600 + min * 60 + sec;
        // time.go, Date: "Look for zone offset for expected time, so we can adjust to UTC."
        let guess = self.offset(wall);
        wall - self.offset(wall - guess)
    }

    /// Go's `t.AddDate(years, months, days)`.
    pub(crate) fn add_date(&self, secs: i64, years: i64, months: i64, days: i64) -> i64 {
        let c = self.civil(secs);
        self.date(
            c.year + years,
            i64::from(c.month) + months,
            i64::from(c.day) + days,
            i64::from(c.hour),
            i64::from(c.minute),
            i64::from(c.second),
        )
    }

    /// True when `time.Date` of a midnight between `from` and `to` is known to give exactly that
    /// midnight, so stepping from midnight to midnight can be one step.
    pub(crate) fn plain_midnights(&self, from: i64, to: i64) -> bool {
        self.table.is_some_and(|z| z.midnights_regular) && TABLE_FROM <= from && to < TABLE_TO
    }

    /// True when every instant in `[from, to]` has the offset of `from`, with `margin` seconds to
    /// spare on both sides. Within such a span `Add`, `AddDate` and `Date` are plain arithmetic, which
    /// is what lets `next` skip many steps at once without changing its result.
    pub(crate) fn steady(&self, from: i64, to: i64, margin: i64) -> bool {
        let seg = self.segment(from);
        seg.start <= from.saturating_sub(margin) && to.saturating_add(margin) < seg.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn civil_round_trips_over_centuries() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, i64::from(d)), days);
            assert!(d >= 1 && d <= days_in_month(y, m));
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2028, 2, 29)), (2028, 2, 29));
        assert_eq!(civil_from_days(days_from_civil(2027, 2, 29)), (2027, 3, 1));
    }

    #[test]
    fn weekday_counts_from_sunday() {
        let utc = TimeZone::UTC;
        let clock = Clock::new(&utc);
        // 2026-12-06 is a Sunday.
        assert_eq!(clock.civil(ts("2026-12-06T12:00:00Z")).weekday, 0);
        assert_eq!(clock.civil(ts("2026-12-05T12:00:00Z")).weekday, 6);
    }

    #[test]
    fn date_normalises_like_go() {
        let utc = TimeZone::UTC;
        let clock = Clock::new(&utc);
        // "October 32 converts to November 1" (time.Date's documentation).
        assert_eq!(clock.date(2026, 10, 32, 0, 0, 0), ts("2026-11-01T00:00:00Z"));
        assert_eq!(clock.date(2026, 13, 1, 0, 0, 0), ts("2027-01-01T00:00:00Z"));
        assert_eq!(clock.date(2026, 2, 31, 0, 0, 0), ts("2026-03-03T00:00:00Z"));
        assert_eq!(clock.date(2028, 2, 31, 0, 0, 0), ts("2028-03-02T00:00:00Z"));
        assert_eq!(clock.date(2026, 1, 1, 24, 0, 0), ts("2026-01-02T00:00:00Z"));
        // Jan 31 + 1 month = "Feb 31" = Mar 3: AddDate does not clamp.
        assert_eq!(clock.add_date(ts("2026-01-31T05:00:00Z"), 0, 1, 0), ts("2026-03-03T05:00:00Z"));
    }

    #[test]
    fn date_in_a_gap_depends_on_the_offset_sign_as_in_go() {
        // Europe/Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST. 02:30 becomes 03:30 CEST (01:30Z).
        let berlin = tz("Europe/Berlin");
        let clock = Clock::new(&berlin);
        assert_eq!(clock.date(2026, 3, 29, 2, 30, 0), ts("2026-03-29T01:30:00Z"));
        // America/New_York, 2026-03-08: 02:00 EST -> 03:00 EDT. 02:30 becomes 01:30 EST (06:30Z).
        let ny = tz("America/New_York");
        let clock = Clock::new(&ny);
        assert_eq!(clock.date(2026, 3, 8, 2, 30, 0), ts("2026-03-08T06:30:00Z"));
    }

    #[test]
    fn date_in_a_repeated_hour_depends_on_the_offset_sign_as_in_go() {
        // Europe/Berlin, 2026-10-25: 03:00 CEST -> 02:00 CET. 02:30 is the second one, CET (01:30Z).
        let berlin = tz("Europe/Berlin");
        let clock = Clock::new(&berlin);
        assert_eq!(clock.date(2026, 10, 25, 2, 30, 0), ts("2026-10-25T01:30:00Z"));
        // America/New_York, 2026-11-01: 02:00 EDT -> 01:00 EST. 01:30 is the first one, EDT (05:30Z).
        let ny = tz("America/New_York");
        let clock = Clock::new(&ny);
        assert_eq!(clock.date(2026, 11, 1, 1, 30, 0), ts("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn the_table_agrees_with_the_tz_database() {
        for name in ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"] {
            let zone = Zone::new(tz(name));
            let slow = Clock::new(zone.time_zone());
            let fast = Clock::with_table(&zone);
            // Every 7h13m from 1960 to 2110, across both ends of the table.
            for secs in (-315_619_200..4_417_977_600i64).step_by(25_980) {
                assert_eq!(fast.offset(secs), slow.offset(secs), "{name} at {secs}");
                assert_eq!(fast.civil(secs), slow.civil(secs), "{name} at {secs}");
            }
            for t in zone.time_zone().following(Timestamp::UNIX_EPOCH).take(40) {
                let secs = t.timestamp().as_second();
                for s in [secs - 1, secs, secs + 1] {
                    assert_eq!(fast.offset(s), slow.offset(s), "{name} at {s}");
                }
            }
        }
    }

    #[test]
    fn midnight_regularity() {
        for name in ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"] {
            assert!(Zone::new(tz(name)).midnights_regular, "{name}");
        }
        // Sao Paulo (until 2019) and Havana change their clocks at midnight.
        for name in ["America/Sao_Paulo", "America/Havana"] {
            assert!(!Zone::new(tz(name)).midnights_regular, "{name}");
        }
    }

    #[test]
    fn offsets_switch_exactly_at_transitions() {
        let berlin = tz("Europe/Berlin");
        let clock = Clock::new(&berlin);
        let t = ts("2026-03-29T01:00:00Z");
        assert_eq!(clock.offset(t - 1), 3600);
        assert_eq!(clock.offset(t), 7200);
        assert_eq!(clock.civil(t).hour, 3);
        assert_eq!(clock.civil(t - 1).hour, 1);
        assert!(!clock.steady(t - 10, t, 0));
        assert!(clock.steady(t, t + 1000, 0));
        assert!(!clock.steady(t, t + 1000, 1));
    }
}
