//! German public holidays per federal state, and business-day arithmetic for sales SLAs ("follow up
//! within 5 business days after delivery"): a business day is Monday to Friday and not a public
//! holiday in the customer's state, so a deadline never lands on a day the customer is closed.
//!
//! The rules are current law with the changes since 1995 dated (Frauentag, Weltkindertag, the
//! northern states' Reformationstag, the nationwide Reformationstag of 2017); earlier years get the
//! rules of 1995. Left out on purpose, because an SLA per state cannot know them: one-off holidays
//! (Berlin's Tag der Befreiung in 2020 and 2025), city-only ones (the Augsburger Friedensfest) and
//! those kept only in some municipalities of a state (Fronleichnam in parts of Sachsen and Thüringen).

use std::ops::RangeInclusive;

use time::{Date, Duration, Month, Weekday};

/// The 16 German states, by their ISO 3166-2 codes (DE-BW ... DE-TH), in the order of their German
/// names, as the states themselves list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Baden-Württemberg
    Bw,
    /// Bayern
    By,
    /// Berlin
    Be,
    /// Brandenburg
    Bb,
    /// Bremen
    Hb,
    /// Hamburg
    Hh,
    /// Hessen
    He,
    /// Mecklenburg-Vorpommern
    Mv,
    /// Niedersachsen
    Ni,
    /// Nordrhein-Westfalen
    Nw,
    /// Rheinland-Pfalz
    Rp,
    /// Saarland
    Sl,
    /// Sachsen
    Sn,
    /// Sachsen-Anhalt
    St,
    /// Schleswig-Holstein
    Sh,
    /// Thüringen
    Th,
}

impl State {
    pub const ALL: [State; 16] = [
        State::Bw,
        State::By,
        State::Be,
        State::Bb,
        State::Hb,
        State::Hh,
        State::He,
        State::Mv,
        State::Ni,
        State::Nw,
        State::Rp,
        State::Sl,
        State::Sn,
        State::St,
        State::Sh,
        State::Th,
    ];

    /// From an ISO 3166-2 subdivision code such as "DE-BY", the form addresses store the region in;
    /// None for anything else (other countries too), so callers fall back to nationwide holidays.
    /// Exact match only: stored codes are validated upper case, and guessing would hide bad data.
    pub fn from_region(code: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.code() == code)
    }

    pub fn code(self) -> &'static str {
        match self {
            State::Bw => "DE-BW",
            State::By => "DE-BY",
            State::Be => "DE-BE",
            State::Bb => "DE-BB",
            State::Hb => "DE-HB",
            State::Hh => "DE-HH",
            State::He => "DE-HE",
            State::Mv => "DE-MV",
            State::Ni => "DE-NI",
            State::Nw => "DE-NW",
            State::Rp => "DE-RP",
            State::Sl => "DE-SL",
            State::Sn => "DE-SN",
            State::St => "DE-ST",
            State::Sh => "DE-SH",
            State::Th => "DE-TH",
        }
    }
}

/// Easter Sunday of the Gregorian calendar (anonymous Gregorian / Meeus-Jones-Butcher algorithm),
/// because most movable holidays are counted from it. Floor division keeps it right for negative
/// years too; a year outside what [`Date`] supports is clamped into its range rather than panicking.
pub fn easter_sunday(year: i32) -> Date {
    let year = year.clamp(Date::MIN.year(), Date::MAX.year());
    let (a, b, c) = (year.rem_euclid(19), year.div_euclid(100), year.rem_euclid(100));
    let (d, e) = (b.div_euclid(4), b.rem_euclid(4));
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    // n / 31 is 3 or 4 and n % 31 + 1 at most 31 by construction, so the date always exists.
    let month = if n / 31 == 3 { Month::March } else { Month::April };
    Date::from_calendar_date(year, month, (n % 31 + 1) as u8).unwrap_or(Date::MIN)
}

/// The public holidays of `year` that apply in `state` (None: only the nationwide ones, for
/// customers whose state is unknown), sorted by date, with their German names. A date that is two
/// holidays at once (Christi Himmelfahrt on 1 May, as in 2008) appears once, under the name listed
/// first in `RULES`. Empty for a year outside what [`Date`] supports.
pub fn holidays(year: i32, state: Option<State>) -> Vec<(Date, &'static str)> {
    let mut days: Vec<_> = occurrences(year, state).collect();
    days.sort_by_key(|&(date, _)| date);
    days.dedup_by_key(|&mut (date, _)| date);
    days
}

