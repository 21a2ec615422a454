//! The CRDs as the API server sees them: valid CustomResourceDefinitions with structural, bounded
//! schemas; every CEL rule accepts and rejects what it should; the examples pass all of it.
//!
//! Rules are always read from the generated CRDs, never copied, and evaluated with kube-rs's CEL
//! evaluator, which binds `self` at each schema node as the API server does.

mod cel;
mod cel_properties;
mod examples;
mod patterns;
mod schema;

use serde_json::Value;

/// The `openAPIV3Schema` of the CRD of `kind`, as JSON.
fn open_api_schema(kind: &str) -> Value {
    super::admission::open_api_schema(kind).expect("a CRD of that kind")
}

const KINDS: [&str; 3] = ["ScalingProfile", "SeasonalWindow", "TenantPolicy"];

/// Calls `visit` with every node of `schema` and its path (`spec.windows[].floors`), parents first.
fn walk<'a>(schema: &'a Value, path: &str, visit: &mut dyn FnMut(&str, &'a Value)) {
    visit(path, schema);
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let child_path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            walk(child, &child_path, visit);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, &format!("{path}[]"), visit);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        walk(additional, &format!("{path}{{}}"), visit);
    }
}

/// A CEL rule of a CRD, where it sits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RuleAt {
    kind: &'static str,
    path: String,
    rule: String,
    message: String,
}

/// Every `x-kubernetes-validations` rule of every CRD.
fn all_rules() -> Vec<RuleAt> {
    let mut rules = Vec::new();
    for kind in KINDS {
        let schema = open_api_schema(kind);
        walk(&schema, "", &mut |path, node| {
            for rule in node.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
                rules.push(RuleAt {
                    kind,
                    path: path.to_owned(),
                    rule: rule["rule"].as_str().unwrap_or_default().to_owned(),
                    message: rule["message"].as_str().unwrap_or_default().to_owned(),
                });
            }
        });
    }
    rules
}

/// `field.path: message` for each CEL rule `object` fails, indices replaced by `[]` so a failure
/// can be matched to the rule that made it. Compilation and evaluation errors are failures too.
/// Runs the rules whatever the schema says (the admission check would not), so a case can show a
/// rule alone stops it.
fn cel_failures(kind: &str, object: &Value) -> Vec<String> {
    let schema = open_api_schema(kind);
    match kube_cel::Validator::new().validate(&schema, object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| {
                let detail = match e.kind {
                    kube_cel::ErrorKind::ValidationFailure => String::new(),
                    ref other => format!(" ({other:?}: {})", e.rule),
                };
                format!("{}: {}{detail}", strip_indices(&e.field_path), e.message)
            })
            .collect(),
    }
}

/// `spec.windows[3].floors` -> `spec.windows[].floors`.
fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The messages of `object`'s violations of the CRD's OpenAPI schema (the non-CEL part).
fn schema_violations(kind: &str, object: &Value) -> Vec<String> {
    crate::upstream::violations(&open_api_schema(kind), object)
}

#[test]
fn indices_are_stripped_from_paths() {
    assert_eq!(strip_indices("spec.windows[12].floors"), "spec.windows[].floors");
    assert_eq!(strip_indices("spec"), "spec");
}
