//! robfig/cron v3 (v3.0.1) schedules as KEDA's cron scaler parses and evaluates them.
//!
//! KEDA (`pkg/scalers/cron_scaler.go`, `parseCronMetadata`) builds its parser with
//! `cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)`: exactly five fields,
//! no seconds field (it defaults to `0`), and no `Descriptor` option, so `@yearly`, `@daily` and
//! `@every` are rejected. What that parser accepts (robfig `parser.go`, `getField`/`getRange`):
//!
//! - a field is a comma-separated list; empty items are dropped (`strings.FieldsFunc`), so `1,,2`
//!   is `1,2` and `,` is the empty set, which never matches;
//! - an item is `*` or `?` (in any field), a number or name, a range `a-b`, optionally `/step`;
//!   `n/step` means `n-max/step`. After `*` or `?` anything behind a `-` is ignored (`*-5` is `*`);
//! - numbers are Go `strconv.Atoi`: an optional `+`/`-` sign and decimal digits;
//! - names (case-insensitive, three letters): `jan`..`dec` for months, `sun`..`sat` for days of the
//!   week; day of week is 0..=6 with 0 = Sunday, `7` is out of range;
//! - a `TZ=` or `CRON_TZ=` prefix sets the schedule's own location.
//!
//! A `*` or `?` item marks its field with the star bit unless it has a step greater than 1 (`*/1` is
//! still a star, `*/2` is not). Day of month and day of week are OR-ed when neither carries the star
//! bit and AND-ed otherwise (`dayMatches` in `spec.go`).
//!
//! [`Schedule::next`] is `SpecSchedule.Next` from `spec.go`, run on Go's time semantics (see
//! [`super::clock`]); it takes shortcuts only where they provably land where Go's single steps would.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use super::clock::{Civil, Clock, SECONDS_PER_DAY, Zone, days_in_month};

/// Bit 63 of a field: the field was written as `*` or `?` (robfig's `starBit`).
const STAR_BIT: u64 = 1 << 63;

/// The fields of a KEDA cron spec, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    const ALL: [Field; 5] = [Field::Minute, Field::Hour, Field::DayOfMonth, Field::Month, Field::DayOfWeek];

    fn bounds(self) -> (u64, u64) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 6),
        }
    }

    fn names(self) -> &'static [(&'static str, u64)] {
        match self {
            Field::Month => &[
                ("jan", 1),
                ("feb", 2),
                ("mar", 3),
                ("apr", 4),
                ("may", 5),
                ("jun", 6),
                ("jul", 7),
                ("aug", 8),
                ("sep", 9),
                ("oct", 10),
                ("nov", 11),
                ("dec", 12),
            ],
            Field::DayOfWeek => {
                &[("sun", 0), ("mon", 1), ("tue", 2), ("wed", 3), ("thu", 4), ("fri", 5), ("sat", 6)]
            }
            _ => &[],
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

/// Why one item of a field was rejected (robfig's `getRange` checks, in its order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("{text:?} is not a number{names}")]
    NotANumber { text: String, names: &'static str },
    #[error("{text:?} is too large a number")]
    NumberTooLarge { text: String },
    #[error("negative numbers are not allowed ({value})")]
    Negative { value: i64 },
    #[error("too many hyphens")]
    TooManyHyphens,
    #[error("too many slashes")]
    TooManySlashes,
    #[error("{value} is below the minimum {min}")]
    BelowMinimum { value: u64, min: u64 },
    #[error("{value} is above the maximum {max}")]
    AboveMaximum { value: u64, max: u64 },
    #[error("the range starts at {start}, after its end {end}")]
    StartAfterEnd { start: u64, end: u64 },
    #[error("the step must be a positive number")]
    ZeroStep,
}

/// A cron spec KEDA's cron scaler would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("the cron schedule is empty")]
    Empty,
    #[error(
        "cron schedule {spec:?}: descriptors such as @daily are not accepted by KEDA's cron scaler; write the five fields"
    )]
    Descriptor { spec: String },
    #[error("cron schedule {spec:?}: the {prefix} prefix must be followed by a space and the five fields")]
    TimeZonePrefix { spec: String, prefix: &'static str },
    #[error("cron schedule {spec:?}: unknown time zone {name:?} (IANA names are case-sensitive)")]
    UnknownTimeZone { spec: String, name: String },
    #[error(
        "cron schedule {spec:?}: expected exactly 5 fields (minute hour day-of-month month day-of-week), found {found}"
    )]
    FieldCount { spec: String, found: usize },
    #[error("cron schedule {spec:?}: {field} field {item:?}: {reason}")]
    Item { spec: String, field: Field, item: String, reason: ItemError },
}

/// Where a schedule's wall clock runs.
#[derive(Debug, Clone, PartialEq)]
enum Location {
    /// No prefix (or `TZ=Local`): robfig's `time.Local`, which `Next` reads as "the location of the
    /// time passed in", and KEDA passes the trigger's `timezone`.
    Inherit,
    Zone(Box<Zone>),
}

/// A parsed schedule: one bit set per field, as robfig's `SpecSchedule`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    second: u64,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    location: Location,
}

