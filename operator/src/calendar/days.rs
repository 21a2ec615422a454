//! Which local days a window or dark period covers: yearly month-day ranges (wrapping the year
//! end), one-off date ranges, ranges relative to Easter Sunday, German public holidays, every day.
//!
//! A rule expands into occurrences, each a run of consecutive local dates; both the floor and its
//! timeline start from these, and place them in time themselves.

use std::fmt;
use std::str::FromStr;

use freshplan_holidays::State;
use jiff::SignedDuration;
use jiff::civil::Date;

use super::CalendarError;

/// A day of the year, `MM-DD`. 02-29 is allowed and means 02-28 in years without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonthDay {
    // Field order makes the derived order the calendar order.
    month: i8,
    day: i8,
}

impl MonthDay {
    /// A month and day that exists in some year (so 02-29 but not 02-30 or 04-31).
    pub fn new(month: i8, day: i8) -> Result<MonthDay, CalendarError> {
        // 2000 is a leap year: every day that exists in some year exists in it.
        match Date::new(2000, month, day) {
            Ok(_) => Ok(MonthDay { month, day }),
            Err(_) => Err(CalendarError::MonthDay { value: format!("{month:02}-{day:02}") }),
        }
    }

    pub fn month(self) -> i8 {
        self.month
    }

    pub fn day(self) -> i8 {
        self.day
    }

    /// This day in `year`: 02-29 is 02-28 in years without it; None outside the years dates cover.
    pub fn in_year(self, year: i16) -> Option<Date> {
        Date::new(year, self.month, self.day).or_else(|_| Date::new(year, self.month, self.day - 1)).ok()
    }
}

impl FromStr for MonthDay {
    type Err = CalendarError;

    /// Exactly `MM-DD` with two digits each, as the resource's schema asks.
    fn from_str(value: &str) -> Result<MonthDay, CalendarError> {
        let error = || CalendarError::MonthDay { value: value.to_owned() };
        let (month, day) = value.split_once('-').ok_or_else(error)?;
        MonthDay::new(two_digits(month).ok_or_else(error)?, two_digits(day).ok_or_else(error)?)
            .map_err(|_| error())
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

/// Two ASCII digits, as a number.
pub(crate) fn two_digits(text: &str) -> Option<i8> {
    match text.as_bytes() {
        &[a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(((a - b'0') * 10 + (b - b'0')) as i8),
        _ => None,
    }
}

/// A one-off range of local dates, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange {
    from: Date,
    to: Date,
}

impl DateRange {
    pub fn new(from: Date, to: Date) -> Result<DateRange, CalendarError> {
        if to < from {
            return Err(CalendarError::DatesReversed { from, to });
        }
        Ok(DateRange { from, to })
    }

    pub fn from(self) -> Date {
        self.from
    }

    pub fn to(self) -> Date {
        self.to
    }
}

/// Days relative to Easter Sunday (Western), both ends inclusive: -2 is Good Friday, 1 Easter
/// Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EasterRange {
    from: i16,
    to: i16,
}

impl EasterRange {
    /// How far from Easter Sunday an offset may be. A year either way is more than any season
    /// needs, and bounding it bounds how many years back a rule can reach.
    pub const MAX_OFFSET: i16 = 365;

    pub fn new(from: i64, to: i64) -> Result<EasterRange, CalendarError> {
        let offset = |offset: i64| {
            i16::try_from(offset)
                .ok()
                .filter(|offset| offset.abs() <= Self::MAX_OFFSET)
                .ok_or(CalendarError::EasterOffsetTooFar { offset, max: Self::MAX_OFFSET })
        };
        let (from, to) = (offset(from)?, offset(to)?);
        if to < from {
            return Err(CalendarError::EasterReversed { from, to });
        }
        Ok(EasterRange { from, to })
    }

    pub fn from(self) -> i16 {
        self.from
    }

    pub fn to(self) -> i16 {
        self.to
    }
}

/// The days of a window: exactly one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Days {
    /// Every year from `from` to `to`; `to` before `from` wraps the year end (12-20 .. 01-06), and
    /// `to` equal to `from` is that one day.
    Yearly { from: MonthDay, to: MonthDay },
    /// Once.
    Dates(DateRange),
    /// Every year, relative to that year's Easter Sunday.
    Easter(EasterRange),
}

