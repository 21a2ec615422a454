//! `TenantPolicy` (`tp`): the gateway policy of one tenant (optionally one org of it): who may
//! call (JWT), how often (rate limits), from where (CORS, IP allow-list), with what (request size,
//! required headers), and which CRM settings may overlay it.
//!
//! ```yaml
//! spec:
//!   tenantId: acme
//!   targets: [{kind: Ingress, name: crm-acme}]
//!   auth:
//!     issuer: https://id.freshfoodz.de/realms/acme
//!     keys: [{kid: acme-2026, algorithm: RS256, publicKey: "-----BEGIN PUBLIC KEY-----..."}]
//!   rateLimit:
//!     limits: {second: 20, minute: 600, hour: 20000}
//!     routes:
//!       - {name: sample-writes, targets: [{kind: Ingress, name: crm-acme-samples}], limits: {minute: 30}}
//!   headers: {idempotencyKey: true, ifMatch: true}
//!   settingsRef: {}
//! ```
//!
//! The targets belong to the tenant (a host or path of its own): the operator puts plugins on
//! them that are configured for this tenant alone, so two policies may not share a target.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{
    AUDIENCE_MAX, CLAIM, CLAIM_MAX, DURATION, HEADER_NAME, HEADER_NAME_MAX, IP_OR_CIDR_MAX, KEY_ID_MAX,
    KONG_HEADER_NAME, LIMIT_MAX, MAX_ALLOWLIST, MAX_AUDIENCES, MAX_KEYS, MAX_ORIGINS, MAX_ROUTE_LIMITS,
    MAX_ROUTE_TARGETS, MAX_TARGETS, NAME, OBJECT_NAME, OBJECT_NAME_MAX, ORIGIN, ORIGIN_MAX, PRINTABLE,
    PUBLIC_KEY_PEM, PUBLIC_KEY_PEM_MAX, SERVER_ADDRESS, SIZE, SIZE_MAX, TENANT, TENANT_MAX, URL_MAX,
};

/// Targets listed twice would get every plugin twice.
const UNIQUE_TARGETS: &str = "self.all(t, self.exists_one(u, u.kind == t.kind && u.name == t.name))";

/// The gateway policy of one tenant, reconciled into Kong Ingress Controller objects.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
// Every printer column repeats `type_ = "string"`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "freshplan.io",
    version = "v1alpha1",
    kind = "TenantPolicy",
    namespaced,
    status = "TenantPolicyStatus",
    shortname = "tp",
    category = "freshplan",
    derive = "PartialEq",
    doc = "The gateway policy of one tenant: authentication, rate limits, CORS, request limits and required headers, rendered into Kong plugins on the tenant's Ingresses, Services and HTTPRoutes.",
    validation = Rule::new("self.metadata.name.size() <= 63")
        .message("metadata.name must be at most 63 characters: it labels every object generated for the policy"),
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenantId"),
    printcolumn(name = "Org", type_ = "string", json_path = ".spec.orgId"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether Kong's objects match the policy",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Settings",
        type_ = "integer",
        description = "The version of the CRM settings applied",
        json_path = ".status.settingsVersion"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.rateLimit) || self.rateLimit.limitBy != 'consumer' || has(self.auth)")
    .message("rateLimit.limitBy consumer needs auth: without an authenticated consumer Kong would count per client IP"))]
pub struct TenantPolicySpec {
    /// The tenant, as the CRM settings registry names it (`tenant:<tenantId>`).
    #[schemars(pattern(TENANT), length(max = TENANT_MAX))]
    pub tenant_id: String,

    /// One org of the tenant, when the policy is for that org alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TENANT), length(max = TENANT_MAX))]
    pub org_id: Option<String>,

    /// The tenant's Ingresses, Services and HTTPRoutes in this namespace: each gets the policy's
    /// plugins in its `konghq.com/plugins` annotation, beside any plugins already listed there.
    #[schemars(length(min = 1, max = MAX_TARGETS))]
    #[x_kube(validation = Rule::new(UNIQUE_TARGETS).message("targets must be unique"))]
    pub targets: Vec<Target>,

    /// The ingress class of the Kong Ingress Controller that serves the targets; the generated
    /// KongConsumer carries it.
    #[serde(default = "default_ingress_class")]
    #[schemars(pattern(OBJECT_NAME), length(max = OBJECT_NAME_MAX))]
    pub ingress_class: String,

    /// Who may call: tokens signed by the tenant's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,

    /// How often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,

    /// Which browser origins may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,

