//! The files of `examples/` as the tests and the benchmark seed them into the fake API server,
//! and the targets the example TenantPolicies name.

use serde_json::{Value, json};

use crate::bundle::Bundle;

/// The example ScalingProfile, its calendars and the Deployments it scales.
pub const SCALING: [&str; 7] = [
    "scaling-profile.yaml",
    "oktoberfest.yaml",
    "christmas.yaml",
    "asparagus.yaml",
    "easter.yaml",
    "dark-periods.yaml",
    "deployments.yaml",
];

/// The documents of `examples/<file>`, as JSON.
pub fn documents(file: &str) -> Vec<Value> {
    let path = format!("{}/../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

/// The documents of the scaling examples ([`SCALING`]).
pub fn scaling() -> Vec<Value> {
    SCALING.iter().flat_map(|file| documents(file)).collect()
}

/// The example TenantPolicy `name`.
pub fn policy(name: &str) -> Value {
    documents("tenant-policies.yaml")
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no example TenantPolicy {name}"))
}

/// `documents`, typed, for planning what the controller should have done.
pub fn bundle(documents: &[Value]) -> Bundle {
    let mut bundle = Bundle::default();
    for document in documents {
        bundle.add_stream("examples", &document.to_string()).expect("an example the bundle reads");
    }
    bundle
}

/// An Ingress of class kong in namespace crm, with `plugins` already in its annotation.
pub fn ingress(name: &str, plugins: Option<&str>) -> Value {
    let mut annotations = json!({"team": "sales"});
    if let Some(plugins) = plugins {
        annotations["konghq.com/plugins"] = json!(plugins);
    }
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "crm", "annotations": annotations},
        "spec": {"ingressClassName": "kong", "rules": [{"host": format!("{name}.freshfoodz.de")}]},
    })
}

/// Every target of the example TenantPolicies (Ingresses, a Service, an HTTPRoute), as a user
/// created them.
pub fn policy_targets() -> Vec<Value> {
    vec![
        ingress("crm-acme", Some("user-log")),
        ingress("crm-acme-samples", None),
        ingress("crm-bergblick", None),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "crm-bergblick-query", "namespace": "crm"},
            "spec": {"selector": {"app": "crm-bergblick-query"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }),
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "crm-kaiserhof-munich", "namespace": "crm"},
            "spec": {"parentRefs": [{"name": "kong"}], "rules": [{"backendRefs": [{"name": "crm-query", "port": 80}]}]},
        }),
    ]
}
