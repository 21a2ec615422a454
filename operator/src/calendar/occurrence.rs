//! Windows and dark periods as intervals of instants, for the timeline: each occurrence of the
//! day rule placed in the calendar's zone, per date when there are daily hours, pre-warm
//! subtracted from each start.
//!
//! [`floor`](super::floor) answers the same question for one instant on its own, from the
//! definitions; the property tests hold the two against each other.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::days::{DaySpan, add_days};
use super::{DarkPeriod, Hours, PreWarm, TimeOfDay, Window};

/// `[start, end)`; never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// The window's intervals that reach into `[from, to)`. Some may start before `from` or end after
/// `to`, and an occurrence that is not wholly inside may be cut at a point outside `[from, to)`:
/// within it they are exact.
pub fn window_intervals(window: &Window, tz: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Interval> {
    let (first, last) = local_days(tz, from, to, window.pre_warm);
    let spans = window.days.occurrences(first, last);
    place(&spans, window.hours, window.pre_warm, tz, (first, last), (from, to))
}

/// As [`window_intervals`], for a dark period (no pre-warm).
pub fn dark_intervals(dark: &DarkPeriod, tz: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Interval> {
    let (first, last) = local_days(tz, from, to, PreWarm::NONE);
    let spans = dark.days.occurrences(first, last);
    place(&spans, dark.hours, PreWarm::NONE, tz, (first, last), (from, to))
}

/// The local dates whose occurrences can reach into `[from, to)`, with room to spare: a date's
/// hours end at most two days after it starts (crossing midnight, plus an hour of DST), and
/// pre-warm reaches back at most its length in days.
fn local_days(tz: &TimeZone, from: Timestamp, to: Timestamp, pre_warm: PreWarm) -> (Date, Date) {
    let margin = pre_warm.days_ceil() + 2;
    let first = tz.to_datetime(from).date();
    let last = tz.to_datetime(to).date();
    (add_days(first, -margin).unwrap_or(Date::MIN), add_days(last, margin).unwrap_or(Date::MAX))
}

fn place(
    spans: &[DaySpan],
    hours: Option<Hours>,
    pre_warm: PreWarm,
    tz: &TimeZone,
    (first, last): (Date, Date),
    (from, to): (Timestamp, Timestamp),
) -> Vec<Interval> {
    let mut intervals = Vec::new();
    let mut push = |start: Option<Timestamp>, end: Option<Timestamp>| {
        // An instant past what a timestamp holds (the years -9999 and 9999): left out, as floor does.
        let (Some(start), Some(end)) = (start, end) else { return };
        let start = start.checked_sub(pre_warm.duration()).ok();
        if let Some(start) = start
            && start < end
            && start < to
            && end > from
        {
            intervals.push(Interval { start, end });
        }
    };
    for span in spans {
        match hours {
            None => {
                let end = add_days(span.last, 1).and_then(|next| TimeOfDay::MIDNIGHT.on(next, tz));
                push(TimeOfDay::MIDNIGHT.on(span.first, tz), end);
            }
            Some(hours) => {
                // Only the dates near [from, to) matter; a season can be hundreds of days long.
                let mut date = span.first.max(first);
                while date <= span.last.min(last) {
                    let end_date = if hours.crosses_midnight() { add_days(date, 1) } else { Some(date) };
                    push(hours.from().on(date, tz), end_date.and_then(|end| hours.to().on(end, tz)));
                    let Some(next) = add_days(date, 1) else { break };
                    date = next;
                }
            }
        }
    }
    intervals
}

/// `at + days`, saturating at the ends of time.
pub(crate) fn after_days(at: Timestamp, days: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_hours(24 * days)).unwrap_or(Timestamp::MAX)
}
