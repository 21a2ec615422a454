//! The Helm chart `charts/freshplan/`, rendered and linted by Helm's own Go code (`charts/helm.py`
//! over the helm-python-sdk bindings; no helm binary needed):
//!
//! - every object it renders, for several value sets, is one the API server accepts: Kubernetes'
//!   OpenAPI, the project's CRDs with their CEL rules, and no field the schemas do not declare;
//! - the CRDs it installs are `crds/`, the Deployments carry the labels the operator's
//!   ScalingProfile selects, and the operator plans every CRM workload it renders;
//! - values.schema.json refuses bad values with a message that names them;
//! - the operator's RBAC is what the operator uses, in both directions: the binary runs against
//!   the in-memory API server through every kind of change, and each request it makes must be
//!   allowed by the rendered roles, and each grant of the roles must have been used.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use freshplan_operator::bundle::Bundle;
use freshplan_operator::testing::examples;
use freshplan_operator::testing::fake_api::{Access, FakeApi, Fault, Recorded, full_cluster};
use freshplan_operator::testing::process::OperatorProcess;
use freshplan_operator::upstream::{manifest_violations, repository_crd, repository_crds};
use serde_json::{Value, json};

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/freshplan")
}

/// A values file of the chart's `ci/`.
fn ci_values(name: &str) -> Value {
    let path = chart_dir().join("ci").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What an install needs and nothing more.
fn minimal() -> Value {
    ci_values("minimal-values.yaml")
}

/// `charts/helm.py <command>` with `values` (each a `-f` file, later ones overriding), as release
/// `freshplan` in `namespace`: its standard output, or its standard error when it fails.
fn helm(command: &str, values: &[Value], namespace: &str) -> Result<String, String> {
    let python = std::env::var("FRESHPLAN_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/helm.py");
    let mut run = Command::new(&python);
    run.arg(&script).arg(command).arg(chart_dir()).args(["--name", "freshplan", "--namespace", namespace]);
    for (i, values) in values.iter().enumerate() {
        // JSON is YAML: helm reads these as it reads a values file.
        let file = dir.path().join(format!("values-{i}.yaml"));
        std::fs::write(&file, values.to_string()).unwrap();
        run.arg("-f").arg(file);
    }
    let output = run.output().unwrap_or_else(|e| {
        panic!("cannot run {python} (set FRESHPLAN_PYTHON to an interpreter with `pip install helm-python-sdk`): {e}")
    });
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // Never a silent skip: without Helm's code the chart is untested.
    if output.status.code() == Some(3) {
        panic!("{python}: {stderr}");
    }
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    if output.status.success() { Ok(stdout) } else { Err(format!("{stdout}{stderr}")) }
}

/// The objects the chart renders for `values` in namespace `crm`.
fn render(values: &[Value]) -> Vec<Value> {
    let stream = helm("render", values, "crm").unwrap_or_else(|e| panic!("render failed:\n{e}"));
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&stream).unwrap_or_else(|e| panic!("{e}:\n{stream}"));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

/// Why rendering `values` fails (it must).
fn refusal(values: Value) -> String {
    match helm("render", &[minimal(), values.clone()], "crm") {
        Ok(_) => panic!("the chart rendered {values}"),
        Err(message) => message,
    }
}

fn kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// The value sets rendered: each with a name for the messages.
fn value_sets() -> Vec<(&'static str, Vec<Value>)> {
    let calendars: serde_json::Map<String, Value> = examples::scaling()
        .into_iter()
        .filter(|d| d["kind"] == "SeasonalWindow")
        .map(|d| (name(&d).to_owned(), d["spec"].clone()))
        .collect();
    vec![
        ("the defaults", vec![minimal()]),
        ("three territories", vec![ci_values("three-territories-values.yaml")]),
        (
            "no alerts, no PodMonitor, no scaling",
            vec![
                minimal(),
                json!({"alerts": {"enabled": false}, "metrics": {"podMonitor": {"enabled": false}}, "scaling": {"enabled": false}}),
            ],
        ),
        (
            "the example calendars, KEDA only",
            vec![minimal(), json!({"scaling": {"mode": "keda", "calendars": calendars}})],
        ),
        (
            "public keys, no CRDs, no PDBs, no migrations",
            vec![
                minimal(),
                json!({
                    "auth": {"jwksUrl": "", "publicKeys": {"secret": "crm-jwt-keys", "files": ["a.pem", "b.pem"]}},
                    "crds": {"install": false}, "podDisruptionBudget": {"enabled": false},
                    "migrations": {"enabled": false}, "networkPolicy": {"enabled": true},
                }),
            ],
        ),
    ]
}

#[test]
fn every_object_rendered_for_each_value_set_is_one_the_api_server_accepts() {
    for (set, values) in value_sets() {
        let objects = render(&values);
        assert!(objects.len() > 10, "{set}: {objects:#?}");
        for object in &objects {
            let found = manifest_violations(object);
            assert!(found.is_empty(), "{set}: {} {} is refused: {found:#?}", object["kind"], name(object));
        }
    }
}

/// The labels `freshplan.labels` gives every object.
const COMMON_LABELS: [&str; 5] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
];

