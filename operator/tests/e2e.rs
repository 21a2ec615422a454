//! The operator binary end to end: `freshplan-operator run` against the in-memory API server
//! (through a kubeconfig, as against a cluster) and a real CRM server on its own PostgreSQL,
//! seeded with every example. It takes the lease, applies the CRM's settings, follows a settings
//! change on `POST /sync`, moves HPA floors at a seasonal transition, serves health and metrics,
//! and on SIGTERM stops and gives the lease up.

use std::path::Path;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use crm_server::auth::UserRole;
use crm_server::testing::app::{fetch, get_url};
use crm_server::testing::{TestApp, TestResponse};
use freshplan_operator::testing::examples;
use freshplan_operator::testing::fake_api::{FakeApi, Served, full_cluster};
use freshplan_operator::testing::process::OperatorProcess;
use http_body_util::Full;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// The binary with the CRM's URL and a platform token, its clock started at `clock_start`.
fn start(dir: &Path, api: &FakeApi, crm: &TestApp, clock_start: Timestamp) -> OperatorProcess {
    let token_file = dir.join("crm-token");
    let token = crm.token("system:serviceaccount:freshplan:operator", &[UserRole::Platform], &[], &[]);
    std::fs::write(&token_file, token).unwrap();
    let args = [
        "--crm-url".to_owned(),
        crm.url(""),
        "--crm-token-file".to_owned(),
        token_file.display().to_string(),
        "--clock-start".to_owned(),
        clock_start.to_string(),
    ];
    let binary = Path::new(env!("CARGO_BIN_EXE_freshplan-operator"));
    OperatorProcess::start(binary, dir, api, "info,freshplan_operator=debug", &args)
}

async fn get(url: &str) -> Option<TestResponse> {
    get_url(url).await.ok()
}

async fn post(url: &str) -> TestResponse {
    fetch(Request::post(url).body(Full::new(Bytes::new())).unwrap()).await.unwrap()
}

/// How long any step may take.
const WAIT: Duration = Duration::from_secs(30);

fn without_keda() -> Vec<Served> {
    full_cluster().into_iter().filter(|s| !s.prefix.contains("keda.sh")).collect()
}

fn minute_limit(api: &FakeApi) -> Option<i64> {
    api.get("KongPlugin", "crm", "acme-rate-limiting")?["config"]["minute"].as_i64()
}

fn min_replicas(api: &FakeApi, name: &str) -> Option<i64> {
    api.get("HorizontalPodAutoscaler", "crm", name)?["spec"]["minReplicas"].as_i64()
}

fn lease_holder(api: &FakeApi) -> Option<String> {
    let lease = api.get("Lease", "crm", "freshplan-operator")?;
    Some(lease["spec"]["holderIdentity"].as_str().unwrap_or_default().to_owned())
}

