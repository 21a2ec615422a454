//! The upstream schemas generated objects are validated against, read from `../shared/upstream/`
//! beside the checkout (never copied into it), and the repository's own CRDs (`crds/`). Tests only
//! (the crate's own, and through the `testing` feature the chart's in `operator/tests/chart.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

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
    version_schema(&crd, version).unwrap_or_else(|| panic!("{relative} has no version {version}"))
}

fn version_schema(crd: &Value, version: &str) -> Option<Value> {
    crd["spec"]["versions"]
        .as_array()
        .and_then(|versions| versions.iter().find(|v| v["name"] == version))
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
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

// === Manifests: what `kubectl apply` with strict field validation would refuse ===

/// The repository's `crds/` directory.
pub fn repository_crds() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds")
}

/// The compiled schema of one kind: JSON Schema, its source (for the unknown-field walk, with the
/// root `$ref`s resolve against), and the CEL rules of a CRD.
struct KindSchema {
    validator: jsonschema::Validator,
    schema: Value,
    cel: Option<kube_cel::CompiledSchema>,
}

/// Compiled per `apiVersion/kind`, once: the core v1 document alone is 2 MB.
static KIND_SCHEMAS: LazyLock<Mutex<HashMap<String, Option<Arc<KindSchema>>>>> =
    LazyLock::new(Default::default);
static OPENAPI_DOCUMENTS: LazyLock<Mutex<HashMap<String, Arc<Value>>>> = LazyLock::new(Default::default);

fn openapi_document(relative: &str) -> Arc<Value> {
    let mut documents = OPENAPI_DOCUMENTS.lock().unwrap();
    documents
        .entry(relative.to_owned())
        .or_insert_with(|| {
            Arc::new(serde_json::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}")))
        })
        .clone()
}

/// The Kubernetes OpenAPI document of `group/version` in `kubernetes/`, if upstream has it.
fn openapi_file(group: &str, version: &str) -> Option<String> {
    let relative = if group.is_empty() {
        format!("kubernetes/api__{version}_openapi.json")
    } else {
        format!("kubernetes/apis__{group}__{version}_openapi.json")
    };
    path(&relative).exists().then_some(relative)
}

/// `{group, version, kind}` of an `apiVersion` and `kind`.
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// The component of `document` whose `x-kubernetes-group-version-kind` is the kind's.
fn kubernetes_kind(document: &Value, group: &str, version: &str, kind: &str) -> Option<String> {
    let schemas = document["components"]["schemas"].as_object()?;
    schemas.iter().find_map(|(name, schema)| {
        let gvks = schema["x-kubernetes-group-version-kind"].as_array()?;
        gvks.iter()
            .any(|gvk| gvk["group"] == group && gvk["version"] == version && gvk["kind"] == kind)
            .then(|| name.clone())
    })
}

/// The CRD in `crds/` that defines `group/version` `kind`.
pub fn repository_crd(group: &str, version: &str, kind: &str) -> Option<Value> {
    let entries = std::fs::read_dir(repository_crds()).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .find_map(|file| {
            let crd: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).ok()?).ok()?;
            (crd["spec"]["group"] == group && crd["spec"]["names"]["kind"] == kind)
                .then(|| version_schema(&crd, version))
                .flatten()
        })
}

fn kind_schema(api_version: &str, kind: &str) -> Option<Arc<KindSchema>> {
    let key = format!("{api_version}/{kind}");
    if let Some(known) = KIND_SCHEMAS.lock().unwrap().get(&key) {
        return known.clone();
    }
    let (group, version) = group_version(api_version);
    let compiled = if let Some(mut schema) = repository_crd(group, version, kind) {
        let cel = Some(kube_cel::compile_schema(&schema));
        // What the API server adds to every CRD's schema; the metadata is checked as ObjectMeta.
        for (field, kind) in [("apiVersion", "string"), ("kind", "string"), ("metadata", "object")] {
            schema["properties"][field] = json!({"type": kind, "x-kubernetes-preserve-unknown-fields": true});
        }
        Some(KindSchema { validator: jsonschema::validator_for(&schema).expect("a CRD schema"), schema, cel })
    } else {
        openapi_file(group, version).and_then(|file| {
            let document = openapi_document(&file);
            let name = kubernetes_kind(&document, group, version, kind)?;
            let schema = json!({ "$ref": format!("#/components/schemas/{name}"), "components": document["components"] });
            Some(KindSchema { validator: jsonschema::validator_for(&schema).expect("an OpenAPI schema"), schema, cel: None })
        })
    };
    let compiled = compiled.map(Arc::new);
    KIND_SCHEMAS.lock().unwrap().insert(key, compiled.clone());
    compiled
}

