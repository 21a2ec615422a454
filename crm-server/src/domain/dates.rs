//! Sane bounds for the dates and times clients give: years 1900 to 9999.
//!
//! RFC 3339 admits year 0000, and PostgreSQL stores it, but no activity, delivery, contract or
//! season of this business lies there: such a value is a typo or a client's zero value, and it
//! would sort before everything real and skew every period and SLA computed from it. The OpenAPI
//! document gives every date and date-time the same bounds as [`YEAR_PATTERN`].

use time::{Date, OffsetDateTime, UtcOffset};

use crate::error::FieldError;

pub const FIRST_YEAR: i32 = 1900;
pub const LAST_YEAR: i32 = 9999;

/// The years [`FIRST_YEAR`] to [`LAST_YEAR`] at the start of an RFC 3339 date or date-time, as a
/// JSON Schema pattern.
pub const YEAR_PATTERN: &str = "^(19[0-9]{2}|[2-9][0-9]{3})-";

const RANGE: &str = "a year from 1900 to 9999";

pub fn is_sane_date(date: Date) -> bool {
    (FIRST_YEAR..=LAST_YEAR).contains(&date.year())
}

/// The year as written (in the value's own offset) is sane, and the instant has a UTC date at all
/// (`9999-12-31T23:00:00-05:00` has none).
pub fn is_sane_time(at: OffsetDateTime) -> bool {
    is_sane_date(at.date()) && at.checked_to_offset(UtcOffset::UTC).is_some()
}

/// A 422 error for a body value at `pointer` outside the bounds.
pub fn check_date(pointer: &str, date: Date) -> Option<FieldError> {
    (!is_sane_date(date)).then(|| FieldError::new(pointer, RANGE))
}

pub fn check_time(pointer: &str, at: OffsetDateTime) -> Option<FieldError> {
    (!is_sane_time(at)).then(|| FieldError::new(pointer, RANGE))
}

/// A 400 error for a query parameter outside the bounds.
pub fn check_date_parameter(name: &str, date: Option<Date>) -> Option<FieldError> {
    date.filter(|d| !is_sane_date(*d)).map(|_| FieldError::parameter(name, RANGE))
}

pub fn check_time_parameter(name: &str, at: Option<OffsetDateTime>) -> Option<FieldError> {
    at.filter(|t| !is_sane_time(*t)).map(|_| FieldError::parameter(name, RANGE))
}

/// A string value that a JSON Schema declares a `date` or `date-time`: whether its year is sane.
/// Anything else (not a string, no year) is left to the schema's own checks.
pub fn is_sane_text(text: &str) -> bool {
    match text.get(..4).and_then(|year| year.parse::<i32>().ok()) {
        Some(year) => (FIRST_YEAR..=LAST_YEAR).contains(&year) && text.as_bytes().get(4) == Some(&b'-'),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn the_bounds_are_1900_to_9999() {
        assert!(!is_sane_date(date!(0000 - 01 - 01)));
        assert!(!is_sane_date(date!(1899 - 12 - 31)));
        assert!(is_sane_date(date!(1900 - 01 - 01)));
        assert!(is_sane_date(date!(9999 - 12 - 31)));
        assert!(is_sane_time(datetime!(2026-12-01 10:00 +01:00)));
        assert!(!is_sane_time(datetime!(0000-01-01 00:00 UTC)));
        // Sane as written, but in UTC a day of year 10000.
        assert!(!is_sane_time(datetime!(9999-12-31 23:00 -05:00)));
    }

    #[test]
    fn the_documented_pattern_says_the_same() {
        let schema = serde_json::json!({"type": "string", "pattern": YEAR_PATTERN});
        let validator = jsonschema::validator_for(&schema).unwrap();
        for year in [0, 1, 999, 1000, 1899, 1900, 1999, 2000, 2026, 8999, 9000, 9999] {
            let text = format!("{year:04}-01-01");
            let date = Date::from_calendar_date(year, time::Month::January, 1).unwrap();
            assert_eq!(validator.is_valid(&serde_json::json!(text)), is_sane_date(date), "{text}");
            assert_eq!(is_sane_text(&text), is_sane_date(date), "{text}");
        }
    }
}