/// Go's `time.LoadLocation` for the names KEDA can meet, on jiff's bundled database.
///
/// `""` and `"UTC"` are UTC and `"Local"` is `time.Local`. Go looks names up as file names, so they
/// are case-sensitive; jiff's lookup is not, so a name only counts when jiff knows it spelled exactly
/// so.
pub(crate) fn load_location(name: &str) -> Option<Option<TimeZone>> {
    match name {
        "" | "UTC" => return Some(Some(TimeZone::UTC)),
        "Local" => return Some(None),
        _ => {}
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return None;
    }
    let tz = TimeZone::get(name).ok()?;
    (tz.iana_name() == Some(name)).then_some(Some(tz))
}

/// Go's `strconv.Atoi` followed by robfig's `mustParseInt` (no negatives).
fn parse_int(text: &str, names: &'static str) -> Result<u64, ItemError> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ItemError::NotANumber { text: text.to_owned(), names });
    }
    let value: i64 = text
        .strip_prefix('+')
        .unwrap_or(text)
        .parse()
        .map_err(|_| ItemError::NumberTooLarge { text: text.to_owned() })?;
    u64::try_from(value).map_err(|_| ItemError::Negative { value })
}

/// robfig's `parseIntOrName`.
fn parse_value(text: &str, field: Field) -> Result<u64, ItemError> {
    let lower = text.to_lowercase();
    if let Some((_, v)) = field.names().iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    let hint = match field {
        Field::Month => " or a month name (jan..dec)",
        Field::DayOfWeek => " or a day name (sun..sat)",
        _ => "",
    };
    parse_int(text, hint)
}

/// robfig's `getBits`: every `step`-th value from `min` to `max`.
fn bits(min: u64, max: u64, step: u64) -> u64 {
    let mut out = 0;
    let mut i = min;
    while i <= max {
        out |= 1 << i;
        i = i.saturating_add(step);
    }
    out
}

/// robfig's `getRange`, with its checks in its order.
fn parse_item(item: &str, field: Field) -> Result<u64, ItemError> {
    let (min, max) = field.bounds();
    let range_and_step: Vec<&str> = item.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        // robfig never looks behind the hyphen here: "*-5" is "*".
        (start, end, extra) = (min, max, STAR_BIT);
    } else {
        start = parse_value(low_and_high[0], field)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_value(low_and_high[1], field)?,
            _ => return Err(ItemError::TooManyHyphens),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1], "")?;
            // "N/step" means "N-max/step".
            if single {
                end = max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(ItemError::TooManySlashes),
    };
    if start < min {
        return Err(ItemError::BelowMinimum { value: start, min });
    }
    if end > max {
        return Err(ItemError::AboveMaximum { value: end, max });
    }
    if start > end {
        return Err(ItemError::StartAfterEnd { start, end });
    }
    if step == 0 {
        return Err(ItemError::ZeroStep);
    }
    Ok(bits(start, end, step) | extra)
}

