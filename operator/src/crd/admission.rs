//! What the API server checks when a resource of this group is applied, checked again by the
//! operator: the CRD's OpenAPI schema and its CEL rules, both read from the generated CRD.
//!
//! Objects can reach the controller without these checks (a CRD installed before a rule was
//! added, a resource written while validation was off), and settings from the CRM overlay a
//! spec after it was admitted. Checking them with the CRD itself, rather than with rules written
//! a second time in Rust, means the operator refuses exactly what `kubectl apply` refuses.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use kube::Resource;
use serde_json::Value;

use super::definitions;
use crate::validate::Invalid;

/// The schema of one kind, compiled once, with the CEL environment it is evaluated in (building
/// that environment, every Kubernetes CEL function registered, costs more than a check).
struct Compiled {
    open_api: jsonschema::Validator,
    cel: kube_cel::CompiledSchema,
    environment: kube_cel::Validator,
}

static COMPILED: LazyLock<Mutex<HashMap<String, Arc<Compiled>>>> = LazyLock::new(Default::default);

/// The `openAPIV3Schema` of the CRD of `kind` in this group, as JSON.
pub fn open_api_schema(kind: &str) -> Option<Value> {
    let crd = definitions().into_iter().find(|crd| crd.spec.names.kind == kind)?;
    let version = crd.spec.versions.into_iter().next()?;
    let schema = version.schema.and_then(|s| s.open_api_v3_schema)?;
    serde_json::to_value(schema).ok()
}

fn compiled(kind: &str) -> Arc<Compiled> {
    let mut cache = COMPILED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(kind.to_owned())
        .or_insert_with(|| {
            // The CRDs are generated from this crate's types: a kind without a schema, or a schema
            // that does not compile, is a bug the crd tests catch before release.
            let schema = open_api_schema(kind).unwrap_or_else(|| panic!("no CRD of kind {kind}"));
            let open_api = jsonschema::validator_for(&schema).expect("the CRD's schema compiles");
            let cel = kube_cel::compile_schema(&schema);
            assert!(!cel.has_errors(), "the CRD's CEL rules compile: {:?}", cel.compilation_errors());
            Arc::new(Compiled { open_api, cel, environment: kube_cel::Validator::new() })
        })
        .clone()
}

/// Every reason the API server would refuse `resource`, with field paths (`spec.targets[1].name`):
/// the OpenAPI schema's first, then the CEL rules'. Empty when it would be admitted.
pub fn check<K: Resource<DynamicType = ()> + serde::Serialize>(resource: &K) -> Vec<Invalid> {
    match serde_json::to_value(resource) {
        // The kind from the type, not from `K::crd()`: generating the CRD costs more than the check.
        Ok(mut object) => {
            // What a write of the spec is checked on: not the status (its own subresource), nor
            // metadata beyond the name (which the API server checks for every kind alike).
            if let Some(object) = object.as_object_mut() {
                object.remove("status");
                if let Some(Value::Object(meta)) = object.get_mut("metadata") {
                    meta.retain(|key, _| key == "name" || key == "namespace");
                }
            }
            check_value(&K::kind(&()), &object)
        }
        Err(e) => vec![Invalid { path: String::new(), message: format!("cannot be written as JSON: {e}") }],
    }
}

/// [`check`] of an object as JSON, of `kind` in this group.
pub fn check_value(kind: &str, object: &Value) -> Vec<Invalid> {
    let compiled = compiled(kind);
    let mut found: Vec<Invalid> = compiled
        .open_api
        .iter_errors(object)
        .map(|e| Invalid { path: field_path(&e.instance_path().to_string()), message: e.to_string() })
        .collect();
    // CEL rules assume the schema holds (a rule comparing two numbers meets a string otherwise),
    // so they run only on objects the schema admits, as in the API server.
    if found.is_empty()
        && let Err(errors) = compiled.environment.validate_compiled(&compiled.cel, object, None)
    {
        found.extend(
            errors.iter().map(|e| Invalid { path: e.field_path.clone(), message: e.message.clone() }),
        );
    }
    found
}

/// A JSON pointer (`/spec/targets/1/name`) as a field path (`spec.targets[1].name`).
fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{token}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&token);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_field_paths() {
        assert_eq!(field_path("/spec/targets/1/name"), "spec.targets[1].name");
        assert_eq!(field_path(""), "");
        assert_eq!(
            field_path("/metadata/annotations/konghq.com~1plugins"),
            "metadata.annotations.konghq.com/plugins"
        );
    }
}
