//! The CRM's settings over a policy: which keys win, what happens to values that would make an
//! invalid policy, and that no settings whatever can make a plugin Kong refuses.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::strategies::{effective, resource, spec};
use super::{example, kic_violations};
use crate::crd::tenant_policy::TenantPolicySpec;
use crate::gateway::kic;
use crate::gateway::plugins::gateway;
use crate::gateway::policy::Policy;
use crate::gateway::settings::{self, EffectiveSettings, Overlaid, Setting, overlay};

fn settings(tenant: &str, org: Option<&str>, entries: &[(&str, Value, &str)]) -> EffectiveSettings {
    EffectiveSettings {
        tenant: tenant.to_owned(),
        org: org.map(str::to_owned),
        version: 42,
        settings: entries
            .iter()
            .map(|(key, value, scope)| {
                ((*key).to_owned(), Setting { value: value.clone(), scope: (*scope).to_owned(), version: 3 })
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn acme() -> Policy {
    Policy::admit(&example("acme")).unwrap()
}

fn rejected_keys(overlaid: &Overlaid) -> Vec<&str> {
    overlaid.rejected.iter().map(|r| r.key.as_str()).collect()
}

#[test]
fn each_key_replaces_what_it_names_and_nothing_else() {
    let policy = acme();
    let overlaid = overlay(
        &policy,
        &settings(
            "acme",
            None,
            &[
                (settings::RATE_LIMIT, json!({"minute": 900}), "tenant:acme"),
                (
                    settings::CORS_ORIGINS,
                    json!(["https://cockpit.acme.de", "https://shop.acme.de"]),
                    "global",
                ),
                (settings::REQUEST_SIZE_LIMIT, json!("16Mi"), "global"),
                (settings::IP_ALLOWLIST, json!(["10.0.0.0/8"]), "tenant:acme"),
                ("crm.cockpit.refresh", json!(30), "global"),
            ],
        ),
    );
    assert_eq!(overlaid.version, Some(42));
    assert_eq!(overlaid.applied, settings::KEYS);
    assert_eq!(overlaid.rejected, []);
    let (before, after) = (&policy.spec, &overlaid.policy.spec);
    let (limit_before, limit_after) =
        (before.rate_limit.as_ref().unwrap(), after.rate_limit.as_ref().unwrap());
    // The limits are the setting's, whole: no second or hour left over from the spec.
    assert_eq!(
        (limit_after.limits.second, limit_after.limits.minute, limit_after.limits.hour),
        (None, Some(900), None)
    );
    assert_eq!(
        (&limit_after.routes, limit_after.policy, &limit_after.redis),
        (&limit_before.routes, limit_before.policy, &limit_before.redis)
    );
    let (cors_before, cors_after) = (before.cors.as_ref().unwrap(), after.cors.as_ref().unwrap());
    assert_eq!(cors_after.origins, ["https://cockpit.acme.de", "https://shop.acme.de"]);
    assert_eq!(
        (cors_after.credentials, &cors_after.exposed_headers),
        (cors_before.credentials, &cors_before.exposed_headers)
    );
    assert_eq!(after.request_size_limit.as_deref(), Some("16Mi"));
    assert_eq!(after.ip_allowlist.as_deref(), Some(&["10.0.0.0/8".to_owned()][..]));
    assert_eq!(
        TenantPolicySpec {
            rate_limit: None,
            cors: None,
            request_size_limit: None,
            ip_allowlist: None,
            ..after.clone()
        },
        TenantPolicySpec {
            rate_limit: None,
            cors: None,
            request_size_limit: None,
            ip_allowlist: None,
            ..before.clone()
        }
    );
}

#[test]
fn a_value_that_would_make_a_refused_policy_is_reported_and_the_spec_value_stays() {
    let policy = acme();
    let overlaid = overlay(
        &policy,
        &settings(
            "acme",
            None,
            &[
                (settings::RATE_LIMIT, json!({"second": 50, "minute": 40}), "tenant:acme"),
                (settings::CORS_ORIGINS, json!(["*"]), "global"),
                (settings::REQUEST_SIZE_LIMIT, json!(16), "global"),
                (settings::IP_ALLOWLIST, json!(["10.0.0.0/8", "not-an-address"]), "tenant:acme"),
                ("gateway.timeouts", json!({"read": 5}), "global"),
            ],
        ),
    );
    assert_eq!(overlaid.applied, Vec::<String>::new());
    assert_eq!(overlaid.policy, policy);
    let reasons: BTreeMap<&str, &str> =
        overlaid.rejected.iter().map(|r| (r.key.as_str(), r.reason.as_str())).collect();
    assert!(reasons["gateway.rateLimit"].contains("limits must not decrease"), "{reasons:#?}");
    // acme allows credentials, which browsers refuse for any origin.
    assert!(
        reasons["gateway.cors.origins"].contains("credentials cannot be allowed for origin *"),
        "{reasons:#?}"
    );
    assert!(reasons["gateway.requestSizeLimit"].contains("not of the key's type"), "{reasons:#?}");
    assert!(reasons["gateway.ipAllowlist"].contains("must be IP addresses or CIDR blocks"), "{reasons:#?}");
    assert!(reasons["gateway.timeouts"].contains("not a gateway key this operator reads"), "{reasons:#?}");
    assert_eq!(
        overlaid.rejected.iter().find(|r| r.key == "gateway.ipAllowlist").unwrap().scope,
        "tenant:acme"
    );
}

#[test]
fn a_setting_for_what_the_spec_lacks_turns_it_on_when_the_policy_allows() {
    // bergblick has no CORS and no settingsRef; give it one.
    let mut resource = example("bergblick");
    resource.spec.settings_ref = Some(serde_json::from_value(json!({})).unwrap());
    let policy = Policy::admit(&resource).unwrap();
    let overlaid = overlay(
        &policy,
        &settings("bergblick", None, &[(settings::CORS_ORIGINS, json!(["https://b.example"]), "global")]),
    );
    let cors = overlaid.policy.spec.cors.as_ref().unwrap();
    assert_eq!((cors.origins.as_slice(), cors.credentials), (&["https://b.example".to_owned()][..], false));

    // Limits for a policy without rate limiting and without auth would count by consumer, which
    // needs auth: refused, and the policy stays without limits.
    let mut resource = example("bergblick");
    resource.spec.rate_limit = None;
    resource.spec.settings_ref = Some(serde_json::from_value(json!({})).unwrap());
    let policy = Policy::admit(&resource).unwrap();
    let overlaid = overlay(
        &policy,
        &settings("bergblick", None, &[(settings::RATE_LIMIT, json!({"minute": 5}), "global")]),
    );
    assert_eq!(rejected_keys(&overlaid), ["gateway.rateLimit"]);
    assert!(overlaid.rejected[0].reason.contains("limitBy consumer needs auth"), "{:?}", overlaid.rejected);
    assert_eq!(overlaid.policy.spec.rate_limit, None);
}

#[test]
fn settings_of_another_tenant_or_org_or_for_a_policy_without_settings_ref_change_nothing() {
    let policy = acme();
    let limits = [(settings::RATE_LIMIT, json!({"minute": 900}), "tenant:acme")];
    for other in [settings("bergblick", None, &limits), settings("acme", Some("munich"), &limits)] {
        let overlaid = overlay(&policy, &other);
        assert_eq!(overlaid.policy, policy);
        assert_eq!(rejected_keys(&overlaid), ["gateway.rateLimit"]);
        assert!(
            overlaid.rejected[0].reason.contains("the policy reads tenant acme"),
            "{:?}",
            overlaid.rejected
        );
    }
    let without = Policy::admit(&example("bergblick")).unwrap();
    assert_eq!(overlay(&without, &settings("bergblick", None, &limits)), Overlaid::unchanged(&without));

    // settingsRef names the registry's tenant and org, defaulting to the policy's own.
    let kaiserhof = Policy::admit(&example("kaiserhof-munich")).unwrap();
    let overlaid = overlay(
        &kaiserhof,
        &settings(
            "kaiserhof",
            Some("munich"),
            &[(settings::RATE_LIMIT, json!({"minute": 900}), "org:kaiserhof:munich")],
        ),
    );
    assert_eq!(overlaid.applied, ["gateway.rateLimit"]);
}

#[test]
fn changes_name_each_key_whose_value_in_force_moved() {
    let policy = acme();
    let overlaid = overlay(
        &policy,
        &settings(
            "acme",
            None,
            &[
                (settings::RATE_LIMIT, json!({"minute": 900}), "tenant:acme"),
                (settings::IP_ALLOWLIST, json!(["10.0.0.0/8"]), "tenant:acme"),
                (settings::REQUEST_SIZE_LIMIT, json!("8Mi"), "global"),
            ],
        ),
    );
    assert_eq!(
        settings::changes(&policy.spec, &overlaid.policy.spec),
        [
            r#"gateway.rateLimit: {"hour":20000,"minute":600,"second":20} -> {"minute":900}"#,
            r#"gateway.ipAllowlist: none -> ["10.0.0.0/8"]"#,
        ]
    );
    assert_eq!(settings::changes(&policy.spec, &policy.spec), Vec::<String>::new());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the registry holds: the policy in force is one the API server admits, every
    /// plugin is one Kong accepts, each key is either applied (its value in force) or rejected
    /// (the spec's value in force), and the operator reports every gateway key it saw.
    #[test]
    fn no_settings_can_make_a_plugin_kong_refuses(
        (spec, settings) in spec().prop_flat_map(|spec| {
            let org = spec.settings_ref.as_ref().and_then(|r| r.org.clone());
            (Just(spec), effective(org))
        })
    ) {
        let policy = Policy::admit(&resource(spec)).map_err(|found| TestCaseError::fail(format!("{found:?}")))?;
        let overlaid = overlay(&policy, &settings);
        let readmitted = Policy::admit(&resource(overlaid.policy.spec.clone()));
        prop_assert_eq!(readmitted.as_ref(), Ok(&overlaid.policy));
        for document in kic::render(&overlaid.policy, &gateway(&overlaid.policy)).documents().unwrap() {
            prop_assert_eq!(kic_violations(&document), Vec::<String>::new(), "{:#}", document);
        }
        if policy.spec.settings_ref.is_none() {
            prop_assert_eq!(overlaid, Overlaid::unchanged(&policy));
            return Ok(());
        }
        let gateway_keys = settings.settings.keys().filter(|k| k.starts_with("gateway.")).count();
        prop_assert_eq!(overlaid.applied.len() + overlaid.rejected.len(), gateway_keys);
        let (before, after) = (&policy.spec, &overlaid.policy.spec);
        for key in settings::KEYS {
            let Some(setting) = settings.settings.get(key) else { continue };
            let applied = overlaid.applied.iter().any(|k| k == key);
            let (was, is) = match key {
                settings::RATE_LIMIT => (
                    before.rate_limit.as_ref().map(|r| serde_json::to_value(r.limits).unwrap()),
                    after.rate_limit.as_ref().map(|r| serde_json::to_value(r.limits).unwrap()),
                ),
                settings::CORS_ORIGINS => (before.cors.as_ref().map(|c| json!(c.origins)), after.cors.as_ref().map(|c| json!(c.origins))),
                settings::REQUEST_SIZE_LIMIT => (before.request_size_limit.as_ref().map(|s| json!(s)), after.request_size_limit.as_ref().map(|s| json!(s))),
                _ => (before.ip_allowlist.as_ref().map(|a| json!(a)), after.ip_allowlist.as_ref().map(|a| json!(a))),
            };
            if applied {
                prop_assert_eq!(is, Some(setting.value.clone()), "{} applied", key);
            } else {
                prop_assert_eq!(is, was, "{} rejected", key);
            }
        }
    }
}