    /// The correlation id header Kong adds when a request has none (the CRM reads
    /// `X-Correlation-ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,

    /// The largest request body: bytes, or `Ki` / `Mi` (`8Mi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(SIZE), length(max = SIZE_MAX))]
    pub request_size_limit: Option<String>,

    /// Client addresses allowed to call (IP addresses or CIDR blocks); omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_ALLOWLIST), inner(length(max = IP_OR_CIDR_MAX)))]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(a, isIP(a) || isCIDR(a))")
            .message("ipAllowlist entries must be IP addresses or CIDR blocks")
    )]
    pub ip_allowlist: Option<Vec<String>>,

    /// Headers writes must carry, refused at the gateway with 428 as the CRM would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<RequiredHeaders>,

    /// The CRM settings whose `gateway.*` keys overlay this spec; omitted: the spec alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_ref: Option<SettingsRef>,
}

fn default_ingress_class() -> String {
    "kong".to_owned()
}

/// An object whose routes the policy protects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub kind: TargetKind,
    #[schemars(pattern(OBJECT_NAME), length(max = OBJECT_NAME_MAX))]
    pub name: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// The kinds Kong Ingress Controller reads `konghq.com/plugins` from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TargetKind {
    /// networking.k8s.io/v1 Ingress: the plugins run for its routes.
    Ingress,
    /// core/v1 Service: the plugins run for every route to it.
    Service,
    /// gateway.networking.k8s.io/v1 HTTPRoute.
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Ingress => "Ingress",
            TargetKind::Service => "Service",
            TargetKind::HttpRoute => "HTTPRoute",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bearer JWTs of the tenant's identity provider.
///
/// With `keys`, Kong OSS's `jwt` plugin checks the signature and expiry: the token's `kid`
/// selects the key, and so the tenant. With `jwksUri`, the `openid-connect` plugin of Kong
/// Enterprise checks issuer, audiences and signature and maps the tenant claim to the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.keys) != has(self.jwksUri)")
    .message("auth needs exactly one of keys (Kong OSS jwt) and jwksUri (Kong Enterprise openid-connect)"))]
pub struct Auth {
    /// The `iss` of the tenant's tokens.
    #[schemars(pattern(SERVER_ADDRESS), length(max = URL_MAX))]
    pub issuer: String,

    /// Audiences the tokens must name one of (checked by openid-connect and by the CRM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_AUDIENCES), inner(pattern(PRINTABLE), length(max = AUDIENCE_MAX)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub audiences: Vec<String>,

    /// The claim that names the tenant.
    #[serde(default = "default_tenant_claim")]
    #[schemars(pattern(CLAIM), length(max = CLAIM_MAX))]
    pub tenant_claim: String,

    /// The tenant's public keys (Kong OSS `jwt`): the current one and any being rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_KEYS))]
    #[x_kube(validation = Rule::new("self.all(k, self.exists_one(x, x.kid == k.kid))").message("key ids must be unique"))]
    pub keys: Option<Vec<PublicKey>>,

    /// Where the identity provider publishes its keys (Kong Enterprise `openid-connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(SERVER_ADDRESS), length(max = URL_MAX))]
    pub jwks_uri: Option<String>,
}

fn default_tenant_claim() -> String {
    "tenant".to_owned()
}

/// One signing key of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublicKey {
    /// The key id tokens carry in their `kid` header; unique across every tenant's keys.
    #[schemars(pattern(PRINTABLE), length(max = KEY_ID_MAX))]
    pub kid: String,
    pub algorithm: Algorithm,
    /// The public key, PEM (`-----BEGIN PUBLIC KEY-----`).
    #[schemars(pattern(PUBLIC_KEY_PEM), length(max = PUBLIC_KEY_PEM_MAX))]
    pub public_key: String,
}

/// The asymmetric algorithms Kong's `jwt` plugin verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    ES512,
    PS256,
    PS384,
    PS512,
    EdDSA,
}

/// Request limits of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("(self.policy == 'redis') == has(self.redis)")
        .message("redis is required with policy redis and read with no other policy"),
    validation = Rule::new("!has(self.header) || self.limitBy == 'header'")
        .message("header is only read with limitBy header")
)]
pub struct RateLimit {
    /// Requests per period for every target not named in `routes`.
    pub limits: Limits,

    /// What is counted: `consumer`, the authenticated tenant (needs `auth`); or `header`, the
    /// value of `header` (requests without it are refused, never counted per client IP).
    #[serde(default)]
    pub limit_by: LimitBy,

