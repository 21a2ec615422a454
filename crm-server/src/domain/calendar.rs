//! Business days for sales SLAs ("follow up within 5 business days after delivery"), on the `time`
//! dates the CRM stores. The rules (German public holidays per state, Easter) live in
//! `freshplan-holidays`, shared with the operator; this module only converts dates at the edge.

use time::{Date, Month};

pub use freshplan_holidays::State;

/// The `n`-th business day after `start` in `state` (None: nationwide holidays only); see
/// [`freshplan_holidays::add_business_days`]. Both date types cover the years -9999 to 9999, so the
/// conversions cannot fail; were one ever to, `start` is returned rather than a made-up date.
pub fn add_business_days(start: Date, n: u32, state: Option<State>) -> Date {
    to_jiff(start)
        .map(|start| freshplan_holidays::add_business_days(start, n, state))
        .and_then(from_jiff)
        .unwrap_or(start)
}

fn to_jiff(date: Date) -> Option<jiff::civil::Date> {
    let year = i16::try_from(date.year()).ok()?;
    jiff::civil::Date::new(year, date.month() as i8, date.day() as i8).ok()
}

fn from_jiff(date: jiff::civil::Date) -> Option<Date> {
    let month = Month::try_from(date.month() as u8).ok()?;
    Date::from_calendar_date(i32::from(date.year()), month, date.day() as u8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn dates_convert_both_ways_to_the_ends_of_the_range() {
        for day in [Date::MIN, date!(2024 - 02 - 29), date!(2026 - 12 - 31), Date::MAX] {
            assert_eq!(to_jiff(day).and_then(from_jiff), Some(day));
        }
    }

    #[test]
    fn epiphany_counts_in_bavaria_but_not_in_north_rhine_westphalia() {
        let friday = date!(2025 - 12 - 19);
        assert_eq!(add_business_days(friday, 9, Some(State::By)), date!(2026 - 01 - 07));
        assert_eq!(add_business_days(friday, 9, Some(State::Nw)), date!(2026 - 01 - 06));
        assert_eq!(add_business_days(Date::MAX, 1, None), Date::MAX);
    }
}
