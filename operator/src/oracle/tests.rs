//! DST regressions and property tests of the oracle against its references.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::reference::{literal_next, scan_next};
use super::{CronTrigger, Schedule, Zone};

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn next(spec: &str, zone: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    let s = Schedule::parse(spec).unwrap();
    let fast = s.next(after, zone);
    assert_eq!(fast, literal_next(&s, after, zone), "{spec} after {after}: fast and literal differ");
    fast
}

/// Europe/Berlin's changes 2026-2030: (last Sunday of March, last Sunday of October), both at 01:00Z.
const BERLIN_CHANGES: [(&str, &str); 5] = [
    ("2026-03-29", "2026-10-25"),
    ("2027-03-28", "2027-10-31"),
    ("2028-03-26", "2028-10-29"),
    ("2029-03-25", "2029-10-28"),
    ("2030-03-31", "2030-10-27"),
];

#[test]
fn berlin_change_dates_are_the_tz_database_transitions() {
    let berlin = tz("Europe/Berlin");
    let transitions: Vec<Timestamp> =
        berlin.following(at("2026-01-01T00:00:00Z")).take(10).map(|t| t.timestamp()).collect();
    let expected: Vec<Timestamp> = BERLIN_CHANGES
        .iter()
        .flat_map(|(spring, fall)| [at(&format!("{spring}T01:00:00Z")), at(&format!("{fall}T01:00:00Z"))])
        .collect();
    assert_eq!(transitions, expected);
    for (spring, fall) in BERLIN_CHANGES {
        for day in [spring, fall] {
            let d: jiff::civil::Date = day.parse().unwrap();
            assert_eq!(d.weekday(), jiff::civil::Weekday::Sunday);
            assert!(
                d.checked_add(jiff::Span::new().days(7)).unwrap().month() != d.month(),
                "{day} is the last"
            );
        }
    }
}

#[test]
fn berlin_spring_forward_schedules() {
    let berlin = tz("Europe/Berlin");
    for (spring, _) in BERLIN_CHANGES {
        // T: 02:00 CET becomes 03:00 CEST.
        let t = at(&format!("{spring}T01:00:00Z"));
        let midnight = t - mins(120); // 00:00 CET
        let day: i8 = spring[8..].parse().unwrap();
        assert_eq!(next("59 1 * * *", &berlin, midnight), Some(t - mins(1)), "{spring}");
        // The missing hour never fires that day: robfig's hour loop steps from 01:00 to 03:00.
        assert_eq!(next("0 2 * * *", &berlin, midnight), Some(t + mins(23 * 60)), "{spring}");
        assert_eq!(next("30 2 * * *", &berlin, midnight), Some(t + mins(23 * 60 + 30)), "{spring}");
        assert_eq!(next("* 2 * * *", &berlin, midnight), Some(t + mins(23 * 60)), "{spring}");
        assert_eq!(next("0 3 * * *", &berlin, midnight), Some(t), "{spring}");
        assert_eq!(next("0 * * * *", &berlin, t - mins(30)), Some(t), "{spring}");
        assert_eq!(next("*/30 * * * *", &berlin, t - mins(15)), Some(t), "{spring}");
        assert_eq!(next("* * * * *", &berlin, t - mins(1)), Some(t), "{spring}");
        // A spec for 02:30 on exactly that date waits a year (the date is no gap day then).
        let next_year = jiff::civil::date(spring[..4].parse::<i16>().unwrap() + 1, 3, day).at(2, 30, 0, 0);
        let expected = berlin.to_ambiguous_timestamp(next_year).unambiguous().unwrap();
        assert_eq!(next(&format!("30 2 {day} 3 *"), &berlin, midnight), Some(expected), "{spring}");
    }
}