    /// The header `limitBy: header` counts (default `X-Tenant-ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(KONG_HEADER_NAME), length(max = HEADER_NAME_MAX))]
    pub header: Option<String>,

    /// Where Kong keeps the counters: `local` to each Kong node, or a shared `redis`.
    #[serde(default)]
    pub policy: CounterPolicy,

    /// The Redis of `policy: redis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Redis>,

    /// Tighter (or looser) limits for some targets, such as an Ingress for `POST /samples`. Their
    /// targets get every other plugin of the policy too, listed in `targets` or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_ROUTE_LIMITS))]
    #[x_kube(
        validation = Rule::new("self.all(r, self.exists_one(x, x.name == r.name))").message("route limit names must be unique"),
        validation = Rule::new("self.all(r, r.targets.all(t, self.exists_one(x, x.targets.exists(u, u.kind == t.kind && u.name == t.name))))")
            .message("a target may be named by one route limit only")
    )]
    pub routes: Vec<RouteLimit>,
}

/// Requests per period. Kong requires longer periods to allow at least as many requests as
/// shorter ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("has(self.second) || has(self.minute) || has(self.hour) || has(self.day)")
        .message("limits must set at least one of second, minute, hour, day"),
    validation = Rule::new(NON_DECREASING)
        .message("limits must not decrease with the period: second <= minute <= hour <= day")
)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = LIMIT_MAX))]
    pub second: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = LIMIT_MAX))]
    pub minute: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = LIMIT_MAX))]
    pub hour: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = LIMIT_MAX))]
    pub day: Option<i64>,
}

/// Every pair of periods present, shorter first.
const NON_DECREASING: &str = "(!has(self.second) || !has(self.minute) || self.second <= self.minute) \
    && (!has(self.second) || !has(self.hour) || self.second <= self.hour) \
    && (!has(self.second) || !has(self.day) || self.second <= self.day) \
    && (!has(self.minute) || !has(self.hour) || self.minute <= self.hour) \
    && (!has(self.minute) || !has(self.day) || self.minute <= self.day) \
    && (!has(self.hour) || !has(self.day) || self.hour <= self.day)";

impl Limits {
    /// The periods set, shortest first, as Kong names them.
    pub fn periods(&self) -> impl Iterator<Item = (&'static str, i64)> {
        [("second", self.second), ("minute", self.minute), ("hour", self.hour), ("day", self.day)]
            .into_iter()
            .filter_map(|(name, limit)| limit.map(|limit| (name, limit)))
    }
}

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitBy {
    /// The authenticated consumer: the tenant.
    #[default]
    Consumer,
    /// A request header.
    Header,
}

/// Where Kong keeps rate-limit counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CounterPolicy {
    /// In each Kong node: the limit holds per node.
    #[default]
    Local,
    /// In Redis, shared by all nodes.
    Redis,
}

/// The Redis that keeps shared counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Redis {
    #[schemars(pattern(OBJECT_NAME), length(max = OBJECT_NAME_MAX))]
    pub host: String,
    #[serde(default = "default_redis_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    #[serde(default)]
    #[schemars(range(min = 0, max = 15))]
    pub database: i32,
    /// TLS to Redis.
    #[serde(default)]
    pub ssl: bool,
    /// The Secret key holding Redis's password, in this namespace; Kong Ingress Controller
    /// patches it into the plugin's configuration, so it never appears in the KongPlugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
}

fn default_redis_port() -> i32 {
    6379
}

/// A key of a Secret in the policy's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    #[schemars(pattern(OBJECT_NAME), length(max = OBJECT_NAME_MAX))]
    pub name: String,
    #[schemars(pattern(r"^[-._a-zA-Z0-9]+$"), length(max = OBJECT_NAME_MAX))]
    pub key: String,
}

/// Limits of some of the policy's targets instead of the policy's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteLimit {
    /// Names the generated plugin; unique in the policy.
    #[schemars(pattern(NAME), length(max = 40))]
    pub name: String,
    /// The targets these limits apply to, instead of `limits`.
    #[schemars(length(min = 1, max = MAX_ROUTE_TARGETS))]
    #[x_kube(validation = Rule::new(UNIQUE_TARGETS).message("targets must be unique"))]
    pub targets: Vec<Target>,
    pub limits: Limits,
}

/// Cross-origin requests from browsers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!self.credentials || !self.origins.exists(o, o == '*')")
    .message("credentials cannot be allowed for origin *: browsers refuse it"))]
