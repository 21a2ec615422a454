//! What a policy asks of Kong, whatever installs it: one consumer for the tenant with its
//! public keys, and plugins, each with its Kong configuration and the targets it runs on. Kong
//! Ingress Controller objects ([`super::kic`]) and decK files ([`super::deck`]) are both written
//! from this one model.
//!
//! Every plugin runs on the policy's targets, which belong to the tenant; only the rate limit
//! differs per target where `rateLimit.routes` names it. Which plugin runs first is Kong's
//! business (plugin priorities: pre-function, ip-restriction, cors, jwt, rate-limiting, ...), not
//! the order here.

use serde_json::{Map, Value, json};

use super::headers::{self, Requirements};
use super::policy::Policy;
use crate::crd::tenant_policy::{
    Algorithm, Auth, Cors, CounterPolicy, LimitBy, Limits, RateLimit, SecretKeyRef, Target,
};

/// The header `rateLimit.limitBy: header` counts when the policy names none.
pub const DEFAULT_TENANT_HEADER: &str = "X-Tenant-ID";

/// Everything Kong needs for one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub consumer: Consumer,
    pub plugins: Vec<Plugin>,
}

/// The tenant as a Kong consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    /// Username and custom id (`acme`, `acme:munich`).
    pub username: String,
    /// One `jwt` credential per public key; empty without `auth.keys`.
    pub credentials: Vec<Credential>,
}

/// A public key as a Kong `jwt` credential: tokens whose `kid` is `kid` are checked with it and
/// belong to the consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// Names the credential's object: stable while the key stays, whatever else changes.
    pub id: String,
    pub kid: String,
    pub algorithm: Algorithm,
    pub public_key: String,
}

/// One Kong plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    /// Unique in the policy: `jwt`, `rate-limiting`, `rate-limiting-sample-writes`.
    pub id: String,
    /// Kong's plugin name.
    pub plugin: &'static str,
    /// Kong's `config` of the plugin.
    pub config: Value,
    /// Where it runs.
    pub targets: Vec<Target>,
    /// A plugin only Kong Enterprise has (`openid-connect`).
    pub enterprise: bool,
    /// Values that come from Secrets instead of `config` (the Redis password).
    pub secret_values: Vec<SecretValue>,
}

/// A `config` value kept in a Secret: `path` is its JSON pointer in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretValue {
    pub path: &'static str,
    pub secret: SecretKeyRef,
}

/// The model of `policy`.
pub fn gateway(policy: &Policy) -> Gateway {
    let spec = &policy.spec;
    let everywhere = policy.targets();
    let mut plugins = Vec::new();
    let mut add = |id: &str, plugin: &'static str, config: Value, targets: Vec<Target>| {
        plugins.push(Plugin {
            id: id.to_owned(),
            plugin,
            config,
            targets,
            enterprise: false,
            secret_values: Vec::new(),
        });
    };

    let required = Requirements {
        idempotency_key: spec.headers.is_some_and(|h| h.idempotency_key),
        if_match: spec.headers.is_some_and(|h| h.if_match),
        tenant_header: spec.rate_limit.as_ref().and_then(tenant_header),
    };
    if let Some(lua) = headers::access_lua(&required) {
        add("pre-function", "pre-function", json!({ "access": [lua] }), everywhere.clone());
    }
    if let Some(allow) = &spec.ip_allowlist {
        let config = json!({
            "allow": allow,
            "status": 403,
            "message": "Your address may not call this tenant's API",
        });
        add("ip-restriction", "ip-restriction", config, everywhere.clone());
    }
    if let Some(cors) = &spec.cors {
        add("cors", "cors", cors_config(cors), everywhere.clone());
    }
    if let Some(correlation) = &spec.correlation_id {
        let config = json!({
            "header_name": correlation.header,
            "generator": correlation.generator.as_str(),
            "echo_downstream": correlation.echo_downstream,
        });
        add("correlation-id", "correlation-id", config, everywhere.clone());
    }
    if let Some(size) = spec.request_size_limit.as_deref().and_then(size_limit) {
        let (allowed, unit) = size;
        let config = json!({
            "allowed_payload_size": allowed,
            "size_unit": unit,
            "require_content_length": false,
        });
        add("request-size-limiting", "request-size-limiting", config, everywhere.clone());
    }
    if let Some(auth) = &spec.auth {
        match &auth.jwks_uri {
            None => add("jwt", "jwt", jwt_config(), everywhere.clone()),
            Some(jwks_uri) => plugins.push(Plugin {
                id: "openid-connect".to_owned(),
                plugin: "openid-connect",
                config: openid_connect_config(auth, jwks_uri),
                targets: everywhere.clone(),
                enterprise: true,
                secret_values: Vec::new(),
            }),
        }
    }
    if let Some(rate_limit) = &spec.rate_limit {
        let overridden: Vec<&Target> = rate_limit.routes.iter().flat_map(|r| &r.targets).collect();
        let rest: Vec<Target> = everywhere.iter().filter(|t| !overridden.contains(t)).cloned().collect();
        let limited = |id: String, limits: &Limits, targets: Vec<Target>| Plugin {
            id,
            plugin: "rate-limiting",
            config: rate_limit_config(rate_limit, limits),
            targets,
            enterprise: false,
            secret_values: redis_password(rate_limit),
        };
        if !rest.is_empty() {
            plugins.push(limited("rate-limiting".to_owned(), &rate_limit.limits, rest));
        }
        for route in &rate_limit.routes {
            plugins.push(limited(
                format!("rate-limiting-{}", route.name),
                &route.limits,
                route.targets.clone(),
            ));
        }
    }

    let credentials = spec
        .auth
        .iter()
        .flat_map(|auth| auth.keys.iter().flatten())
        .map(|key| Credential {
            id: format!("jwt-{:08x}", crate::hash::fnv1a(key.kid.as_bytes()) as u32),
            kid: key.kid.clone(),
            algorithm: key.algorithm,
            public_key: key.public_key.trim().to_owned(),
        })
        .collect();
    Gateway { consumer: Consumer { username: policy.username(), credentials }, plugins }
}