/// The HPA floors that a seasonal transition moves: the first transition after the Saturday of
/// the Oktoberfest's opening weekend, and each moving workload's floor before and after it.
fn transition() -> (Timestamp, Vec<(String, i64, i64)>) {
    let bundle = examples::bundle(&examples::scaling());
    let plan = |at: Timestamp| bundle.plans(false, at).remove(0).1;
    let saturday =
        "2026-09-19T12:00".parse::<jiff::civil::DateTime>().unwrap().in_tz("Europe/Berlin").unwrap();
    let at = plan(saturday.timestamp()).requeue_at.expect("a transition after the Saturday");
    let (before, after) = (plan(at - SignedDuration::from_secs(1)), plan(at + SignedDuration::from_secs(1)));
    let moving = before
        .workloads
        .iter()
        .zip(&after.workloads)
        .map(|(b, a)| (a.name.clone(), i64::from(b.floor.max(1)), i64::from(a.floor.max(1))))
        .filter(|(_, before, after)| before != after)
        .collect::<Vec<_>>();
    assert!(!moving.is_empty(), "the transition moves some floor");
    (at, moving)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_applies_settings_follows_a_change_and_a_transition_and_stops_on_sigterm() {
    let crm = TestApp::spawn().await;
    crm.put_setting("tenant:acme", "gateway.rateLimit", json!({"minute": 900})).await;
    let api = FakeApi::start(without_keda()).await;
    let mut seeded = examples::scaling();
    seeded.extend(examples::documents("tenant-policies.yaml"));
    seeded.extend(examples::policy_targets());
    for object in seeded {
        api.insert(object);
    }
    let (at, moving) = transition();
    let dir = tempfile::tempdir().unwrap();
    // The operator's clock starts 10 s before the transition (the lease keeps real time).
    let mut operator = start(dir.path(), &api, &crm, at - SignedDuration::from_secs(10));

    let health = operator.url("/healthz");
    operator
        .until("/healthz", WAIT, async || get(&health).await.is_some_and(|r| r.status == StatusCode::OK))
        .await;
    let ready = operator.url("/readyz");
    operator
        .until("/readyz", WAIT, async || get(&ready).await.is_some_and(|r| r.status == StatusCode::OK))
        .await;
    operator.until("the lease", WAIT, async || lease_holder(&api).as_deref() == Some("operator-0")).await;

    // The CRM's setting is in force; the three policies are applied; HPAs (no KEDA here) stand at
    // the floors before the transition.
    operator.until("the CRM's limit", WAIT, async || minute_limit(&api) == Some(900)).await;
    for name in ["acme", "bergblick", "kaiserhof-munich"] {
        operator
            .until(&format!("{name} ready"), WAIT, async || {
                let policy = api.get("TenantPolicy", "crm", name).unwrap();
                policy["status"]["conditions"].as_array().is_some_and(|conditions| {
                    conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .await;
    }
    let annotation = &api.get("Ingress", "crm", "crm-acme").unwrap()["metadata"]["annotations"];
    assert!(annotation["konghq.com/plugins"].as_str().unwrap().starts_with("user-log,acme-"), "{annotation}");

    // The seasonal transition passes on the operator's clock: the floors move, nothing prompting.
    for (name, _, after) in &moving {
        operator
            .until(&format!("{name} at {after}"), WAIT, async || min_replicas(&api, name) == Some(*after))
            .await;
    }
    let profile = api.get("ScalingProfile", "crm", "crm").unwrap();
    let next: Timestamp = profile["status"]["nextTransition"].as_str().unwrap().parse().unwrap();
    assert!(next > at, "the status names the transition after: {profile:#}");

    // The registry changes; a sync request makes the operator read it at once.
    crm.put_setting("tenant:acme", "gateway.rateLimit", json!({"minute": 1200})).await;
    let sync = post(&operator.url("/sync/crm/acme")).await;
    assert_eq!(sync.status, StatusCode::ACCEPTED, "{}", sync.text());
    operator.until("the new limit", WAIT, async || minute_limit(&api) == Some(1200)).await;
    // The report follows the apply: wait for it rather than race it.
    let reported = async || crm.get("/settings/sync-reports?tenant=acme").await.json();
    operator
        .until("the second report", WAIT, async || {
            reported().await["items"].as_array().is_some_and(|i| i.len() >= 2)
        })
        .await;
    let reports = reported().await;
    let outcomes: Vec<&Value> = reports["items"].as_array().unwrap().iter().map(|r| &r["outcome"]).collect();
    assert_eq!(outcomes, [&json!("applied"), &json!("applied")], "{reports:#}");

    let metrics = get(&operator.url("/metrics")).await.unwrap().text();
    assert!(metrics.contains("freshplan_operator_leader 1\n"), "{metrics}");
    for kind in ["TenantPolicy", "ScalingProfile"] {
        let line = format!("freshplan_operator_reconciliations_total{{kind=\"{kind}\",result=\"ok\"}}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    assert!(
        metrics.contains("freshplan_operator_managed_objects{kind=\"HorizontalPodAutoscaler\"} 6\n"),
        "{metrics}"
    );

    // SIGTERM: a clean exit, the lease given up for the next replica, JSON logs naming objects.
    let (status, log) = operator.terminate().await;
    assert!(status.success(), "{status}; the log:\n{log}");
    assert_eq!(lease_holder(&api).as_deref(), Some(""), "the lease is released");
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let reconciled = |object: &str| {
        lines.iter().any(|l| {
            l["message"] == "reconciled"
                && l["spans"].as_array().is_some_and(|spans| spans.iter().any(|s| s["object"] == object))
        })
    };
    assert!(reconciled("TenantPolicy crm/acme"), "a log line names the policy: {log}");
    assert!(reconciled("ScalingProfile crm/crm"), "a log line names the profile: {log}");
}