/// The pod template of a Deployment or Job.
fn pod(object: &Value) -> Option<&Value> {
    let template = &object["spec"]["template"];
    template.is_object().then_some(template)
}

#[test]
fn every_object_has_the_common_labels_and_every_pod_its_component_and_an_http_port() {
    for (set, values) in value_sets() {
        for object in render(&values) {
            let what = format!("{set}: {} {}", object["kind"], name(&object));
            let labels = &object["metadata"]["labels"];
            for label in COMMON_LABELS {
                assert!(labels[label].is_string(), "{what} lacks {label}: {labels}");
            }
            assert_eq!(labels["app.kubernetes.io/name"], "freshplan", "{what}");
            let Some(pod) = pod(&object) else { continue };
            let labels = &pod["metadata"]["labels"];
            let component = labels["app.kubernetes.io/component"].as_str().unwrap_or_default();
            assert!(
                ["operator", "query", "command", "relay", "migrate"].contains(&component),
                "{what}: pod component {component:?}"
            );
            for label in COMMON_LABELS {
                assert!(labels[label].is_string(), "{what}: its pods lack {label}");
            }
            if ["query", "command", "relay"].contains(&component) {
                assert_eq!(labels["freshplan.io/component"], component, "{what}");
                assert!(labels["freshplan.io/territory"].is_string(), "{what}");
            }
            if component != "migrate" {
                let ports = &pod["spec"]["containers"][0]["ports"];
                assert_eq!(ports[0]["name"], "http", "{what}: the port serving /metrics is named http");
                assert_eq!(ports[0]["containerPort"], 8080, "{what}");
            }
        }
    }
}

#[test]
fn the_chart_lints_clean_with_the_ci_values() {
    for values in [minimal(), ci_values("three-territories-values.yaml")] {
        let report = helm("lint", &[values], "crm").unwrap_or_else(|e| panic!("lint failed:\n{e}"));
        assert!(!report.contains("[ERROR]") && !report.contains("[WARNING]"), "{report}");
    }
}

/// A CRD as `crds/` has it: without what the chart adds to its metadata, and its numbers as
/// JSON has them (Helm writes `minimum: 0.0` as `0`: the same number to the API server).
fn as_in_crds(mut crd: Value) -> Value {
    let metadata = crd["metadata"].as_object_mut().unwrap();
    metadata.remove("labels");
    metadata.remove("annotations");
    numbers_as_floats(crd)
}

fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (k, numbers_as_floats(v))).collect())
        }
        other => other,
    }
}

#[test]
fn the_crds_installed_are_those_of_crds_kept_on_uninstall_and_can_be_left_out() {
    let rendered: Vec<Value> =
        kind(&render(&[minimal()]), "CustomResourceDefinition").into_iter().cloned().collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repository_crds())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(rendered.len(), files.len(), "one CRD per file of crds/ (the link files/crds followed)");
    for (crd, file) in rendered.iter().zip(&files) {
        let expected: Value = serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert!(
            as_in_crds(crd.clone()) == numbers_as_floats(expected),
            "{} differs from {}",
            name(crd),
            file.display()
        );
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep", "{}", name(crd));
    }

    let removable = render(&[minimal(), json!({"crds": {"keep": false}})]);
    assert!(
        kind(&removable, "CustomResourceDefinition").iter().all(|c| c["metadata"]["annotations"].is_null())
    );
    let left_out = render(&[minimal(), json!({"crds": {"install": false}})]);
    assert!(kind(&left_out, "CustomResourceDefinition").is_empty());
}