#[test]
fn berlin_fall_back_schedules() {
    let berlin = tz("Europe/Berlin");
    for (_, fall) in BERLIN_CHANGES {
        // T: 03:00 CEST becomes 02:00 CET; 02:00-02:59 happens twice.
        let t = at(&format!("{fall}T01:00:00Z"));
        let midnight = t - mins(180); // 00:00 CEST
        // Inside the repeated hour: twice.
        assert_eq!(next("30 2 * * *", &berlin, midnight), Some(t - mins(30)), "{fall}");
        assert_eq!(next("30 2 * * *", &berlin, t - mins(30)), Some(t + mins(30)), "{fall}");
        assert_eq!(next("30 2 * * *", &berlin, t + mins(30)), Some(t + mins(24 * 60 + 30)), "{fall}");
        assert_eq!(next("0 2 * * *", &berlin, midnight), Some(t - mins(60)), "{fall}");
        assert_eq!(next("0 2 * * *", &berlin, t - mins(60)), Some(t), "{fall}");
        assert_eq!(next("59 2 * * *", &berlin, t - mins(2)), Some(t - mins(1)), "{fall}");
        assert_eq!(next("59 2 * * *", &berlin, t - mins(1)), Some(t + mins(59)), "{fall}");
        // At its edges: once.
        assert_eq!(next("59 1 * * *", &berlin, midnight), Some(t - mins(61)), "{fall}");
        assert_eq!(next("59 1 * * *", &berlin, t - mins(61)), Some(t + mins(24 * 60 - 1)), "{fall}");
        assert_eq!(next("0 3 * * *", &berlin, midnight), Some(t + mins(60)), "{fall}");
        assert_eq!(next("0 3 * * *", &berlin, t + mins(60)), Some(t + mins(25 * 60)), "{fall}");
        // Hourly: 02:00 CEST, 02:00 CET, 03:00 CET.
        assert_eq!(next("0 * * * *", &berlin, t - mins(61)), Some(t - mins(60)), "{fall}");
        assert_eq!(next("0 * * * *", &berlin, t - mins(60)), Some(t), "{fall}");
        assert_eq!(next("0 * * * *", &berlin, t), Some(t + mins(60)), "{fall}");
    }
}

fn berlin_trigger(start: &str, end: &str) -> CronTrigger {
    CronTrigger::new(start, end, "Europe/Berlin", 5).unwrap()
}

#[test]
fn berlin_spring_forward_triggers() {
    for (spring, _) in BERLIN_CHANGES {
        let t = at(&format!("{spring}T01:00:00Z"));
        // Start in the gap: the start is skipped, so from the day before's window on the next end
        // (04:00 on the gap day) comes before the next start (02:00 the day after): active for 26
        // hours, 02:00 CET the day before to 04:00 CEST on the gap day.
        let gap_start = berlin_trigger("0 2 * * *", "0 4 * * *");
        assert!(!gap_start.is_active(t - mins(25 * 60 + 1)), "{spring}"); // day before, 01:59 CET
        assert!(gap_start.is_active(t - mins(24 * 60)), "{spring}"); // day before, 02:00 CET
        assert!(gap_start.is_active(t - mins(14 * 60)), "{spring}"); // day before, 12:00 CET
        assert!(gap_start.is_active(t - mins(1)), "{spring}"); // 01:59 CET
        assert!(gap_start.is_active(t + mins(59)), "{spring}"); // 03:59 CEST
        assert!(!gap_start.is_active(t + mins(60)), "{spring}"); // 04:00 CEST
        assert!(gap_start.is_active(t + mins(23 * 60)), "{spring}"); // next day 02:00 CEST

        // End in the gap: the end is skipped, the next start comes first: no window that day.
        let gap_end = berlin_trigger("0 1 * * *", "30 2 * * *");
        assert!(gap_end.is_active(t - mins(24 * 60 + 30)), "{spring}"); // day before, 01:30 CET
        assert!(!gap_end.is_active(t - mins(60)), "{spring}"); // 01:00 CET
        assert!(!gap_end.is_active(t - mins(30)), "{spring}"); // 01:30 CET
        assert!(!gap_end.is_active(t), "{spring}"); // 03:00 CEST
        assert!(gap_end.is_active(t + mins(23 * 60)), "{spring}"); // next day 01:00 CEST

        // Across the gap: one real hour, 01:00 CET to 03:00 CEST.
        let across = berlin_trigger("0 1 * * *", "0 3 * * *");
        assert!(!across.is_active(t - mins(61)), "{spring}");
        assert!(across.is_active(t - mins(60)), "{spring}");
        assert!(across.is_active(t - mins(1)), "{spring}");
        assert!(!across.is_active(t), "{spring}");
    }
}

