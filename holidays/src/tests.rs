use super::*;
use jiff::ToSpan;
use jiff::civil::date;
use proptest::prelude::*;

/// The holidays as "MM-DD", which reads like the published lists.
fn days(year: i16, state: Option<State>) -> Vec<String> {
    holidays(year, state).iter().map(|(date, _)| format!("{:02}-{:02}", date.month(), date.day())).collect()
}

#[test]
fn easter_sunday_falls_on_the_known_dates() {
    let known = [
        date(1995, 4, 16),
        date(2000, 4, 23),
        date(2008, 3, 23),
        date(2011, 4, 24),
        date(2019, 4, 21),
        date(2024, 3, 31),
        date(2025, 4, 20),
        date(2026, 4, 5),
        date(2027, 3, 28),
        date(2038, 4, 25),
        date(2285, 3, 22),
        date(1943, 4, 25),
    ];
    for easter in known {
        assert_eq!(easter_sunday(easter.year()), easter);
    }
}

#[test]
fn bavaria_2025_has_its_thirteen_holidays() {
    let expected = [
        "01-01", "01-06", "04-18", "04-21", "05-01", "05-29", "06-09", "06-19", "08-15", "10-03", "11-01",
        "12-25", "12-26",
    ];
    assert_eq!(days(2025, Some(State::By)), expected);
}

#[test]
fn north_rhine_westphalia_2026_has_corpus_christi_and_all_saints() {
    let expected =
        ["01-01", "04-03", "04-06", "05-01", "05-14", "05-25", "06-04", "10-03", "11-01", "12-25", "12-26"];
    assert_eq!(days(2026, Some(State::Nw)), expected);
}

#[test]
fn berlin_2026_has_womens_day() {
    let expected = ["01-01", "03-08", "04-03", "04-06", "05-01", "05-14", "05-25", "10-03", "12-25", "12-26"];
    assert_eq!(days(2026, Some(State::Be)), expected);
    assert!(!days(2018, Some(State::Be)).contains(&"03-08".to_owned()));
    assert!(days(2023, Some(State::Mv)).contains(&"03-08".to_owned()));
    assert!(!days(2022, Some(State::Mv)).contains(&"03-08".to_owned()));
}

#[test]
fn saxony_2025_has_reformation_day_and_the_day_of_repentance() {
    let expected =
        ["01-01", "04-18", "04-21", "05-01", "05-29", "06-09", "10-03", "10-31", "11-19", "12-25", "12-26"];
    assert_eq!(days(2025, Some(State::Sn)), expected);
    assert!(holidays(2025, Some(State::Sn)).contains(&(date(2025, 11, 19), "Buß- und Bettag")));
}

#[test]
fn thuringia_2026_has_childrens_day() {
    let expected =
        ["01-01", "04-03", "04-06", "05-01", "05-14", "05-25", "09-20", "10-03", "10-31", "12-25", "12-26"];
    assert_eq!(days(2026, Some(State::Th)), expected);
    assert!(!days(2018, Some(State::Th)).contains(&"09-20".to_owned()));
}

#[test]
fn hamburg_had_reformation_day_in_2017_but_not_in_2016() {
    let in_2017 = ["01-01", "04-14", "04-17", "05-01", "05-25", "06-05", "10-03", "10-31", "12-25", "12-26"];
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
    assert!(brandenburg.contains(&(date(2026, 4, 5), "Ostersonntag")));
    assert!(brandenburg.contains(&(date(2026, 5, 24), "Pfingstsonntag")));
    assert!(!is_holiday(date(2026, 4, 5), Some(State::Be)));
}

#[test]
fn a_date_that_is_two_holidays_appears_once_under_the_first_name() {
    // Easter 2008 was on 23 March, so Ascension Day was on 1 May.
    let may_day: Vec<_> =
        holidays(2008, None).into_iter().filter(|(day, _)| *day == date(2008, 5, 1)).collect();
    assert_eq!(may_day, [(date(2008, 5, 1), "Tag der Arbeit")]);
    let reformation =
        holidays(2017, Some(State::Sn)).into_iter().filter(|(_, name)| *name == "Reformationstag");
    assert_eq!(reformation.count(), 1);
}

