//! The validated calendar: what a SeasonalWindow says once its spec has been checked, and the
//! baseline a ScalingProfile gives each component. Plain values; every constructor that can refuse
//! returns a [`CalendarError`], none panics.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::CalendarError;
use super::days::{DarkDays, Days, add_days, two_digits};
use crate::component::Component;

/// A time of day at minute precision, `00:00` to `24:00`; `24:00` is the end of the day, the next
/// day's `00:00`, and only makes sense as the end of daily hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    /// Minutes since midnight, 0..=1440.
    minutes: u16,
}

impl TimeOfDay {
    pub const MIDNIGHT: TimeOfDay = TimeOfDay { minutes: 0 };
    pub const END_OF_DAY: TimeOfDay = TimeOfDay { minutes: 24 * 60 };

    pub fn new(hour: u8, minute: u8) -> Result<TimeOfDay, CalendarError> {
        if (hour < 24 && minute < 60) || (hour == 24 && minute == 0) {
            return Ok(TimeOfDay { minutes: u16::from(hour) * 60 + u16::from(minute) });
        }
        Err(CalendarError::TimeOfDay { value: format!("{hour:02}:{minute:02}") })
    }

    /// Minutes since midnight, 0 to 1440.
    pub fn minutes(self) -> u16 {
        self.minutes
    }

    /// This time on local `date` in `tz`. A time the clocks skip (a DST gap) is read with the
    /// offset before the gap, so it lands as far after the gap's start as it is into the gap
    /// (02:30 on the spring-forward day in Berlin is 03:30 CEST); a time the clocks repeat is its
    /// first occurrence. This is jiff's "compatible" disambiguation, RFC 5545's rule too. None
    /// where the instant is past what a timestamp can hold (the years -9999 and 9999).
    pub fn on(self, date: Date, tz: &TimeZone) -> Option<Timestamp> {
        let (date, minutes) = match self.minutes {
            1440 => (add_days(date, 1)?, 0),
            minutes => (date, minutes),
        };
        let local = date.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
        tz.to_timestamp(local).ok()
    }
}

impl FromStr for TimeOfDay {
    type Err = CalendarError;

    /// Exactly `HH:MM`, two digits each.
    fn from_str(value: &str) -> Result<TimeOfDay, CalendarError> {
        let error = || CalendarError::TimeOfDay { value: value.to_owned() };
        let (hour, minute) = value.split_once(':').ok_or_else(error)?;
        let (hour, minute) = (two_digits(hour).ok_or_else(error)?, two_digits(minute).ok_or_else(error)?);
        TimeOfDay::new(hour as u8, minute as u8).map_err(|_| error())
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

/// Daily hours: on each covered date d, `[d from, d to)`, or when `to <= from`, `[d from, d+1 to)`
/// (crossing midnight; `to == from` is 24 hours from `from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hours {
    from: TimeOfDay,
    to: TimeOfDay,
}

impl Hours {
    /// Refuses only a start at 24:00, which would be the next day's 00:00.
    pub fn new(from: TimeOfDay, to: TimeOfDay) -> Result<Hours, CalendarError> {
        if from == TimeOfDay::END_OF_DAY {
            return Err(CalendarError::HoursStartAtEndOfDay);
        }
        Ok(Hours { from, to })
    }

    pub fn from(self) -> TimeOfDay {
        self.from
    }

    pub fn to(self) -> TimeOfDay {
        self.to
    }

    /// Whether the hours of a date end on the next date.
    pub fn crosses_midnight(self) -> bool {
        self.to <= self.from
    }
}

/// How long before each occurrence a window already holds its floor: whole minutes, at most
/// [`PreWarm::MAX`]. Absolute time: a 2h pre-warm before 03:00 on the spring-forward day starts
/// at 00:00, two real hours earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PreWarm {
    minutes: u32,
}

impl PreWarm {
    pub const NONE: PreWarm = PreWarm { minutes: 0 };
    /// A week: scaling up takes minutes, not weeks, and the bound keeps how far ahead the
    /// calendar must look for an occurrence small.
    pub const MAX: PreWarm = PreWarm { minutes: 7 * 24 * 60 };

