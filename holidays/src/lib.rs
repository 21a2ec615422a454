//! German public holidays per federal state, Easter Sunday, and business days: the one home of
//! these rules in the workspace. The CRM counts SLA business days with them ("follow up within 5
//! business days after delivery": a business day is Monday to Friday and not a public holiday in
//! the customer's state, so a deadline never lands on a day the customer is closed); the operator's
//! seasonal calendars lower replica floors on them (dark periods).
//!
//! The rules are current law with the changes since 1995 dated (Frauentag, Weltkindertag, the
//! northern states' Reformationstag, the nationwide Reformationstag of 2017); earlier years get the
//! rules of 1995. Left out on purpose, because a rule per state cannot know them: one-off holidays
//! (Berlin's Tag der Befreiung in 2020 and 2025), city-only ones (the Augsburger Friedensfest) and
//! those kept only in some municipalities of a state (Fronleichnam in parts of Sachsen and Thüringen).
//!
//! Dates are [`jiff::civil::Date`]: years -9999 to 9999. Nothing here panics for any input; a year
//! outside that range simply has no holidays.

use std::ops::RangeInclusive;

use jiff::SignedDuration;
use jiff::civil::{Date, Weekday};

/// The 16 German states, by their ISO 3166-2 codes (DE-BW ... DE-TH), in the order of their German
/// names, as the states themselves list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "UPPERCASE"))]
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

    /// From the subdivision part of the code alone, such as "BY", the short form people write in
    /// hand-edited files (the operator's calendars). Exact, upper case, for the same reason as
    /// [`State::from_region`].
    pub fn from_short_code(code: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.short_code() == code)
    }

    /// The ISO 3166-2 code, such as "DE-BY".
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

    /// The code without its country prefix, such as "BY".
    pub fn short_code(self) -> &'static str {
        // Every code is "DE-" and two ASCII letters.
        self.code().get(3..).unwrap_or_default()
    }
}

/// Easter Sunday of the Gregorian calendar (anonymous Gregorian / Meeus-Jones-Butcher algorithm),
/// because most movable holidays are counted from it. Floor division keeps it right for negative
/// years too; a year outside what [`Date`] supports is clamped into its range rather than panicking.
pub fn easter_sunday(year: i16) -> Date {
    let year = i32::from(year.clamp(Date::MIN.year(), Date::MAX.year()));
    let (a, b, c) = (year.rem_euclid(19), year.div_euclid(100), year.rem_euclid(100));
    let (d, e) = (b.div_euclid(4), b.rem_euclid(4));
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    // n / 31 is 3 or 4 and n % 31 + 1 at most 31 by construction, and the year was clamped, so the
    // date always exists and the casts cannot truncate.
    Date::new(year as i16, (n / 31) as i8, (n % 31 + 1) as i8).unwrap_or(Date::MIN)
}

