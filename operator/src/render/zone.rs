//! A time zone's offsets over a bounded span, read once.
//!
//! The cron compiler turns hundreds of instants into wall-clock times and asks of as many
//! wall-clock times whether the clocks repeat or skip them. Past the last entry of its table a
//! zone is a rule ("last Sunday of March"), which jiff works out again on every conversion; over
//! the two years the compiler looks at, a zone changes its offset a handful of times, so those
//! changes are read once and every conversion is a search among them.

use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, civil};

/// How a wall-clock time of a zone maps to instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wall {
    /// One instant.
    Once,
    /// Two: the clocks go back over it.
    Twice,
    /// None: the clocks skip it.
    Never,
}

/// `zone` between two instants: the offset in force from each change on.
#[derive(Debug, Clone)]
pub struct ZoneSpan {
    zone: TimeZone,
    from: Timestamp,
    until: Timestamp,
    /// The offset at `from`, then each change up to `until`: (instant, offset from then on).
    offsets: Vec<(Timestamp, Offset)>,
    /// Per change, what the clocks show just before it and from it on.
    walls: Vec<(civil::DateTime, civil::DateTime)>,
    /// Per change that turns the clocks back, the instants that show a wall-clock time twice.
    folds: Vec<(Timestamp, Timestamp)>,
    /// The wall-clock times whose instants lie within the span, whatever the offset.
    inside: (civil::DateTime, civil::DateTime),
}

/// Offsets differ by less than this from UTC: a wall-clock time this far inside the span has
/// its instants inside it too.
const MARGIN: SignedDuration = SignedDuration::from_hours(48);

impl ZoneSpan {
    /// `zone` over `[from, until]`; conversions outside it are jiff's own.
    pub fn new(zone: &TimeZone, from: Timestamp, until: Timestamp) -> ZoneSpan {
        let mut offsets = vec![(from, zone.to_offset(from))];
        let changes = zone.following(from).take_while(|t| t.timestamp() <= until);
        offsets.extend(changes.map(|t| (t.timestamp(), t.offset())));
        let walls = offsets
            .windows(2)
            .map(|pair| (pair[0].1.to_datetime(pair[1].0), pair[1].1.to_datetime(pair[1].0)));
        let inside = (Offset::UTC.to_datetime(from + MARGIN), Offset::UTC.to_datetime(until - MARGIN));
        // Back by `d` at `t`: the times shown in [t - d, t) are shown again in [t, t + d).
        let folds = offsets.windows(2).filter_map(|pair| {
            let (at, back) = (pair[1].0, pair[0].1.duration_since(pair[1].1));
            back.is_positive().then(|| (at - back, at + back))
        });
        let folds = folds.collect();
        ZoneSpan { zone: zone.clone(), from, until, walls: walls.collect(), folds, inside, offsets }
    }

    /// The wall-clock time at `at`.
    pub fn civil(&self, at: Timestamp) -> civil::DateTime {
        if at < self.from || at > self.until {
            return at.to_zoned(self.zone.clone()).datetime();
        }
        let after = self.offsets.partition_point(|(change, _)| *change <= at);
        self.offsets[after - 1].1.to_datetime(at)
    }

    /// The wall-clock time at `at` when the clocks show it only then; None when they show it
    /// twice. As `civil` and `wall` together, without searching by wall-clock time.
    pub fn civil_once(&self, at: Timestamp) -> Option<civil::DateTime> {
        if at < self.from || at > self.until {
            let wall = self.civil(at);
            return (self.wall(wall) == Wall::Once).then_some(wall);
        }
        if self.folds.iter().any(|&(first, last)| first <= at && at < last) {
            return None;
        }
        Some(self.civil(at))
    }