    pub fn from_minutes(minutes: u32) -> Result<PreWarm, CalendarError> {
        PreWarm::from_duration(SignedDuration::from_mins(i64::from(minutes)))
    }

    /// A duration of whole minutes from zero to [`PreWarm::MAX`].
    pub fn from_duration(duration: SignedDuration) -> Result<PreWarm, CalendarError> {
        let value = format!("{duration:#}");
        if duration.is_negative() {
            return Err(CalendarError::PreWarmNegative { value });
        }
        if duration.subsec_nanos() != 0 || duration.as_secs() % 60 != 0 {
            return Err(CalendarError::PreWarmNotWholeMinutes { value });
        }
        if duration > PreWarm::MAX.duration() {
            return Err(CalendarError::PreWarmTooLong {
                value,
                max: format!("{:#}", PreWarm::MAX.duration()),
            });
        }
        // At most a week of minutes, so this fits.
        Ok(PreWarm { minutes: (duration.as_secs() / 60) as u32 })
    }

    pub fn minutes(self) -> u32 {
        self.minutes
    }

    pub fn duration(self) -> SignedDuration {
        SignedDuration::from_mins(i64::from(self.minutes))
    }

    /// Whole days it reaches back, rounded up.
    pub fn days_ceil(self) -> i64 {
        i64::from(self.minutes.div_ceil(24 * 60))
    }
}

impl FromStr for PreWarm {
    type Err = CalendarError;

    /// jiff's friendly duration format (`90m`, `2h`, `1h30m`; also `1h 30m` and ISO 8601 `PT2H`),
    /// then [`PreWarm::from_duration`]: jiff's parser is well tested and exact, so there is no
    /// reason to keep a grammar of our own.
    fn from_str(value: &str) -> Result<PreWarm, CalendarError> {
        let duration: SignedDuration =
            value.parse().map_err(|_| CalendarError::PreWarmFormat { value: value.to_owned() })?;
        PreWarm::from_duration(duration)
    }
}

impl fmt::Display for PreWarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.duration())
    }
}

/// A seasonal window: while one of its occurrences is active, the components it covers in the
/// territories it covers run at least its floors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub name: String,
    pub days: Days,
    /// None: whole days.
    pub hours: Option<Hours>,
    pub pre_warm: PreWarm,
    /// None: every territory.
    pub territories: Option<BTreeSet<String>>,
    /// None: every component named in `floors`.
    pub components: Option<BTreeSet<Component>>,
    pub floors: BTreeMap<Component, u32>,
}

impl Window {
    /// The floor this window asks of `component` in `territory` while active; None where it does
    /// not cover them (a component listed without a floor asks nothing).
    pub fn floor_for(&self, territory: &str, component: Component) -> Option<u32> {
        covered(&self.territories, &self.components, &self.floors, territory, component)
    }
}

/// A dark period: while active, the floors it covers are capped at its (lower) floors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DarkPeriod {
    pub name: String,
    pub days: DarkDays,
    /// None: whole days.
    pub hours: Option<Hours>,
    /// None: every territory.
    pub territories: Option<BTreeSet<String>>,
    /// None: every component named in `floors`.
    pub components: Option<BTreeSet<Component>>,
    pub floors: BTreeMap<Component, u32>,
}

impl DarkPeriod {
    /// The cap this dark period puts on `component` in `territory` while active, if it covers them.
    pub fn floor_for(&self, territory: &str, component: Component) -> Option<u32> {
        covered(&self.territories, &self.components, &self.floors, territory, component)
    }
}

fn covered(
    territories: &Option<BTreeSet<String>>,
    components: &Option<BTreeSet<Component>>,
    floors: &BTreeMap<Component, u32>,
    territory: &str,
    component: Component,
) -> Option<u32> {
    let territory_ok = territories.as_ref().is_none_or(|set| set.contains(territory));
    let component_ok = components.as_ref().is_none_or(|set| set.contains(&component));
    floors.get(&component).copied().filter(|_| territory_ok && component_ok)
}

/// One SeasonalWindow resource: its time zone, windows and dark periods.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// Every local date and time of the calendar is in this zone.
    pub timezone: TimeZone,
    pub windows: Vec<Window>,
    pub darks: Vec<DarkPeriod>,
}