/// The days of a dark period: a window's rules, public holidays, or every day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DarkDays {
    /// Every day (a dark period without a day rule, such as nights).
    Every,
    Days(Days),
    /// German public holidays of a state (national and the state's own), or only the nationwide ones.
    Holidays(Option<State>),
}

/// One occurrence of a day rule: the local dates `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DaySpan {
    pub first: Date,
    pub last: Date,
}

impl Days {
    /// Every occurrence that shares a day with `first..=last`, whole (it may reach beyond), in
    /// no particular order; occurrences may overlap (a yearly 02-29 .. 02-28 in a leap year meets
    /// the next year's). Occurrences outside the years dates cover are left out.
    pub fn occurrences(&self, first: Date, last: Date) -> Vec<DaySpan> {
        let touches = |span: &DaySpan| span.first <= last && span.last >= first;
        match *self {
            Days::Yearly { from, to } => {
                // An occurrence starts in its own year and ends at most in the next.
                let years = first.year().saturating_sub(1)..=last.year();
                years
                    .filter_map(|year| {
                        let end_year = if to < from { year.checked_add(1)? } else { year };
                        Some(DaySpan { first: from.in_year(year)?, last: to.in_year(end_year)? })
                    })
                    .filter(touches)
                    .collect()
            }
            Days::Dates(range) => {
                Some(DaySpan { first: range.from, last: range.to }).filter(touches).into_iter().collect()
            }
            Days::Easter(range) => {
                // Offsets are within a year of Easter, so a year's occurrence lies within the year
                // before and the year after it.
                let years = first.year().saturating_sub(2)..=last.year().saturating_add(2);
                years
                    .filter(|&year| Date::new(year, 4, 1).is_ok())
                    .filter_map(|year| {
                        let easter = freshplan_holidays::easter_sunday(year);
                        Some(DaySpan {
                            first: add_days(easter, range.from.into())?,
                            last: add_days(easter, range.to.into())?,
                        })
                    })
                    .filter(touches)
                    .collect()
            }
        }
    }
}

impl DarkDays {
    /// As [`Days::occurrences`]; `Every` is one occurrence without start or end, so it is given as
    /// `first..=last` itself, and each holiday is an occurrence of its own.
    pub fn occurrences(&self, first: Date, last: Date) -> Vec<DaySpan> {
        match *self {
            DarkDays::Every if first <= last => vec![DaySpan { first, last }],
            DarkDays::Every => Vec::new(),
            DarkDays::Days(days) => days.occurrences(first, last),
            DarkDays::Holidays(state) => (first.year()..=last.year())
                .flat_map(|year| freshplan_holidays::holidays(year, state))
                .map(|(date, _)| DaySpan { first: date, last: date })
                .filter(|span| span.first >= first && span.first <= last)
                .collect(),
        }
    }
}

