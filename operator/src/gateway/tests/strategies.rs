//! Random TenantPolicies the API server admits, and random settings for them, valid or not.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::crd::tenant_policy::{
    Algorithm, Auth, CorrelationId, Cors, CounterPolicy, Generator, LimitBy, Limits, Method, PublicKey,
    RateLimit, Redis, RequiredHeaders, RouteLimit, SecretKeyRef, SettingsRef, Target, TargetKind,
    TenantPolicy, TenantPolicySpec,
};
use crate::gateway::settings::{self, EffectiveSettings, Setting};

const RSA: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0H6WHg7rcYktIbE1tT5c\n-----END PUBLIC KEY-----\n";
const EC: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEzKKI3cIH4++wr/RXgB0WOSL+c1F9\n-----END PUBLIC KEY-----";

fn target() -> impl Strategy<Value = Target> {
    (
        prop::sample::select(vec![TargetKind::Ingress, TargetKind::Service, TargetKind::HttpRoute]),
        prop::sample::select(vec!["crm-a", "crm-b", "crm-c", "crm-d", "crm.e"]),
    )
        .prop_map(|(kind, name)| Target { kind, name: name.to_owned() })
}

fn targets(max: usize) -> impl Strategy<Value = Vec<Target>> {
    prop::collection::btree_set(target(), 1..=max).prop_map(|set| set.into_iter().collect())
}

/// Limits that Kong accepts: non-decreasing over the periods set.
pub(super) fn limits() -> impl Strategy<Value = Limits> {
    (prop::collection::vec(1i64..=1_000_000_000, 4), prop::collection::vec(any::<bool>(), 4)).prop_filter_map(
        "at least one period",
        |(mut values, set)| {
            values.sort_unstable();
            let pick = |i: usize| set[i].then_some(values[i]);
            let limits = Limits { second: pick(0), minute: pick(1), hour: pick(2), day: pick(3) };
            limits.periods().next().is_some().then_some(limits)
        },
    )
}

fn auth() -> impl Strategy<Value = Auth> {
    let keys = prop::collection::btree_set("[a-z0-9._-]{1,12}", 1..=3).prop_map(|kids| {
        kids.into_iter()
            .enumerate()
            .map(|(i, kid)| PublicKey {
                kid,
                algorithm: if i % 2 == 0 { Algorithm::RS256 } else { Algorithm::ES256 },
                public_key: if i % 2 == 0 { RSA } else { EC }.to_owned(),
            })
            .collect::<Vec<_>>()
    });
    (prop::option::of(keys), prop::collection::vec("[a-z-]{1,10}", 0..3), "[a-z_]{1,10}").prop_map(
        |(keys, audiences, tenant_claim)| Auth {
            issuer: "https://id.freshfoodz.de/realms/acme".to_owned(),
            audiences: audiences.into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
            tenant_claim,
            jwks_uri: keys.is_none().then(|| "https://id.freshfoodz.de/realms/acme/certs".to_owned()),
            keys,
        },
    )
}

fn rate_limit(authenticated: bool, targets: Vec<Target>) -> impl Strategy<Value = RateLimit> {
    let limit_by = if authenticated {
        prop::sample::select(vec![LimitBy::Consumer, LimitBy::Header]).boxed()
    } else {
        Just(LimitBy::Header).boxed()
    };
    let routes = prop::collection::vec(
        (limits(), prop::sample::subsequence(targets.clone(), 1..=targets.len().min(4))),
        0..3,
    )
    .prop_map(|routes| {
        // A target belongs to one route limit at most: later routes lose targets already taken.
        let mut taken: Vec<Target> = Vec::new();
        routes
            .into_iter()
            .enumerate()
            .filter_map(|(i, (limits, targets))| {
                let targets: Vec<Target> = targets.into_iter().filter(|t| !taken.contains(t)).collect();
                taken.extend(targets.iter().cloned());
                (!targets.is_empty()).then(|| RouteLimit { name: format!("route-{i}"), targets, limits })
            })
            .collect::<Vec<_>>()
    });
    (limits(), limit_by, prop::option::of("[A-Za-z0-9_-]{1,20}"), any::<bool>(), any::<bool>(), routes)
        .prop_map(|(limits, limit_by, header, redis, password, routes)| RateLimit {
            limits,
            limit_by,
            header: header.filter(|_| limit_by == LimitBy::Header),
            policy: if redis { CounterPolicy::Redis } else { CounterPolicy::Local },
            redis: redis.then(|| Redis {
                host: "redis.crm.svc".to_owned(),
                port: 6379,
                database: 1,
                ssl: password,
                password_secret_ref: password
                    .then(|| SecretKeyRef { name: "kong-redis".to_owned(), key: "password".to_owned() }),
            }),
            routes,
        })
}

fn cors() -> impl Strategy<Value = Cors> {
    (
        prop::collection::btree_set(
            prop::sample::select(vec!["https://a.example", "http://b.example:8080", "*"]),
            1..=3,
        ),
        prop::sample::subsequence(vec![Method::Get, Method::Post, Method::Patch, Method::Options], 0..=4),
        any::<bool>(),
        prop::option::of(0i32..=86400),
    )
        .prop_map(|(origins, methods, credentials, max_age)| Cors {
            credentials: credentials && !origins.contains("*"),
            origins: origins.into_iter().map(str::to_owned).collect(),
            methods,
            headers: vec!["Idempotency-Key".to_owned()],
            exposed_headers: vec!["ETag".to_owned()],
            max_age,
        })
}

pub(super) fn size() -> impl Strategy<Value = String> {
    (1u32..=999_999_999, prop::sample::select(vec!["", "Ki", "Mi"]))
        .prop_map(|(n, unit)| format!("{n}{unit}"))
}