#[test]
fn the_day_of_repentance_is_the_last_wednesday_before_november_23() {
    for day in
        [date(2023, 11, 22), date(2024, 11, 20), date(2025, 11, 19), date(2026, 11, 18), date(2028, 11, 22)]
    {
        let in_november: Vec<_> = holidays(day.year(), Some(State::Sn))
            .into_iter()
            .filter(|(date, _)| date.month() == 11)
            .collect();
        assert_eq!(in_november, [(day, "Buß- und Bettag")]);
        assert!(!is_holiday(day, Some(State::By)));
    }
}

#[test]
fn christmas_week_skips_the_holidays_but_not_christmas_eve_or_new_years_eve() {
    let friday = date(2025, 12, 19);
    // 22, 23, 24 December, then 29 and 30 after the holidays and the weekend.
    assert_eq!(add_business_days(friday, 5, Some(State::By)), date(2025, 12, 30));
    // 31 December, then 2 January after New Year's Day.
    assert_eq!(add_business_days(friday, 7, Some(State::By)), date(2026, 1, 2));
    // 5 January, then Epiphany is a holiday in Bavaria but not in North Rhine-Westphalia.
    assert_eq!(add_business_days(friday, 9, Some(State::By)), date(2026, 1, 7));
    assert_eq!(add_business_days(friday, 9, Some(State::Nw)), date(2026, 1, 6));
}

#[test]
fn the_day_after_maundy_thursday_is_the_tuesday_after_easter() {
    assert_eq!(add_business_days(date(2026, 4, 2), 1, None), date(2026, 4, 7));
}

#[test]
fn zero_business_days_is_the_start_even_on_a_holiday() {
    let christmas = date(2025, 12, 25);
    assert_eq!(add_business_days(christmas, 0, Some(State::By)), christmas);
    assert_eq!(add_business_days(christmas, 1, Some(State::By)), date(2025, 12, 29));
}

#[test]
fn the_ends_of_the_date_range_neither_panic_nor_invent_holidays() {
    assert_eq!(add_business_days(Date::MAX.yesterday().unwrap(), u32::MAX, Some(State::Sn)), Date::MAX);
    for year in [i16::MIN, Date::MIN.year() - 1, Date::MAX.year() + 1, i16::MAX] {
        assert!(holidays(year, Some(State::By)).is_empty());
    }
    for year in [Date::MIN.year(), Date::MAX.year()] {
        assert_eq!(holidays(year, Some(State::By)).len(), 13);
        assert_eq!(easter_sunday(year).weekday(), Weekday::Sunday);
    }
}

fn any_date() -> impl Strategy<Value = Date> {
    let base = date(1995, 1, 1);
    (0..base.until(date(2100, 1, 1)).unwrap().get_days()).prop_map(move |days| base + days.days())
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
        let earliest = date(year, 3, 22);
        let latest = date(year, 4, 25);
        prop_assert!((earliest..=latest).contains(&easter));
    }

    #[test]
    fn holidays_are_sorted_distinct_in_their_year_and_include_the_nationwide_ones(
        year in 1995i16..2200,
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
            date = date.tomorrow().unwrap();
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
        let later = start + later.days();
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

#[test]
fn short_codes_are_the_region_codes_without_the_country() {
    for state in State::ALL {
        assert_eq!(format!("DE-{}", state.short_code()), state.code());
        assert_eq!(State::from_short_code(state.short_code()), Some(state));
    }
    assert_eq!(State::from_short_code("NW"), Some(State::Nw));
    for code in ["DE-BY", "by", "NRW", "", "XX"] {
        assert_eq!(State::from_short_code(code), None, "{code:?}");
    }
}