/// The public holidays of `year` that apply in `state` (None: only the nationwide ones, for
/// customers whose state is unknown), sorted by date, with their German names. A date that is two
/// holidays at once (Christi Himmelfahrt on 1 May, as in 2008) appears once, under the name listed
/// first in `RULES`. Empty for a year outside what [`Date`] supports.
pub fn holidays(year: i16, state: Option<State>) -> Vec<(Date, &'static str)> {
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
    !is_weekend(date) && !is_holiday(date, state)
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
            let Ok(next) = date.tomorrow() else { return Date::MAX };
            if next.year() != date.year() {
                year_holidays = holidays(next.year(), state);
            }
            date = next;
            if !is_weekend(date) && !year_holidays.iter().any(|&(day, _)| day == date) {
                break;
            }
        }
    }
    date
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// When a holiday falls in a year.
enum Day {
    /// Month and day.
    Fixed(i8, i8),
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
struct Rule(&'static str, Day, Scope, RangeInclusive<i16>);

const ALWAYS: RangeInclusive<i16> = i16::MIN..=i16::MAX;

const fn since(year: i16) -> RangeInclusive<i16> {
    year..=i16::MAX
}

const JANUARY: i8 = 1;
const MARCH: i8 = 3;
const MAY: i8 = 5;
const AUGUST: i8 = 8;
const SEPTEMBER: i8 = 9;
const OCTOBER: i8 = 10;
const NOVEMBER: i8 = 11;
const DECEMBER: i8 = 12;

/// Nationwide holidays first, so they name a date that is two holidays at once. Holidays kept only
/// in parts of a state are not counted: Fronleichnam in the Sorbian parts of Sachsen and the
/// Catholic parts of Thüringen. Mariä Himmelfahrt is strictly a holiday only in the Bavarian
/// municipalities with a Catholic majority, but that is the large majority, so it counts for all of
/// Bayern.
const RULES: &[Rule] = {
    use Day::{BussUndBettag, Easter, Fixed};
    use Scope::{In, Nationwide};
    use State::*;
    &[
        Rule("Neujahr", Fixed(JANUARY, 1), Nationwide, ALWAYS),
        Rule("Karfreitag", Easter(-2), Nationwide, ALWAYS),
        Rule("Ostermontag", Easter(1), Nationwide, ALWAYS),
        Rule("Tag der Arbeit", Fixed(MAY, 1), Nationwide, ALWAYS),
        Rule("Christi Himmelfahrt", Easter(39), Nationwide, ALWAYS),
        Rule("Pfingstmontag", Easter(50), Nationwide, ALWAYS),
        Rule("Tag der Deutschen Einheit", Fixed(OCTOBER, 3), Nationwide, ALWAYS),
        // The 500th anniversary of the Reformation, once.
        Rule("Reformationstag", Fixed(OCTOBER, 31), Nationwide, 2017..=2017),
        Rule("1. Weihnachtstag", Fixed(DECEMBER, 25), Nationwide, ALWAYS),
        Rule("2. Weihnachtstag", Fixed(DECEMBER, 26), Nationwide, ALWAYS),
        Rule("Heilige Drei Könige", Fixed(JANUARY, 6), In(&[Bw, By, St]), ALWAYS),
        Rule("Internationaler Frauentag", Fixed(MARCH, 8), In(&[Be]), since(2019)),
        Rule("Internationaler Frauentag", Fixed(MARCH, 8), In(&[Mv]), since(2023)),
        // Sundays anyway; listed so that holidays() matches Brandenburg's law.
        Rule("Ostersonntag", Easter(0), In(&[Bb]), ALWAYS),
        Rule("Pfingstsonntag", Easter(49), In(&[Bb]), ALWAYS),
        Rule("Fronleichnam", Easter(60), In(&[Bw, By, He, Nw, Rp, Sl]), ALWAYS),
        Rule("Mariä Himmelfahrt", Fixed(AUGUST, 15), In(&[By, Sl]), ALWAYS),
        Rule("Weltkindertag", Fixed(SEPTEMBER, 20), In(&[Th]), since(2019)),
        Rule("Reformationstag", Fixed(OCTOBER, 31), In(&[Bb, Mv, Sn, St, Th]), ALWAYS),
        Rule("Reformationstag", Fixed(OCTOBER, 31), In(&[Hb, Hh, Ni, Sh]), since(2018)),
        Rule("Allerheiligen", Fixed(NOVEMBER, 1), In(&[Bw, By, Nw, Rp, Sl]), ALWAYS),
        // Kept only in Sachsen when the other states gave it up in 1995 to fund the care insurance.
        Rule("Buß- und Bettag", BussUndBettag, In(&[Sn]), ALWAYS),
    ]
};

/// The holidays of `year` in `state`, in rule order; nothing where a date cannot be built.
fn occurrences(year: i16, state: Option<State>) -> impl Iterator<Item = (Date, &'static str)> {
    // Only ask for Easter in a year Date supports, as easter_sunday clamps the others.
    let easter = Date::new(year, 4, 1).ok().map(|_| easter_sunday(year));
    RULES.iter().filter_map(move |Rule(name, day, scope, years)| {
        let applies = match scope {
            Scope::Nationwide => true,
            Scope::In(states) => state.is_some_and(|state| states.contains(&state)),
        };
        if !applies || !years.contains(&year) {
            return None;
        }
        let date = match *day {
            Day::Fixed(month, day) => Date::new(year, month, day).ok(),
            // Civil dates have days of exactly 24 hours, so this is whole days.
            Day::Easter(offset) => easter?.checked_add(SignedDuration::from_hours(24 * offset)).ok(),
            // nth_weekday(-1) is strictly before, and a week back from 23 November stays in the year.
            Day::BussUndBettag => {
                Date::new(year, NOVEMBER, 23).and_then(|day| day.nth_weekday(-1, Weekday::Wednesday)).ok()
            }
        };
        Some((date?, *name))
    })
}

#[cfg(test)]
mod tests;