pub fn is_holiday(date: Date, state: Option<State>) -> bool {
    occurrences(date.year(), state).any(|(day, _)| day == date)
}

/// Monday to Friday and not a public holiday in `state`.
pub fn is_business_day(date: Date, state: Option<State>) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && !is_holiday(date, state)
}

/// The `n`-th business day after `start`: start itself never counts, as a delivery day is not a
/// day to follow up in, and n = 0 returns start unchanged even on a holiday. Saturates at
/// [`Date::MAX`] (which then need not be a business day) rather than panicking.
pub fn add_business_days(start: Date, n: u32, state: Option<State>) -> Date {
    let mut date = start;
    // The holidays of the current year, so walking a long way does not recompute them every day.
    let mut year_holidays = holidays(start.year(), state);
    for _ in 0..n {
        loop {
            let Some(next) = date.next_day() else { return Date::MAX };
            if next.year() != date.year() {
                year_holidays = holidays(next.year(), state);
            }
            date = next;
            let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
            if !weekend && !year_holidays.iter().any(|&(day, _)| day == date) {
                break;
            }
        }
    }
    date
}

/// When a holiday falls in a year.
enum Day {
    Fixed(Month, u8),
    /// Days after Easter Sunday (negative: before).
    Easter(i64),
    /// The Wednesday before 23 November: the last Wednesday strictly before it.
    BussUndBettag,
}

