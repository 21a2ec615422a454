//! The named cases: the calendars FreshPlan's SREs write, with the instants where floors change.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, date};
use jiff::tz::TimeZone;

use super::*;
use crate::component::Component::{self, Command, Query, Relay};

fn zone(name: &str) -> TimeZone {
    time_zone(name).unwrap()
}

fn berlin() -> TimeZone {
    zone("Europe/Berlin")
}

/// A local time, `2026-09-19T08:00`, in `tz`.
fn local(tz: &TimeZone, text: &str) -> Timestamp {
    tz.to_timestamp(text.parse::<DateTime>().unwrap()).unwrap()
}

fn utc(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn yearly(from: &str, to: &str) -> Days {
    Days::Yearly { from: from.parse().unwrap(), to: to.parse().unwrap() }
}

fn hours(from: &str, to: &str) -> Option<Hours> {
    Some(Hours::new(from.parse().unwrap(), to.parse().unwrap()).unwrap())
}

fn territories(names: &[&str]) -> Option<std::collections::BTreeSet<String>> {
    Some(names.iter().map(|&name| name.to_owned()).collect())
}

fn window(name: &str, days: Days, floors: &[(Component, u32)]) -> Window {
    Window {
        name: name.into(),
        days,
        hours: None,
        pre_warm: PreWarm::NONE,
        territories: None,
        components: None,
        floors: floors.iter().copied().collect(),
    }
}

fn dark(name: &str, days: DarkDays, floors: &[(Component, u32)]) -> DarkPeriod {
    DarkPeriod {
        name: name.into(),
        days,
        hours: None,
        territories: None,
        components: None,
        floors: floors.iter().copied().collect(),
    }
}

fn calendar(tz: TimeZone, windows: Vec<Window>, darks: Vec<DarkPeriod>) -> Calendar {
    Calendar::new(tz, windows, darks).unwrap()
}

/// The profile of the examples: query 2..20, command 2..10, relay 1..2.
fn baseline() -> Baseline {
    [(Query, (2, 20)), (Command, (2, 10)), (Relay, (1, 2))]
        .into_iter()
        .map(|(component, (min, max))| (component, Replicas::new(min, max).unwrap()))
        .collect()
}

fn oktoberfest() -> Window {
    Window {
        hours: hours("10:00", "23:30"),
        pre_warm: "2h".parse().unwrap(),
        territories: territories(&["BY"]),
        components: Some([Query, Command].into()),
        ..window("oktoberfest", yearly("09-19", "10-04"), &[(Query, 8), (Command, 4)])
    }
}

#[test]
fn oktoberfest_holds_its_floors_from_two_hours_before_opening_until_the_tents_close() {
    let tz = berlin();
    let calendars = [calendar(tz.clone(), vec![oktoberfest()], vec![])];
    let query = |territory, at| floor(&calendars, &baseline(), territory, Query, local(&tz, at));
    assert_eq!(query("BY", "2026-09-19T07:59"), Some(2));
    assert_eq!(query("BY", "2026-09-19T08:00"), Some(8), "pre-warm starts two hours before 10:00");
    assert_eq!(query("BY", "2026-09-19T23:29"), Some(8));
    assert_eq!(query("BY", "2026-09-19T23:30"), Some(2));
    assert_eq!(query("BY", "2026-10-04T23:29"), Some(8));
    assert_eq!(query("BY", "2026-10-05T09:00"), Some(2), "the last day was 4 October");
    assert_eq!(query("NW", "2026-09-20T12:00"), Some(2), "Bavaria only");
    let at_noon = local(&tz, "2026-09-20T12:00");
    assert_eq!(floor(&calendars, &baseline(), "BY", Command, at_noon), Some(4));
    assert_eq!(floor(&calendars, &baseline(), "BY", Relay, at_noon), Some(1), "relay is not covered");

    let steps = timeline(
        &calendars,
        &baseline(),
        "BY",
        Query,
        local(&tz, "2026-09-01T00:00"),
        local(&tz, "2026-11-01T00:00"),
    );
    // Sixteen days, each up at 08:00 and down at 23:30, after the baseline at the start.
    assert_eq!(steps.len(), 1 + 16 * 2);
    assert_eq!(steps[0], (local(&tz, "2026-09-01T00:00"), 2));
    assert_eq!(steps[1], (local(&tz, "2026-09-19T08:00"), 8));
    assert_eq!(steps[2], (local(&tz, "2026-09-19T23:30"), 2));
    assert_eq!(steps[32], (local(&tz, "2026-10-04T23:30"), 2));
    assert_eq!(
        next_transition(&calendars, &baseline(), "BY", Query, local(&tz, "2026-08-01T00:00")),
        Some(local(&tz, "2026-09-19T08:00"))
    );
    assert_eq!(active_windows(&calendars[0], local(&tz, "2026-09-19T08:00")), ["oktoberfest"]);
    assert_eq!(active_windows(&calendars[0], local(&tz, "2026-09-19T07:59")), [] as [&str; 0]);
}

#[test]
fn christmas_wraps_into_january() {
    let tz = berlin();
    let christmas = window("christmas", yearly("12-20", "01-06"), &[(Query, 6)]);
    let calendars = [calendar(tz.clone(), vec![christmas], vec![])];
    let query = |at| floor(&calendars, &baseline(), "HH", Query, local(&tz, at));
    assert_eq!(query("2026-01-06T23:59"), Some(6));
    assert_eq!(query("2026-01-07T00:00"), Some(2));
    assert_eq!(query("2026-12-19T23:59"), Some(2));
    assert_eq!(query("2026-12-20T00:00"), Some(6));
    assert_eq!(query("2026-12-31T23:59"), Some(6));
    assert_eq!(query("2027-01-01T00:00"), Some(6));
    let steps = timeline(
        &calendars,
        &baseline(),
        "HH",
        Query,
        local(&tz, "2026-12-01T00:00"),
        local(&tz, "2027-02-01T00:00"),
    );
    assert_eq!(
        steps,
        [
            (local(&tz, "2026-12-01T00:00"), 2),
            (local(&tz, "2026-12-20T00:00"), 6),
            (local(&tz, "2027-01-07T00:00"), 2),
        ]
    );
}

#[test]
fn asparagus_season_covers_north_rhine_westphalia_and_bavaria_in_spring() {
    let tz = berlin();
    let asparagus = Window {
        territories: territories(&["NW", "BY"]),
        ..window("asparagus", yearly("04-15", "06-24"), &[(Query, 5), (Command, 3)])
    };
    let calendars = [calendar(tz.clone(), vec![asparagus], vec![])];
    let at =
        |territory, component, text| floor(&calendars, &baseline(), territory, component, local(&tz, text));
    assert_eq!(at("NW", Query, "2027-04-14T23:59"), Some(2));
    assert_eq!(at("NW", Query, "2027-04-15T00:00"), Some(5));
    assert_eq!(at("BY", Command, "2027-05-20T12:00"), Some(3));
    assert_eq!(at("HH", Query, "2027-05-20T12:00"), Some(2));
    assert_eq!(at("BY", Query, "2027-06-24T23:59"), Some(5));
    assert_eq!(at("BY", Query, "2027-06-25T00:00"), Some(2));
}

#[test]
fn easter_trade_runs_from_maundy_thursday_to_easter_monday_2026_to_2030() {
    let tz = berlin();
    let easter = window("easter-trade", Days::Easter(EasterRange::new(-3, 1).unwrap()), &[(Query, 7)]);
    let calendars = [calendar(tz.clone(), vec![easter], vec![])];
    let sundays =
        [date(2026, 4, 5), date(2027, 3, 28), date(2028, 4, 16), date(2029, 4, 1), date(2030, 4, 21)];
    let midnight = |day: Date, offset: i64| {
        let day = day.checked_add(jiff::SignedDuration::from_hours(24 * offset)).unwrap();
        TimeOfDay::MIDNIGHT.on(day, &tz).unwrap()
    };
    let query = |at| floor(&calendars, &baseline(), "BE", Query, at);
    for sunday in sundays {
        assert_eq!(
            query(midnight(sunday, -3).checked_sub(jiff::SignedDuration::from_mins(1)).unwrap()),
            Some(2)
        );
        assert_eq!(query(midnight(sunday, -3)), Some(7), "{sunday}");
        assert_eq!(
            query(midnight(sunday, 2).checked_sub(jiff::SignedDuration::from_mins(1)).unwrap()),
            Some(7)
        );
        assert_eq!(query(midnight(sunday, 2)), Some(2), "{sunday}");
    }
    let steps = timeline(
        &calendars,
        &baseline(),
        "BE",
        Query,
        local(&tz, "2026-01-01T00:00"),
        local(&tz, "2031-01-01T00:00"),
    );
    let expected: Vec<_> = std::iter::once((local(&tz, "2026-01-01T00:00"), 2))
        .chain(sundays.iter().flat_map(|&sunday| [(midnight(sunday, -3), 7), (midnight(sunday, 2), 2)]))
        .collect();
    assert_eq!(steps, expected);
}

#[test]
fn nights_cap_a_window_and_the_baseline() {
    let tz = berlin();
    let nights = DarkPeriod {
        hours: hours("00:00", "06:00"),
        ..dark("nights", DarkDays::Every, &[(Query, 1), (Command, 1), (Relay, 1)])
    };
    let season = window("season", yearly("09-19", "10-04"), &[(Query, 8)]);
    let calendars = [calendar(tz.clone(), vec![season], vec![nights])];
    let query = |at| floor(&calendars, &baseline(), "BY", Query, local(&tz, at));
    assert_eq!(query("2026-09-20T03:00"), Some(1), "the night caps the window's 8");
    assert_eq!(query("2026-09-20T05:59"), Some(1));
    assert_eq!(query("2026-09-20T06:00"), Some(8));
    assert_eq!(query("2026-09-19T23:59"), Some(8));
    assert_eq!(query("2026-11-20T03:00"), Some(1), "and the baseline's 2 outside the season");
    assert_eq!(query("2026-11-20T12:00"), Some(2));
    assert_eq!(active_dark_periods(&calendars[0], local(&tz, "2026-11-20T03:00")), ["nights"]);
    assert_eq!(active_dark_periods(&calendars[0], local(&tz, "2026-11-20T06:00")), [] as [&str; 0]);
    assert_eq!(
        active_windows(&calendars[0], local(&tz, "2026-09-20T03:00")),
        ["season"],
        "capped, yet active"
    );
    let steps = timeline(
        &calendars,
        &baseline(),
        "BY",
        Query,
        local(&tz, "2026-09-19T00:00"),
        local(&tz, "2026-09-20T12:00"),
    );
    assert_eq!(
        steps,
        [
            (local(&tz, "2026-09-19T00:00"), 1),
            (local(&tz, "2026-09-19T06:00"), 8),
            (local(&tz, "2026-09-20T00:00"), 1),
            (local(&tz, "2026-09-20T06:00"), 8),
        ]
    );
}

#[test]
fn holiday_darks_follow_each_states_holidays() {
    let tz = berlin();
    let holidays = |name: &str, state: State, territory: &str| DarkPeriod {
        territories: territories(&[territory]),
        ..dark(name, DarkDays::Holidays(Some(state)), &[(Query, 1)])
    };
    let nationwide = dark("national", DarkDays::Holidays(None), &[(Command, 1)]);
    let calendars = [calendar(
        tz.clone(),
        vec![],
        vec![holidays("holidays-by", State::By, "BY"), holidays("holidays-nw", State::Nw, "NW"), nationwide],
    )];
    let at =
        |territory, component, text| floor(&calendars, &baseline(), territory, component, local(&tz, text));
    // Epiphany: Bavaria, not North Rhine-Westphalia, not nationwide.
    assert_eq!(at("BY", Query, "2026-01-06T12:00"), Some(1));
    assert_eq!(at("NW", Query, "2026-01-06T12:00"), Some(2));
    assert_eq!(at("BY", Command, "2026-01-06T12:00"), Some(2));
    // Corpus Christi (4 June 2026): both states.
    assert_eq!(at("BY", Query, "2026-06-04T00:00"), Some(1));
    assert_eq!(at("NW", Query, "2026-06-04T23:59"), Some(1));
    assert_eq!(at("NW", Query, "2026-06-05T00:00"), Some(2));
    // The Day of German Unity, nationwide.
    assert_eq!(at("HH", Command, "2026-10-03T12:00"), Some(1));
    assert_eq!(at("HH", Query, "2026-10-03T12:00"), Some(2), "no state's query dark covers Hamburg");
    // Christmas Day and Boxing Day are one dark stretch: one change in, one out.
    let steps = timeline(
        &calendars,
        &baseline(),
        "BY",
        Query,
        local(&tz, "2026-12-24T00:00"),
        local(&tz, "2026-12-30T00:00"),
    );
    assert_eq!(
        steps,
        [
            (local(&tz, "2026-12-24T00:00"), 2),
            (local(&tz, "2026-12-25T00:00"), 1),
            (local(&tz, "2026-12-27T00:00"), 2),
        ]
    );
}

#[test]
fn a_window_starting_in_the_spring_forward_gap_starts_as_far_after_it() {
    let tz = berlin();
    let spring = DateRange::new(date(2026, 3, 29), date(2026, 3, 29)).unwrap();
    let opening =
        Window { hours: hours("02:30", "05:00"), ..window("gap", Days::Dates(spring), &[(Query, 9)]) };
    let calendars = [calendar(tz.clone(), vec![opening.clone()], vec![])];
    let query = |calendars: &[Calendar], at| floor(calendars, &baseline(), "BY", Query, utc(at));
    // 02:30 does not exist that night; read as 03:30 CEST, 01:30 UTC.
    assert_eq!(query(&calendars, "2026-03-29T01:29:00Z"), Some(2));
    assert_eq!(query(&calendars, "2026-03-29T01:30:00Z"), Some(9));
    assert_eq!(query(&calendars, "2026-03-29T02:59:00Z"), Some(9));
    assert_eq!(query(&calendars, "2026-03-29T03:00:00Z"), Some(2), "05:00 CEST");
    // A pre-warm of 1h is one real hour before that.
    let warmed = [calendar(tz.clone(), vec![Window { pre_warm: "1h".parse().unwrap(), ..opening }], vec![])];
    assert_eq!(query(&warmed, "2026-03-29T00:29:00Z"), Some(2));
    assert_eq!(query(&warmed, "2026-03-29T00:30:00Z"), Some(9));
    // Hours from 02:50 (read as 03:50 CEST) to 03:10 CEST run backwards in real time: nothing.
    let backwards =
        Window { hours: hours("02:50", "03:10"), ..window("backwards", Days::Dates(spring), &[(Query, 9)]) };
    let backwards = [calendar(tz.clone(), vec![backwards], vec![])];
    let (from, to) = (utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z"));
    assert_eq!(timeline(&backwards, &baseline(), "BY", Query, from, to), [(from, 2)]);
    assert_eq!(query(&backwards, "2026-03-29T01:15:00Z"), Some(2));
}

#[test]
fn an_occurrence_spanning_the_fall_back_hour_lasts_an_hour_longer() {
    let tz = berlin();
    let night = DateRange::new(date(2026, 10, 24), date(2026, 10, 24)).unwrap();
    let late = Window { hours: hours("22:00", "06:00"), ..window("late", Days::Dates(night), &[(Query, 4)]) };
    let calendars = [calendar(tz.clone(), vec![late], vec![])];
    let query = |at| floor(&calendars, &baseline(), "BY", Query, utc(at));
    assert_eq!(query("2026-10-24T19:59:00Z"), Some(2));
    assert_eq!(query("2026-10-24T20:00:00Z"), Some(4), "22:00 CEST");
    assert_eq!(query("2026-10-25T00:30:00Z"), Some(4), "02:30 CEST");
    assert_eq!(query("2026-10-25T01:30:00Z"), Some(4), "02:30 CET, the second time round");
    assert_eq!(query("2026-10-25T04:59:00Z"), Some(4));
    assert_eq!(query("2026-10-25T05:00:00Z"), Some(2), "06:00 CET");
    let (from, to) = (utc("2026-10-24T00:00:00Z"), utc("2026-10-26T00:00:00Z"));
    let steps = timeline(&calendars, &baseline(), "BY", Query, from, to);
    assert_eq!(steps, [(from, 2), (utc("2026-10-24T20:00:00Z"), 4), (utc("2026-10-25T05:00:00Z"), 2)]);
    assert_eq!(steps[2].0.duration_since(steps[1].0), jiff::SignedDuration::from_hours(9));

    // Hours that end at 02:30 that night end the first time the clocks show it.
    let sunday = DateRange::new(date(2026, 10, 25), date(2026, 10, 25)).unwrap();
    let early =
        Window { hours: hours("01:00", "02:30"), ..window("early", Days::Dates(sunday), &[(Query, 4)]) };
    let calendars = [calendar(tz.clone(), vec![early], vec![])];
    let query = |at| floor(&calendars, &baseline(), "BY", Query, utc(at));
    assert_eq!(query("2026-10-24T23:00:00Z"), Some(4), "01:00 CEST");
    assert_eq!(query("2026-10-25T00:29:00Z"), Some(4));
    assert_eq!(query("2026-10-25T00:30:00Z"), Some(2), "02:30 CEST");
    assert_eq!(query("2026-10-25T01:15:00Z"), Some(2), "02:15 CET");
}

#[test]
fn calendars_in_different_zones_combine_windows_by_maximum_and_darks_by_minimum() {
    let (berlin, new_york) = (berlin(), zone("America/New_York"));
    let day = |d| Days::Dates(DateRange::new(d, d).unwrap());
    let german = calendar(berlin, vec![window("sale", day(date(2026, 7, 1)), &[(Query, 5)])], vec![]);
    let american = calendar(
        new_york,
        vec![window("sale", day(date(2026, 7, 1)), &[(Query, 9)])],
        vec![DarkPeriod { hours: hours("00:00", "01:00"), ..dark("quiet", DarkDays::Every, &[(Query, 3)]) }],
    );
    let calendars = [german, american];
    let query = |at| floor(&calendars, &baseline(), "BY", Query, utc(at));
    assert_eq!(query("2026-06-30T21:59:00Z"), Some(2));
    assert_eq!(query("2026-06-30T22:00:00Z"), Some(5), "midnight in Berlin");
    assert_eq!(query("2026-07-01T03:59:00Z"), Some(5), "23:59 EDT: not yet quiet in New York");
    assert_eq!(query("2026-07-01T04:00:00Z"), Some(3), "midnight in New York: 9, but still quiet");
    assert_eq!(query("2026-07-01T05:00:00Z"), Some(9));
    assert_eq!(query("2026-07-01T22:00:00Z"), Some(9), "Berlin's day is over, New York's is not");
    assert_eq!(query("2026-07-02T04:00:00Z"), Some(2));
}

#[test]
fn floors_stay_within_the_baseline_max_and_unscaled_components_have_none() {
    let tz = berlin();
    let huge = window("huge", yearly("01-01", "12-31"), &[(Query, 50), (Relay, 5)]);
    let calendars = [calendar(tz.clone(), vec![huge], vec![])];
    let at = utc("2026-05-01T12:00:00Z");
    assert_eq!(floor(&calendars, &baseline(), "BY", Query, at), Some(20));
    assert_eq!(floor(&calendars, &baseline(), "BY", Relay, at), Some(2));
    let only_query: Baseline = [(Query, Replicas::new(1, 3).unwrap())].into_iter().collect();
    assert_eq!(floor(&calendars, &only_query, "BY", Command, at), None);
    assert_eq!(timeline(&calendars, &only_query, "BY", Command, at, utc("2026-06-01T00:00:00Z")), []);
    assert_eq!(next_transition(&calendars, &only_query, "BY", Command, at), None);
    assert_eq!(timeline(&calendars, &baseline(), "BY", Query, at, at), [], "an empty span");
}

#[test]
fn a_calendar_that_never_changes_has_no_next_transition() {
    let calendars = [calendar(berlin(), vec![], vec![])];
    let at = utc("2026-05-01T12:00:00Z");
    assert_eq!(next_transition(&calendars, &baseline(), "BY", Query, at), None);
    assert_eq!(next_transition(&[], &baseline(), "BY", Query, at), None);
    // Every day a window from 00:00 to 00:00 is all day: no change either.
    let always = Window {
        hours: hours("00:00", "00:00"),
        ..window("always", yearly("01-01", "12-31"), &[(Query, 4)])
    };
    let calendars = [calendar(berlin(), vec![always], vec![])];
    assert_eq!(next_transition(&calendars, &baseline(), "BY", Query, at), None);
    assert_eq!(floor(&calendars, &baseline(), "BY", Query, at), Some(4));
}

#[test]
fn next_transition_is_strictly_after_the_instant_given() {
    let tz = berlin();
    let calendars = [calendar(tz.clone(), vec![oktoberfest()], vec![])];
    let opening = local(&tz, "2026-09-19T08:00");
    assert_eq!(
        next_transition(&calendars, &baseline(), "BY", Query, opening),
        Some(local(&tz, "2026-09-19T23:30"))
    );
    // The last closing of 2026, then next year's first pre-warm.
    assert_eq!(
        next_transition(&calendars, &baseline(), "BY", Query, local(&tz, "2026-10-04T23:30")),
        Some(local(&tz, "2027-09-19T08:00"))
    );
}

#[test]
fn the_ends_of_time_neither_panic_nor_invent_floors() {
    let tz = zone("Asia/Kolkata");
    let every_kind = calendar(
        tz,
        vec![
            Window { hours: hours("22:00", "02:00"), pre_warm: PreWarm::MAX, ..oktoberfest() },
            window("christmas", yearly("12-20", "01-06"), &[(Query, 6)]),
            window("easter", Days::Easter(EasterRange::new(-365, 365).unwrap()), &[(Query, 3)]),
        ],
        vec![
            DarkPeriod { hours: hours("00:00", "24:00"), ..dark("always", DarkDays::Every, &[(Query, 1)]) },
            dark("holidays", DarkDays::Holidays(None), &[(Query, 0)]),
        ],
    );
    let calendars = [every_kind];
    for at in [Timestamp::MIN, Timestamp::MAX] {
        let value = floor(&calendars, &baseline(), "BY", Query, at);
        assert!(value.is_some_and(|value| value <= 20));
        assert!(next_transition(&calendars, &baseline(), "BY", Query, at).is_none_or(|next| next > at));
        let _ = active_windows(&calendars[0], at);
    }
    let ten_days = jiff::SignedDuration::from_hours(240);
    for (from, to) in
        [(Timestamp::MIN, Timestamp::MIN + ten_days), (Timestamp::MAX - ten_days, Timestamp::MAX)]
    {
        let steps = timeline(&calendars, &baseline(), "BY", Query, from, to);
        assert_eq!(steps.first().map(|&(at, _)| at), Some(from));
    }
}