/// A component of the core v1 document (ObjectMeta, PodTemplateSpec), with its `$ref`s.
fn core_component(name: &str) -> Arc<KindSchema> {
    let key = format!("component {name}");
    if let Some(Some(known)) = KIND_SCHEMAS.lock().unwrap().get(&key) {
        return known.clone();
    }
    let document = openapi_document("kubernetes/api__v1_openapi.json");
    let schema =
        json!({ "$ref": format!("#/components/schemas/{name}"), "components": document["components"] });
    let compiled = Arc::new(KindSchema {
        validator: jsonschema::validator_for(&schema).expect("an OpenAPI schema"),
        schema,
        cel: None,
    });
    KIND_SCHEMAS.lock().unwrap().insert(key, Some(compiled.clone()));
    compiled
}

fn check(schema: &KindSchema, instance: &Value, at: &str) -> Vec<String> {
    let mut found: Vec<String> =
        schema.validator.iter_errors(instance).map(|e| format!("{e} at {at}{}", e.instance_path())).collect();
    found.extend(
        unknown_fields(&schema.schema, instance)
            .into_iter()
            .map(|field| format!("unknown field {at}{field}")),
    );
    if let Some(cel) = &schema.cel
        && let Err(errors) = kube_cel::Validator::new().validate_compiled(cel, instance, None)
    {
        found.extend(errors.iter().map(|e| format!("CEL {}: {}", e.field_path, e.message)));
    }
    found
}

/// The `metadata.name` and the ObjectMeta of `document`.
fn metadata_violations(document: &Value) -> Vec<String> {
    let mut found = check(
        &core_component("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
        &document["metadata"],
        "/metadata",
    );
    if document["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        found.push("metadata.name is missing".to_owned());
    }
    found
}

/// The Prometheus Operator's kinds: no upstream schema is at hand, so only their identity and
/// metadata are checked here; the alert rules are tested with promtool.
const MONITORING_KINDS: [&str; 2] = ["PrometheusRule", "PodMonitor"];

/// JobSpec's fields (batch/v1, Kubernetes 1.35).
const JOB_SPEC_FIELDS: [&str; 16] = [
    "activeDeadlineSeconds",
    "backoffLimit",
    "backoffLimitPerIndex",
    "completionMode",
    "completions",
    "managedBy",
    "manualSelector",
    "maxFailedIndexes",
    "parallelism",
    "podFailurePolicy",
    "podReplacementPolicy",
    "selector",
    "successPolicy",
    "suspend",
    "template",
    "ttlSecondsAfterFinished",
];

/// batch/v1 is not among the upstream documents: a Job's pod template is checked as core v1's
/// PodTemplateSpec (what a Job runs), the rest by its shape.
fn job_violations(job: &Value) -> Vec<String> {
    let mut found = metadata_violations(job);
    let spec = &job["spec"];
    for field in spec.as_object().into_iter().flatten().map(|(k, _)| k) {
        if !JOB_SPEC_FIELDS.contains(&field.as_str()) {
            found.push(format!("unknown field /spec/{field}"));
        }
    }
    for (field, least) in
        [("activeDeadlineSeconds", 1), ("backoffLimit", 0), ("completions", 0), ("parallelism", 0)]
    {
        if !spec[field].is_null() && spec[field].as_u64().is_none_or(|n| n < least) {
            found.push(format!("/spec/{field} must be an integer of at least {least}"));
        }
    }
    found.extend(check(
        &core_component("io.k8s.api.core.v1.PodTemplateSpec"),
        &spec["template"],
        "/spec/template",
    ));
    if !matches!(spec["template"]["spec"]["restartPolicy"].as_str(), Some("Never" | "OnFailure")) {
        found.push("/spec/template/spec/restartPolicy must be Never or OnFailure in a Job".to_owned());
    }
    found
}

/// Why the API server would refuse `document` with strict field validation: its kind's schema
/// (the Kubernetes OpenAPI in `kubernetes/`, or a CRD of `crds/` with its CEL rules) and fields
/// the schema does not declare. Kinds neither knows are refused, except the Job and the
/// Prometheus Operator's kinds, checked as far as there is something to check against.
pub fn manifest_violations(document: &Value) -> Vec<String> {
    let (api_version, kind) =
        (document["apiVersion"].as_str().unwrap_or_default(), document["kind"].as_str().unwrap_or_default());
    let mut found = match (api_version, kind) {
        ("batch/v1", "Job") => return job_violations(document),
        ("monitoring.coreos.com/v1", kind) if MONITORING_KINDS.contains(&kind) => {
            return metadata_violations(document);
        }
        _ => match kind_schema(api_version, kind) {
            Some(schema) if schema.cel.is_some() => {
                let mut found = check(&schema, document, "");
                found.extend(metadata_violations(document));
                return found;
            }
            Some(schema) => check(&schema, document, ""),
            None => return vec![format!("no schema for {api_version} {kind}")],
        },
    };
    if document["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        found.push("metadata.name is missing".to_owned());
    }
    found
}

/// The fields of `instance` that `schema` does not declare, as JSON pointers: what the API
/// server's strict field validation refuses (and what it would otherwise drop without a word,
/// since the Kubernetes schemas do not say `additionalProperties: false`). Follows `$ref`s into
/// `schema["components"]`; maps (`additionalProperties` with a schema) are walked per value, and
/// `x-kubernetes-preserve-unknown-fields` and schemas that declare no properties take anything.
pub fn unknown_fields(schema: &Value, instance: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(schema, schema, instance, "", &mut found);
    found
}

/// `schema` with its `$ref` (or the one `$ref` of an `allOf`, Kubernetes' way of giving a
/// referenced field a description or default) followed.
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    loop {
        if let Some(reference) = schema["$ref"].as_str() {
            schema = root.pointer(reference.trim_start_matches('#')).unwrap_or(&Value::Null);
        } else if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice)
            && schema.get("properties").is_none()
        {
            schema = only;
        } else {
            return schema;
        }
    }
}