impl Calendar {
    /// Checks what the parts cannot check alone: names of windows and of dark periods are DNS-label
    /// like (`[a-z0-9-]`, 1 to 63 characters, as they name generated triggers) and unique in their
    /// list.
    pub fn new(
        timezone: TimeZone,
        windows: Vec<Window>,
        darks: Vec<DarkPeriod>,
    ) -> Result<Calendar, CalendarError> {
        unique_names("window", windows.iter().map(|w| w.name.as_str()))?;
        unique_names("dark period", darks.iter().map(|d| d.name.as_str()))?;
        Ok(Calendar { timezone, windows, darks })
    }
}

fn unique_names<'a>(kind: &'static str, names: impl Iterator<Item = &'a str>) -> Result<(), CalendarError> {
    let mut seen = HashSet::new();
    for name in names {
        let well_formed = (1..=63).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !well_formed {
            return Err(CalendarError::Name { name: name.to_owned() });
        }
        if !seen.insert(name) {
            return Err(CalendarError::DuplicateName { kind, name: name.to_owned() });
        }
    }
    Ok(())
}

/// The IANA time zone `name`, from the tz database bundled into the binary (so results do not
/// depend on the image's tzdata).
pub fn time_zone(name: &str) -> Result<TimeZone, CalendarError> {
    TimeZone::get(name).map_err(|_| CalendarError::UnknownTimeZone { value: name.to_owned() })
}

/// A component's baseline from the profile: `min <= max`, `max >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Replicas {
    min: u32,
    max: u32,
}

impl Replicas {
    /// Refuses `min > max`, and `max == 0`, which neither an HPA nor a ScaledObject accepts.
    pub fn new(min: u32, max: u32) -> Result<Replicas, CalendarError> {
        if max == 0 {
            return Err(CalendarError::ZeroMaxReplicas);
        }
        if min > max {
            return Err(CalendarError::ReplicasReversed { min, max });
        }
        Ok(Replicas { min, max })
    }

    pub fn min(self) -> u32 {
        self.min
    }

    pub fn max(self) -> u32 {
        self.max
    }
}

/// The baseline of each component the profile scales; a component without one is not scaled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Baseline {
    pub components: BTreeMap<Component, Replicas>,
}

impl Baseline {
    pub fn get(&self, component: Component) -> Option<Replicas> {
        self.components.get(&component).copied()
    }
}

