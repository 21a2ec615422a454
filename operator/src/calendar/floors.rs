//! The floor a component runs at, at an instant and over time: the specification the compiled
//! KEDA triggers and HPA floors are tested against.
//!
//! `floor(t) = min(max(baseline min, active window floors), lowest active dark floor)`, capped at
//! the baseline max; windows and darks from every calendar of the profile take part alike.
//! [`floor`] evaluates that at one instant straight from the definitions; [`timeline`] computes the
//! whole step function from occurrence boundaries. They share only the day rules and the placing
//! of a local time in a zone, so each checks the other.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::days::{DaySpan, add_days};
use super::occurrence::{self, Interval, after_days};
use super::{Baseline, Calendar, Hours, PreWarm, TimeOfDay};
use crate::component::Component;

/// How far [`next_transition`] looks: more than a year, so every yearly rule has come round once.
pub const HORIZON_DAYS: i64 = 400;

/// The floor of `component` in `territory` at `at`; None when the profile has no baseline for
/// the component (it is not scaled).
pub fn floor(
    calendars: &[Calendar],
    baseline: &Baseline,
    territory: &str,
    component: Component,
    at: Timestamp,
) -> Option<u32> {
    let replicas = baseline.get(component)?;
    let mut seasonal = replicas.min();
    let mut dark: Option<u32> = None;
    for calendar in calendars {
        let tz = &calendar.timezone;
        for window in &calendar.windows {
            if let Some(floor) = window.floor_for(territory, component) {
                let spans = |first, last| window.days.occurrences(first, last);
                if is_active(spans, window.hours, window.pre_warm, tz, at) {
                    seasonal = seasonal.max(floor);
                }
            }
        }
        for period in &calendar.darks {
            if let Some(floor) = period.floor_for(territory, component) {
                let spans = |first, last| period.days.occurrences(first, last);
                if is_active(spans, period.hours, PreWarm::NONE, tz, at) {
                    dark = Some(dark.map_or(floor, |lowest| lowest.min(floor)));
                }
            }
        }
    }
    let capped = dark.map_or(seasonal, |dark| seasonal.min(dark));
    Some(capped.min(replicas.max()))
}

/// Whether `at` lies in one of the occurrences, each placed in time as the calendar defines it.
/// `spans(first, last)` gives the occurrences that share a day with `first..=last`.
fn is_active(
    spans: impl Fn(Date, Date) -> Vec<DaySpan>,
    hours: Option<Hours>,
    pre_warm: PreWarm,
    tz: &TimeZone,
    at: Timestamp,
) -> bool {
    // The dates whose occurrences can hold `at`: hours end at most two days after their date
    // starts (crossing midnight, an hour of DST), and pre-warm lets a later date start earlier.
    let today = tz.to_datetime(at).date();
    let first = add_days(today, -2).unwrap_or(Date::MIN);
    let last = add_days(today, pre_warm.days_ceil() + 2).unwrap_or(Date::MAX);
    let holds = |start: Option<Timestamp>, end: Option<Timestamp>| match (start, end) {
        (Some(start), Some(end)) => {
            start.checked_sub(pre_warm.duration()).is_ok_and(|start| start <= at) && at < end
        }
        _ => false,
    };
    spans(first, last).into_iter().any(|span| match hours {
        // Whole days: from the first date's midnight to the midnight after the last.
        None => holds(
            TimeOfDay::MIDNIGHT.on(span.first, tz),
            add_days(span.last, 1).and_then(|next| TimeOfDay::MIDNIGHT.on(next, tz)),
        ),
        // Each date of the occurrence near `at`, with its own hours.
        Some(hours) => {
            let mut dates = Vec::new();
            let mut date = span.first.max(first);
            while date <= span.last.min(last) {
                dates.push(date);
                match add_days(date, 1) {
                    Some(next) => date = next,
                    None => break,
                }
            }
            dates.into_iter().any(|date| {
                let end_date = if hours.crosses_midnight() { add_days(date, 1) } else { Some(date) };
                holds(hours.from().on(date, tz), end_date.and_then(|end| hours.to().on(end, tz)))
            })
        }
    })
}

