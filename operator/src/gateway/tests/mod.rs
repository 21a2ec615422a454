//! What the gateway renderers write, as Kong and the API server see it: every KongPlugin and
//! KongConsumer against Kong's CRDs (both channels in ../shared/upstream/kong/, schema and CEL
//! rules), every plugin `config` against Kong's plugin schemas, every Secret against Kubernetes'
//! core/v1 schema; for the examples and for random policies and settings.

mod deck;
mod kic;
mod overlay;
mod registry;
mod strategies;

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::Value;

use crate::bundle::Bundle;
use crate::crd::TenantPolicy;
use crate::upstream;

/// The upstream schemas, compiled once.
struct Upstream {
    /// Per kind, the CRD schemas of both Kong channels, with their CEL rules.
    kong_crds: HashMap<&'static str, Vec<(jsonschema::Validator, kube_cel::CompiledSchema)>>,
    secret: jsonschema::Validator,
    plugin_configs: HashMap<String, jsonschema::Validator>,
}

static UPSTREAM: LazyLock<Upstream> = LazyLock::new(|| {
    let mut kong_crds = HashMap::new();
    for (kind, file) in [
        ("KongPlugin", "configuration.konghq.com_kongplugins.yaml"),
        ("KongConsumer", "configuration.konghq.com_kongconsumers.yaml"),
    ] {
        let schemas = [format!("kong/{file}"), format!("kong/v2.0.1/{file}")]
            .iter()
            .map(|path| {
                let schema = upstream::crd_schema(path, "v1");
                (jsonschema::validator_for(&schema).unwrap(), kube_cel::compile_schema(&schema))
            })
            .collect();
        kong_crds.insert(kind, schemas);
    }
    let secret = jsonschema::validator_for(&upstream::openapi_component(
        "kubernetes/api__v1_openapi.json",
        "io.k8s.api.core.v1.Secret",
    ))
    .unwrap();
    let plugin_configs =
        ["jwt", "rate-limiting", "cors", "correlation-id", "request-size-limiting", "ip-restriction"]
            .into_iter()
            .map(|plugin| {
                let schema =
                    upstream::kong_plugin_schema(plugin).expect("a schema of every OSS plugin rendered");
                (plugin.to_owned(), jsonschema::validator_for(&schema).unwrap())
            })
            .collect();
    Upstream { kong_crds, secret, plugin_configs }
});

fn messages(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

/// Why the API server (Kong's CRDs, Kubernetes' Secret) or Kong (the plugin's config schema)
/// would refuse `document`, a rendered Kong Ingress Controller object.
fn kic_violations(document: &Value) -> Vec<String> {
    let kind = document["kind"].as_str().unwrap_or_default();
    if kind == "Secret" {
        return messages(&UPSTREAM.secret, document);
    }
    let Some(crds) = UPSTREAM.kong_crds.get(kind) else { return vec![format!("unexpected kind {kind}")] };
    let mut found = Vec::new();
    for (schema, cel) in crds {
        found.extend(messages(schema, document));
        if let Err(errors) = kube_cel::Validator::new().validate_compiled(cel, document, None) {
            found.extend(errors.iter().map(|e| format!("CEL {}: {}", e.field_path, e.message)));
        }
    }
    if kind == "KongPlugin" {
        found.extend(config_violations(document["plugin"].as_str().unwrap_or_default(), &document["config"]));
    }
    found
}

/// Why Kong would refuse `config` for `plugin`. Plugins without an upstream schema are checked
/// for their shape: pre-function's Lua is run by the header tests, openid-connect is Enterprise.
fn config_violations(plugin: &str, config: &Value) -> Vec<String> {
    match plugin {
        "pre-function" => match config["access"].as_array() {
            Some(chunks) if chunks.len() == 1 && chunks[0].is_string() => Vec::new(),
            _ => vec![format!("pre-function needs one access chunk: {config}")],
        },
        "openid-connect" => match (config["issuer"].as_str(), config["consumer_by"].as_array()) {
            (Some(_), Some(_)) => Vec::new(),
            _ => vec![format!("openid-connect needs issuer and consumer_by: {config}")],
        },
        _ => match UPSTREAM.plugin_configs.get(plugin) {
            Some(validator) => messages(validator, config),
            None => vec![format!("no schema for plugin {plugin}")],
        },
    }
}

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