/// The plugin ids that run on `target`, in model order.
impl Gateway {
    pub fn plugins_on(&self, target: &Target) -> Vec<&Plugin> {
        self.plugins.iter().filter(|p| p.targets.contains(target)).collect()
    }
}

/// The header a rate limit counts, when it counts one.
fn tenant_header(rate_limit: &RateLimit) -> Option<String> {
    (rate_limit.limit_by == LimitBy::Header)
        .then(|| rate_limit.header.clone().unwrap_or_else(|| DEFAULT_TENANT_HEADER.to_owned()))
}

/// Kong OSS `jwt`: the token's `kid` (header or claim) picks the credential, and so the tenant;
/// the signature and `exp` are checked. Tokens are read from the Authorization header only: query
/// strings and cookies end up in logs and browsers. CORS preflights carry no token and pass.
fn jwt_config() -> Value {
    json!({
        "key_claim_name": "kid",
        "claims_to_verify": ["exp"],
        "header_names": ["authorization"],
        "uri_param_names": [],
        "cookie_names": [],
        "secret_is_base64": false,
        "run_on_preflight": false,
        "maximum_expiration": 0,
    })
}

/// Kong Enterprise `openid-connect`: bearer tokens checked against the issuer's keys and the
/// audiences, the tenant claim mapped to the consumer whose custom id it names.
fn openid_connect_config(auth: &Auth, jwks_uri: &str) -> Value {
    let mut config = json!({
        "issuer": auth.issuer,
        "extra_jwks_uris": [jwks_uri],
        "auth_methods": ["bearer"],
        "consumer_claim": [auth.tenant_claim],
        "consumer_by": ["custom_id"],
        "run_on_preflight": false,
    });
    if !auth.audiences.is_empty() {
        config["audience_required"] = json!(auth.audiences);
    }
    config
}

fn cors_config(cors: &Cors) -> Value {
    let mut config = Map::new();
    config.insert("origins".into(), json!(cors.origins));
    if !cors.methods.is_empty() {
        config.insert("methods".into(), json!(cors.methods));
    }
    if !cors.headers.is_empty() {
        config.insert("headers".into(), json!(cors.headers));
    }
    if !cors.exposed_headers.is_empty() {
        config.insert("exposed_headers".into(), json!(cors.exposed_headers));
    }
    config.insert("credentials".into(), json!(cors.credentials));
    if let Some(max_age) = cors.max_age {
        config.insert("max_age".into(), json!(max_age));
    }
    config.insert("preflight_continue".into(), json!(false));
    Value::Object(config)
}

fn rate_limit_config(rate_limit: &RateLimit, limits: &Limits) -> Value {
    let mut config = Map::new();
    for (period, limit) in limits.periods() {
        config.insert(period.into(), json!(limit));
    }
    match tenant_header(rate_limit) {
        Some(header) => {
            config.insert("limit_by".into(), json!("header"));
            config.insert("header_name".into(), json!(header));
        }
        None => {
            config.insert("limit_by".into(), json!("consumer"));
        }
    }
    match (&rate_limit.policy, &rate_limit.redis) {
        (CounterPolicy::Redis, Some(redis)) => {
            config.insert("policy".into(), json!("redis"));
            config.insert(
                "redis".into(),
                json!({
                    "host": redis.host,
                    "port": redis.port,
                    "database": redis.database,
                    "ssl": redis.ssl,
                    "ssl_verify": redis.ssl,
                    "timeout": 2000,
                }),
            );
        }
        _ => {
            config.insert("policy".into(), json!("local"));
        }
    }
    // A Redis outage lets requests through rather than failing every call of the tenant.
    config.insert("fault_tolerant".into(), json!(true));
    config.insert("hide_client_headers".into(), json!(false));
    config.insert("error_code".into(), json!(429));
    config.insert("error_message".into(), json!("API rate limit exceeded"));
    Value::Object(config)
}

fn redis_password(rate_limit: &RateLimit) -> Vec<SecretValue> {
    let secret = rate_limit.redis.as_ref().and_then(|r| r.password_secret_ref.clone());
    secret.map(|secret| SecretValue { path: "/redis/password", secret }).into_iter().collect()
}

/// A size of the CRD's form (`8Mi`, `512Ki`, `1048576`) as Kong's payload size and unit; Kong's
/// kilobytes and megabytes are 2^10 and 2^20 bytes, as `Ki` and `Mi` are.
pub fn size_limit(size: &str) -> Option<(u64, &'static str)> {
    let (digits, unit) = match size.strip_suffix("Mi") {
        Some(digits) => (digits, "megabytes"),
        None => match size.strip_suffix("Ki") {
            Some(digits) => (digits, "kilobytes"),
            None => (size, "bytes"),
        },
    };
    digits.parse().ok().filter(|n| *n > 0).map(|n| (n, unit))
}
