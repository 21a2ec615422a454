//! The upstream schemas generated objects are validated against, read from `../shared/upstream/`
//! beside the checkout (never copied into it). Tests only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use serde_json::{Value, json};

/// `../shared/upstream/<path>` of the workspace.
pub fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/upstream").join(relative)
}

fn read(relative: &str) -> String {
    let file = path(relative);
    std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!("{}: {e} (the tests need ../shared/upstream beside the checkout)", file.display())
    })
}

/// The `openAPIV3Schema` of `version` in the CRD file `relative` (YAML).
pub fn crd_schema(relative: &str, version: &str) -> Value {
    let crd: Value = serde_saphyr::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
    crd["spec"]["versions"]
        .as_array()
        .and_then(|versions| versions.iter().find(|v| v["name"] == version))
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
        .unwrap_or_else(|| panic!("{relative} has no version {version}"))
}

/// A schema for the component `name` of the OpenAPI 3 document `relative` (JSON), its
/// `#/components/schemas/...` references resolved within the document.
pub fn openapi_component(relative: &str, name: &str) -> Value {
    let document: Value = serde_json::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
    assert!(document["components"]["schemas"][name].is_object(), "{relative} has no component {name}");
    json!({ "$ref": format!("#/components/schemas/{name}"), "components": document["components"] })
}

/// The messages of `instance`'s violations of `schema`; empty when it is valid.
pub fn violations(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// The JSON Schema of Kong plugin `plugin`'s `config` (kong-plugin-schemas/, translated from Kong
/// 3.9.3); None for plugins it has none of (pre-function, Kong Enterprise's openid-connect).
pub fn kong_plugin_schema(plugin: &str) -> Option<Value> {
    let index: Value = serde_json::from_str(&read("kong-plugin-schemas/index.json")).expect("index.json");
    let file = index["plugins"][plugin].as_str()?;
    Some(serde_json::from_str(&read(&format!("kong-plugin-schemas/{file}"))).expect("a plugin schema"))
}

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
                let schema = crd_schema(path, "v1");
                (jsonschema::validator_for(&schema).unwrap(), kube_cel::compile_schema(&schema))
            })
            .collect();
        kong_crds.insert(kind, schemas);
    }
    let secret = jsonschema::validator_for(&openapi_component(
        "kubernetes/api__v1_openapi.json",
        "io.k8s.api.core.v1.Secret",
    ))
    .unwrap();
    let plugin_configs =
        ["jwt", "rate-limiting", "cors", "correlation-id", "request-size-limiting", "ip-restriction"]
            .into_iter()
            .map(|plugin| {
                let schema = kong_plugin_schema(plugin).expect("a schema of every OSS plugin rendered");
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
pub fn kic_violations(document: &Value) -> Vec<String> {
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
pub fn config_violations(plugin: &str, config: &Value) -> Vec<String> {
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