/// The floor of `component` in `territory` over `[from, to)` as a step function: the value at
/// `from`, then each instant where it changes and its new value. Strictly increasing instants, each
/// a change. Empty when the component has no baseline or `from >= to`.
pub fn timeline(
    calendars: &[Calendar],
    baseline: &Baseline,
    territory: &str,
    component: Component,
    from: Timestamp,
    to: Timestamp,
) -> Vec<(Timestamp, u32)> {
    let Some(replicas) = baseline.get(component) else { return Vec::new() };
    if from >= to {
        return Vec::new();
    }
    let mut edges = Vec::new();
    for calendar in calendars {
        let tz = &calendar.timezone;
        for window in &calendar.windows {
            if let Some(floor) = window.floor_for(territory, component) {
                let intervals = occurrence::window_intervals(window, tz, from, to);
                edges.extend(
                    intervals.into_iter().flat_map(|interval| Edge::pair(interval, Kind::Window, floor)),
                );
            }
        }
        for period in &calendar.darks {
            if let Some(floor) = period.floor_for(territory, component) {
                let intervals = occurrence::dark_intervals(period, tz, from, to);
                edges.extend(
                    intervals.into_iter().flat_map(|interval| Edge::pair(interval, Kind::Dark, floor)),
                );
            }
        }
    }
    edges.sort_by_key(|edge| edge.at);

    // Floors of the intervals active now, counted, so overlapping intervals come and go freely.
    let mut active = Active::default();
    let value = |active: &Active| {
        let seasonal =
            active.windows.keys().next_back().map_or(replicas.min(), |&top| top.max(replicas.min()));
        let capped = active.darks.keys().next().map_or(seasonal, |&dark| seasonal.min(dark));
        capped.min(replicas.max())
    };
    let mut edges = edges.into_iter().peekable();
    while let Some(edge) = edges.next_if(|edge| edge.at <= from) {
        active.apply(edge);
    }
    let mut steps = vec![(from, value(&active))];
    while let Some(edge) = edges.next() {
        if edge.at >= to {
            break;
        }
        let at = edge.at;
        active.apply(edge);
        while let Some(edge) = edges.next_if(|edge| edge.at == at) {
            active.apply(edge);
        }
        let now = value(&active);
        if steps.last().is_some_and(|&(_, before)| before != now) {
            steps.push((at, now));
        }
    }
    steps
}

/// The first instant after `after` at which the floor changes, within [`HORIZON_DAYS`]; None if it
/// stays as it is that long (or the component has no baseline). The controller requeues then.
pub fn next_transition(
    calendars: &[Calendar],
    baseline: &Baseline,
    territory: &str,
    component: Component,
    after: Timestamp,
) -> Option<Timestamp> {
    // Most calendars change within a day or two (daily hours, nights), so look close first and
    // widen: the cost of a timeline grows with its span.
    let mut days = 2;
    loop {
        let horizon = after_days(after, days.min(HORIZON_DAYS));
        let steps = timeline(calendars, baseline, territory, component, after, horizon);
        if let Some(&(at, _)) = steps.get(1) {
            return Some(at);
        }
        if steps.is_empty() || days >= HORIZON_DAYS {
            return None;
        }
        days *= 8;
    }
}

/// The names of the calendar's windows with an occurrence (pre-warm included) at `at`, whatever
/// they cover, in calendar order: what the status shows as active.
pub fn active_windows(calendar: &Calendar, at: Timestamp) -> Vec<&str> {
    let tz = &calendar.timezone;
    calendar
        .windows
        .iter()
        .filter(|window| {
            let spans = |first, last| window.days.occurrences(first, last);
            is_active(spans, window.hours, window.pre_warm, tz, at)
        })
        .map(|window| window.name.as_str())
        .collect()
}

/// As [`active_windows`], for the dark periods.
pub fn active_dark_periods(calendar: &Calendar, at: Timestamp) -> Vec<&str> {
    let tz = &calendar.timezone;
    calendar
        .darks
        .iter()
        .filter(|period| {
            let spans = |first, last| period.days.occurrences(first, last);
            is_active(spans, period.hours, PreWarm::NONE, tz, at)
        })
        .map(|period| period.name.as_str())
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Window,
    Dark,
}

/// An interval starting (`delta` 1) or ending (-1) at `at`.
#[derive(Debug, Clone, Copy)]
struct Edge {
    at: Timestamp,
    kind: Kind,
    floor: u32,
    delta: i8,
}

impl Edge {
    fn pair(interval: Interval, kind: Kind, floor: u32) -> [Edge; 2] {
        [
            Edge { at: interval.start, kind, floor, delta: 1 },
            Edge { at: interval.end, kind, floor, delta: -1 },
        ]
    }
}

#[derive(Debug, Default)]
struct Active {
    /// Floor -> how many active intervals ask for it.
    windows: BTreeMap<u32, u32>,
    darks: BTreeMap<u32, u32>,
}

impl Active {
    fn apply(&mut self, edge: Edge) {
        let counts = match edge.kind {
            Kind::Window => &mut self.windows,
            Kind::Dark => &mut self.darks,
        };
        if edge.delta > 0 {
            *counts.entry(edge.floor).or_default() += 1;
        } else if let Some(count) = counts.get_mut(&edge.floor) {
            // Every interval is non-empty, so its start sorts before its end and was counted.
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&edge.floor);
            }
        }
    }
}
