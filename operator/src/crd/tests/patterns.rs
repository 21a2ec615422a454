//! The apply-time patterns accept exactly the values the calendar can read: checked over every
//! value where the domain is small, by property tests where it is not.

use jiff::SignedDuration;
use jiff::civil::Date;
use proptest::prelude::*;
use serde_json::json;

use crate::crd::validation::{
    DATE, DURATION, MONTH_DAY, NAME, OBJECT_NAME, SERVER_ADDRESS, TERRITORY, THRESHOLD, TIME_FROM, TIME_TO,
    TIMEZONE,
};

/// A matcher for `pattern` with the JSON Schema engine the schema tests use.
fn matcher(pattern: &str) -> impl Fn(&str) -> bool {
    let validator =
        jsonschema::validator_for(&json!({"type": "string", "pattern": pattern})).expect("a valid pattern");
    move |value| validator.is_valid(&json!(value))
}

#[test]
fn month_day_accepts_exactly_the_days_of_a_leap_year() {
    let matches = matcher(MONTH_DAY);
    for month in 0..=13 {
        for day in 0..=32 {
            let text = format!("{month:02}-{day:02}");
            let exists = Date::new(2024, month, day).is_ok();
            assert_eq!(matches(&text), exists, "{text}");
        }
    }
    for text in ["9-19", "09-1", "09-019", "0919", "09/19", " 09-19", "09-19\n"] {
        assert!(!matches(text), "{text:?}");
    }
}

#[test]
fn times_accept_minutes_of_the_day_and_only_the_end_may_be_midnight() {
    let (from, to) = (matcher(TIME_FROM), matcher(TIME_TO));
    for hour in 0..=25 {
        for minute in 0..=61 {
            let text = format!("{hour:02}:{minute:02}");
            let in_day = hour < 24 && minute < 60;
            assert_eq!(from(&text), in_day, "from {text}");
            assert_eq!(to(&text), in_day || text == "24:00", "to {text}");
        }
    }
    for text in ["9:00", "09:0", "0900", "09:00:00"] {
        assert!(!from(text) && !to(text), "{text:?}");
    }
}

#[test]
fn names_and_territories_follow_kubernetes_rules() {
    let (name, object, territory, zone) =
        (matcher(NAME), matcher(OBJECT_NAME), matcher(TERRITORY), matcher(TIMEZONE));
    for ok in ["oktoberfest", "holidays-by", "a", "x1"] {
        assert!(name(ok) && object(ok), "{ok}");
    }
    for bad in ["", "-nights", "nights-", "Nights", "nächte", "a_b", "a.b"] {
        assert!(!name(bad), "{bad:?}");
    }
    assert!(object("calendars.crm") && !object("calendars..crm") && !object(".crm"));
    for ok in ["BY", "NW", "by", "north.west", "eu_1"] {
        assert!(territory(ok), "{ok}");
    }
    for bad in ["", "-BY", "BY-", "B Y"] {
        assert!(!territory(bad), "{bad:?}");
    }
    for ok in
        ["Europe/Berlin", "UTC", "Etc/GMT+1", "America/Port-au-Prince", "America/Argentina/Buenos_Aires"]
    {
        assert!(zone(ok), "{ok}");
    }
    for bad in ["", "/Berlin", "Europe/", "Europe Berlin", "+01:00"] {
        assert!(!zone(bad), "{bad:?}");
    }
}

#[test]
fn metric_fields_take_numbers_and_urls() {
    let (threshold, address) = (matcher(THRESHOLD), matcher(SERVER_ADDRESS));
    for ok in ["0.25", "100", "0", "12.5"] {
        assert!(threshold(ok), "{ok}");
    }
    for bad in ["", ".25", "1.", "-1", "1e3", "0.25 "] {
        assert!(!threshold(bad), "{bad:?}");
    }
    assert!(address("http://prometheus.monitoring:9090") && address("https://prom.example/api"));
    assert!(!address("prometheus:9090") && !address("http://") && !address("http://a b"));
}

proptest! {
    /// Dates: the pattern accepts a date exactly when the day exists in that month of a leap year
    /// (February 29 in common years is left to the calendar validation).
    #[test]
    fn date_accepts_the_days_of_each_month(year in 0i16..=9999, month in 0i8..=13, day in 0i8..=32) {
        let text = format!("{year:04}-{month:02}-{day:02}");
        prop_assert_eq!(matcher(DATE)(&text), Date::new(2024, month, day).is_ok(), "{}", text);
    }

    /// Every lead time the CRD accepts is one the calendar's duration parser reads, to the minute.
    #[test]
    fn every_accepted_lead_time_parses_to_its_minutes(hours in 0u32..2000, minutes in 0u32..200_000, form in 0..3) {
        let text = match form {
            0 => format!("{hours}h"),
            1 => format!("{minutes}m"),
            _ => format!("{hours}h{minutes}m"),
        };
        let expected = match form {
            0 => hours * 60,
            1 => minutes,
            _ => hours * 60 + minutes,
        };
        let accepted = matcher(DURATION)(&text);
        let digits_fit = match form {
            0 => hours < 1000,
            1 => minutes < 100_000,
            _ => hours < 1000 && minutes < 60,
        };
        prop_assert_eq!(accepted, digits_fit, "{}", text);
        if accepted {
            let parsed: SignedDuration = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed, SignedDuration::from_mins(i64::from(expected)), "{}", text);
        }
    }
}
