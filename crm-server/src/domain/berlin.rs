//! Dates where the customers are: German civil time (Europe/Berlin). SLA due dates and delivery
//! dates are calendar days there, whatever the server's own time zone.

use std::sync::LazyLock;

use time::{Date, Month, OffsetDateTime};

static ZONE: LazyLock<Option<jiff::tz::TimeZone>> =
    LazyLock::new(|| jiff::tz::TimeZone::get("Europe/Berlin").ok());

/// The date in Germany at `at`. (The zone is bundled; were it ever missing, UTC+1 is at most an
/// hour off, on summer nights.)
pub fn date(at: OffsetDateTime) -> Date {
    let fallback = || at.to_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap_or(time::UtcOffset::UTC)).date();
    let (Some(zone), Ok(timestamp)) = (&*ZONE, jiff::Timestamp::from_second(at.unix_timestamp())) else {
        return fallback();
    };
    let local = timestamp.to_zoned(zone.clone()).date();
    Month::try_from(local.month() as u8)
        .ok()
        .and_then(|month| Date::from_calendar_date(i32::from(local.year()), month, local.day() as u8).ok())
        .unwrap_or_else(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn dates_follow_german_summer_and_winter_time() {
        // 23:30 UTC is already the next day in Berlin: 00:30 in winter, 01:30 in summer.
        assert_eq!(date(datetime!(2026-01-15 23:30 UTC)), date!(2026 - 01 - 16));
        assert_eq!(date(datetime!(2026-07-15 22:30 UTC)), date!(2026 - 07 - 16));
        assert_eq!(date(datetime!(2026-07-15 21:59 UTC)), date!(2026 - 07 - 15));
        assert_eq!(date(datetime!(2026-01-15 22:59 UTC)), date!(2026 - 01 - 15));
        // The night of the switch to summer time (29 March 2026, 01:00 UTC).
        assert_eq!(date(datetime!(2026-03-28 22:59 UTC)), date!(2026 - 03 - 28));
        assert_eq!(date(datetime!(2026-03-28 23:00 UTC)), date!(2026 - 03 - 29));
    }
}
