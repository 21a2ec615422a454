//! The generated CRDs are CustomResourceDefinitions the API server accepts: valid against the
//! upstream apiextensions.k8s.io/v1 schema, structural, and with every rule's cost bounded.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use super::{KINDS, open_api_schema, walk};
use crate::crd::definitions;
use crate::upstream;

#[test]
fn every_crd_validates_against_the_apiextensions_v1_schema() {
    let schema = upstream::openapi_component(
        "kubernetes/apis__apiextensions.k8s.io__v1_openapi.json",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    );
    for crd in definitions() {
        let object = serde_json::to_value(&crd).unwrap();
        assert_eq!(upstream::violations(&schema, &object), Vec::<String>::new(), "{}", crd.spec.names.kind);
        assert_eq!(object["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(object["kind"], "CustomResourceDefinition");
    }
}

#[test]
fn the_yaml_files_read_back_as_the_same_crds() {
    // Patterns hold backslashes and long lines that the YAML writer folds; nothing may change.
    let manifests = crate::crd::manifests().unwrap();
    for (manifest, crd) in manifests.iter().zip(definitions()) {
        assert!(manifest.yaml.starts_with(crate::crd::GENERATED_HEADER), "{}", manifest.file_name);
        let read: CustomResourceDefinition = serde_saphyr::from_str(&manifest.yaml).unwrap();
        assert_eq!(read, crd, "{}", manifest.file_name);
    }
    let stream: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&crate::crd::stream().unwrap()).unwrap();
    assert_eq!(stream, definitions());
}

#[test]
fn the_apiextensions_schema_refuses_a_broken_crd() {
    // Proof the upstream schema is applied with its references resolved, not vacuously passed.
    let schema = upstream::openapi_component(
        "kubernetes/apis__apiextensions.k8s.io__v1_openapi.json",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    );
    let mut object = serde_json::to_value(&definitions()[0]).unwrap();
    object["spec"]["names"]["shortNames"] = Value::from("sp");
    object["spec"]["versions"][0]["additionalPrinterColumns"][0]["jsonPath"] = Value::from(7);
    let violations = upstream::violations(&schema, &object);
    assert_eq!(violations.len(), 2, "{violations:#?}");
}

#[test]
fn crds_carry_the_agreed_names_scope_and_status_subresource() {
    for (crd, (kind, plural, short)) in definitions().iter().zip([
        ("ScalingProfile", "scalingprofiles", "sp"),
        ("SeasonalWindow", "seasonalwindows", "sw"),
        ("TenantPolicy", "tenantpolicies", "tp"),
    ]) {
        assert_eq!(crd.metadata.name.as_deref(), Some(format!("{plural}.freshplan.io").as_str()));
        assert_eq!(crd.spec.group, "freshplan.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.names.short_names.as_deref(), Some([short.to_owned()].as_slice()));
        let [version] = crd.spec.versions.as_slice() else { panic!("{kind}: one version") };
        assert_eq!((version.name.as_str(), version.served, version.storage), ("v1alpha1", true, true));
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "{kind}: status");
        let columns: Vec<_> =
            version.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
        let expected: &[&str] =
            if kind == "TenantPolicy" { &["Tenant", "Ready", "Settings"] } else { &["Active", "Next"] };
        assert!(expected.iter().all(|c| columns.contains(c)), "{kind}: {columns:?}");
        assert_eq!(columns.last(), Some(&"Age"), "{kind}");
    }
}

#[test]
fn printer_columns_point_at_fields_the_schema_has() {
    for crd in definitions() {
        let kind = crd.spec.names.kind.clone();
        let schema = open_api_schema(&kind);
        for column in crd.spec.versions[0].additional_printer_columns.iter().flatten() {
            let path = column.json_path.trim_start_matches('.');
            if path == "metadata.creationTimestamp" {
                continue;
            }
            // `conditions[?(@.type=="Ready")].status`: a filter selects items of the list.
            let mut rest = path.to_owned();
            while let (Some(open), Some(close)) = (rest.find("[?("), rest.find(")]")) {
                rest.replace_range(open..close + 2, "[]");
            }
            let node = rest.split('.').try_fold(&schema, |node, field| match field.strip_suffix("[]") {
                Some(list) => node["properties"].get(list).and_then(|l| l.get("items")),
                None => node["properties"].get(field),
            });
            assert!(
                node.is_some(),
                "{kind}: column {} points at {} which the schema lacks",
                column.name,
                path
            );
            // A future time shows as `<invalid>` in a `date` column, so future times are strings.
            if path.ends_with("nextTransition") {
                assert_eq!(column.type_, "string");
            }
        }
    }
}

/// The structural schema rules of apiextensions.k8s.io/v1, as far as generated schemas can break
/// them: a type everywhere, no references or combinators, properties only on objects, items only
/// on arrays, and `metadata` left to the API server.
fn structural_violations(kind: &str, schema: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    walk(schema, "", &mut |path, node| {
        let at = if path.is_empty() { "<root>" } else { path };
        let ty = node.get("type").and_then(Value::as_str);
        let free_form = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
            || node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if ty.is_none() && !free_form {
            violations.push(format!("{kind} {at}: no type"));
        }
        for keyword in ["$ref", "oneOf", "anyOf", "allOf", "not", "definitions", "$defs"] {
            if node.get(keyword).is_some() {
                violations.push(format!("{kind} {at}: {keyword}"));
            }
        }
        if node.get("properties").is_some() && ty != Some("object") {
            violations.push(format!("{kind} {at}: properties on a non-object"));
        }
        if node.get("properties").is_some() && node.get("additionalProperties").is_some() {
            violations.push(format!("{kind} {at}: properties and additionalProperties"));
        }
        if node.get("items").is_some() != (ty == Some("array")) {
            violations.push(format!("{kind} {at}: items and type array go together"));
        }
    });
    let metadata = &schema["properties"]["metadata"];
    if metadata.as_object().is_some_and(|m| m.keys().any(|k| k != "type")) {
        violations.push(format!("{kind} metadata: only `type: object` is allowed, found {metadata}"));
    }
    violations
}

#[test]
fn every_schema_is_structural() {
    for kind in KINDS {
        assert_eq!(structural_violations(kind, &open_api_schema(kind)), Vec::<String>::new());
    }
}

#[test]
fn the_structural_check_finds_what_it_looks_for() {
    let broken = serde_json::json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": {"properties": {"a": {"oneOf": [{"type": "string"}], "type": "string"}, "b": {"type": "array"}}},
        },
    });
    let found = structural_violations("Broken", &broken);
    for expected in [
        "Broken spec: no type",
        "Broken spec: properties on a non-object",
        "Broken spec.a: oneOf",
        "Broken spec.b: items and type array go together",
    ] {
        assert!(found.iter().any(|f| f == expected), "{expected} not in {found:#?}");
    }
    assert!(found.iter().any(|f| f.starts_with("Broken metadata:")), "{found:#?}");
}

