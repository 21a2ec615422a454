//! The formats and size limits the CRDs enforce at `kubectl apply`, in one place so the schema
//! attributes, the docs and the tests agree.
//!
//! Patterns are written in the common subset of Go's RE2 (the API server) and Rust's `regex`
//! (the tests): no look-around, no back-references. Every string and list carries a bound, because
//! the API server estimates the cost of a CEL rule from `maxLength`/`maxItems` and refuses a CRD
//! whose rules could exceed its budget.

/// A calendar day without a year, `MM-DD`, that exists in some year: `02-29` is accepted (it is read
/// as `02-28` in other years), `04-31` and `02-30` are not.
pub const MONTH_DAY: &str = r"^((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-9]))$";

/// A local date, `YYYY-MM-DD`. February 29 is accepted in every year here; the calendar
/// validation rejects it in common years (a regular expression that knows leap years would be
/// unreadable).
///
/// Dates are plain strings rather than `format: date` on purpose: the API server hands CEL a
/// `format: date` string as a timestamp, and keeping it a string means the rules compare the same
/// value there and in the tests. Zero-padded ISO dates compare correctly as strings.
pub const DATE: &str = r"^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-9]))$";

/// A start time of day, `HH:MM`, 00:00 to 23:59.
pub const TIME_FROM: &str = r"^([01][0-9]|2[0-3]):[0-5][0-9]$";

/// An end time of day, `HH:MM`: like [`TIME_FROM`], plus `24:00` for "until midnight".
pub const TIME_TO: &str = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";

/// A lead time in whole minutes: `90m`, `2h`, `1h30m` (minutes below 60 after hours). These are
/// Go durations too, so a CEL rule bounds the value with `duration(self)` (at most a week, the
/// calendar's bound).
pub const DURATION: &str = r"^([0-9]{1,3}h([0-5]?[0-9]m)?|[0-9]{1,5}m)$";

/// A name inside a calendar (window, dark period): a DNS label, so it can appear in generated
/// object names and labels.
pub const NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
pub const NAME_MAX: u32 = 63;

/// The name of another object in the namespace (a SeasonalWindow): a DNS subdomain.
pub const OBJECT_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
pub const OBJECT_NAME_MAX: u32 = 253;

/// A territory as Deployments carry it in `freshplan.io/territory`: a non-empty label value.
pub const TERRITORY: &str = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";
pub const TERRITORY_MAX: u32 = 63;

/// An IANA time zone name in its usual spelling (`Europe/Berlin`, `UTC`, `Etc/GMT+1`); whether the
/// zone exists is checked against the tz database by the calendar validation.
pub const TIMEZONE: &str = r"^[A-Za-z][-A-Za-z0-9_+]*(/[A-Za-z0-9][-A-Za-z0-9_+]*)*$";
pub const TIMEZONE_MAX: u32 = 64;

/// A metric target as KEDA reads it: a non-negative decimal number.
pub const THRESHOLD: &str = r"^[0-9]+(\.[0-9]+)?$";
pub const THRESHOLD_MAX: u32 = 32;

/// The Prometheus server KEDA queries.
pub const SERVER_ADDRESS: &str = r"^https?://[^\s]+$";
pub const SERVER_ADDRESS_MAX: u32 = 2048;

/// A PromQL query.
pub const QUERY_MAX: u32 = 4096;

/// Windows per SeasonalWindow: a year of weekly campaigns fits; more belongs in another calendar.
pub const MAX_WINDOWS: u32 = 50;
/// Dark periods per SeasonalWindow.
pub const MAX_DARK_PERIODS: u32 = 20;
/// Territories a window or dark period names.
pub const MAX_TERRITORIES: u32 = 64;
/// Components a window or dark period names: each of the three at most once.
pub const MAX_COMPONENTS: u32 = 3;
/// SeasonalWindows a ScalingProfile names.
pub const MAX_CALENDARS: u32 = 20;
/// Metrics of a ScalingProfile.
pub const MAX_METRICS: u32 = 10;

/// Days an Easter rule may reach from Easter Sunday, either way: the calendar's bound (a year), far
/// beyond Carnival (-52) and Corpus Christi (+60).
pub const EASTER_DAYS_MAX: i32 = 365;

/// The longest scale-down stabilisation window the HPA accepts (one hour).
pub const STABILIZATION_SECONDS_MAX: i32 = 3600;