impl FromIterator<(Component, Replicas)> for Baseline {
    fn from_iter<I: IntoIterator<Item = (Component, Replicas)>>(iter: I) -> Baseline {
        Baseline { components: iter.into_iter().collect() }
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn berlin() -> TimeZone {
        time_zone("Europe/Berlin").unwrap()
    }

    fn t(text: &str) -> TimeOfDay {
        text.parse().unwrap()
    }

    #[test]
    fn times_of_day_parse_as_hh_mm_up_to_24_00() {
        assert_eq!(t("00:00"), TimeOfDay::MIDNIGHT);
        assert_eq!(t("24:00"), TimeOfDay::END_OF_DAY);
        assert_eq!(t("23:30").minutes(), 23 * 60 + 30);
        assert_eq!(t("07:05").to_string(), "07:05");
        for bad in ["24:01", "25:00", "7:00", "07:5", "07:60", "0700", "07:00:00", "", "ab:cd"] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hours_may_end_but_not_start_at_24_00() {
        assert_eq!(Hours::new(TimeOfDay::END_OF_DAY, t("06:00")), Err(CalendarError::HoursStartAtEndOfDay));
        assert!(!Hours::new(t("10:00"), TimeOfDay::END_OF_DAY).unwrap().crosses_midnight());
        assert!(Hours::new(t("22:00"), t("06:00")).unwrap().crosses_midnight());
        assert!(Hours::new(t("06:00"), t("06:00")).unwrap().crosses_midnight());
    }

    #[test]
    fn local_times_in_the_spring_gap_move_forward_and_repeated_ones_take_the_first() {
        let tz = berlin();
        let at = |d, time: &str| t(time).on(d, &tz).unwrap().to_string();
        // 29 March 2026: 02:00 CET jumps to 03:00 CEST.
        assert_eq!(at(date(2026, 3, 29), "02:30"), "2026-03-29T01:30:00Z");
        assert_eq!(at(date(2026, 3, 29), "03:30"), "2026-03-29T01:30:00Z");
        // 25 October 2026: 03:00 CEST falls back to 02:00 CET, so 02:30 happens twice.
        assert_eq!(at(date(2026, 10, 25), "02:30"), "2026-10-25T00:30:00Z");
        assert_eq!(at(date(2026, 10, 25), "24:00"), "2026-10-25T23:00:00Z");
        assert_eq!(TimeOfDay::END_OF_DAY.on(Date::MAX, &tz), None);
    }

    #[test]
    fn pre_warm_is_whole_minutes_up_to_a_week() {
        let minutes = |text: &str| text.parse::<PreWarm>().map(PreWarm::minutes);
        assert_eq!(minutes("90m"), Ok(90));
        assert_eq!(minutes("2h"), Ok(120));
        assert_eq!(minutes("1h30m"), Ok(90));
        assert_eq!(minutes("0m"), Ok(0));
        assert_eq!(minutes("168h"), Ok(7 * 24 * 60));
        assert!(matches!(minutes("169h"), Err(CalendarError::PreWarmTooLong { .. })));
        assert!(matches!(minutes("90s"), Err(CalendarError::PreWarmNotWholeMinutes { .. })));
        assert!(matches!(minutes("-2h"), Err(CalendarError::PreWarmNegative { .. })));
        assert!(matches!(minutes("two hours"), Err(CalendarError::PreWarmFormat { .. })));
        assert_eq!("1h30m".parse::<PreWarm>().unwrap().to_string(), "1h 30m");
        assert_eq!(PreWarm::from_minutes(1441).unwrap().days_ceil(), 2);
    }

    #[test]
    fn replicas_need_min_at_most_max_and_max_at_least_one() {
        assert_eq!(Replicas::new(3, 2), Err(CalendarError::ReplicasReversed { min: 3, max: 2 }));
        assert_eq!(Replicas::new(0, 0), Err(CalendarError::ZeroMaxReplicas));
        assert_eq!(Replicas::new(0, 1).map(|r| (r.min(), r.max())), Ok((0, 1)));
        assert_eq!(Replicas::new(3, 2).unwrap_err().to_string(), "minReplicas 3 is above maxReplicas 2");
    }

    #[test]
    fn a_window_covers_the_components_it_names_that_have_floors() {
        let window = Window {
            name: "oktoberfest".into(),
            days: Days::Yearly { from: "09-19".parse().unwrap(), to: "10-04".parse().unwrap() },
            hours: None,
            pre_warm: PreWarm::NONE,
            territories: Some(["BY".to_owned()].into()),
            components: Some([Component::Query, Component::Relay].into()),
            floors: [(Component::Query, 8), (Component::Command, 4)].into(),
        };
        assert_eq!(window.floor_for("BY", Component::Query), Some(8));
        assert_eq!(window.floor_for("BY", Component::Command), None, "not listed in components");
        assert_eq!(window.floor_for("BY", Component::Relay), None, "listed without a floor");
        assert_eq!(window.floor_for("NW", Component::Query), None);
        let everywhere = Window { territories: None, components: None, ..window };
        assert_eq!(everywhere.floor_for("NW", Component::Command), Some(4));
    }

    #[test]
    fn calendars_refuse_bad_and_duplicate_names() {
        let window = |name: &str| Window {
            name: name.into(),
            days: Days::Yearly { from: "01-01".parse().unwrap(), to: "01-02".parse().unwrap() },
            hours: None,
            pre_warm: PreWarm::NONE,
            territories: None,
            components: None,
            floors: BTreeMap::new(),
        };
        assert!(Calendar::new(berlin(), vec![window("a-1"), window("b")], vec![]).is_ok());
        assert_eq!(
            Calendar::new(berlin(), vec![window("a"), window("a")], vec![]).unwrap_err().to_string(),
            "the name \"a\" is used by more than one window"
        );
        for bad in ["", "Oktoberfest", "a_b", &"x".repeat(64)] {
            assert!(Calendar::new(berlin(), vec![window(bad)], vec![]).is_err(), "{bad:?}");
        }
        assert!(time_zone("Europe/Atlantis").is_err());
    }
}