#[test]
fn berlin_fall_back_triggers() {
    for (_, fall) in BERLIN_CHANGES {
        let t = at(&format!("{fall}T01:00:00Z"));
        // Inside the repeated hour: two windows.
        let inside = berlin_trigger("30 2 * * *", "45 2 * * *");
        assert!(!inside.is_active(t - mins(31)), "{fall}");
        assert!(inside.is_active(t - mins(30)), "{fall}");
        assert!(!inside.is_active(t - mins(15)), "{fall}");
        assert!(!inside.is_active(t), "{fall}");
        assert!(inside.is_active(t + mins(30)), "{fall}");
        assert!(inside.is_active(t + mins(44)), "{fall}");
        assert!(!inside.is_active(t + mins(45)), "{fall}");

        // 02:00-03:00 spans the repeated hour: during the first 02:xx the next start (the second
        // 02:00) comes before the next end, so only the second hour is active.
        let hour = berlin_trigger("0 2 * * *", "0 3 * * *");
        assert!(!hour.is_active(t - mins(60)), "{fall}"); // 02:00 CEST
        assert!(!hour.is_active(t - mins(30)), "{fall}"); // 02:30 CEST
        assert!(hour.is_active(t), "{fall}"); // 02:00 CET
        assert!(hour.is_active(t + mins(59)), "{fall}");
        assert!(!hour.is_active(t + mins(60)), "{fall}"); // 03:00 CET

        // End in the repeated hour: the second 02:30 ends it, 2.5 real hours after 01:00 CEST.
        let end_inside = berlin_trigger("0 1 * * *", "30 2 * * *");
        assert!(end_inside.is_active(t - mins(120)), "{fall}"); // 01:00 CEST
        assert!(end_inside.is_active(t - mins(15)), "{fall}"); // 02:45 CEST
        assert!(end_inside.is_active(t + mins(29)), "{fall}"); // 02:29 CET
        assert!(!end_inside.is_active(t + mins(30)), "{fall}"); // 02:30 CET

        // Start in the repeated hour, end after it: until the second 02:30 the next start comes
        // first, so the window opens at 02:30 CET, an hour late.
        let start_inside = berlin_trigger("30 2 * * *", "0 4 * * *");
        assert!(!start_inside.is_active(t - mins(30)), "{fall}"); // 02:30 CEST
        assert!(!start_inside.is_active(t + mins(29)), "{fall}"); // 02:29 CET
        assert!(start_inside.is_active(t + mins(30)), "{fall}"); // 02:30 CET
        assert!(start_inside.is_active(t + mins(119)), "{fall}"); // 03:59 CET
        assert!(!start_inside.is_active(t + mins(120)), "{fall}");
    }
}

#[test]
fn lord_howe_half_hour_shifts_follow_robfigs_walk() {
    let lh = tz("Australia/Lord_Howe");
    // 2026-10-04 02:00 +10:30 becomes 02:30 +11:00 (15:30Z on the 3rd).
    let spring = at("2026-10-03T15:30:00Z");
    assert_eq!(lh.following(spring - mins(1)).next().unwrap().timestamp(), spring);
    // The minute loop runs from 01:59 straight to 02:30 without passing minute 0, so the hour is
    // never checked again: "40 1" fires at 02:40 +11:00.
    assert_eq!(next("40 1 * * *", &lh, spring - mins(15)), Some(spring + mins(10)));
    // The hour loop lands on :30 after the shift: 03:10 that day is skipped.
    let midnight = at("2026-10-03T13:30:00Z");
    assert_eq!(next("10 3 * * *", &lh, midnight), Some(at("2026-10-04T16:10:00Z")));
    // Minutes that exist are found: 02:45 +11:00.
    assert_eq!(next("45 2 * * *", &lh, midnight), Some(spring + mins(15)));

    // 2026-04-05 02:00 +11:00 becomes 01:30 +10:30 (15:00Z on the 4th).
    let fall = at("2026-04-04T15:00:00Z");
    assert_eq!(lh.following(fall - mins(1)).next().unwrap().timestamp(), fall);
    // The hour loop goes 01:00, 01:30 (again hour 1), 02:30: 02:10 that day is skipped.
    let midnight = at("2026-04-04T13:00:00Z");
    assert_eq!(next("10 2 * * *", &lh, midnight), Some(at("2026-04-05T15:40:00Z")));
    // From the first second after the shift, the hour loop's reset (time.Date at 01:00, which Go
    // resolves to the first 01:00, +11:00) and two hour steps land on 02:30 +10:30: "* 2" skips
    // 02:00-02:29.
    assert_eq!(next("* 2 * * *", &lh, fall), Some(fall + mins(60)));
    // The repeated half hour fires twice.
    assert_eq!(next("45 1 * * *", &lh, midnight), Some(fall - mins(15)));
    assert_eq!(next("45 1 * * *", &lh, fall - mins(15)), Some(fall + mins(15)));
}

