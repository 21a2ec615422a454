//! The CRM settings registry's effective settings for a tenant (and org), and how they overlay a
//! policy's spec.
//!
//! | key | replaces in the spec | when the spec has none of it |
//! | --- | --- | --- |
//! | `gateway.rateLimit` | `rateLimit.limits` | rate limits by consumer, local counters |
//! | `gateway.cors.origins` | `cors.origins` | CORS for those origins, without credentials |
//! | `gateway.requestSizeLimit` | `requestSizeLimit` | |
//! | `gateway.ipAllowlist` | `ipAllowlist` | |
//!
//! A setting wins over the spec for what it names and nothing else: `rateLimit.routes`,
//! `limitBy` and the counter policy stay as the spec says. Each key is tried on its own, in the
//! order above, and kept only when the policy with it is one the API server would admit; a value
//! that would not be (limits that decrease, a setting for limits by consumer on a policy without
//! auth, an address that is none) is reported and the spec's value stays. So no setting can make
//! a plugin Kong would refuse, whatever the registry holds.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::policy::Policy;
use crate::crd::tenant_policy::{Cors, Limits, RateLimit, TenantPolicySpec};

/// The registry's answer to `GET /settings/effective?tenant=..&org=..`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectiveSettings {
    pub tenant: String,
    pub org: Option<String>,
    /// Grows with every change that could alter the answer.
    pub version: i64,
    /// Every key that has a value in the tenant's chain of scopes, with the value that wins.
    pub settings: BTreeMap<String, Setting>,
}

/// The value of one key and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    pub value: Value,
    /// `global`, `tenant:acme` or `org:acme:munich`.
    pub scope: String,
    pub version: i64,
}

pub const RATE_LIMIT: &str = "gateway.rateLimit";
pub const CORS_ORIGINS: &str = "gateway.cors.origins";
pub const REQUEST_SIZE_LIMIT: &str = "gateway.requestSizeLimit";
pub const IP_ALLOWLIST: &str = "gateway.ipAllowlist";

/// The keys this operator reads, in the order they are tried.
pub const KEYS: [&str; 4] = [RATE_LIMIT, CORS_ORIGINS, REQUEST_SIZE_LIMIT, IP_ALLOWLIST];

/// A policy with the settings that could be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlaid {
    /// The policy in force: the spec with the applied settings.
    pub policy: Policy,
    /// The effective-settings version this was made from; None: no settings were read.
    pub version: Option<i64>,
    /// The keys whose values are in force, in [`KEYS`] order.
    pub applied: Vec<String>,
    /// The keys that were not applied, with why.
    pub rejected: Vec<Rejected>,
}

impl Overlaid {
    /// `policy` as it is, without settings.
    pub fn unchanged(policy: &Policy) -> Overlaid {
        Overlaid { policy: policy.clone(), version: None, applied: Vec::new(), rejected: Vec::new() }
    }
}

/// A setting that was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub key: String,
    /// Where its value came from (`tenant:acme`).
    pub scope: String,
    pub reason: String,
}

