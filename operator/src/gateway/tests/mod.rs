//! What the gateway renderers write, as Kong and the API server see it: every KongPlugin and
//! KongConsumer against Kong's CRDs (both channels in ../shared/upstream/kong/, schema and CEL
//! rules), every plugin `config` against Kong's plugin schemas, every Secret against Kubernetes'
//! core/v1 schema; for the examples and for random policies and settings.

mod deck;
mod kic;
mod overlay;
mod registry;
mod strategies;

use crate::bundle::Bundle;
use crate::crd::TenantPolicy;
use crate::upstream::{config_violations, kic_violations};

/// The TenantPolicies of `examples/tenant-policies.yaml`.
fn examples() -> Vec<TenantPolicy> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tenant-policies.yaml");
    let mut bundle = Bundle::default();
    bundle.add_stream(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(bundle.policies.len(), 3);
    bundle.policies
}

fn example(name: &str) -> TenantPolicy {
    examples().into_iter().find(|p| p.metadata.name.as_deref() == Some(name)).unwrap()
}

#[test]
fn the_upstream_checks_refuse_what_kong_would() {
    // Proof that the checks are applied, not vacuously passed.
    let plugin = serde_json::json!({
        "apiVersion": "configuration.konghq.com/v1", "kind": "KongPlugin",
        "metadata": {"name": "x"}, "plugin": "rate-limiting",
        "config": {"minute": 10, "policy": "cluster"},
        "configFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
    });
    let found = kic_violations(&plugin);
    assert!(found.iter().any(|f| f.contains("Using both config and configFrom")), "{found:#?}");
    assert!(found.iter().any(|f| f.contains("cluster")), "{found:#?}");
    let consumer = serde_json::json!({"apiVersion": "configuration.konghq.com/v1", "kind": "KongConsumer", "metadata": {"name": "x"}});
    let found = kic_violations(&consumer);
    assert!(found.iter().any(|f| f.contains("Need to provide either username or custom_id")), "{found:#?}");
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {"key": 7}});
    assert!(!kic_violations(&secret).is_empty());
}