// Property tests.

const ZONES: [&str; 4] = ["Europe/Berlin", "UTC", "America/New_York", "Australia/Lord_Howe"];

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "Mon", "TUE", "wed", "thu", "fri", "sat"];

fn item(min: u32, max: u32, names: &'static [&'static str]) -> BoxedStrategy<String> {
    let mut options = vec![
        Just("*".to_owned()).boxed(),
        (min..=max).prop_map(|v| v.to_string()).boxed(),
        (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))).boxed(),
        (min..=max, 1..=max.max(2)).prop_map(|(a, s)| format!("{a}/{s}")).boxed(),
        (min..=max, min..=max, 1..=4u32)
            .prop_map(|(a, b, s)| format!("{}-{}/{s}", a.min(b), a.max(b)))
            .boxed(),
        (1..=max.max(2)).prop_map(|s| format!("*/{s}")).boxed(),
    ];
    if !names.is_empty() {
        let offset = min as usize;
        options.push((0..names.len()).prop_map(move |i| names[i].to_owned()).boxed());
        options.push(
            (0..names.len(), 0..names.len())
                .prop_map(move |(a, b)| format!("{}-{}", names[a.min(b)], (a.max(b) + offset)))
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

fn field(min: u32, max: u32, names: &'static [&'static str], star_weight: u32) -> BoxedStrategy<String> {
    prop_oneof![
        star_weight => Just("*".to_owned()),
        4 => proptest::collection::vec(item(min, max, names), 1..=3).prop_map(|items| items.join(",")),
    ]
    .boxed()
}

fn spec() -> impl Strategy<Value = String> {
    (
        field(0, 59, &[], 1),
        field(0, 23, &[], 1),
        field(1, 31, &[], 4),
        field(1, 12, &MONTHS, 4),
        field(0, 6, &DAYS, 4),
    )
        .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
}

/// Instants spread over 2026-2030, half of them within a day of a DST change in the zone.
fn instant(zone: &'static str) -> impl Strategy<Value = Timestamp> {
    let from = at("2026-01-01T00:00:00Z").as_second();
    let to = at("2031-01-01T00:00:00Z").as_second();
    let transitions: Vec<i64> =
        tz(zone).following(at("2026-01-01T00:00:00Z")).take(10).map(|t| t.timestamp().as_second()).collect();
    let near = if transitions.is_empty() {
        (from..to).boxed()
    } else {
        (0..transitions.len(), -26 * 3600..26 * 3600i64).prop_map(move |(i, d)| transitions[i] + d).boxed()
    };
    (prop_oneof![from..to, near], 0..4u8).prop_map(|(secs, kind)| {
        // Whole minutes (where triggers are evaluated), whole seconds and sub-second instants.
        let secs = if kind < 2 { secs - secs.rem_euclid(60) } else { secs };
        let nanos = if kind == 3 { 999_999_999 } else { 0 };
        Timestamp::new(secs, nanos).unwrap()
    })
}

fn zoned_case() -> impl Strategy<Value = (&'static str, Timestamp, String)> {
    (0..ZONES.len()).prop_flat_map(|i| (Just(ZONES[i]), instant(ZONES[i]), spec()))
}

/// Zones whose clocks change at midnight (Sao Paulo until 2019, Havana), where robfig's day loop
/// needs its fix-up: only for the literal comparison.
const MIDNIGHT_ZONES: [&str; 2] = ["America/Sao_Paulo", "America/Havana"];

fn midnight_case() -> impl Strategy<Value = (&'static str, Timestamp, String)> {
    (0..MIDNIGHT_ZONES.len()).prop_flat_map(|i| {
        let zone = MIDNIGHT_ZONES[i];
        let from = at("2014-01-01T00:00:00Z").as_second();
        let transitions: Vec<i64> = tz(zone)
            .following(at("2014-01-01T00:00:00Z"))
            .take(12)
            .map(|t| t.timestamp().as_second())
            .collect();
        let near =
            (0..transitions.len(), -50 * 3600..50 * 3600i64).prop_map(move |(i, d)| transitions[i] + d);
        let instant =
            prop_oneof![from..from + 6 * 365 * 86_400, near].prop_map(|s| Timestamp::from_second(s).unwrap());
        (Just(zone), instant, spec())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// `next` with its shortcuts lands where spec.go's single steps land, in every zone.
    #[test]
    fn next_equals_the_literal_transliteration((zone, after, spec) in zoned_case()) {
        let s = Schedule::parse(&spec).unwrap();
        let zone = tz(zone);
        let literal = literal_next(&s, after, &zone);
        prop_assert_eq!(s.next(after, &zone), literal, "{} after {}", spec, after);
        prop_assert_eq!(s.next_in(after, &Zone::new(zone)), literal, "{} after {} (table)", spec, after);
    }

    /// The same where midnight itself is skipped or repeated.
    #[test]
    fn next_equals_the_literal_transliteration_at_midnight_changes((zone, after, spec) in midnight_case()) {
        let s = Schedule::parse(&spec).unwrap();
        let zone = tz(zone);
        let literal = literal_next(&s, after, &zone);
        prop_assert_eq!(s.next(after, &zone), literal, "{} after {}", spec, after);
        prop_assert_eq!(s.next_in(after, &Zone::new(zone)), literal, "{} after {} (table)", spec, after);
    }

    /// `next` is the plain rule, scanned minute by minute, where robfig's walk is (whole-hour
    /// shifts away from midnight); for Lord Howe wherever no shift lies on the way.
    #[test]
    fn next_equals_a_minute_by_minute_scan((zone_name, after, spec) in zoned_case()) {
        let s = Schedule::parse(&spec).unwrap();
        let zone = tz(zone_name);
        let horizon = SignedDuration::from_hours(400 * 24);
        let fast = s.next(after, &zone);
        if zone_name == "Australia/Lord_Howe" {
            let until = fast.unwrap_or(after + horizon).min(after + horizon);
            // A day before too: robfig's resets (time.Date of the current hour) can step back
            // across a shift that just happened.
            let shift = zone.following(after - SignedDuration::from_hours(24)).next().map(|t| t.timestamp());
            if shift.is_some_and(|shift| shift <= until) {
                return Ok(());
            }
        }
        match scan_next(&s, after, &zone, horizon) {
            Ok(found) => prop_assert_eq!(fast, found, "{} after {} in {}", spec, after, zone_name),
            Err(()) => prop_assert!(
                fast.is_none_or(|t| t > after + horizon),
                "{} after {} in {}: fast {:?} but nothing within the horizon", spec, after, zone_name, fast
            ),
        }
    }

    /// A trigger is active exactly when its next end is not after its next start (both firing).
    #[test]
    fn activity_is_next_end_not_after_next_start(
        (zone, after, start) in zoned_case(),
        end in spec(),
    ) {
        prop_assume!(start != end);
        let trigger = CronTrigger::new(&start, &end, zone, 3).unwrap();
        let (s, e) = (trigger.next_start(after), trigger.next_end(after));
        let expected = match (s, e) {
            (Some(s), Some(e)) => e <= s,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        prop_assert_eq!(trigger.is_active(after), expected);
    }
}