/// Strings and lists under a node with CEL rules that have no `maxLength`/`maxItems` (an enum
/// bounds a string too): the API server would estimate those rules' cost as unbounded. Rules at
/// the root that read only `self.metadata` reach nothing else (the API server bounds metadata
/// itself).
fn unbounded_under_rules(kind: &str, schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(schema, "", &mut |path, node| {
        let Some(rules) = node.get("x-kubernetes-validations").and_then(Value::as_array) else { return };
        let metadata_only = rules.iter().all(|r| {
            let rule = r["rule"].as_str().unwrap_or_default();
            rule.contains("self.metadata.")
                && rule.matches("self.").count() == rule.matches("self.metadata.").count()
        });
        if path.is_empty() && metadata_only {
            return;
        }
        walk(node, path, &mut |inner, child| match child.get("type").and_then(Value::as_str) {
            Some("string") if child.get("maxLength").is_none() && child.get("enum").is_none() => {
                found.push(format!("{kind} {inner}: string without maxLength"));
            }
            Some("array") if child.get("maxItems").is_none() => {
                found.push(format!("{kind} {inner}: list without maxItems"));
            }
            _ => {}
        });
    });
    found.sort();
    found.dedup();
    found
}

#[test]
fn everything_a_rule_can_reach_is_bounded() {
    for kind in KINDS {
        assert_eq!(unbounded_under_rules(kind, &open_api_schema(kind)), Vec::<String>::new());
    }
    let unbounded = serde_json::json!({
        "type": "object",
        "x-kubernetes-validations": [{"rule": "true"}],
        "properties": {"names": {"type": "array", "items": {"type": "string"}}},
    });
    assert_eq!(
        unbounded_under_rules("Probe", &unbounded),
        ["Probe names: list without maxItems", "Probe names[]: string without maxLength"]
    );
}

#[test]
fn kube_cel_estimates_every_rule_within_the_budget() {
    // kube-cel's estimate is coarser than the API server's, but it flags the usual mistake: a
    // comprehension over a list without maxItems. (Its scope check is not used: it mistakes
    // comprehension variables for unknown globals.)
    for kind in KINDS {
        let schema = open_api_schema(kind);
        walk(&schema, "", &mut |path, node| {
            let rules = node.get("x-kubernetes-validations").and_then(Value::as_array);
            let compiled = kube_cel::compile_schema(node);
            assert!(!compiled.has_errors(), "{kind} {path}: {:?}", compiled.compilation_errors());
            for rule in rules.into_iter().flatten() {
                let text = rule["rule"].as_str().unwrap_or_default();
                let warnings = kube_cel::estimate_rule_cost(text, &compiled);
                assert!(warnings.is_empty(), "{kind} {path}: {text}: {warnings:#?}");
            }
        });
    }
}
