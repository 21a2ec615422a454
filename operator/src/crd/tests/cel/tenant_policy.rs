//! The CEL rules of TenantPolicy, each against objects it must accept and objects it must reject.

use serde_json::{Value, json};

use super::{Case, merge};

/// A minimal valid TenantPolicy with `fields` merged over its spec.
fn policy(fields: Value) -> Value {
    let mut spec = json!({
        "tenantId": "acme",
        "targets": [ingress("crm-acme")],
    });
    merge(&mut spec, fields);
    json!({
        "apiVersion": "freshplan.io/v1alpha1",
        "kind": "TenantPolicy",
        "metadata": {"name": "acme", "namespace": "crm"},
        "spec": spec,
    })
}

fn ingress(name: &str) -> Value {
    json!({"kind": "Ingress", "name": name})
}

fn auth() -> Value {
    json!({"issuer": "https://id.freshfoodz.de/realms/acme", "keys": [key("acme-2026")]})
}

fn key(kid: &str) -> Value {
    json!({"kid": kid, "algorithm": "RS256", "publicKey": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"})
}

/// A policy with auth and `rate_limit` as its rate limit.
fn limited(rate_limit: Value) -> Value {
    policy(json!({"auth": auth(), "rateLimit": rate_limit}))
}

/// A policy with a route limit per (name, targets), the targets all being the policy's.
fn routes(routes: &[(&str, &[&str])]) -> Value {
    let targets: Vec<Value> = ["crm-acme", "crm-acme-samples", "crm-acme-fields"].map(ingress).into();
    let routes: Vec<Value> = routes
        .iter()
        .map(|(name, targets)| {
            json!({"name": name, "targets": targets.iter().map(|t| ingress(t)).collect::<Vec<_>>(), "limits": {"minute": 30}})
        })
        .collect();
    policy(
        json!({"targets": targets, "auth": auth(), "rateLimit": {"limits": {"minute": 600}, "routes": routes}}),
    )
}

pub(super) fn cases() -> Vec<Case> {
    let tp = "TenantPolicy";
    let mut cases = vec![
        Case {
            kind: tp,
            path: String::new(),
            message: "metadata.name must be at most 63 characters: it labels every object generated for the policy",
            accept: vec![policy(json!({})), {
                let mut long = policy(json!({}));
                long["metadata"]["name"] = json!("a".repeat(63));
                long
            }],
            reject: vec![{
                let mut long = policy(json!({}));
                long["metadata"]["name"] = json!("a".repeat(64));
                long
            }],
        },
        Case {
            kind: tp,
            path: "spec".into(),
            message: "rateLimit.limitBy consumer needs auth: without an authenticated consumer Kong would count per client IP",
            accept: vec![
                limited(json!({"limits": {"minute": 60}})),
                policy(json!({"rateLimit": {"limits": {"minute": 60}, "limitBy": "header"}})),
            ],
            reject: vec![
                policy(json!({"rateLimit": {"limits": {"minute": 60}}})),
                policy(json!({"rateLimit": {"limits": {"minute": 60}, "limitBy": "consumer"}})),
            ],
        },
        Case {
            kind: tp,
            path: "spec.targets".into(),
            message: "targets must be unique",
            accept: vec![policy(
                json!({"targets": [ingress("a"), ingress("b"), {"kind": "Service", "name": "a"}]}),
            )],
            reject: vec![policy(json!({"targets": [ingress("a"), ingress("b"), ingress("a")]}))],
        },
        Case {
            kind: tp,
            path: "spec.ipAllowlist".into(),
            message: "ipAllowlist entries must be IP addresses or CIDR blocks",
            accept: vec![policy(
                json!({"ipAllowlist": ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1"]}),
            )],
            reject: vec![
                policy(json!({"ipAllowlist": ["10.0.0.0/33"]})),
                policy(json!({"ipAllowlist": ["10.0.0.1", "crm.freshfoodz.de"]})),
                policy(json!({"ipAllowlist": ["10.0.0"]})),
            ],
        },
        Case {
            kind: tp,
            path: "spec.auth".into(),
            message: "auth needs exactly one of keys (Kong OSS jwt) and jwksUri (Kong Enterprise openid-connect)",
            accept: vec![
                policy(json!({"auth": auth()})),
                policy(
                    json!({"auth": {"issuer": "https://id.freshfoodz.de/realms/acme", "jwksUri": "https://id.freshfoodz.de/realms/acme/certs"}}),
                ),
            ],
            reject: vec![
                policy(json!({"auth": {"issuer": "https://id.freshfoodz.de/realms/acme"}})),
                policy(
                    json!({"auth": {"issuer": "https://id.freshfoodz.de/realms/acme", "keys": [key("k")], "jwksUri": "https://id.freshfoodz.de/certs"}}),
                ),
            ],
        },
        Case {
            kind: tp,
            path: "spec.auth.keys".into(),
            message: "key ids must be unique",
            accept: vec![policy(
                json!({"auth": {"issuer": "https://id.freshfoodz.de", "keys": [key("2026"), key("2027")]}}),
            )],
            reject: vec![policy(
                json!({"auth": {"issuer": "https://id.freshfoodz.de", "keys": [key("2026"), key("2026")]}}),
            )],
        },
        Case {
            kind: tp,
            path: "spec.rateLimit".into(),
            message: "redis is required with policy redis and read with no other policy",
            accept: vec![
                limited(json!({"limits": {"minute": 60}, "policy": "redis", "redis": {"host": "redis.crm"}})),
                limited(json!({"limits": {"minute": 60}, "policy": "local"})),
            ],
            reject: vec![
                limited(json!({"limits": {"minute": 60}, "policy": "redis"})),
                limited(json!({"limits": {"minute": 60}, "redis": {"host": "redis.crm"}})),
            ],
        },
        Case {
            kind: tp,
            path: "spec.rateLimit".into(),
            message: "header is only read with limitBy header",
            accept: vec![limited(
                json!({"limits": {"minute": 60}, "limitBy": "header", "header": "X-Tenant"}),
            )],
            reject: vec![limited(json!({"limits": {"minute": 60}, "header": "X-Tenant"}))],
        },
        Case {
            kind: tp,
            path: "spec.rateLimit.routes".into(),
            message: "route limit names must be unique",
            accept: vec![routes(&[("writes", &["crm-acme-samples"]), ("fields", &["crm-acme-fields"])])],
            reject: vec![routes(&[("writes", &["crm-acme-samples"]), ("writes", &["crm-acme-fields"])])],
        },
        Case {
            kind: tp,
            path: "spec.rateLimit.routes".into(),
            message: "a target may be named by one route limit only",
            accept: vec![routes(&[("writes", &["crm-acme-samples", "crm-acme-fields"])])],
            reject: vec![routes(&[
                ("writes", &["crm-acme-samples"]),
                ("fields", &["crm-acme-fields", "crm-acme-samples"]),
            ])],
        },
        Case {
            kind: tp,
            path: "spec.rateLimit.routes[].targets".into(),
            message: "targets must be unique",
            accept: vec![routes(&[("writes", &["crm-acme-samples", "crm-acme-fields"])])],
            reject: vec![routes(&[("writes", &["crm-acme-samples", "crm-acme-samples"])])],
        },
        Case {
            kind: tp,
            path: "spec.cors".into(),
            message: "credentials cannot be allowed for origin *: browsers refuse it",
            accept: vec![
                policy(json!({"cors": {"origins": ["https://cockpit.freshfoodz.de"], "credentials": true}})),
                policy(json!({"cors": {"origins": ["*"]}})),
            ],
            reject: vec![policy(
                json!({"cors": {"origins": ["https://cockpit.freshfoodz.de", "*"], "credentials": true}}),
            )],
        },
        Case {
            kind: tp,
            path: "spec.settingsRef.syncInterval".into(),
            message: "syncInterval must be between 1m and 24h",
            accept: ["1m", "5m", "1h30m", "24h"]
                .map(|i| policy(json!({"settingsRef": {"syncInterval": i}})))
                .into(),
            reject: ["0m", "0h", "25h", "1441m"]
                .map(|i| policy(json!({"settingsRef": {"syncInterval": i}})))
                .into(),
        },
    ];

    // The two rules of limits, where the policy's limits and a route's are.
    type Place = fn(Value) -> Value;
    let places: [(&str, Place); 2] = [
        ("spec.rateLimit.limits", |limits| limited(json!({"limits": limits}))),
        ("spec.rateLimit.routes[].limits", |limits| {
            let mut object = routes(&[("writes", &["crm-acme-samples"])]);
            object["spec"]["rateLimit"]["routes"][0]["limits"] = limits;
            object
        }),
    ];
    for (path, at) in places {
        cases.push(Case {
            kind: tp,
            path: path.into(),
            message: "limits must set at least one of second, minute, hour, day",
            accept: vec![at(json!({"day": 100000})), at(json!({"second": 5}))],
            reject: vec![at(json!({}))],
        });
        cases.push(Case {
            kind: tp,
            path: path.into(),
            message: "limits must not decrease with the period: second <= minute <= hour <= day",
            accept: vec![
                at(json!({"second": 10, "minute": 600, "hour": 20000, "day": 100000})),
                at(json!({"second": 10, "day": 10})),
                at(json!({"minute": 60, "hour": 60})),
            ],
            reject: vec![
                at(json!({"second": 10, "minute": 9})),
                at(json!({"second": 100, "day": 99})),
                at(json!({"minute": 600, "hour": 20000, "day": 10000})),
                at(json!({"second": 1, "minute": 60, "hour": 59})),
            ],
        });
    }
    cases
}