impl Schedule {
    /// Parses a spec as KEDA's cron scaler does (robfig `Parser.Parse` with KEDA's options).
    pub fn parse(spec: &str) -> Result<Schedule, CronError> {
        let original = spec;
        if spec.is_empty() {
            return Err(CronError::Empty);
        }
        let mut location = Location::Inherit;
        let mut rest = spec;
        let prefix = if spec.starts_with("TZ=") {
            Some("TZ=")
        } else if spec.starts_with("CRON_TZ=") {
            Some("CRON_TZ=")
        } else {
            None
        };
        if let Some(prefix) = prefix {
            // Go slices spec[eq+1:i] with i the first space; with no space it panics.
            let Some(space) = spec.find(' ') else {
                return Err(CronError::TimeZonePrefix { spec: original.to_owned(), prefix });
            };
            let name = &spec[prefix.len()..space];
            location = match load_location(name) {
                Some(Some(tz)) => Location::Zone(Box::new(Zone::new(tz))),
                Some(None) => Location::Inherit,
                None => {
                    return Err(CronError::UnknownTimeZone {
                        spec: original.to_owned(),
                        name: name.to_owned(),
                    });
                }
            };
            rest = spec[space..].trim();
        }
        if rest.starts_with('@') {
            return Err(CronError::Descriptor { spec: original.to_owned() });
        }
        // strings.Fields and split_whitespace split on the same Unicode white space.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount { spec: original.to_owned(), found: fields.len() });
        }
        let mut sets = [0u64; 5];
        for ((field, text), set) in Field::ALL.into_iter().zip(&fields).zip(&mut sets) {
            for item in text.split(',').filter(|i| !i.is_empty()) {
                *set |= parse_item(item, field).map_err(|reason| CronError::Item {
                    spec: original.to_owned(),
                    field,
                    item: item.to_owned(),
                    reason,
                })?;
            }
        }
        let [minute, hour, dom, month, dow] = sets;
        // The seconds field is not part of KEDA's format; robfig fills in its default "0".
        Ok(Schedule { second: 1, minute, hour, dom, month, dow, location })
    }

    /// The time zone a `TZ=`/`CRON_TZ=` prefix set, if any.
    pub fn own_time_zone(&self) -> Option<&TimeZone> {
        match &self.location {
            Location::Inherit => None,
            Location::Zone(zone) => Some(zone.time_zone()),
        }
    }

    /// Whether `minute` (0..=59) is in the minute field.
    pub fn has_minute(&self, minute: u32) -> bool {
        minute < 64 && self.minute & (1 << minute) != 0
    }

    /// Whether `hour` (0..=23) is in the hour field.
    pub fn has_hour(&self, hour: u32) -> bool {
        hour < 64 && self.hour & (1 << hour) != 0
    }

    /// Whether `month` (1..=12) is in the month field.
    pub fn has_month(&self, month: u32) -> bool {
        month < 64 && self.month & (1 << month) != 0
    }

    /// The day-of-month and day-of-week sets and whether each was written as a star, for references
    /// that apply the day rule on their own.
    #[cfg(test)]
    pub(crate) fn day_fields(&self) -> (u64, bool, u64, bool) {
        (self.dom & !STAR_BIT, self.dom & STAR_BIT != 0, self.dow & !STAR_BIT, self.dow & STAR_BIT != 0)
    }

    /// robfig's `dayMatches`: day of month (1..=31) and day of week (0 = Sunday), OR-ed when both
    /// are restricted, AND-ed when either field carries the star bit.
    pub fn day_matches(&self, day: u32, weekday: u32) -> bool {
        let dom = day < 64 && self.dom & (1 << day) != 0;
        let dow = weekday < 64 && self.dow & (1 << weekday) != 0;
        if self.dom & STAR_BIT != 0 || self.dow & STAR_BIT != 0 { dom && dow } else { dom || dow }
    }

    /// The next activation strictly after `after`, in the schedule's own zone if it has one, else in
    /// `tz`; `None` where robfig returns the zero time (nothing within five years).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match &self.location {
            Location::Zone(own) => self.next_with(after, &Clock::with_table(own)),
            Location::Inherit => self.next_with(after, &Clock::new(tz)),
        }
    }

    /// [`Schedule::next`] on a prepared [`Zone`], several times faster. The zone is ignored when the
    /// spec has its own `TZ=` prefix.
    pub fn next_in(&self, after: Timestamp, zone: &Zone) -> Option<Timestamp> {
        let zone = match &self.location {
            Location::Zone(own) => own,
            Location::Inherit => zone,
        };
        self.next_with(after, &Clock::with_table(zone))
    }

    fn next_with(&self, after: Timestamp, clock: &Clock<'_>) -> Option<Timestamp> {
        // t.Add(1*time.Second - time.Duration(t.Nanosecond())): the next whole second. Go's
        // Nanosecond() is never negative, so this is a floor, also before 1970 (where jiff's
        // sub-second part is negative).
        let secs = after.as_second() - i64::from(after.subsec_nanosecond() < 0);
        let found = self.next_secs(clock, secs.checked_add(1)?)?;
        Timestamp::from_second(found).ok()
    }

    /// [`Schedule::next`] for a zoned time (its time zone is the trigger's).
    pub fn next_zoned(&self, after: &Zoned) -> Option<Timestamp> {
        self.next(after.timestamp(), after.time_zone())
    }

    fn matches_minute_field(&self, c: &Civil) -> bool {
        self.minute & (1 << c.minute) != 0
    }

    /// `SpecSchedule.Next` from its first candidate second `t` on. Comments quote spec.go.
    fn next_secs(&self, clock: &Clock<'_>, mut t: i64) -> Option<i64> {
        // "This flag indicates whether a field has been incremented."
        let mut added = false;
        // "If no time is found within five years, return zero."
        let year_limit = clock.civil(t).year + 5;
        // Far enough for any offset difference (< 2 days) to stay inside one offset period.
        const MARGIN: i64 = 3 * SECONDS_PER_DAY;

        'wrap: loop {
            let mut c = clock.civil(t);
            if c.year > year_limit {
                return None;
            }

            // "Find the first applicable month."
            while self.month & (1 << c.month) == 0 {
                if !added {
                    added = true;
                    t = clock.date(c.year, i64::from(c.month), 1, 0, 0, 0);
                    c = clock.civil(t);
                }
                // Shortcut: k monthly AddDate steps at once, when the day cannot overflow a month
                // (<= 28) and no offset change is near, so each step keeps the wall clock.
                let k = (1..=12u32)
                    .find(|k| {
                        let m = (c.month + k - 1) % 12 + 1;
                        m == 1 || self.month & (1 << m) != 0
                    })
                    .unwrap_or(1);
                let mut done = false;
                let midnight = (c.hour, c.minute, c.second) == (0, 0, 0);
                if k > 1 && c.day <= 28 && midnight {
                    // From a plain midnight each step lands on the next plain midnight.
                    let target = clock.date(c.year, i64::from(c.month + k), i64::from(c.day), 0, 0, 0);
                    if clock.plain_midnights(t, target) {
                        t = target;
                        done = true;
                    }
                }
                if !done && k > 1 && c.day <= 28 {
                    let target = clock.date(
                        c.year,
                        i64::from(c.month + k),
                        i64::from(c.day),
                        i64::from(c.hour),
                        i64::from(c.minute),
                        i64::from(c.second),
                    );
                    if clock.steady(t, target, MARGIN) {
                        t = target;
                        done = true;
                    }
                }
                if !done {
                    t = clock.add_date(t, 0, 1, 0);
                }
                c = clock.civil(t);
                // "Wrapped around."
                if c.month == 1 {
                    continue 'wrap;
                }
            }

            // "Now get a day in that month." (with the Sao Paulo midnight fix-up)
            while !self.day_matches(c.day, c.weekday) {
                if !added {
                    added = true;
                    t = clock.date(c.year, i64::from(c.month), i64::from(c.day), 0, 0, 0);
                    c = clock.civil(t);
                }
                // Shortcut: at midnight with no offset change near, k daily steps are k days and
                // the fix-up never runs.
                let last = days_in_month(c.year, c.month);
                let k = (1..=last + 1 - c.day)
                    .find(|k| {
                        let day = c.day + k;
                        day > last || self.day_matches(day, (c.weekday + k) % 7)
                    })
                    .unwrap_or(1);
                let target = t + i64::from(k) * SECONDS_PER_DAY;
                let midnight = (c.hour, c.minute, c.second) == (0, 0, 0);
                let plain_target = (k > 1 && midnight)
                    .then(|| clock.date(c.year, i64::from(c.month), i64::from(c.day + k), 0, 0, 0))
                    .filter(|&target| clock.plain_midnights(t, target));
                if let Some(target) = plain_target {
                    // Each step lands on the next plain midnight; the fix-up never runs.
                    t = target;
                } else if k > 1 && c.hour == 0 && clock.steady(t, target, MARGIN) {
                    t = target;
                } else {
                    t = clock.add_date(t, 0, 0, 1);
                    // "Notice if the hour is no longer midnight due to DST. Add an hour if it's
                    // 23, subtract an hour if it's 1."
                    let hour = i64::from(clock.civil(t).hour);
                    if hour != 0 {
                        t += if hour > 12 { (24 - hour) * 3600 } else { -hour * 3600 };
                    }
                }
                c = clock.civil(t);
                if c.day == 1 {
                    continue 'wrap;
                }
            }

            while self.hour & (1 << c.hour) == 0 {
                if !added {
                    added = true;
                    t = clock.date(c.year, i64::from(c.month), i64::from(c.day), i64::from(c.hour), 0, 0);
                    c = clock.civil(t);
                }
                let k = steps_to_next(self.hour, c.hour, 24);
                let target = t + i64::from(k) * 3600;
                t = if clock.steady(t, target, 0) { target } else { t + 3600 };
                c = clock.civil(t);
                if c.hour == 0 {
                    continue 'wrap;
                }
            }

            while !self.matches_minute_field(&c) {
                if !added {
                    added = true;
                    // t.Truncate(time.Minute): absolute, a floor of Unix seconds.
                    t = t.div_euclid(60) * 60;
                    c = clock.civil(t);
                }
                let k = steps_to_next(self.minute, c.minute, 60);
                let target = t + i64::from(k) * 60;
                t = if clock.steady(t, target, 0) { target } else { t + 60 };
                c = clock.civil(t);
                if c.minute == 0 {
                    continue 'wrap;
                }
            }

            while self.second & (1 << c.second) == 0 {
                // "t = t.Truncate(time.Second)" when !added: t is already whole seconds.
                added = true;
                let k = steps_to_next(self.second, c.second, 60);
                let target = t + i64::from(k);
                t = if clock.steady(t, target, 0) { target } else { t + 1 };
                c = clock.civil(t);
                if c.second == 0 {
                    continue 'wrap;
                }
            }

            return Some(t);
        }
    }
}