fn walk(root: &Value, schema: &Value, instance: &Value, at: &str, found: &mut Vec<String>) {
    let schema = resolve(root, schema);
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    match instance {
        Value::Object(fields) => {
            let declared = schema["properties"].as_object();
            let map_values =
                schema["additionalProperties"].is_object().then(|| &schema["additionalProperties"]);
            for (name, value) in fields {
                let here = format!("{at}/{name}");
                match (declared.and_then(|d| d.get(name)), map_values) {
                    (Some(field), _) | (None, Some(field)) => walk(root, field, value, &here, found),
                    (None, None) if declared.is_some() => found.push(here),
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, item) in items.iter().enumerate() {
                walk(root, &schema["items"], item, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// Tests of the unknown-field walk on the shapes the Kubernetes schemas use.
#[cfg(test)]
mod manifest_tests {
    use super::*;

    #[test]
    fn a_misspelt_field_is_reported_where_the_schema_would_silently_drop_it() {
        let service = json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "crm", "labels": {"any": "label"}},
            "spec": {"selector": {"a": "b"}, "ports": [{"port": 80, "targetport": 8080}]},
        });
        assert_eq!(manifest_violations(&service), ["unknown field /spec/ports/0/targetport"]);
    }

    #[test]
    fn preserved_unknown_fields_and_free_form_objects_take_anything() {
        let schema = json!({"type": "object", "properties": {
            "free": {"type": "object"},
            "kept": {"type": "object", "properties": {"a": {}}, "x-kubernetes-preserve-unknown-fields": true},
            "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"b": {}}}},
        }});
        let instance = json!({"free": {"x": 1}, "kept": {"y": 2}, "map": {"k": {"b": 1, "c": 2}}, "d": 3});
        assert_eq!(unknown_fields(&schema, &instance), ["/d", "/map/k/c"]);
    }

    #[test]
    fn a_job_is_checked_through_its_pod_template() {
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
            "spec": {"backofLimit": 2, "template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "m", "imagee": "x"}]}}},
        });
        let found = manifest_violations(&job);
        assert!(found.contains(&"unknown field /spec/backofLimit".to_owned()), "{found:?}");
        assert!(
            found.contains(&"unknown field /spec/template/spec/containers/0/imagee".to_owned()),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f.contains("restartPolicy must be Never")), "{found:?}");
    }
}
