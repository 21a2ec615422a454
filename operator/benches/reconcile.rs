//! Reconcile throughput and memory of `freshplan-operator run` against the in-memory API server
//! (a program, not a test: it prints figures). `cargo bench -p freshplan-operator --bench reconcile`
//!
//! The cluster: 500 namespaces, each with the example ScalingProfile, its five SeasonalWindows
//! and nine Deployments (three territories x query/command/relay), and 10 TenantPolicies (the
//! example `acme` renamed, without `settingsRef`: no CRM here) with their Ingresses; 5,000
//! TenantPolicies and 500 ScalingProfiles in all. The operator binary starts against it and the
//! clock runs from its start until its last write once every policy and profile reports Ready:
//! objects/s is those 5,500 custom resources over that time (start-up, the initial lists and
//! every write included). Peak RSS is
//! the operator process's (VmHWM), not this program's, which hosts the API server.
//!
//! Environment: BENCH_NAMESPACES (500), BENCH_POLICIES_PER_NAMESPACE (10), BENCH_LOG (the
//! operator's log filter, `warn`; its log is printed at the end when set), BENCH_REQUESTS (set:
//! the requests by method and collection), BENCH_API_THREADS (the API server's worker threads; one per core).

use std::path::Path;
use std::time::{Duration, Instant};

use crm_server::testing::app::get_url;
use freshplan_operator::testing::examples;
use freshplan_operator::testing::fake_api::{FakeApi, full_cluster};
use freshplan_operator::testing::process::{self, OperatorProcess};
use serde_json::{Value, json};

/// The in-memory API server shares the two cores with the operator under test; the operator's
/// own allocator keeps it from taking more of them than it must.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The scaling examples and `policies` TenantPolicies with their Ingresses, in `namespace`.
fn namespace_objects(namespace: &str, scaling: &[Value], policy: &Value, policies: usize) -> Vec<Value> {
    let mut objects: Vec<Value> = scaling.to_vec();
    for n in 0..policies {
        let name = format!("{namespace}-t{n:02}");
        let mut policy = policy.clone();
        policy["metadata"]["name"] = json!(name);
        policy["spec"]["tenantId"] = json!(name);
        policy["spec"]["targets"] = json!([{"kind": "Ingress", "name": name}]);
        let spec = policy["spec"].as_object_mut().expect("a spec");
        spec.remove("settingsRef");
        spec["rateLimit"].as_object_mut().expect("limits").remove("routes");
        objects.push(policy);
        objects.push(examples::ingress(&name, Some("user-log")));
    }
    for object in &mut objects {
        object["metadata"]["namespace"] = json!(namespace);
    }
    objects
}

fn ready(object: &Value) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn main() {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = std::env::var("BENCH_API_THREADS").ok().and_then(|v| v.parse().ok()) {
        runtime.worker_threads(threads);
    }
    runtime.enable_all().build().expect("a runtime").block_on(bench());
}

async fn bench() {
    let (namespaces, per_namespace) = (env("BENCH_NAMESPACES", 500), env("BENCH_POLICIES_PER_NAMESPACE", 10));
    let api = FakeApi::start(full_cluster()).await;
    let (scaling, policy) = (examples::scaling(), examples::policy("acme"));
    for n in 0..namespaces {
        for object in namespace_objects(&format!("shop-{n:03}"), &scaling, &policy, per_namespace) {
            api.insert(object);
        }
    }
    let (policies, profiles) = (namespaces * per_namespace, namespaces);
    println!("cluster: {policies} TenantPolicies, {profiles} ScalingProfiles in {namespaces} namespaces");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let api_cpu_before = process::cpu_time(std::process::id()).expect("this process's /proc stat");
    let binary = Path::new(env!("CARGO_BIN_EXE_freshplan-operator"));
    let started = Instant::now();
    let log = std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".to_owned());
    let mut operator = OperatorProcess::start(binary, dir.path(), &api, &log, &[]);
    operator
        .until("every policy and profile ready", Duration::from_secs(900), async || {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let done = |kind: &str, count: usize| api.count(kind, ready) == count;
            done("TenantPolicy", policies) && done("ScalingProfile", profiles)
        })
        .await;
    // The clock stops at the last write, not when the poll above noticed: polling faster would
    // take the cores the run is measured on.
    let requests = api.requests();
    let last_write = requests.iter().filter(|r| r.is_write()).map(|r| r.at).max();
    let elapsed = last_write.expect("writes").duration_since(started);
    // VmHWM is the high-water mark: read once, while the process still runs.
    let peak_kib = operator.peak_rss_kib().expect("the operator's /proc status");
    let generated: usize = ["KongPlugin", "KongConsumer", "Secret", "ScaledObject"]
        .iter()
        .map(|kind| api.count(kind, |_| true))
        .sum();
    if std::env::var("BENCH_SIZES").is_ok() {
        for kind in [
            "TenantPolicy",
            "ScalingProfile",
            "SeasonalWindow",
            "Deployment",
            "Ingress",
            "KongPlugin",
            "KongConsumer",
            "Secret",
            "ScaledObject",
            "Event",
        ] {
            let all = api.all(kind);
            let bytes: usize = all.iter().map(|o| o.to_string().len()).sum();
            println!("{kind}: {} objects, {} KiB JSON", all.len(), bytes / 1024);
        }
    }
    let writes = requests.iter().filter(|r| r.is_write()).count();
    if std::env::var("BENCH_REQUESTS").is_ok() {
        // Requests by method and collection (the path without its object name).
        let mut by_collection = std::collections::BTreeMap::<String, usize>::new();
        for request in &requests {
            let collection: Vec<&str> =
                request.path.split('/').filter(|s| !s.is_empty() && !s.starts_with("shop-")).collect();
            *by_collection.entry(format!("{} {}", request.method, collection.join("/"))).or_default() += 1;
        }
        for (line, count) in by_collection {
            println!("{count:>8} {line}");
        }
    }
    let objects = policies + profiles;
    println!(
        "reconciled {objects} objects in {:.2} s: {:.0} objects/s ({generated} generated objects, {writes} writes, {:.0} writes/s)",
        elapsed.as_secs_f64(),
        objects as f64 / elapsed.as_secs_f64(),
        writes as f64 / elapsed.as_secs_f64(),
    );
    let metrics = get_url(&operator.url("/metrics")).await.expect("the metrics").text();
    let reconciles: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("freshplan_operator_reconciliations_total")).collect();
    println!("{}", reconciles.join("\n"));
    let cpu = operator.cpu_time().expect("the operator's /proc stat");
    let api_cpu = process::cpu_time(std::process::id()).expect("this process's /proc stat") - api_cpu_before;
    println!(
        "CPU time: operator {:.2} s, API server (this process, its readiness polls included) {:.2} s",
        cpu.as_secs_f64(),
        api_cpu.as_secs_f64()
    );
    let now_kib = operator.rss_kib().expect("the operator's /proc status");
    println!(
        "operator peak RSS: {:.1} MiB (now, all reconciled: {:.1} MiB)",
        peak_kib as f64 / 1024.0,
        now_kib as f64 / 1024.0
    );
    let (status, log) = operator.terminate().await;
    assert!(status.success(), "{status}: {log}");
    if std::env::var("BENCH_LOG").is_ok() {
        println!("{log}");
    }
}