pub(super) fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<[u8; 4]>(), prop::option::of(0u8..=32)).prop_map(|(ip, bits)| {
            let ip = std::net::Ipv4Addr::from(ip);
            bits.map_or(ip.to_string(), |b| format!("{ip}/{b}"))
        }),
        (any::<[u16; 8]>(), prop::option::of(0u8..=128)).prop_map(|(ip, bits)| {
            let ip = std::net::Ipv6Addr::from(ip);
            bits.map_or(ip.to_string(), |b| format!("{ip}/{b}"))
        }),
    ]
}

/// A spec the API server admits, with every part present or not.
pub(super) fn spec() -> impl Strategy<Value = TenantPolicySpec> {
    (targets(4), prop::option::of(auth()), any::<bool>())
        .prop_flat_map(|(targets, auth, limited)| {
            let rate_limit = if limited {
                rate_limit(auth.is_some(), targets.clone()).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            };
            (
                Just(targets),
                Just(auth),
                rate_limit,
                prop::option::of(cors()),
                prop::option::of((
                    any::<bool>(),
                    prop::sample::select(vec![Generator::Uuid, Generator::UuidCounter, Generator::Tracker]),
                )),
                prop::option::of(size()),
                prop::option::of(prop::collection::btree_set(address(), 1..4)),
                prop::option::of((any::<bool>(), any::<bool>())),
                prop::option::of(prop::option::of("[a-z]{1,8}")),
            )
        })
        .prop_map(|(targets, auth, rate_limit, cors, correlation, size, allowlist, headers, settings_org)| {
            TenantPolicySpec {
                tenant_id: "acme".to_owned(),
                org_id: None,
                targets,
                ingress_class: "kong".to_owned(),
                auth,
                rate_limit,
                cors,
                correlation_id: correlation.map(|(echo_downstream, generator)| CorrelationId {
                    header: "X-Correlation-ID".to_owned(),
                    generator,
                    echo_downstream,
                }),
                request_size_limit: size,
                ip_allowlist: allowlist.map(|set| set.into_iter().collect()),
                headers: headers
                    .map(|(idempotency_key, if_match)| RequiredHeaders { idempotency_key, if_match }),
                settings_ref: settings_org.map(|org| SettingsRef {
                    tenant: None,
                    org,
                    sync_interval: "5m".to_owned(),
                }),
            }
        })
}

/// A policy of `spec` as read from the API server.
pub(super) fn resource(spec: TenantPolicySpec) -> TenantPolicy {
    let mut resource = TenantPolicy::new("acme", spec);
    resource.metadata.namespace = Some("crm".to_owned());
    resource.metadata.uid = Some("6c5a3f5e-1b7a-4c1e-9a53-0d6c2f6b9e11".to_owned());
    resource
}

/// A value for `key`: of its type and valid, of its type but refused (limits that decrease, an
/// address that is none), or not of its type at all.
pub(super) fn value(key: &'static str) -> BoxedStrategy<Value> {
    let valid = match key {
        settings::RATE_LIMIT => limits().prop_map(|l| serde_json::to_value(l).unwrap()).boxed(),
        settings::CORS_ORIGINS => {
            prop::collection::btree_set(prop::sample::select(vec!["https://x.example", "*"]), 1..3)
                .prop_map(|o| json!(o))
                .boxed()
        }
        settings::REQUEST_SIZE_LIMIT => size().prop_map(Value::String).boxed(),
        _ => prop::collection::btree_set(address(), 1..3).prop_map(|a| json!(a)).boxed(),
    };
    let refused = match key {
        settings::RATE_LIMIT => (2i64..1000).prop_map(|n| json!({"second": n, "minute": n - 1})).boxed(),
        settings::CORS_ORIGINS => Just(json!(["ftp://files.example"])).boxed(),
        settings::REQUEST_SIZE_LIMIT => {
            prop::sample::select(vec!["0", "8Gi", "-1", "8 Mi"]).prop_map(|s| json!(s)).boxed()
        }
        _ => {
            prop::sample::select(vec!["10.0.0.0/33", "crm.example", "1.2.3"]).prop_map(|s| json!([s])).boxed()
        }
    };
    let foreign =
        prop_oneof![Just(json!(7)), Just(json!(null)), Just(json!({"limit": 5})), Just(json!(["a", 1]))];
    prop_oneof![3 => valid, 2 => refused, 1 => foreign].boxed()
}

/// Effective settings for tenant acme and `org`, each key present or not, plus now and then a
/// gateway key the operator does not read.
pub(super) fn effective(org: Option<String>) -> impl Strategy<Value = EffectiveSettings> {
    let entries: Vec<BoxedStrategy<Option<(String, Setting)>>> = settings::KEYS
        .into_iter()
        .map(|key| {
            (prop::option::of(value(key)), prop::sample::select(vec!["global", "tenant:acme"]), 1i64..100)
                .prop_map(move |(value, scope, version)| {
                    value.map(|value| (key.to_owned(), Setting { value, scope: scope.to_owned(), version }))
                })
                .boxed()
        })
        .collect();
    (entries, any::<bool>(), 100i64..1000).prop_map(move |(entries, unknown, version)| {
        let mut settings: std::collections::BTreeMap<String, Setting> =
            entries.into_iter().flatten().collect();
        if unknown {
            settings.insert(
                "gateway.timeouts".to_owned(),
                Setting { value: json!({"read": 5}), scope: "global".to_owned(), version: 1 },
            );
        }
        EffectiveSettings { tenant: "acme".to_owned(), org: org.clone(), version, settings }
    })
}