pub struct Cors {
    /// Allowed origins: `https://cockpit.freshfoodz.de`, or `*`.
    #[schemars(length(min = 1, max = MAX_ORIGINS), inner(pattern(ORIGIN), length(max = ORIGIN_MAX)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub origins: Vec<String>,
    /// Allowed methods; omitted: Kong's default (all common ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 9))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub methods: Vec<Method>,
    /// Request headers allowed; omitted: those the browser asks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(pattern(HEADER_NAME), length(max = HEADER_NAME_MAX)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub headers: Vec<String>,
    /// Response headers scripts may read (`ETag`, `X-Correlation-ID`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(pattern(HEADER_NAME), length(max = HEADER_NAME_MAX)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub exposed_headers: Vec<String>,
    /// Whether cookies and authorization headers may be sent.
    #[serde(default)]
    pub credentials: bool,
    /// Seconds browsers may cache a preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub max_age: Option<i32>,
}

/// HTTP methods, as CORS lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Put,
    Patch,
    Post,
    Delete,
    Options,
    Trace,
    Connect,
}

/// The correlation id Kong adds to requests without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorrelationId {
    #[serde(default = "default_correlation_header")]
    #[schemars(pattern(HEADER_NAME), length(max = HEADER_NAME_MAX))]
    pub header: String,
    #[serde(default)]
    pub generator: Generator,
    /// Return the id in the response too.
    #[serde(default = "yes")]
    pub echo_downstream: bool,
}

fn default_correlation_header() -> String {
    "X-Correlation-ID".to_owned()
}

fn yes() -> bool {
    true
}

/// How Kong makes a correlation id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Generator {
    /// A random UUID per request.
    #[default]
    #[serde(rename = "uuid")]
    Uuid,
    /// A UUID per worker and a counter.
    #[serde(rename = "uuid#counter")]
    UuidCounter,
    /// Server address, port, connection and request numbers.
    #[serde(rename = "tracker")]
    Tracker,
}

impl Generator {
    pub fn as_str(self) -> &'static str {
        match self {
            Generator::Uuid => "uuid",
            Generator::UuidCounter => "uuid#counter",
            Generator::Tracker => "tracker",
        }
    }
}

/// Headers writes must carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequiredHeaders {
    /// `Idempotency-Key` on POST and PATCH.
    #[serde(default)]
    pub idempotency_key: bool,
    /// `If-Match` on PATCH and PUT.
    #[serde(default)]
    pub if_match: bool,
}

/// Where in the CRM settings registry the policy's dynamic values are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsRef {
    /// The tenant to read (default: `tenantId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TENANT), length(max = TENANT_MAX))]
    pub tenant: Option<String>,
    /// The org to read (default: `orgId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TENANT), length(max = TENANT_MAX))]
    pub org: Option<String>,
    /// How often the operator reads them again: `90m`, `5m`, `1h`.
    #[serde(default = "default_sync_interval")]
    #[schemars(pattern(DURATION), length(max = 10))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('24h')")
        .message("syncInterval must be between 1m and 24h"))]
    pub sync_interval: String,
}

fn default_sync_interval() -> String {
    "5m".to_owned()
}

impl TenantPolicySpec {
    /// The (tenant, org) whose settings overlay the spec, if any.
    pub fn settings_scope(&self) -> Option<(&str, Option<&str>)> {
        self.settings_ref.as_ref().map(|r| {
            (r.tenant.as_deref().unwrap_or(&self.tenant_id), r.org.as_deref().or(self.org_id.as_deref()))
        })
    }
}

/// What the controller last did for the policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Conditions: Ready, SettingsSynced, TargetsFound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Every object generated for the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generated: Vec<GeneratedObject>,

    /// The effective-settings version of the CRM settings last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_version: Option<i64>,

    /// The settings keys whose values are in force instead of the spec's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings_applied: Vec<String>,

    /// The targets whose `konghq.com/plugins` annotation lists the policy's plugins: cleaned when
    /// a target leaves the spec or the policy is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotated: Vec<Target>,

    /// The CRM's effective settings last read (the answer of `GET /settings/effective`): what the
    /// policy in force is made of, kept so that a CRM outage, even across a restart of the
    /// operator, never takes them away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub last_settings: Option<serde_json::Value>,

    /// The value of the `freshplan.io/sync-requested` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_requested: Option<String>,
}

/// An object the API server keeps as it is given.
fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true})
}

/// One generated object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GeneratedObject {
    pub kind: String,
    pub name: String,
}
