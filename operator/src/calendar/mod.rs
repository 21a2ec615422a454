//! The validated calendar and the floors it asks for: pure time logic; `now` is always an argument.
//!
//! A SeasonalWindow becomes a [`Calendar`] once its spec is checked: a time zone, [`Window`]s that
//! raise replica floors and [`DarkPeriod`]s that lower them. A ScalingProfile gives each component
//! it scales a [`Baseline`] of min/max replicas. Everything here is plain values and pure
//! functions; no resource types, no clock, no I/O.
//!
//! # Layout
//!
//! ```text
//! model       Calendar, Window, DarkPeriod, Hours, TimeOfDay, PreWarm, Baseline, Replicas
//! days        day rules: yearly MM-DD ranges, one-off dates, Easter-relative, holidays, every day;
//!             expanded into occurrences (runs of local dates)
//! occurrence  occurrences placed in time as intervals of instants (the timeline's input)
//! floors      floor() at an instant, timeline() over a span, next_transition()
//! error       CalendarError, the one error of this area
//! ```
//!
//! # Semantics
//!
//! Local dates and times are in the calendar's zone, at minute precision. An occurrence without
//! hours covers `[first 00:00, day after last 00:00)`; with [`Hours`], each date d of it gives
//! `[d from, d to)`, or `[d from, d+1 to)` when `to <= from`. [`PreWarm`] moves each of those
//! starts earlier by its (absolute) length. A local time the clocks skip is read with the offset
//! before the gap (02:30 on the spring-forward day in Berlin is 03:30 CEST), a repeated one is its
//! first occurrence (see [`TimeOfDay::on`]); an interval that ends up empty or reversed that way
//! covers nothing. A yearly `02-29` is `02-28` in common years.
//!
//! ```text
//! seasonal = max(baseline min, floors of the active windows covering (territory, component))
//! floor    = min(seasonal, lowest floor of the active dark periods covering it), at most baseline max
//! ```
//!
//! Windows of all the profile's calendars take the maximum together, their dark periods the
//! minimum. A window or dark period covers a component when its territories (none: all) hold the
//! territory, its components (none: all) hold the component, and it has a floor for it.
//!
//! # API
//!
//! - [`floor`]`(calendars, baseline, territory, component, at) -> Option<u32>`: the specification,
//!   evaluated at one instant from the definitions; None when the component has no baseline.
//! - [`timeline`]`(calendars, baseline, territory, component, from, to) -> Vec<(Timestamp, u32)>`:
//!   the floor over `[from, to)` as steps: the value at `from`, then every change.
//! - [`next_transition`]`(calendars, baseline, territory, component, after) -> Option<Timestamp>`:
//!   the first change after `after` within [`HORIZON_DAYS`], when the controller requeues.
//! - [`active_windows`]`(calendar, at) -> Vec<&str>` and [`active_dark_periods`]: the names of
//!   what is active at `at`, for the status.
//! - [`window_intervals`]`(window, tz, from, to) -> Vec<Interval>` and [`dark_intervals`]: the
//!   occurrences reaching into `[from, to)` as instants (previews, plots).
//! - Constructors that check what the parts cannot hold: [`MonthDay::new`], [`DateRange::new`],
//!   [`EasterRange::new`], [`TimeOfDay::new`], [`Hours::new`], [`PreWarm::from_duration`],
//!   [`Replicas::new`], [`Calendar::new`], [`time_zone`]; and `FromStr` for the written forms
//!   (`09-19`, `23:30`, `1h30m`). German states come from `freshplan-holidays` ([`State`],
//!   `State::from_short_code("BY")`).
//!
//! # Example
//!
//! ```
//! use freshplan_operator::calendar::{self, Baseline, Calendar, Days, Hours, PreWarm, Replicas, Window};
//! use freshplan_operator::component::Component;
//!
//! let oktoberfest = Window {
//!     name: "oktoberfest".into(),
//!     days: Days::Yearly { from: "09-19".parse()?, to: "10-04".parse()? },
//!     hours: Some(Hours::new("10:00".parse()?, "23:30".parse()?)?),
//!     pre_warm: "2h".parse()?,
//!     territories: Some(["BY".to_owned()].into()),
//!     components: None,
//!     floors: [(Component::Query, 8)].into(),
//! };
//! let calendars = [Calendar::new(calendar::time_zone("Europe/Berlin")?, vec![oktoberfest], vec![])?];
//! let baseline: Baseline = [(Component::Query, Replicas::new(2, 20)?)].into_iter().collect();
//!
//! let at = "2026-09-19T06:00:00Z".parse()?; // 08:00 in Munich, two hours before the tents open
//! assert_eq!(calendar::floor(&calendars, &baseline, "BY", Component::Query, at), Some(8));
//! let next = calendar::next_transition(&calendars, &baseline, "BY", Component::Query, at);
//! assert_eq!(next, Some("2026-09-19T21:30:00Z".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod days;
mod error;
mod floors;
mod model;
mod occurrence;
#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod strategies;
#[cfg(test)]
mod tests;

pub use days::{DarkDays, DateRange, DaySpan, Days, EasterRange, MonthDay};
pub use error::CalendarError;
pub use floors::{HORIZON_DAYS, active_dark_periods, active_windows, floor, next_transition, timeline};
pub use freshplan_holidays::State;
pub use model::{Baseline, Calendar, DarkPeriod, Hours, PreWarm, Replicas, TimeOfDay, Window, time_zone};
pub use occurrence::{Interval, dark_intervals, window_intervals};
