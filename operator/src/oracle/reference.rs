//! Slow, separately written references for `Schedule::next`, used only by tests.
//!
//! - [`literal_next`]: spec.go's `Next` line by line, one step per iteration, on jiff's civil types
//!   and a literal copy of Go's `time.Date` zone lookup (with its `[start, end)` check). It shares no
//!   code with `clock` or with `next`'s shortcuts.
//! - [`scan_next`]: the plain cron rule, minute by minute: the first whole minute after `after`
//!   whose wall-clock month, day and time match, within robfig's five years. It is what robfig
//!   computes wherever the zone's offset changes by whole hours away from midnight (UTC,
//!   Europe/Berlin, America/New_York); around Lord Howe's half-hour shift robfig's walk differs.

use jiff::civil::{DateTime, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

use super::Schedule;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).expect("reference instants stay in jiff's range")
}

fn wall(tz: &TimeZone, secs: i64) -> DateTime {
    tz.to_datetime(ts(secs))
}

/// Go's `time.Date(year, month, day, hour, min, sec, 0, loc)`, copied from time.go.
fn go_date(tz: &TimeZone, year: i64, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> i64 {
    let m = month - 1;
    let year = year + m.div_euclid(12);
    let month = m.rem_euclid(12) + 1;
    let first = date(year as i16, month as i8, 1).at(0, 0, 0, 0);
    let span = Span::new().days(day - 1).hours(hour).minutes(min).seconds(sec);
    let dt = first.checked_add(span).expect("reference dates stay in range");
    let unix = TimeZone::UTC.to_timestamp(dt).expect("in range").as_second();
    // "Look for zone offset for expected time, so we can adjust to UTC."
    let offset = i64::from(tz.to_offset(ts(unix)).seconds());
    let start = tz.preceding(ts(unix + 1)).next().map_or(i64::MIN, |t| t.timestamp().as_second());
    let end = tz.following(ts(unix)).next().map_or(i64::MAX, |t| t.timestamp().as_second());
    let mut offset = offset;
    if offset != 0 {
        let utc = unix - offset;
        // "If utc is valid for the time zone we found, then we have the right offset.
        // If not, we get the correct offset by looking up utc in the location."
        if utc < start || utc >= end {
            offset = i64::from(tz.to_offset(ts(utc)).seconds());
        }
    }
    unix - offset
}

fn go_add_date(tz: &TimeZone, secs: i64, months: i64, days: i64) -> i64 {
    let w = wall(tz, secs);
    go_date(
        tz,
        i64::from(w.year()),
        i64::from(w.month()) + months,
        i64::from(w.day()) + days,
        i64::from(w.hour()),
        i64::from(w.minute()),
        i64::from(w.second()),
    )
}

/// spec.go `SpecSchedule.Next`, transliterated.
pub(crate) fn literal_next(s: &Schedule, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let tz = s.own_time_zone().unwrap_or(tz);
    let mut t = after.as_second() + 1;
    if after.subsec_nanosecond() < 0 {
        t -= 1;
    }
    let mut added = false;
    let year_limit = wall(tz, t).year() + 5;
    'wrap: loop {
        if wall(tz, t).year() > year_limit {
            return None;
        }
        while !s.has_month(wall(tz, t).month() as u32) {
            if !added {
                added = true;
                let w = wall(tz, t);
                t = go_date(tz, w.year().into(), w.month().into(), 1, 0, 0, 0);
            }
            t = go_add_date(tz, t, 1, 0);
            if wall(tz, t).month() == 1 {
                continue 'wrap;
            }
        }
        loop {
            let w = wall(tz, t);
            if s.day_matches(w.day() as u32, w.weekday().to_sunday_zero_offset() as u32) {
                break;
            }
            if !added {
                added = true;
                t = go_date(tz, w.year().into(), w.month().into(), w.day().into(), 0, 0, 0);
            }
            t = go_add_date(tz, t, 0, 1);
            let hour = i64::from(wall(tz, t).hour());
            if hour != 0 {
                if hour > 12 {
                    t += (24 - hour) * 3600;
                } else {
                    t -= hour * 3600;
                }
            }
            if wall(tz, t).day() == 1 {
                continue 'wrap;
            }
        }
        while !s.has_hour(wall(tz, t).hour() as u32) {
            if !added {
                added = true;
                let w = wall(tz, t);
                t = go_date(tz, w.year().into(), w.month().into(), w.day().into(), w.hour().into(), 0, 0);
            }
            t += 3600;
            if wall(tz, t).hour() == 0 {
                continue 'wrap;
            }
        }
        while !s.has_minute(wall(tz, t).minute() as u32) {
            if !added {
                added = true;
                t -= t.rem_euclid(60);
            }
            t += 60;
            if wall(tz, t).minute() == 0 {
                continue 'wrap;
            }
        }
        // The seconds field is always {0} in KEDA's format.
        while wall(tz, t).second() != 0 {
            added = true;
            t += 1;
            if wall(tz, t).second() == 0 {
                continue 'wrap;
            }
        }
        return Some(ts(t));
    }
}

/// Vixie cron's day rule as robfig words it: "If both are restricted, then only one needs to
/// match. However, if one has a star, then both need to match."
fn plain_day_rule(s: &Schedule, w: DateTime) -> bool {
    let (dom, dom_star, dow, dow_star) = s.day_fields();
    let in_dom = dom >> w.day() & 1 == 1;
    let in_dow = dow >> w.weekday().to_sunday_zero_offset() & 1 == 1;
    if dom_star || dow_star { in_dom && in_dow } else { in_dom || in_dow }
}

/// The plain rule, scanned minute by minute up to `horizon` after `after`; `Err(())` when nothing
/// matched within the horizon (and robfig's limit was not reached either).
pub(crate) fn scan_next(
    s: &Schedule,
    after: Timestamp,
    tz: &TimeZone,
    horizon: SignedDuration,
) -> Result<Option<Timestamp>, ()> {
    let tz = s.own_time_zone().unwrap_or(tz);
    let first_second = after.as_second() + 1 - i64::from(after.subsec_nanosecond() < 0);
    let year_limit = wall(tz, first_second).year() + 5;
    let end = after.as_second() + horizon.as_secs();
    let mut m = first_second + (60 - first_second.rem_euclid(60)) % 60;
    while m <= end {
        let w = wall(tz, m);
        if w.year() > year_limit {
            return Ok(None);
        }
        let day_ok = s.has_month(w.month() as u32) && plain_day_rule(s, w);
        if !day_ok {
            // Skip towards the next local day, stopping three hours short (no offset change is
            // that large), then go on minute by minute.
            let to_midnight = 24 * 60 - (i64::from(w.hour()) * 60 + i64::from(w.minute()));
            m += 60 * (to_midnight - 180).max(1);
            continue;
        }
        if s.has_hour(w.hour() as u32) && s.has_minute(w.minute() as u32) {
            return Ok(Some(ts(m)));
        }
        m += 60;
    }
    Err(())
}
