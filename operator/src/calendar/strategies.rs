//! Random calendars for the property tests: windows across month and year edges, Feb 29 bounds,
//! overlaps, hours crossing midnight and DST changes, pre-warm, Easter rules, dark periods with
//! holidays, several calendars in different zones.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::date;
use proptest::prelude::*;

use super::days::add_days;
use super::{
    Baseline, Calendar, DarkDays, DarkPeriod, DateRange, Days, EasterRange, Hours, MonthDay, PreWarm,
    Replicas, State, TimeOfDay, Window, time_zone,
};
use crate::component::Component;

pub(crate) const ZONES: [&str; 4] = ["Europe/Berlin", "UTC", "America/New_York", "Asia/Kolkata"];
pub(crate) const TERRITORIES: [&str; 3] = ["BY", "NW", "HH"];

pub(crate) fn any_month_day() -> impl Strategy<Value = MonthDay> {
    prop_oneof![
        (1i8..=12, 1i8..=31).prop_filter_map("exists", |(m, d)| MonthDay::new(m, d).ok()),
        prop::sample::select(vec!["01-01", "12-31", "02-28", "02-29", "03-01", "03-29", "10-25", "11-01"])
            .prop_map(|text| text.parse().unwrap()),
    ]
}

/// Days of 2025 to 2031, where the spans under test are.
pub(crate) fn any_days() -> impl Strategy<Value = Days> {
    let base = date(2025, 6, 1);
    prop_oneof![
        2 => (any_month_day(), any_month_day()).prop_map(|(from, to)| Days::Yearly { from, to }),
        1 => (0i64..2400, 0i64..400).prop_map(move |(start, length)| {
            let from = add_days(base, start).unwrap();
            Days::Dates(DateRange::new(from, add_days(from, length).unwrap()).unwrap())
        }),
        1 => (-365i64..=365, 0i64..120)
            .prop_map(|(from, length)| Days::Easter(EasterRange::new(from, (from + length).min(365)).unwrap())),
    ]
}

fn any_dark_days() -> impl Strategy<Value = DarkDays> {
    prop_oneof![
        Just(DarkDays::Every),
        any_days().prop_map(DarkDays::Days),
        prop::sample::select(vec![Some(State::By), Some(State::Nw), Some(State::Sn), None])
            .prop_map(DarkDays::Holidays),
    ]
}

/// Times of day, with those where clocks change in the zones above (02:00-03:00 in Berlin,
/// 01:00-02:00 and 02:00-03:00 in New York) and the ends of the day often.
fn any_time_of_day() -> impl Strategy<Value = TimeOfDay> {
    prop_oneof![
        prop::sample::select(vec![
            "00:00", "24:00", "01:30", "02:00", "02:30", "03:00", "23:59", "22:00", "06:00"
        ])
        .prop_map(|text| text.parse().unwrap()),
        (0u8..24, 0u8..60).prop_map(|(hour, minute)| TimeOfDay::new(hour, minute).unwrap()),
    ]
}

fn any_hours() -> impl Strategy<Value = Option<Hours>> {
    prop_oneof![
        1 => Just(None),
        2 => (any_time_of_day(), any_time_of_day()).prop_filter_map("starts before 24:00", |(from, to)| {
            Hours::new(from, to).ok().map(Some)
        }),
    ]
}

fn any_pre_warm() -> impl Strategy<Value = PreWarm> {
    prop_oneof![
        prop::sample::select(vec![0u32, 30, 90, 120, 180, 1440, 1500, 7 * 24 * 60]),
        0u32..=7 * 24 * 60,
    ]
    .prop_map(|minutes| PreWarm::from_minutes(minutes).unwrap())
}

fn any_territories() -> impl Strategy<Value = Option<BTreeSet<String>>> {
    prop::option::of(prop::sample::subsequence(TERRITORIES.to_vec(), 0..=2))
        .prop_map(|names| names.map(|names| names.into_iter().map(str::to_owned).collect()))
}

fn any_components() -> impl Strategy<Value = Option<BTreeSet<Component>>> {
    prop_oneof![
        2 => Just(None),
        1 => prop::sample::subsequence(Component::ALL.to_vec(), 0..=3).prop_map(|c| Some(c.into_iter().collect())),
    ]
}

fn any_floors() -> impl Strategy<Value = BTreeMap<Component, u32>> {
    prop::collection::btree_map(prop::sample::select(Component::ALL.to_vec()), 0u32..14, 1..=3)
}

fn any_window() -> impl Strategy<Value = Window> {
    (any_days(), any_hours(), any_pre_warm(), any_territories(), any_components(), any_floors()).prop_map(
        |(days, hours, pre_warm, territories, components, floors)| Window {
            name: String::new(),
            days,
            hours,
            pre_warm,
            territories,
            components,
            floors,
        },
    )
}

fn any_dark() -> impl Strategy<Value = DarkPeriod> {
    (any_dark_days(), any_hours(), any_territories(), any_components(), any_floors()).prop_map(
        |(days, hours, territories, components, floors)| DarkPeriod {
            name: String::new(),
            days,
            hours,
            territories,
            components,
            floors,
        },
    )
}

pub(crate) fn any_calendar() -> impl Strategy<Value = Calendar> {
    (
        prop::sample::select(ZONES.to_vec()),
        prop::collection::vec(any_window(), 0..=4),
        prop::collection::vec(any_dark(), 0..=2),
    )
        .prop_map(|(zone, mut windows, mut darks)| {
            for (index, window) in windows.iter_mut().enumerate() {
                window.name = format!("window-{index}");
            }
            for (index, dark) in darks.iter_mut().enumerate() {
                dark.name = format!("dark-{index}");
            }
            Calendar::new(time_zone(zone).unwrap(), windows, darks).unwrap()
        })
}

pub(crate) fn any_calendars() -> impl Strategy<Value = Vec<Calendar>> {
    prop::collection::vec(any_calendar(), 1..=3)
}

/// Most components scaled, some not.
pub(crate) fn any_baseline() -> impl Strategy<Value = Baseline> {
    let replicas = (0u32..6, 1u32..16).prop_map(|(a, b)| Replicas::new(a.min(b), a.max(b)).unwrap());
    prop::collection::vec(prop::option::weighted(0.9, replicas), 3).prop_map(|replicas| {
        Component::ALL.into_iter().zip(replicas).filter_map(|(c, r)| Some((c, r?))).collect()
    })
}

pub(crate) fn any_target() -> impl Strategy<Value = (&'static str, Component)> {
    (prop::sample::select(TERRITORIES.to_vec()), prop::sample::select(Component::ALL.to_vec()))
}
