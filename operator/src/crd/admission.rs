//! What the API server checks when a resource of this group is applied, checked again by the
//! operator: the CRD's OpenAPI schema and its CEL rules, both read from the generated CRD.
//!
//! Objects can reach the controller without these checks (a CRD installed before a rule was
//! added, a resource written while validation was off), and settings from the CRM overlay a
//! spec after it was admitted. Checking them with the CRD itself, rather than with rules written
//! a second time in Rust, means the operator refuses exactly what `kubectl apply` refuses.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
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

/// What recent checks found, by a hash of the kind and the object checked: a resource reconciled
/// again unchanged is not evaluated again (the CEL rules cost more than the rest of a reconcile).
/// The hash is keyed per process (SipHash, random keys), so an object cannot be made to collide
/// with one checked before; the memory is bounded by forgetting everything when it is full.
static CHECKED: LazyLock<Mutex<HashMap<u64, Vec<Invalid>>>> = LazyLock::new(Default::default);
static CHECKED_KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// How many results [`CHECKED`] holds at most.
const REMEMBERED: usize = 16_384;

/// A `Write` that feeds a hasher, to hash a serialization without holding it.
struct HashWriter<H>(H);

impl<H: Hasher> std::io::Write for HashWriter<H> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
    let mut hasher = HashWriter(CHECKED_KEYS.build_hasher());
    hasher.0.write(kind.as_bytes());
    serde_json::to_writer(&mut hasher, object).expect("JSON values serialize");
    let key = hasher.0.finish();
    if let Some(found) = CHECKED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&key) {
        return found.clone();
    }
    let found = evaluate(kind, object);
    let mut checked = CHECKED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if checked.len() >= REMEMBERED {
        checked.clear();
    }
    checked.insert(key, found.clone());
    found
}

fn evaluate(kind: &str, object: &Value) -> Vec<Invalid> {
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
    fn a_check_repeated_finds_the_same() {
        let valid = crate::testing::examples::policy("acme");
        let mut invalid = valid.clone();
        invalid["spec"]["rateLimit"]["limits"]["minute"] = serde_json::json!(-1);
        for _ in 0..2 {
            assert_eq!(check_value("TenantPolicy", &valid), Vec::new());
            let found = check_value("TenantPolicy", &invalid);
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].path, "spec.rateLimit.limits.minute");
        }
        // The same object as another kind is checked as that kind.
        assert!(!check_value("ScalingProfile", &valid).is_empty());
    }

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