    /// Whether the clocks show `wall` once, twice or never.
    pub fn wall(&self, wall: civil::DateTime) -> Wall {
        if wall < self.inside.0 || wall > self.inside.1 {
            return by_jiff(&self.zone, wall);
        }
        for &(old, new) in &self.walls {
            if new > old && old <= wall && wall < new {
                return Wall::Never;
            }
            if new < old && new <= wall && wall < old {
                return Wall::Twice;
            }
        }
        Wall::Once
    }
}

/// How the clocks of `zone` show `wall`, as jiff finds it (outside a span, and the tests' oracle).
fn by_jiff(zone: &TimeZone, wall: civil::DateTime) -> Wall {
    match zone.to_ambiguous_timestamp(wall).offset() {
        AmbiguousOffset::Unambiguous { .. } => Wall::Once,
        AmbiguousOffset::Fold { .. } => Wall::Twice,
        AmbiguousOffset::Gap { .. } => Wall::Never,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Zones with the kinds of change there are: daylight saving north and south, a half-hour
    /// one, a "negative" one (Dublin's winter time), one abolished (São Paulo), a date-line jump
    /// in the past (Apia), and fixed offsets.
    const ZONES: [&str; 9] = [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Europe/Dublin",
        "America/Sao_Paulo",
        "Pacific/Apia",
        "Etc/UTC",
        "Etc/GMT+12",
        "Etc/GMT-14",
    ];

    proptest! {
        /// Over any two years and a bit from 2005 to 2045, and a little beyond both ends, the
        /// span converts as jiff does, minute by minute around every change and at random instants.
        #[test]
        fn the_span_converts_as_jiff_does(
            zone in prop::sample::select(&ZONES[..]),
            start in 1_104_537_600i64..2_366_841_600,
            probes in prop::collection::vec(-3_000_000i64..70_000_000, 50),
        ) {
            let zone = TimeZone::get(zone).unwrap();
            let from = Timestamp::from_second(start).unwrap();
            let until = from + SignedDuration::from_hours(24 * 365 * 2 + 24 * 10);
            let span = ZoneSpan::new(&zone, from, until);
            let mut instants: Vec<Timestamp> =
                probes.iter().map(|s| from + SignedDuration::from_secs(*s)).collect();
            for (change, _) in &span.offsets[1..] {
                for minutes in -90..=90 {
                    instants.push(*change + SignedDuration::from_mins(minutes));
                }
            }
            for at in instants {
                let wall = at.to_zoned(zone.clone()).datetime();
                prop_assert_eq!(span.civil(at), wall, "{}", at);
                prop_assert_eq!(span.wall(wall), by_jiff(&zone, wall), "{}", wall);
                let once = (by_jiff(&zone, wall) == Wall::Once).then_some(wall);
                prop_assert_eq!(span.civil_once(at), once, "{}", at);
                // Wall-clock times that no instant shows here: those the clocks skip.
                let shifted = wall + SignedDuration::from_mins(37);
                prop_assert_eq!(span.wall(shifted), by_jiff(&zone, shifted), "{}", shifted);
            }
        }
    }

    #[test]
    fn berlins_changes_are_a_gap_in_march_and_a_fold_in_october() {
        let zone = TimeZone::get("Europe/Berlin").unwrap();
        let from: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        // To 2028-05-15: March and October 2027, March 2028.
        let span = ZoneSpan::new(&zone, from, from + SignedDuration::from_hours(24 * 500));
        assert_eq!(span.offsets.len(), 1 + 3);
        let wall = |s: &str| span.wall(s.parse().unwrap());
        assert_eq!(wall("2027-03-28T02:30"), Wall::Never);
        assert_eq!(wall("2027-03-28T03:00"), Wall::Once);
        assert_eq!(wall("2027-10-31T02:00"), Wall::Twice);
        assert_eq!(wall("2027-10-31T03:00"), Wall::Once);
        let at: Timestamp = "2027-10-31T01:30:00Z".parse().unwrap();
        assert_eq!(span.civil(at), "2027-10-31T02:30".parse::<civil::DateTime>().unwrap());
    }
}