/// The number of single steps from `current` until robfig's loop stops: the value is in `set` or
/// has wrapped to 0. Within one offset period each step adds exactly one to the field.
fn steps_to_next(set: u64, current: u32, modulus: u32) -> u32 {
    (1..=modulus)
        .find(|k| {
            let v = (current + k) % modulus;
            v == 0 || set & (1 << v) != 0
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Schedule {
        Schedule::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn err(spec: &str) -> CronError {
        Schedule::parse(spec).expect_err(spec)
    }

    fn item_err(spec: &str) -> (Field, String, ItemError) {
        match err(spec) {
            CronError::Item { field, item, reason, .. } => (field, item, reason),
            other => panic!("{spec}: expected an item error, got {other:?}"),
        }
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    /// `next` from an RFC 3339 instant in `zone`, as an RFC 3339 string in that zone's offset.
    fn next_in(spec: &str, zone: &str, after: &str) -> Option<String> {
        let zone = tz(zone);
        let after: Timestamp = after.parse().unwrap();
        parse(spec)
            .next(after, &zone)
            .map(|t| t.to_zoned(zone.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
    }

    fn set(bits: u64) -> Vec<u32> {
        (0..63).filter(|i| bits & (1 << i) != 0).collect()
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        let s = parse("0,15,30 9-17 */10 jan-MAR,Dec mon-fri");
        assert_eq!(set(s.minute), vec![0, 15, 30]);
        assert_eq!(set(s.hour), (9..=17).collect::<Vec<_>>());
        assert_eq!(set(s.dom), vec![1, 11, 21, 31]);
        assert_eq!(set(s.month), vec![1, 2, 3, 12]);
        assert_eq!(set(s.dow), vec![1, 2, 3, 4, 5]);
        assert_eq!(set(s.second), vec![0]);

        let s = parse("5/15 1-10/3 ? * SUN");
        assert_eq!(set(s.minute), vec![5, 20, 35, 50]);
        assert_eq!(set(s.hour), vec![1, 4, 7, 10]);
        assert_eq!(set(s.dom & !STAR_BIT), (1..=31).collect::<Vec<_>>());
        assert_eq!(set(s.dow), vec![0]);
        // "n/step" with a name: mon-sat every second day.
        assert_eq!(set(parse("0 0 * * mon/2").dow), vec![1, 3, 5]);
        // Leading zeros and a plus sign are Go Atoi numbers.
        assert_eq!(set(parse("05 +7 * * *").hour), vec![7]);
        assert_eq!(set(parse("05 +7 * * *").minute), vec![5]);
    }

    #[test]
    fn star_bit_follows_robfig() {
        assert!(parse("* * * * *").dom & STAR_BIT != 0);
        assert!(parse("* * ? * *").dom & STAR_BIT != 0);
        // A step of 1 keeps the star, a larger one drops it.
        assert!(parse("* * */1 * *").dom & STAR_BIT != 0);
        assert!(parse("* * */2 * *").dom & STAR_BIT == 0);
        // Behind "*-" robfig reads nothing.
        assert_eq!(parse("*-5 * * * *").minute, parse("* * * * *").minute);
        // "?" is accepted in every field.
        assert_eq!(parse("? ? ? ? ?"), parse("* * * * *"));
        // Empty list items vanish; a lone comma is the empty set.
        assert_eq!(parse("1,,2 * * * *").minute, 0b110);
        assert_eq!(parse(", * * * *").minute, 0);
    }

    #[test]
    fn day_of_month_and_week_or_when_both_restricted() {
        // robfig's TestActivation table (v3, 5 fields), July 2012: the 15th is a Sunday.
        let both = parse("* * 1,15 * Sun");
        assert!(both.day_matches(15, 0));
        assert!(both.day_matches(15, 5)); // Fri Jun 15
        assert!(both.day_matches(1, 3)); // Wed Aug 1
        assert!(parse("* * */10 * Sun").day_matches(15, 0)); // robfig #70
        assert!(!parse("* * * * Mon").day_matches(15, 0));
        assert!(!parse("* * 1,15 * *").day_matches(9, 1));
        assert!(parse("* * 1,15 * *").day_matches(15, 0));
        assert!(parse("* * */2 * Sun").day_matches(15, 0));
        // "*/2" is not a star: OR with Monday.
        assert!(parse("* * */2 * Mon").day_matches(2, 1));
        assert!(parse("* * */2 * Mon").day_matches(3, 5));
    }

    #[test]
    fn errors_name_the_field_and_the_reason() {
        assert_eq!(err(""), CronError::Empty);
        assert!(matches!(err("@yearly"), CronError::Descriptor { .. }));
        assert!(matches!(err("@every 1h"), CronError::Descriptor { .. }));
        assert!(matches!(err("TZ=UTC @daily"), CronError::Descriptor { .. }));
        assert_eq!(err("xyz"), CronError::FieldCount { spec: "xyz".into(), found: 1 });
        assert!(matches!(err("0 0 0 * * *"), CronError::FieldCount { found: 6, .. }));
        assert!(matches!(err("   "), CronError::FieldCount { found: 0, .. }));
        assert!(matches!(err("TZ=UTC "), CronError::FieldCount { found: 0, .. }));

        assert_eq!(
            item_err("60 0 * * *"),
            (Field::Minute, "60".into(), ItemError::AboveMaximum { value: 60, max: 59 })
        );
        assert_eq!(item_err("0 24 * * *").2, ItemError::AboveMaximum { value: 24, max: 23 });
        assert_eq!(
            item_err("0 0 0 * *"),
            (Field::DayOfMonth, "0".into(), ItemError::BelowMinimum { value: 0, min: 1 })
        );
        assert_eq!(item_err("0 0 32 * *").2, ItemError::AboveMaximum { value: 32, max: 31 });
        assert_eq!(item_err("0 0 * 13 *").2, ItemError::AboveMaximum { value: 13, max: 12 });
        assert_eq!(item_err("0 0 * 0 *").2, ItemError::BelowMinimum { value: 0, min: 1 });
        // 7 is not Sunday in robfig.
        assert_eq!(
            item_err("0 0 * * 7"),
            (Field::DayOfWeek, "7".into(), ItemError::AboveMaximum { value: 7, max: 6 })
        );
        assert!(matches!(item_err("0 0 * * XYZ").2, ItemError::NotANumber { .. }));
        assert!(matches!(item_err("0 0 * * sunday").2, ItemError::NotANumber { .. }));
        // Names only exist for months and days of the week.
        assert!(matches!(item_err("jan 0 * * *"), (Field::Minute, _, ItemError::NotANumber { .. })));
        assert_eq!(item_err("5-1 * * * *").2, ItemError::StartAfterEnd { start: 5, end: 1 });
        assert_eq!(item_err("1-2-3 * * * *").2, ItemError::TooManyHyphens);
        assert_eq!(item_err("1/2/3 * * * *").2, ItemError::TooManySlashes);
        assert_eq!(item_err("*/0 * * * *").2, ItemError::ZeroStep);
        assert_eq!(item_err("*/-1 * * * *").2, ItemError::Negative { value: -1 });
        assert!(matches!(item_err("-1 * * * *").2, ItemError::NotANumber { .. }));
        assert!(matches!(item_err("1- * * * *").2, ItemError::NotANumber { .. }));
        assert!(matches!(item_err("99999999999999999999 * * * *").2, ItemError::NumberTooLarge { .. }));
        assert!(matches!(item_err("1.5 * * * *").2, ItemError::NotANumber { .. }));
        // robfig checks in order: the start, then the end, then the slashes.
        assert!(matches!(item_err("x-1-2 * * * *").2, ItemError::NotANumber { .. }));
        assert_eq!(item_err("1-70/2/3 * * * *").2, ItemError::TooManySlashes);
        // The first bad field is reported.
        assert_eq!(item_err("61 25 * * *").0, Field::Minute);
    }

    #[test]
    fn error_messages_are_precise() {
        assert_eq!(
            err("0 25 * * *").to_string(),
            r#"cron schedule "0 25 * * *": hour field "25": 25 is above the maximum 23"#
        );
        assert_eq!(
            err("0 0 * * funday").to_string(),
            r#"cron schedule "0 0 * * funday": day-of-week field "funday": "funday" is not a number or a day name (sun..sat)"#
        );
        assert_eq!(
            err("@daily").to_string(),
            r#"cron schedule "@daily": descriptors such as @daily are not accepted by KEDA's cron scaler; write the five fields"#
        );
    }

    #[test]
    fn time_zone_prefixes() {
        assert_eq!(parse("TZ=Europe/Berlin 0 8 * * *").own_time_zone(), Some(&tz("Europe/Berlin")));
        assert_eq!(
            parse("CRON_TZ=America/New_York  0 8 * * *").own_time_zone(),
            Some(&tz("America/New_York"))
        );
        assert_eq!(parse("TZ=UTC 0 8 * * *").own_time_zone(), Some(&TimeZone::UTC));
        // time.LoadLocation("") is UTC; "Local" is time.Local, which Next reads as the caller's zone.
        assert_eq!(parse("TZ= 0 8 * * *").own_time_zone(), Some(&TimeZone::UTC));
        assert_eq!(parse("TZ=Local 0 8 * * *").own_time_zone(), None);
        assert!(matches!(err("TZ=europe/berlin 0 8 * * *"), CronError::UnknownTimeZone { .. }));
        assert!(matches!(err("TZ=Mars/Olympus 0 8 * * *"), CronError::UnknownTimeZone { .. }));
        assert!(matches!(err("TZ=../etc 0 8 * * *"), CronError::UnknownTimeZone { .. }));
        assert!(matches!(err("TZ=Europe/Berlin"), CronError::TimeZonePrefix { .. }));
        // The prefix's zone wins over the zone passed in.
        assert_eq!(
            next_in("TZ=Asia/Tokyo 0 9 * * *", "Europe/Berlin", "2026-05-31T12:00:00Z").as_deref(),
            Some("2026-06-01T02:00:00+02:00")
        );
    }

    // robfig v3 spec_test.go TestNext, the rows whose seconds field is 0, as five fields.
    #[test]
    fn robfig_next_table() {
        let ny = "America/New_York";
        // Times without an offset in robfig's table are time.Local; UTC here.
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("2012-07-09T14:45:00Z", "0/15 * * * *", "UTC", Some("2012-07-09T15:00:00+00:00")),
            ("2012-07-09T14:59:00Z", "0/15 * * * *", "UTC", Some("2012-07-09T15:00:00+00:00")),
            ("2012-07-09T14:59:59Z", "0/15 * * * *", "UTC", Some("2012-07-09T15:00:00+00:00")),
            ("2012-07-09T15:45:00Z", "20-35/15 * * * *", "UTC", Some("2012-07-09T16:20:00+00:00")),
            ("2012-07-09T23:46:00Z", "*/15 * * * *", "UTC", Some("2012-07-10T00:00:00+00:00")),
            ("2012-07-09T23:45:00Z", "20-35/15 * * * *", "UTC", Some("2012-07-10T00:20:00+00:00")),
            ("2012-07-09T23:35:00Z", "0 0 9 Apr-Oct ?", "UTC", Some("2012-08-09T00:00:00+00:00")),
            ("2012-07-09T23:35:00Z", "0 0 */5 Apr,Aug,Oct Mon", "UTC", Some("2012-08-01T00:00:00+00:00")),
            ("2012-07-09T23:35:00Z", "0 0 */5 Oct Mon", "UTC", Some("2012-10-01T00:00:00+00:00")),
            ("2012-07-09T23:35:00Z", "0 0 * Feb Mon", "UTC", Some("2013-02-04T00:00:00+00:00")),
            ("2012-07-09T23:35:00Z", "0 0 * Feb Mon/2", "UTC", Some("2013-02-01T00:00:00+00:00")),
            ("2012-12-31T23:59:45Z", "* * * * *", "UTC", Some("2013-01-01T00:00:00+00:00")),
            ("2012-07-09T23:35:00Z", "0 0 29 Feb ?", "UTC", Some("2016-02-29T00:00:00+00:00")),
            // Daylight saving time 2am EST (-5) -> 3am EDT (-4): 02:30 that day never comes.
            ("2012-03-11T05:00:00Z", "30 2 11 Mar ?", ny, Some("2013-03-11T02:30:00-04:00")),
            ("2012-03-11T05:00:00Z", "0 * * * ?", ny, Some("2012-03-11T01:00:00-05:00")),
            ("2012-03-11T06:00:00Z", "0 * * * ?", ny, Some("2012-03-11T03:00:00-04:00")),
            ("2012-03-11T07:00:00Z", "0 * * * ?", ny, Some("2012-03-11T04:00:00-04:00")),
            ("2012-03-11T08:00:00Z", "0 * * * ?", ny, Some("2012-03-11T05:00:00-04:00")),
            ("2012-03-11T05:00:00Z", "0 1 * * ?", ny, Some("2012-03-11T01:00:00-05:00")),
            ("2012-03-11T06:00:00Z", "0 1 * * ?", ny, Some("2012-03-12T01:00:00-04:00")),
            ("2012-03-11T05:00:00Z", "0 2 * * ?", ny, Some("2012-03-12T02:00:00-04:00")),
            // 2am EDT (-4) -> 1am EST (-5).
            ("2012-11-04T04:00:00Z", "30 2 04 Nov ?", ny, Some("2012-11-04T02:30:00-05:00")),
            ("2012-11-04T05:45:00Z", "30 1 04 Nov ?", ny, Some("2012-11-04T01:30:00-05:00")),
            ("2012-11-04T04:00:00Z", "0 * * * ?", ny, Some("2012-11-04T01:00:00-04:00")),
            ("2012-11-04T05:00:00Z", "0 * * * ?", ny, Some("2012-11-04T01:00:00-05:00")),
            ("2012-11-04T06:00:00Z", "0 * * * ?", ny, Some("2012-11-04T02:00:00-05:00")),
            // 1am nightly job runs twice.
            ("2012-11-04T04:00:00Z", "0 1 * * ?", ny, Some("2012-11-04T01:00:00-04:00")),
            ("2012-11-04T05:00:00Z", "0 1 * * ?", ny, Some("2012-11-04T01:00:00-05:00")),
            ("2012-11-04T06:00:00Z", "0 1 * * ?", ny, Some("2012-11-05T01:00:00-05:00")),
            ("2012-11-04T04:00:00Z", "0 2 * * ?", ny, Some("2012-11-04T02:00:00-05:00")),
            ("2012-11-04T07:00:00Z", "0 2 * * ?", ny, Some("2012-11-05T02:00:00-05:00")),
            ("2012-11-04T04:00:00Z", "0 3 * * ?", ny, Some("2012-11-04T03:00:00-05:00")),
            ("2012-11-04T08:00:00Z", "0 3 * * ?", ny, Some("2012-11-05T03:00:00-05:00")),
            ("2012-07-09T23:35:00Z", "0 0 30 Feb ?", "UTC", None),
            ("2012-07-09T23:35:00Z", "0 0 31 Apr ?", "UTC", None),
            ("2012-11-04T04:00:00Z", "0 3 3 * ?", ny, Some("2012-12-03T03:00:00-05:00")),
            // robfig #157: midnight does not exist in Sao Paulo on its 2018 spring day.
            ("2018-10-17T09:00:00Z", "0 9 10 * ?", "America/Sao_Paulo", Some("2018-11-10T09:00:00-02:00")),
            ("2018-02-14T10:00:00Z", "0 9 22 * ?", "America/Sao_Paulo", Some("2018-02-22T09:00:00-03:00")),
            // TestNextWithTz: +05:30.
            ("2016-01-03T07:39:03Z", "14 14 * * *", "Asia/Kolkata", Some("2016-01-03T14:14:00+05:30")),
            ("2016-01-02T22:39:03Z", "14 14 * * ?", "Asia/Kolkata", Some("2016-01-03T14:14:00+05:30")),
            ("2016-01-03T08:39:03Z", "14 14 * * *", "Asia/Kolkata", Some("2016-01-03T14:14:00+05:30")),
            ("2016-01-03T08:30:00Z", "14 14 * * ?", "Asia/Kolkata", Some("2016-01-03T14:14:00+05:30")),
        ];
        for (after, spec, zone, expected) in cases {
            assert_eq!(next_in(spec, zone, after).as_deref(), *expected, "{spec} after {after} in {zone}");
        }
    }

    #[test]
    fn robfig_activation_table() {
        // spec fires at `time` exactly when next(time - 1s) == time.
        let cases: &[(&str, &str, bool)] = &[
            ("2012-07-09T15:00:00Z", "0/15 * * * *", true),
            ("2012-07-09T15:45:00Z", "0/15 * * * *", true),
            ("2012-07-09T15:40:00Z", "0/15 * * * *", false),
            ("2012-07-09T15:05:00Z", "5/15 * * * *", true),
            ("2012-07-09T15:20:00Z", "5/15 * * * *", true),
            ("2012-07-09T15:50:00Z", "5/15 * * * *", true),
            ("2012-07-15T15:00:00Z", "0/15 * * Jul *", true),
            ("2012-07-15T15:00:00Z", "0/15 * * Jun *", false),
            ("2012-07-15T08:30:00Z", "30 08 ? Jul Sun", true),
            ("2012-07-15T08:30:00Z", "30 08 15 Jul ?", true),
            ("2012-07-16T08:30:00Z", "30 08 ? Jul Sun", false),
            ("2012-07-16T08:30:00Z", "30 08 15 Jul ?", false),
            ("2012-07-15T00:00:00Z", "* * 1,15 * Sun", true),
            ("2012-06-15T00:00:00Z", "* * 1,15 * Sun", true),
            ("2012-08-01T00:00:00Z", "* * 1,15 * Sun", true),
            ("2012-07-15T00:00:00Z", "* * */10 * Sun", true),
            ("2012-07-15T00:00:00Z", "* * * * Mon", false),
            ("2012-07-09T00:00:00Z", "* * 1,15 * *", false),
            ("2012-07-15T00:00:00Z", "* * 1,15 * *", true),
            ("2012-07-15T00:00:00Z", "* * */2 * Sun", true),
        ];
        for (time, spec, expected) in cases {
            let at: Timestamp = time.parse().unwrap();
            let fired = parse(spec).next(at - jiff::SignedDuration::from_secs(1), &TimeZone::UTC) == Some(at);
            assert_eq!(fired, *expected, "{spec} at {time}");
        }
    }

    #[test]
    fn strictly_after_and_sub_second_inputs() {
        let utc = TimeZone::UTC;
        let s = parse("30 10 * * *");
        let at: Timestamp = "2026-05-05T10:30:00Z".parse().unwrap();
        assert_eq!(s.next(at, &utc), Some("2026-05-06T10:30:00Z".parse().unwrap()));
        let just_before: Timestamp = "2026-05-05T10:29:59.999999999Z".parse().unwrap();
        assert_eq!(s.next(just_before, &utc), Some(at));
        let before_epoch: Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        assert_eq!(
            parse("* * * * *").next(before_epoch, &utc),
            Some("1970-01-01T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn impossible_dates_never_fire_and_feb_29_only_in_leap_years() {
        for spec in
            ["0 0 30 2 *", "0 0 31 2 *", "0 0 31 4 *", "0 0 31 6 *", "0 0 31 9 *", "0 0 31 11 *", ", * * * *"]
        {
            assert_eq!(next_in(spec, "Europe/Berlin", "2026-01-01T00:00:00Z"), None, "{spec}");
        }
        assert_eq!(
            next_in("0 12 29 2 *", "Europe/Berlin", "2026-01-01T00:00:00Z").as_deref(),
            Some("2028-02-29T12:00:00+01:00")
        );
        assert_eq!(
            next_in("0 12 29 2 *", "Europe/Berlin", "2028-02-29T11:00:00Z").as_deref(),
            Some("2032-02-29T12:00:00+01:00")
        );
        // 2100 is not a leap year: from 2097 the next Feb 29 (2104) is beyond robfig's five years.
        assert_eq!(next_in("0 12 29 2 *", "UTC", "2097-01-01T00:00:00Z"), None);
        assert_eq!(
            next_in("0 12 29 2 *", "UTC", "2099-01-01T00:00:00Z").as_deref(),
            Some("2104-02-29T12:00:00+00:00")
        );
        // Day 31 with Monday OR-ed still fires on Mondays in April.
        assert_eq!(
            next_in("0 0 31 4 mon", "UTC", "2026-03-31T12:00:00Z").as_deref(),
            Some("2026-04-06T00:00:00+00:00")
        );
    }

    #[test]
    fn five_year_limit_counts_from_the_local_year_of_the_first_candidate() {
        // yearLimit = (after + 1s, in the zone).Year() + 5; only Feb 29 2104 is left to find.
        assert_eq!(next_in("0 12 29 2 *", "UTC", "2098-12-31T12:00:00Z"), None);
        assert_eq!(
            next_in("0 12 29 2 *", "UTC", "2098-12-31T23:59:59Z").as_deref(),
            Some("2104-02-29T12:00:00+00:00")
        );
        // The year is the local one: 23:30Z on Dec 31 is already 2099 in Berlin.
        assert_eq!(
            next_in("0 12 29 2 *", "Europe/Berlin", "2098-12-31T23:30:00Z").as_deref(),
            Some("2104-02-29T12:00:00+01:00")
        );
    }

    proptest::proptest! {
        /// Any input gives a schedule or an error, and a schedule always gives an answer.
        #[test]
        fn parsing_never_panics(spec in "(TZ=[A-Za-z/_]{0,12} )?[0-9a-zA-Z*?,/+ -]{0,40}", other in "\\PC{0,30}") {
            for spec in [spec.as_str(), other.as_str()] {
                if let Ok(s) = Schedule::parse(spec) {
                    let _ = s.next("2026-06-01T00:00:00Z".parse().unwrap(), &TimeZone::UTC);
                }
            }
        }
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let utc = TimeZone::UTC;
        let berlin = tz("Europe/Berlin");
        for s in ["* * * * *", "0 0 29 2 *", "0 0 30 2 *"] {
            let s = parse(s);
            let _ = s.next(Timestamp::MAX, &utc);
            let _ = s.next(Timestamp::MIN, &berlin);
            let _ = s.next(Timestamp::MAX, &berlin);
        }
        assert_eq!(parse("* * * * *").next(Timestamp::MAX, &utc), None);
    }
}
