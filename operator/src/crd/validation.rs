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

/// A tenant or org id as the CRM settings registry spells it (`tenant:acme`, `org:acme:munich`):
/// a DNS label, so it can also name generated objects.
pub const TENANT: &str = NAME;
pub const TENANT_MAX: u32 = NAME_MAX;

/// An HTTP header name: an RFC 9110 token.
pub const HEADER_NAME: &str = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";
pub const HEADER_NAME_MAX: u32 = 256;

/// A header Kong's rate limiting counts: Kong's `header_name` type, stricter than HTTP's token.
pub const KONG_HEADER_NAME: &str = r"^[A-Za-z0-9_-]+$";

/// A JWT claim name (`tenant`, `https://freshplan.io/tenant`, `org_id`).
pub const CLAIM: &str = r"^[A-Za-z0-9_.:/-]+$";
pub const CLAIM_MAX: u32 = 256;

/// An issuer, JWKS address or audience: printable ASCII without spaces.
pub const PRINTABLE: &str = r"^[!-~]+$";
pub const URL_MAX: u32 = 2048;
pub const AUDIENCE_MAX: u32 = 253;
/// A key id (`kid`): printable ASCII without spaces.
pub const KEY_ID_MAX: u32 = 256;

/// A public key in PEM, as an identity provider publishes it.
pub const PUBLIC_KEY_PEM: &str =
    r"^\s*-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\s]+-----END PUBLIC KEY-----\s*$";
pub const PUBLIC_KEY_PEM_MAX: u32 = 8192;

/// A CORS origin: `*`, or scheme, host and optional port (the CRM's settings registry uses the
/// same pattern for `gateway.cors.origins`).
pub const ORIGIN: &str = r"^(\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)$";
pub const ORIGIN_MAX: u32 = 253;

/// A request size: bytes, or KiB / MiB in Kubernetes quantity suffixes (`8Mi`, `512Ki`, `1048576`);
/// Kong counts megabytes and kilobytes in powers of two, the same units.
pub const SIZE: &str = r"^[1-9][0-9]{0,8}(Ki|Mi)?$";
pub const SIZE_MAX: u32 = 11;

/// An IP address or CIDR block of an allow-list (checked by CEL's `isIP`/`isCIDR`).
pub const IP_OR_CIDR_MAX: u32 = 64;

/// Targets (Ingresses, Services, HTTPRoutes) one TenantPolicy protects. The rules that compare
/// targets across lists cost the product of these bounds.
pub const MAX_TARGETS: u32 = 8;
/// Targets one per-route rate limit names.
pub const MAX_ROUTE_TARGETS: u32 = 4;
/// Audiences an issuer's tokens may name.
pub const MAX_AUDIENCES: u32 = 10;
/// Public keys of a tenant at once: the current one and those being rotated in or out.
pub const MAX_KEYS: u32 = 4;
/// CORS origins (the settings registry's bound too).
pub const MAX_ORIGINS: u32 = 50;
/// Entries of an IP allow-list (the settings registry's bound too).
pub const MAX_ALLOWLIST: u32 = 100;
/// Per-route rate-limit overrides.
pub const MAX_ROUTE_LIMITS: u32 = 8;
/// The largest rate limit of any period (the settings registry's bound too).
pub const LIMIT_MAX: i64 = 1_000_000_000;