/// `date` plus `days` (negative: minus); None past the dates jiff covers.
pub(crate) fn add_days(date: Date, days: i64) -> Option<Date> {
    // Civil days are exactly 24 hours long, so this is whole days, never a DST question.
    date.checked_add(SignedDuration::from_secs(days.saturating_mul(86_400))).ok()
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use proptest::prelude::*;

    use super::*;
    use crate::calendar::strategies::any_days;

    fn md(text: &str) -> MonthDay {
        text.parse().unwrap()
    }

    fn spans(days: &Days, first: Date, last: Date) -> Vec<(Date, Date)> {
        let mut spans: Vec<_> = days.occurrences(first, last).iter().map(|s| (s.first, s.last)).collect();
        spans.sort();
        spans
    }

    #[test]
    fn month_days_parse_only_as_two_digit_pairs_that_exist() {
        assert_eq!(md("09-19"), MonthDay::new(9, 19).unwrap());
        assert_eq!(md("02-29").to_string(), "02-29");
        for bad in
            ["9-19", "09-1", "02-30", "04-31", "13-01", "00-10", "09/19", "09-19 ", "", "-1-01", "+9-01"]
        {
            assert!(bad.parse::<MonthDay>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "02-30".parse::<MonthDay>().unwrap_err().to_string(),
            "\"02-30\" is not a month and day: expected MM-DD, such as 09-19"
        );
    }

    #[test]
    fn february_29_is_february_28_in_common_years() {
        assert_eq!(md("02-29").in_year(2028), Some(date(2028, 2, 29)));
        assert_eq!(md("02-29").in_year(2027), Some(date(2027, 2, 28)));
        assert_eq!(md("02-29").in_year(2100), Some(date(2100, 2, 28)));
        assert_eq!(md("02-29").in_year(2000), Some(date(2000, 2, 29)));
        assert_eq!(md("01-01").in_year(10_000), None);
    }

    #[test]
    fn a_yearly_range_ending_before_it_starts_wraps_into_the_next_year() {
        let christmas = Days::Yearly { from: md("12-20"), to: md("01-06") };
        assert_eq!(
            spans(&christmas, date(2026, 1, 1), date(2026, 12, 31)),
            [(date(2025, 12, 20), date(2026, 1, 6)), (date(2026, 12, 20), date(2027, 1, 6))]
        );
        assert_eq!(spans(&christmas, date(2026, 1, 7), date(2026, 12, 19)), []);
    }

    #[test]
    fn easter_ranges_follow_easter_sunday() {
        let trade = Days::Easter(EasterRange::new(-3, 1).unwrap());
        let easter =
            [date(2026, 4, 5), date(2027, 3, 28), date(2028, 4, 16), date(2029, 4, 1), date(2030, 4, 21)];
        let found = spans(&trade, date(2026, 1, 1), date(2030, 12, 31));
        let expected: Vec<_> =
            easter.iter().map(|&e| (add_days(e, -3).unwrap(), add_days(e, 1).unwrap())).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn easter_ranges_refuse_reversed_or_far_offsets() {
        assert_eq!(EasterRange::new(2, 1), Err(CalendarError::EasterReversed { from: 2, to: 1 }));
        assert!(EasterRange::new(-366, 0).is_err());
        assert!(EasterRange::new(0, i64::MAX).is_err());
        assert!(EasterRange::new(-365, 365).is_ok());
        assert!(DateRange::new(date(2026, 10, 4), date(2026, 9, 19)).is_err());
    }

    #[test]
    fn holiday_days_are_the_states_holidays() {
        let by = DarkDays::Holidays(Some(State::By));
        let nw = DarkDays::Holidays(Some(State::Nw));
        let in_january = |days: &DarkDays| days.occurrences(date(2026, 1, 1), date(2026, 1, 31)).len();
        // New Year and Epiphany in Bavaria; only New Year in North Rhine-Westphalia.
        assert_eq!(in_january(&by), 2);
        assert_eq!(in_january(&nw), 1);
        assert_eq!(DarkDays::Every.occurrences(date(2026, 1, 2), date(2026, 1, 1)), []);
    }

    /// Whether `day` is covered, from the rule's wording alone, to check the expansion against.
    fn covered(days: &Days, day: Date) -> bool {
        match *days {
            Days::Yearly { from, to } => {
                // The day's own month-day; in a common year 02-28 also stands for 02-29.
                let this = MonthDay::new(day.month(), day.day()).unwrap();
                let stands_for = |bound: MonthDay| bound.in_year(day.year()) == Some(day);
                let after_from = this >= from || stands_for(from);
                let before_to = this <= to || stands_for(to);
                if from <= to { after_from && before_to } else { after_from || before_to }
            }
            Days::Dates(range) => range.from <= day && day <= range.to,
            Days::Easter(range) => (day.year() - 1..=day.year() + 1).any(|year| {
                let offset = freshplan_holidays::easter_sunday(year).until(day).unwrap().get_days();
                (i32::from(range.from)..=i32::from(range.to)).contains(&offset)
            }),
        }
    }

    proptest! {
        #[test]
        fn occurrences_cover_exactly_the_days_the_rule_names(
            days in any_days(),
            start in 0i64..2400,
            length in 0i64..40,
        ) {
            let first = add_days(date(2025, 1, 1), start).unwrap();
            let last = add_days(first, length).unwrap();
            let found = days.occurrences(first, last);
            prop_assert!(found.iter().all(|span| span.first <= span.last && span.first <= last && span.last >= first));
            let mut day = first;
            while day <= last {
                let in_some = found.iter().any(|span| span.first <= day && day <= span.last);
                prop_assert_eq!(in_some, covered(&days, day), "{}", day);
                day = day.tomorrow().unwrap();
            }
        }
    }
}