/// Where a holiday applies. Nationwide ones also apply when the state is unknown.
enum Scope {
    Nationwide,
    In(&'static [State]),
}

/// A holiday's name, day, scope and the years it is law in (so past dates keep the holidays they had).
struct Rule(&'static str, Day, Scope, RangeInclusive<i32>);

const ALWAYS: RangeInclusive<i32> = i32::MIN..=i32::MAX;

const fn since(year: i32) -> RangeInclusive<i32> {
    year..=i32::MAX
}

/// Nationwide holidays first, so they name a date that is two holidays at once. Holidays kept only
/// in parts of a state are not counted: Fronleichnam in the Sorbian parts of Sachsen and the
/// Catholic parts of Thüringen. Mariä Himmelfahrt is strictly a holiday only in the Bavarian
/// municipalities with a Catholic majority, but that is the large majority, so it counts for all of
/// Bayern.
const RULES: &[Rule] = {
    use Day::{BussUndBettag, Easter, Fixed};
    use Month::{August, December, January, March, May, November, October, September};
    use Scope::{In, Nationwide};
    use State::*;
    &[
        Rule("Neujahr", Fixed(January, 1), Nationwide, ALWAYS),
        Rule("Karfreitag", Easter(-2), Nationwide, ALWAYS),
        Rule("Ostermontag", Easter(1), Nationwide, ALWAYS),
        Rule("Tag der Arbeit", Fixed(May, 1), Nationwide, ALWAYS),
        Rule("Christi Himmelfahrt", Easter(39), Nationwide, ALWAYS),
        Rule("Pfingstmontag", Easter(50), Nationwide, ALWAYS),
        Rule("Tag der Deutschen Einheit", Fixed(October, 3), Nationwide, ALWAYS),
        // The 500th anniversary of the Reformation, once.
        Rule("Reformationstag", Fixed(October, 31), Nationwide, 2017..=2017),
        Rule("1. Weihnachtstag", Fixed(December, 25), Nationwide, ALWAYS),
        Rule("2. Weihnachtstag", Fixed(December, 26), Nationwide, ALWAYS),
        Rule("Heilige Drei Könige", Fixed(January, 6), In(&[Bw, By, St]), ALWAYS),
        Rule("Internationaler Frauentag", Fixed(March, 8), In(&[Be]), since(2019)),
        Rule("Internationaler Frauentag", Fixed(March, 8), In(&[Mv]), since(2023)),
        // Sundays anyway; listed so that holidays() matches Brandenburg's law.
        Rule("Ostersonntag", Easter(0), In(&[Bb]), ALWAYS),
        Rule("Pfingstsonntag", Easter(49), In(&[Bb]), ALWAYS),
        Rule("Fronleichnam", Easter(60), In(&[Bw, By, He, Nw, Rp, Sl]), ALWAYS),
        Rule("Mariä Himmelfahrt", Fixed(August, 15), In(&[By, Sl]), ALWAYS),
        Rule("Weltkindertag", Fixed(September, 20), In(&[Th]), since(2019)),
        Rule("Reformationstag", Fixed(October, 31), In(&[Bb, Mv, Sn, St, Th]), ALWAYS),
        Rule("Reformationstag", Fixed(October, 31), In(&[Hb, Hh, Ni, Sh]), since(2018)),
        Rule("Allerheiligen", Fixed(November, 1), In(&[Bw, By, Nw, Rp, Sl]), ALWAYS),
        // Kept only in Sachsen when the other states gave it up in 1995 to fund the care insurance.
        Rule("Buß- und Bettag", BussUndBettag, In(&[Sn]), ALWAYS),
    ]
};

/// The holidays of `year` in `state`, in rule order; nothing where a date cannot be built.
fn occurrences(year: i32, state: Option<State>) -> impl Iterator<Item = (Date, &'static str)> {
    // Only ask for Easter in a year Date supports, as easter_sunday clamps the others.
    let easter = Date::from_calendar_date(year, Month::April, 1).ok().map(|_| easter_sunday(year));
    RULES.iter().filter_map(move |Rule(name, day, scope, years)| {
        let applies = match scope {
            Scope::Nationwide => true,
            Scope::In(states) => state.is_some_and(|state| states.contains(&state)),
        };
        if !applies || !years.contains(&year) {
            return None;
        }
        let date = match *day {
            Day::Fixed(month, day) => Date::from_calendar_date(year, month, day).ok(),
            Day::Easter(offset) => easter?.checked_add(Duration::days(offset)),
            // prev_occurrence is strictly before, and a week back from 23 November stays in the year.
            Day::BussUndBettag => Date::from_calendar_date(year, Month::November, 23)
                .ok()
                .map(|day| day.prev_occurrence(Weekday::Wednesday)),
        };
        Some((date?, *name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    /// The holidays as "MM-DD", which reads like the published lists.
    fn days(year: i32, state: Option<State>) -> Vec<String> {
        holidays(year, state)
            .iter()
            .map(|(date, _)| format!("{:02}-{:02}", date.month() as u8, date.day()))
            .collect()
    }

    #[test]
    fn easter_sunday_falls_on_the_known_dates() {
        let known = [
            date!(1995 - 04 - 16),
            date!(2000 - 04 - 23),
            date!(2008 - 03 - 23),
            date!(2011 - 04 - 24),
            date!(2019 - 04 - 21),
            date!(2024 - 03 - 31),
            date!(2025 - 04 - 20),
            date!(2026 - 04 - 05),
            date!(2027 - 03 - 28),
            date!(2038 - 04 - 25),
            date!(2285 - 03 - 22),
            date!(1943 - 04 - 25),
        ];
        for easter in known {
            assert_eq!(easter_sunday(easter.year()), easter);
        }
    }

    #[test]
    fn bavaria_2025_has_its_thirteen_holidays() {
        let expected = [
            "01-01", "01-06", "04-18", "04-21", "05-01", "05-29", "06-09", "06-19", "08-15", "10-03",
            "11-01", "12-25", "12-26",
        ];
        assert_eq!(days(2025, Some(State::By)), expected);
    }

    #[test]
    fn north_rhine_westphalia_2026_has_corpus_christi_and_all_saints() {
        let expected = [
            "01-01", "04-03", "04-06", "05-01", "05-14", "05-25", "06-04", "10-03", "11-01", "12-25", "12-26",
        ];
        assert_eq!(days(2026, Some(State::Nw)), expected);
    }

    #[test]
    fn berlin_2026_has_womens_day() {
        let expected =
            ["01-01", "03-08", "04-03", "04-06", "05-01", "05-14", "05-25", "10-03", "12-25", "12-26"];
        assert_eq!(days(2026, Some(State::Be)), expected);
        assert!(!days(2018, Some(State::Be)).contains(&"03-08".to_owned()));
        assert!(days(2023, Some(State::Mv)).contains(&"03-08".to_owned()));
        assert!(!days(2022, Some(State::Mv)).contains(&"03-08".to_owned()));
    }

    #[test]
    fn saxony_2025_has_reformation_day_and_the_day_of_repentance() {
        let expected = [
            "01-01", "04-18", "04-21", "05-01", "05-29", "06-09", "10-03", "10-31", "11-19", "12-25", "12-26",
        ];
        assert_eq!(days(2025, Some(State::Sn)), expected);
        assert!(holidays(2025, Some(State::Sn)).contains(&(date!(2025 - 11 - 19), "Buß- und Bettag")));
    }

    #[test]
    fn thuringia_2026_has_childrens_day() {
        let expected = [
            "01-01", "04-03", "04-06", "05-01", "05-14", "05-25", "09-20", "10-03", "10-31", "12-25", "12-26",
        ];
        assert_eq!(days(2026, Some(State::Th)), expected);
        assert!(!days(2018, Some(State::Th)).contains(&"09-20".to_owned()));
    }

    #[test]
    fn hamburg_had_reformation_day_in_2017_but_not_in_2016() {
        let in_2017 =
            ["01-01", "04-14", "04-17", "05-01", "05-25", "06-05", "10-03", "10-31", "12-25", "12-26"];
        let in_2016 = ["01-01", "03-25", "03-28", "05-01", "05-05", "05-16", "10-03", "12-25", "12-26"];
        assert_eq!(days(2017, Some(State::Hh)), in_2017);
        assert_eq!(days(2016, Some(State::Hh)), in_2016);
        assert!(days(2018, Some(State::Hh)).contains(&"10-31".to_owned()));
        assert!(days(2017, None).contains(&"10-31".to_owned()));
        assert!(!days(2018, None).contains(&"10-31".to_owned()));
    }

    #[test]
    fn without_a_state_only_the_nationwide_holidays_count() {
        let expected = ["01-01", "04-03", "04-06", "05-01", "05-14", "05-25", "10-03", "12-25", "12-26"];
        assert_eq!(days(2026, None), expected);
    }

    #[test]
    fn brandenburg_lists_easter_and_whit_sunday() {
        let brandenburg = holidays(2026, Some(State::Bb));
        assert!(brandenburg.contains(&(date!(2026 - 04 - 05), "Ostersonntag")));
        assert!(brandenburg.contains(&(date!(2026 - 05 - 24), "Pfingstsonntag")));
        assert!(!is_holiday(date!(2026 - 04 - 05), Some(State::Be)));
    }

    #[test]
    fn a_date_that_is_two_holidays_appears_once_under_the_first_name() {
        // Easter 2008 was on 23 March, so Ascension Day was on 1 May.
        let may_day: Vec<_> =
            holidays(2008, None).into_iter().filter(|(date, _)| *date == date!(2008 - 05 - 01)).collect();
        assert_eq!(may_day, [(date!(2008 - 05 - 01), "Tag der Arbeit")]);
        let reformation =
            holidays(2017, Some(State::Sn)).into_iter().filter(|(_, name)| *name == "Reformationstag");
        assert_eq!(reformation.count(), 1);
    }

    #[test]
    fn the_day_of_repentance_is_the_last_wednesday_before_november_23() {
        for day in [
            date!(2023 - 11 - 22),
            date!(2024 - 11 - 20),
            date!(2025 - 11 - 19),
            date!(2026 - 11 - 18),
            date!(2028 - 11 - 22),
        ] {
            let in_november: Vec<_> = holidays(day.year(), Some(State::Sn))
                .into_iter()
                .filter(|(date, _)| date.month() == Month::November)
                .collect();
            assert_eq!(in_november, [(day, "Buß- und Bettag")]);
            assert!(!is_holiday(day, Some(State::By)));
        }
    }

    #[test]
    fn christmas_week_skips_the_holidays_but_not_christmas_eve_or_new_years_eve() {
        let friday = date!(2025 - 12 - 19);
        // 22, 23, 24 December, then 29 and 30 after the holidays and the weekend.
        assert_eq!(add_business_days(friday, 5, Some(State::By)), date!(2025 - 12 - 30));
        // 31 December, then 2 January after New Year's Day.
        assert_eq!(add_business_days(friday, 7, Some(State::By)), date!(2026 - 01 - 02));
        // 5 January, then Epiphany is a holiday in Bavaria but not in North Rhine-Westphalia.
        assert_eq!(add_business_days(friday, 9, Some(State::By)), date!(2026 - 01 - 07));
        assert_eq!(add_business_days(friday, 9, Some(State::Nw)), date!(2026 - 01 - 06));
    }

    #[test]
    fn the_day_after_maundy_thursday_is_the_tuesday_after_easter() {
        assert_eq!(add_business_days(date!(2026 - 04 - 02), 1, None), date!(2026 - 04 - 07));
    }

    #[test]
    fn zero_business_days_is_the_start_even_on_a_holiday() {
        let christmas = date!(2025 - 12 - 25);
        assert_eq!(add_business_days(christmas, 0, Some(State::By)), christmas);
        assert_eq!(add_business_days(christmas, 1, Some(State::By)), date!(2025 - 12 - 29));
    }

    #[test]
    fn the_ends_of_the_date_range_neither_panic_nor_invent_holidays() {
        assert_eq!(
            add_business_days(Date::MAX.previous_day().unwrap(), u32::MAX, Some(State::Sn)),
            Date::MAX
        );
        for year in [i32::MIN, Date::MIN.year() - 1, Date::MAX.year() + 1, i32::MAX] {
            assert!(holidays(year, Some(State::By)).is_empty());
        }
        for year in [Date::MIN.year(), Date::MAX.year()] {
            assert_eq!(holidays(year, Some(State::By)).len(), 13);
            assert_eq!(easter_sunday(year).weekday(), Weekday::Sunday);
        }
    }

    fn any_date() -> impl Strategy<Value = Date> {
        let base = date!(1995 - 01 - 01);
        (0..(date!(2100 - 01 - 01) - base).whole_days()).prop_map(move |days| base + Duration::days(days))
    }

    /// None (nationwide only) as one more index past the states.
    fn any_state() -> impl Strategy<Value = Option<State>> {
        (0..=State::ALL.len()).prop_map(|index| State::ALL.get(index).copied())
    }

    proptest! {
        #[test]
        fn easter_sunday_is_a_sunday_between_march_22_and_april_25(
            year in Date::MIN.year()..=Date::MAX.year(),
        ) {
            let easter = easter_sunday(year);
            prop_assert_eq!(easter.weekday(), Weekday::Sunday);
            let earliest = Date::from_calendar_date(year, Month::March, 22).unwrap();
            let latest = Date::from_calendar_date(year, Month::April, 25).unwrap();
            prop_assert!((earliest..=latest).contains(&easter));
        }

        #[test]
        fn holidays_are_sorted_distinct_in_their_year_and_include_the_nationwide_ones(
            year in 1995..2200,
            state in any_state(),
        ) {
            let list = holidays(year, state);
            prop_assert!(list.iter().all(|(date, _)| date.year() == year && is_holiday(*date, state)));
            prop_assert!(list.windows(2).all(|pair| pair[0].0 < pair[1].0));
            let nationwide = holidays(year, None);
            for state in State::ALL {
                let in_state = holidays(year, Some(state));
                prop_assert!(nationwide.iter().all(|holiday| in_state.iter().any(|day| day.0 == holiday.0)));
            }
        }

        #[test]
        fn adding_business_days_lands_on_the_nth_business_day_after_start(
            start in any_date(),
            n in 0u32..40,
            state in any_state(),
        ) {
            let end = add_business_days(start, n, state);
            if n > 0 {
                prop_assert!(end > start);
                prop_assert!(is_business_day(end, state));
            } else {
                prop_assert_eq!(end, start);
            }
            let mut counted = 0;
            let mut date = start;
            while date < end {
                date = date.next_day().unwrap();
                counted += u32::from(is_business_day(date, state));
            }
            prop_assert_eq!(counted, n);
        }

        #[test]
        fn adding_business_days_is_monotone_in_n_and_in_start(
            start in any_date(),
            later in 0i64..30,
            n in 0u32..30,
            more in 0u32..30,
            state in any_state(),
        ) {
            prop_assert!(add_business_days(start, n, state) <= add_business_days(start, n + more, state));
            let later = start + Duration::days(later);
            prop_assert!(add_business_days(start, n, state) <= add_business_days(later, n, state));
        }

        #[test]
        fn is_business_day_agrees_with_the_weekday_and_the_holidays(
            date in any_date(),
            state in any_state(),
        ) {
            let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
            let listed = holidays(date.year(), state).iter().any(|(day, _)| *day == date);
            prop_assert_eq!(is_holiday(date, state), listed);
            prop_assert_eq!(is_business_day(date, state), !weekend && !listed);
        }
    }

    #[test]
    fn region_codes_round_trip_and_nothing_else_is_a_state() {
        for state in State::ALL {
            assert_eq!(State::from_region(state.code()), Some(state));
        }
        for code in ["DE-XX", "AT-BY", "", "de-by", "DE-BY ", "BY"] {
            assert_eq!(State::from_region(code), None, "{code:?}");
        }
    }
}