/// `policy` with `settings` overlaid, as the table in this module's documentation says. A policy
/// without `settingsRef` is returned as it is, and so is one whose settings were read for another
/// tenant or org than it names (every key rejected).
pub fn overlay(policy: &Policy, settings: &EffectiveSettings) -> Overlaid {
    let Some((tenant, org)) = policy.spec.settings_scope() else {
        return Overlaid::unchanged(policy);
    };
    let mut overlaid = Overlaid { version: Some(settings.version), ..Overlaid::unchanged(policy) };
    if settings.tenant != tenant || settings.org.as_deref() != org {
        let asked = org.map_or(format!("tenant {tenant}"), |o| format!("tenant {tenant}, org {o}"));
        for (key, setting) in &settings.settings {
            overlaid.rejected.push(Rejected {
                key: key.clone(),
                scope: setting.scope.clone(),
                reason: format!(
                    "the settings are for tenant {}{}, the policy reads {asked}",
                    settings.tenant,
                    settings.org.as_deref().map(|o| format!(", org {o}")).unwrap_or_default()
                ),
            });
        }
        return overlaid;
    }
    for (key, setting) in &settings.settings {
        if key.starts_with("gateway.") && !KEYS.contains(&key.as_str()) {
            overlaid.rejected.push(Rejected {
                key: key.clone(),
                scope: setting.scope.clone(),
                reason: format!("not a gateway key this operator reads (it reads {})", KEYS.join(", ")),
            });
        }
    }
    for key in KEYS {
        let Some(setting) = settings.settings.get(key) else { continue };
        let candidate = apply(&overlaid.policy.spec, key, &setting.value)
            .and_then(|spec| overlaid.policy.with_spec(spec).map_err(|found| join(&found)));
        match candidate {
            Ok(policy) => {
                overlaid.policy = policy;
                overlaid.applied.push(key.to_owned());
            }
            Err(reason) => {
                overlaid.rejected.push(Rejected { key: key.to_owned(), scope: setting.scope.clone(), reason })
            }
        }
    }
    overlaid
}

/// `spec` with the setting `key` = `value`, or why the value is not of the key's type.
fn apply(spec: &TenantPolicySpec, key: &str, value: &Value) -> Result<TenantPolicySpec, String> {
    let mut spec = spec.clone();
    match key {
        RATE_LIMIT => {
            let limits: Limits = parse(value)?;
            match &mut spec.rate_limit {
                Some(rate_limit) => rate_limit.limits = limits,
                None => {
                    spec.rate_limit = Some(RateLimit {
                        limits,
                        limit_by: Default::default(),
                        header: None,
                        policy: Default::default(),
                        redis: None,
                        routes: Vec::new(),
                    })
                }
            }
        }
        CORS_ORIGINS => {
            let origins: Vec<String> = parse(value)?;
            match &mut spec.cors {
                Some(cors) => cors.origins = origins,
                None => {
                    spec.cors = Some(Cors {
                        origins,
                        methods: Vec::new(),
                        headers: Vec::new(),
                        exposed_headers: Vec::new(),
                        credentials: false,
                        max_age: None,
                    })
                }
            }
        }
        REQUEST_SIZE_LIMIT => spec.request_size_limit = Some(parse(value)?),
        IP_ALLOWLIST => spec.ip_allowlist = Some(parse(value)?),
        _ => return Err(format!("{key} is not a key this operator reads")),
    }
    Ok(spec)
}

/// What the settings keys changed between two specs of one policy, one line per key whose value
/// in force differs: `gateway.rateLimit: {"minute":600} -> {"minute":900}` (`none` where the spec
/// has no such part).
pub fn changes(before: &TenantPolicySpec, after: &TenantPolicySpec) -> Vec<String> {
    let in_force = |spec: &TenantPolicySpec, key: &str| -> Option<Value> {
        match key {
            RATE_LIMIT => {
                spec.rate_limit.as_ref().map(|r| serde_json::to_value(r.limits).unwrap_or_default())
            }
            CORS_ORIGINS => spec.cors.as_ref().map(|c| Value::from(c.origins.clone())),
            REQUEST_SIZE_LIMIT => spec.request_size_limit.clone().map(Value::from),
            _ => spec.ip_allowlist.clone().map(Value::from),
        }
    };
    let show = |value: Option<Value>| value.map_or("none".to_owned(), |v| v.to_string());
    KEYS.iter()
        .filter_map(|key| {
            let (was, is) = (in_force(before, key), in_force(after, key));
            (was != is).then(|| format!("{key}: {} -> {}", show(was), show(is)))
        })
        .collect()
}

fn parse<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string().as_str() {
        "." => format!("the value is not of the key's type: {}", e.inner()),
        path => format!("the value is not of the key's type: {path}: {}", e.inner()),
    })
}

fn join(found: &[crate::validate::Invalid]) -> String {
    let reasons: Vec<String> = found.iter().map(ToString::to_string).collect();
    format!("the policy with it would be refused: {}", reasons.join("; "))
}
