//! The upstream schemas generated objects are validated against, read from `../shared/upstream/`
//! beside the checkout (never copied into it). Tests only.

use std::path::PathBuf;

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