#[test]
fn each_territory_gets_a_query_and_a_command_deployment_with_its_overrides_and_one_relay_serves_all() {
    let values = [ci_values("three-territories-values.yaml"), json!({"scaling": {"enabled": false}})];
    let objects = render(&values);
    let deployments = kind(&objects, "Deployment");
    let names: BTreeSet<&str> = deployments.iter().map(|d| name(d)).collect();
    let expected: BTreeSet<&str> = [
        "freshplan-command-by",
        "freshplan-command-ni",
        "freshplan-command-nw",
        "freshplan-operator",
        "freshplan-query-by",
        "freshplan-query-ni",
        "freshplan-query-nw",
        "freshplan-relay",
    ]
    .into();
    assert_eq!(names, expected);
    let deployment = |n: &str| *deployments.iter().find(|d| name(d) == n).unwrap();

    // BY's query: its replicas and CPU, the default memory; NW's command: its replicas.
    let by_query = deployment("freshplan-query-by");
    assert_eq!(by_query["spec"]["replicas"], 4);
    let resources = &by_query["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(resources["requests"], json!({"cpu": "500m", "memory": "256Mi"}));
    assert_eq!(deployment("freshplan-command-nw")["spec"]["replicas"], 3);
    assert_eq!(deployment("freshplan-query-ni")["spec"]["replicas"], 2);
    let relay = deployment("freshplan-relay");
    assert_eq!(relay["metadata"]["labels"]["freshplan.io/territory"], "all");
    assert_eq!(
        relay["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["serve", "--role", "relay"])
    );

    // With the ScalingProfile, replicas are the autoscaler's: the Deployments leave them out.
    let scaled = render(&[ci_values("three-territories-values.yaml")]);
    for deployment in kind(&scaled, "Deployment").iter().filter(|d| name(d) != "freshplan-operator") {
        assert!(deployment["spec"]["replicas"].is_null(), "{}", name(deployment));
    }

    // Services: one per query and command Deployment, and one per component across territories.
    let services: BTreeSet<&str> = kind(&objects, "Service").iter().map(|s| name(s)).collect();
    for service in ["freshplan-query", "freshplan-command", "freshplan-query-by", "freshplan-command-ni"] {
        assert!(services.contains(service), "{service} in {services:?}");
    }
    let pdbs = kind(&objects, "PodDisruptionBudget");
    assert_eq!(pdbs.len(), deployments.len(), "a PDB per Deployment");
}

#[test]
fn the_operator_scales_every_crm_deployment_the_chart_renders_along_its_calendars() {
    let objects = render(&[ci_values("three-territories-values.yaml")]);
    let mut bundle = Bundle::default();
    for object in objects.iter().filter(|o| o["kind"] != "CustomResourceDefinition") {
        bundle.add_stream("chart", &object.to_string()).expect("a document the operator reads");
    }
    assert_eq!(bundle.profiles.len(), 1);
    assert_eq!(bundle.windows.len(), 4, "oktoberfest, christmas, quiet-times, holidays");
    let at = "2026-09-19T12:00:00+02:00".parse().unwrap();
    let (_, plan) = bundle.plans(true, at).remove(0);
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert!(plan.notes.is_empty(), "the profile selects only CRM Deployments: {:?}", plan.notes);
    let scaled: BTreeSet<&str> = plan.workloads.iter().map(|w| w.name.as_str()).collect();
    let crm: BTreeSet<&str> =
        kind(&objects, "Deployment").iter().map(|d| name(d)).filter(|n| *n != "freshplan-operator").collect();
    assert_eq!(scaled, crm);
    assert!(plan.active_windows.contains(&"oktoberfest/wiesn".to_owned()), "{:?}", plan.active_windows);
}

#[test]
fn the_operator_gets_its_lease_pod_identity_crm_url_and_token_file() {
    let objects = render(&[ci_values("three-territories-values.yaml")]);
    let operator =
        kind(&objects, "Deployment").into_iter().find(|d| name(d) == "freshplan-operator").unwrap();
    assert_eq!(operator["spec"]["replicas"], 2);
    let spec = &operator["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    let env = |n: &str| container["env"].as_array().unwrap().iter().find(|e| e["name"] == n).cloned();
    assert_eq!(env("POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    assert_eq!(env("POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
    assert_eq!(env("FRESHPLAN_LEASE_NAME").unwrap()["value"], "freshplan-operator");
    assert_eq!(env("FRESHPLAN_CRM_URL").unwrap()["value"], "http://freshplan-query.crm.svc:8080");
    // The sync reports are writes: only the command role serves them.
    assert_eq!(env("FRESHPLAN_CRM_COMMAND_URL").unwrap()["value"], "http://freshplan-command.crm.svc:8080");
    let token = env("FRESHPLAN_CRM_TOKEN_FILE").unwrap()["value"].as_str().unwrap().to_owned();
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(token, format!("{mount}/crm-token"));
    assert_eq!(spec["volumes"][0]["secret"]["secretName"], "freshplan-operator-crm-token");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(spec["serviceAccountName"], "freshplan-operator");

    // A gateway of the user's own routes reads and writes: the operator sends both there.
    let gateway = json!({"operator": {"crm": {"url": "https://crm.freshfoodz.de/api"}}});
    let objects = render(&[ci_values("three-territories-values.yaml"), gateway]);
    let operator =
        kind(&objects, "Deployment").into_iter().find(|d| name(d) == "freshplan-operator").unwrap();
    let env = operator["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains("https://crm.freshfoodz.de/api") && !env.contains("FRESHPLAN_CRM_COMMAND_URL"),
        "{env}"
    );

    // Without a token the operator runs without the CRM: no URL (it needs a token), no volume.
    let objects = render(&[minimal()]);
    let operator =
        kind(&objects, "Deployment").into_iter().find(|d| name(d) == "freshplan-operator").unwrap();
    let env = operator["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(!env.contains("FRESHPLAN_CRM_URL") && operator["spec"]["template"]["spec"]["volumes"].is_null());
}

#[test]
fn migrations_run_as_a_hook_before_install_and_upgrade_with_the_database_secret() {
    let objects = render(&[minimal()]);
    let job = kind(&objects, "Job").pop().expect("the migration Job");
    let annotations = &job["metadata"]["annotations"];
    assert_eq!(annotations["helm.sh/hook"], "pre-install,pre-upgrade");
    assert_eq!(annotations["helm.sh/hook-delete-policy"], "before-hook-creation,hook-succeeded");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"], json!(["migrate"]));
    let database = container["env"].as_array().unwrap().iter().find(|e| e["name"] == "DATABASE_URL").unwrap();
    assert_eq!(database["valueFrom"]["secretKeyRef"], json!({"name": "crm-database", "key": "DATABASE_URL"}));
}

#[test]
fn monitoring_objects_follow_their_switches() {
    let kinds = |values: &[Value]| -> BTreeSet<String> {
        render(values).iter().map(|o| o["kind"].as_str().unwrap().to_owned()).collect()
    };
    let off = kinds(&[
        minimal(),
        json!({"alerts": {"enabled": false}, "metrics": {"podMonitor": {"enabled": false}}}),
    ]);
    assert!(!off.contains("PrometheusRule") && !off.contains("PodMonitor"), "{off:?}");
    let network = kinds(&[minimal(), json!({"networkPolicy": {"enabled": true}})]);
    assert!(network.contains("NetworkPolicy") && !kinds(&[minimal()]).contains("NetworkPolicy"));
}

#[test]
fn the_notes_say_how_to_check_reach_and_preview() {
    let notes = helm("notes", &[minimal()], "crm").unwrap_or_else(|e| panic!("{e}"));
    for expected in [
        "kubectl -n crm get pods -l app.kubernetes.io/instance=freshplan",
        "port-forward svc/freshplan-query 8080:8080",
        "get lease freshplan-operator",
        "freshplan-operator calendar preview",
        "operator.crm.tokenSecret.name",
        "get sp freshplan -o jsonpath='{.status.floorSummary}'",
    ] {
        assert!(notes.contains(expected), "{expected} in:\n{notes}");
    }
    // Every status field the notes read is one the ScalingProfile has.
    let schema =
        repository_crd("freshplan.io", "v1alpha1", "ScalingProfile").expect("the ScalingProfile CRD");
    let status = &schema["properties"]["status"]["properties"];
    for (at, _) in notes.match_indices(".status.") {
        let field: String = notes[at + 8..].chars().take_while(char::is_ascii_alphanumeric).collect();
        assert!(status.get(&field).is_some(), "the notes read .status.{field}, which ScalingProfile has not");
    }
}

// === values.schema.json ===

#[test]
fn an_unknown_territory_is_refused_naming_it_and_the_known_codes() {
    let message = refusal(json!({"territories": {"BAVARIA": {}}}));
    assert!(
        message.contains("invalid propertyName 'BAVARIA'") && message.contains("'BY', 'BE'"),
        "{message}"
    );
}

#[test]
fn an_unknown_key_in_a_territory_is_refused_naming_it() {
    let message = refusal(json!({"territories": {"BY": {"query": {"replica": 3}}}}));
    assert!(
        message.contains("/territories/BY/query") && message.contains("'replica' not allowed"),
        "{message}"
    );
    let message = refusal(json!({"territories": {"BY": {"querry": {}}}}));
    assert!(message.contains("/territories/BY") && message.contains("'querry' not allowed"), "{message}");
}

#[test]
fn negative_replicas_are_refused_naming_where() {
    let message = refusal(json!({"territories": {"NW": {"command": {"replicas": -1}}}}));
    assert!(message.contains("/territories/NW/command/replicas") && message.contains("minimum"), "{message}");
    let message = refusal(json!({"operator": {"replicas": -2}}));
    assert!(message.contains("/operator/replicas"), "{message}");
}

#[test]
fn a_missing_database_secret_is_refused_by_render_and_lint() {
    let message = refusal(json!({"database": {"existingSecret": ""}}));
    assert!(message.contains("/database/existingSecret") && message.contains("minLength"), "{message}");
    let report = helm("lint", &[json!({})], "crm").expect_err("lint fails on the bare defaults");
    assert!(report.contains("/database/existingSecret"), "{report}");
}

#[test]
fn an_auth_without_keys_is_refused_before_the_crm_would_refuse_to_start() {
    let message = refusal(json!({"auth": {"jwksUrl": ""}}));
    assert!(message.contains("give auth.jwksUrl or auth.publicKeys.secret"), "{message}");
}

// === RBAC ===

/// One grant of a rule: (verb, group, resource).
type Grant = (String, String, String);

/// The grants of a Role's or ClusterRole's rules, with their resourceNames.
fn grants(role: &Value) -> Vec<(Grant, Vec<String>)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().into_iter().flatten().map(|s| s.as_str().unwrap().to_owned()).collect()
    };
    let mut found = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let names = strings(&rule["resourceNames"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    found.push(((verb, group.clone(), resource.clone()), names.clone()));
                }
            }
        }
    }
    found
}

fn grant(access: &Access) -> Grant {
    (access.verb.clone(), access.group.clone(), access.resource.clone())
}

/// Grants the operator holds that the scenario below does not exercise, and why it needs them.
const UNEXERCISED: [(&str, &str, &str, &str); 1] = [
    // The prune of generated objects covers every generated kind; a policy always has its one
    // consumer, so only a rename of the generated consumer (a new operator version) prunes one.
    ("delete", "configuration.konghq.com", "kongconsumers", "pruned like every generated kind"),
];

/// Runs the operator binary against the in-memory API server (KEDA, Kong and Gateway API
/// installed) through everything it does: leader election, TenantPolicies with every target
/// kind, a plugin and a key dropped (prune), a deletion (finalizer), a ScalingProfile moved from
/// KEDA to HPAs and back (prune of both), a conflict on the first annotation of each target kind
/// (the target read again), and SIGTERM (the lease released). Every request it made.
async fn operator_requests() -> Vec<Recorded> {
    let api = FakeApi::start(full_cluster()).await;
    for collection in ["/ingresses/", "/services/", "/httproutes/"] {
        let (method, status) = (axum::http::Method::PATCH, axum::http::StatusCode::CONFLICT);
        api.fail_next(Fault { method, path_contains: collection.into(), status });
    }
    let mut seeded = examples::scaling();
    seeded.extend(examples::documents("tenant-policies.yaml"));
    seeded.extend(examples::policy_targets());
    seeded.push(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kong-redis", "namespace": "crm"},
        "data": {"password": "c2VjcmV0"},
    }));
    for object in seeded {
        api.insert(object);
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_freshplan-operator"));
    let mut operator = OperatorProcess::start(binary, dir.path(), &api, "info", &[]);
    let wait = Duration::from_secs(30);
    let count = |kind: &str| api.all(kind).len();

    operator
        .until("acme's plugins", wait, async || api.get("KongPlugin", "crm", "acme-cors").is_some())
        .await;
    operator.until("the ScaledObjects", wait, async || count("ScaledObject") == 6).await;
    let secrets = count("Secret");

    // acme drops CORS and its second key: the plugin and the credential Secret are pruned.
    let first_key = examples::policy("acme")["spec"]["auth"]["keys"][0].clone();
    api.edit("TenantPolicy", "crm", "acme", json!({"spec": {"cors": null, "auth": {"keys": [first_key]}}}));
    operator
        .until("acme-cors pruned", wait, async || api.get("KongPlugin", "crm", "acme-cors").is_none())
        .await;
    operator.until("the key's Secret pruned", wait, async || count("Secret") == secrets - 1).await;

    // The profile moves to HPAs (ScaledObjects pruned), then back (HPAs pruned).
    api.edit("ScalingProfile", "crm", "crm", json!({"spec": {"mode": "hpa"}}));
    operator
        .until("HPAs only", wait, async || {
            count("ScaledObject") == 0 && count("HorizontalPodAutoscaler") == 6
        })
        .await;
    api.edit("ScalingProfile", "crm", "crm", json!({"spec": {"mode": "keda"}}));
    operator
        .until("ScaledObjects only", wait, async || {
            count("HorizontalPodAutoscaler") == 0 && count("ScaledObject") == 6
        })
        .await;

    // bergblick is deleted: its finalizer takes its plugins out of the targets' annotations.
    api.delete("TenantPolicy", "crm", "bergblick");
    operator
        .until("bergblick gone", wait, async || api.get("TenantPolicy", "crm", "bergblick").is_none())
        .await;

    let (status, log) = operator.terminate().await;
    assert!(status.success(), "{status}: {log}");
    api.requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_role_grants_exactly_what_the_operator_uses_and_no_wildcards() {
    let objects = render(&[minimal()]);
    let role_of = |kind: &str| -> Value {
        objects.iter().find(|o| o["kind"] == kind && name(o) == "freshplan-operator").cloned().expect(kind)
    };
    let (cluster_role, role) = (role_of("ClusterRole"), role_of("Role"));
    for rule in cluster_role["rules"].as_array().unwrap().iter().chain(role["rules"].as_array().unwrap()) {
        for field in ["verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"] {
            let values = rule[field].as_array().into_iter().flatten();
            assert!(values.clone().all(|v| v != "*"), "a wildcard in {field}: {rule}");
        }
    }
    let binding = role_of("RoleBinding");
    assert_eq!(binding["subjects"][0]["name"], "freshplan-operator");
    assert_eq!(role_of("ClusterRoleBinding")["roleRef"]["name"], "freshplan-operator");

    let cluster_grants = grants(&cluster_role);
    let role_grants = grants(&role);
    let allowed = |access: &Access| {
        let by = |grants: &[(Grant, Vec<String>)]| {
            grants.iter().any(|(g, names)| {
                *g == grant(access)
                    && (names.is_empty() || access.name.as_ref().is_some_and(|n| names.contains(n)))
            })
        };
        // The Role binds in the release's namespace (crm, where OperatorProcess keeps the Lease).
        by(&cluster_grants) || (access.namespace.as_deref() == Some("crm") && by(&role_grants))
    };

    let accesses: BTreeSet<Access> = operator_requests().await.iter().filter_map(Recorded::access).collect();
    let refused: Vec<&Access> = accesses.iter().filter(|a| !allowed(a)).collect();
    assert!(refused.is_empty(), "the operator would be forbidden: {refused:#?}");

    let used: BTreeSet<Grant> = accesses.iter().map(grant).collect();
    for (verb, group, resource, _) in UNEXERCISED {
        let listed = (verb.to_owned(), group.to_owned(), resource.to_owned());
        assert!(!used.contains(&listed), "{listed:?} is used now: take it off UNEXERCISED");
    }
    let unused: Vec<&Grant> = cluster_grants
        .iter()
        .chain(&role_grants)
        .map(|(g, _)| g)
        .filter(|g| !used.contains(*g))
        .filter(|(verb, group, resource)| {
            !UNEXERCISED.iter().any(|(v, gr, r, _)| v == verb && gr == group && r == resource)
        })
        .collect();
    assert!(unused.is_empty(), "granted but never used: {unused:#?}");
}
