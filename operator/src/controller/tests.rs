//! The controllers against the in-memory API server over HTTP, through kube's own client: what
//! they write, in which order, and that each object they send is one Kong, KEDA and the API server
//! accept.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::crd::tenant_policy::TenantPolicy;
use crate::crm::CrmClient;
use crate::metrics::Metrics;
use crate::testing::examples;
use crate::testing::fake_api::{FakeApi, Fault, Recorded, Served, full_cluster};
use crate::upstream::kic_violations;

mod scaling;
mod sync;

/// A fake API server with the controllers running against it.
struct Harness {
    api: FakeApi,
    metrics: Metrics,
    /// Where `POST /sync/{namespace}/{name}` would send its requests.
    sync: mpsc::Sender<ObjectRef<TenantPolicy>>,
    stop: Option<oneshot::Sender<()>>,
    controllers: Option<JoinHandle<()>>,
}

impl Harness {
    async fn start(served: Vec<Served>, objects: Vec<Value>) -> Harness {
        Harness::launch(served, objects, |_| {}).await
    }

    /// With `crm` as the CRM's settings registry.
    async fn start_with(served: Vec<Served>, objects: Vec<Value>, crm: Option<CrmClient>) -> Harness {
        Harness::launch(served, objects, |options| options.crm = crm).await
    }

    /// On the clock `clock`.
    async fn start_at(
        served: Vec<Served>,
        objects: Vec<Value>,
        clock: impl Fn() -> Timestamp + Send + Sync + 'static,
    ) -> Harness {
        Harness::launch(served, objects, |options| options.clock = Arc::new(clock)).await
    }

    /// `objects` in a new fake API server serving `served`, and the controllers with the options
    /// `configure` sets.
    async fn launch(
        served: Vec<Served>,
        objects: Vec<Value>,
        configure: impl FnOnce(&mut super::Options),
    ) -> Harness {
        let api = FakeApi::start(served).await;
        for object in objects {
            api.insert(object);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let (sync, requests) = mpsc::channel(16);
        let metrics = Metrics::new();
        let mut options = super::Options {
            instance: Some("test".into()),
            sync_requests: Some(Arc::new(tokio::sync::Mutex::new(requests))),
            ..super::Options::new(metrics.clone())
        };
        configure(&mut options);
        let client = api.client();
        let controllers = tokio::spawn(super::run(client, options, async {
            let _ = stopped.await;
        }));
        Harness { api, metrics, sync, stop: Some(stop), controllers: Some(controllers) }
    }

    /// Successful reconciles of `kind` so far.
    fn reconciles(&self, kind: &str) -> u64 {
        let text = self.metrics.encode();
        let line = format!("freshplan_operator_reconciliations_total{{kind=\"{kind}\",result=\"ok\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&line)).map_or(0, |n| n.parse().unwrap())
    }

    /// Makes a change that asks for nothing new (a label on `kind` `crm/name`), and waits until
    /// the controller has reconciled it, and a little longer for anything it might send.
    async fn touch(&self, kind: &str, name: &str, value: &str) {
        let before = self.reconciles(kind);
        self.api.edit(kind, "crm", name, json!({"metadata": {"labels": {"touched": value}}}));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.reconciles(kind) == before {
            assert!(tokio::time::Instant::now() < deadline, "the touch was never reconciled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// Waits until `done` holds, then until nothing has been written for a while: the
    /// controllers have settled.
    async fn settle(&self, what: &str, done: impl Fn(&FakeApi) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done(&self.api) {
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; requests:\n{}",
                    lines(&self.api.requests(), false).join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut writes = self.writes().len();
        loop {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let now = self.writes().len();
            if now == writes {
                return;
            }
            writes = now;
        }
    }

    fn writes(&self) -> Vec<Recorded> {
        self.api.requests().into_iter().filter(Recorded::is_write).collect()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        let controllers = self.controllers.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), controllers)
            .await
            .expect("a graceful stop")
            .expect("no panic");
    }
}

fn lines(requests: &[Recorded], writes_only: bool) -> Vec<String> {
    requests.iter().filter(|r| !writes_only || r.is_write()).map(Recorded::line).collect()
}

/// Every object in a write is one the API server (and Kong, for its kinds) accepts.
fn assert_valid(writes: &[Recorded]) {
    for write in writes {
        let Some(body) = &write.body() else { continue };
        if matches!(body["kind"].as_str(), Some("KongPlugin" | "KongConsumer" | "Secret")) {
            assert_eq!(kic_violations(body), Vec::<String>::new(), "{}: {body:#}", write.line());
        }
    }
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

fn ready(api: &FakeApi, name: &str) -> Option<(String, String)> {
    let policy = api.get("TenantPolicy", "crm", name)?;
    let ready = condition(&policy, "Ready")?;
    Some((ready["status"].as_str()?.to_owned(), ready["reason"].as_str()?.to_owned()))
}

fn acme_cluster() -> Vec<Value> {
    vec![
        examples::policy("acme"),
        examples::ingress("crm-acme", Some("user-log")),
        examples::ingress("crm-acme-samples", None),
    ]
}

const MANAGER: &str = "?fieldManager=freshplan-operator";

#[tokio::test]
async fn a_new_policy_is_applied_once_and_a_second_reconcile_writes_nothing() {
    let harness = Harness::start(full_cluster(), acme_cluster()).await;
    harness.settle("acme ready", |api| ready(api, "acme") == Some(("True".into(), "Applied".into()))).await;
    let writes = harness.writes();
    assert_valid(&writes);

    // The finalizer first, then Secrets, the consumer and the plugins by server-side apply under
    // one field manager, then the targets' annotations, then the status; each once.
    let mut expected =
        vec!["PATCH /apis/freshplan.io/v1alpha1/namespaces/crm/tenantpolicies/acme".to_owned()];
    let secrets: Vec<String> = harness
        .api
        .all("Secret")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(secrets.len(), 2);
    for secret in &secrets {
        expected.push(format!("PATCH /api/v1/namespaces/crm/secrets/{secret}{MANAGER}"));
    }
    expected
        .push(format!("PATCH /apis/configuration.konghq.com/v1/namespaces/crm/kongconsumers/acme{MANAGER}"));
    for plugin in [
        "pre-function",
        "cors",
        "correlation-id",
        "request-size-limiting",
        "jwt",
        "rate-limiting",
        "rate-limiting-sample-requests",
    ] {
        expected.push(format!(
            "PATCH /apis/configuration.konghq.com/v1/namespaces/crm/kongplugins/acme-{plugin}{MANAGER}"
        ));
    }
    expected.push("PATCH /apis/networking.k8s.io/v1/namespaces/crm/ingresses/crm-acme".to_owned());
    expected.push("PATCH /apis/networking.k8s.io/v1/namespaces/crm/ingresses/crm-acme-samples".to_owned());
    expected.push("PATCH /apis/freshplan.io/v1alpha1/namespaces/crm/tenantpolicies/acme/status".to_owned());
    // Two Events: that the CRM settings the policy names cannot be read (this operator has no
    // CRM), and what was applied.
    expected.push("POST /apis/events.k8s.io/v1/namespaces/crm/events".to_owned());
    expected.push("POST /apis/events.k8s.io/v1/namespaces/crm/events".to_owned());
    assert_eq!(lines(&writes, true), expected);
    let reasons: Vec<String> =
        writes.iter().filter_map(|w| Some(w.body()?["reason"].as_str()?.to_owned())).collect();
    assert_eq!(reasons, ["CrmNotConfigured", "Applied"]);

    // Server-side apply, forced, as the operator's manager.
    let apply = writes.iter().find(|w| w.path.ends_with("/kongplugins/acme-jwt")).unwrap();
    assert_eq!(apply.content_type.as_deref(), Some("application/apply-patch+yaml"));
    assert_eq!(apply.query.get("force").map(String::as_str), Some("true"));

    // The user's plugin and annotation stay; ours follow.
    let annotations =
        harness.api.get("Ingress", "crm", "crm-acme").unwrap()["metadata"]["annotations"].clone();
    assert_eq!(
        annotations["konghq.com/plugins"],
        "user-log,acme-pre-function,acme-cors,acme-correlation-id,acme-request-size-limiting,acme-jwt,acme-rate-limiting"
    );
    assert_eq!(annotations["team"], "sales");
    let patch = writes.iter().find(|w| w.path.ends_with("/ingresses/crm-acme")).unwrap();
    assert_eq!(patch.content_type.as_deref(), Some("application/merge-patch+json"));
    assert!(patch.body().unwrap()["metadata"]["resourceVersion"].is_string(), "optimistic concurrency");
    assert!(patch.body().unwrap().get("spec").is_none(), "nothing but the annotations");

    let policy = harness.api.get("TenantPolicy", "crm", "acme").unwrap();
    assert_eq!(policy["status"]["observedGeneration"], 1);
    assert_eq!(condition(&policy, "TargetsFound").unwrap()["status"], "True");
    assert_eq!(policy["status"]["generated"].as_array().unwrap().len(), 10);

    // Touch the policy without changing what it asks for: a reconcile that writes nothing.
    // It reads its targets from the watch's copy: no request at all.
    harness.api.clear_requests();
    harness.touch("TenantPolicy", "acme", "yes").await;
    assert_eq!(lines(&harness.api.requests(), false), Vec::<String>::new());
    harness.stop().await;
}

#[tokio::test]
async fn drift_is_repaired_and_what_the_spec_drops_is_pruned() {
    let harness = Harness::start(full_cluster(), acme_cluster()).await;
    harness.settle("acme ready", |api| ready(api, "acme") == Some(("True".into(), "Applied".into()))).await;

    // Someone edits a generated plugin: it is applied again, once.
    harness.api.clear_requests();
    harness.api.edit("KongPlugin", "crm", "acme-rate-limiting", json!({"config": {"minute": 999999}}));
    harness
        .settle("the plugin repaired", |api| {
            api.get("KongPlugin", "crm", "acme-rate-limiting").unwrap()["config"]["minute"] == 600
        })
        .await;
    // The repair, and an Event saying so (the recorder counts a repeated Event up with a PATCH).
    let writes = lines(&harness.writes(), true);
    assert_eq!(writes.len(), 2, "{writes:#?}");
    assert_eq!(
        writes[0],
        format!(
            "PATCH /apis/configuration.konghq.com/v1/namespaces/crm/kongplugins/acme-rate-limiting{MANAGER}"
        )
    );
    assert!(writes[1].starts_with("PATCH /apis/events.k8s.io/v1/namespaces/crm/events/acme."), "{writes:#?}");

    // Someone deletes one: it is created again.
    harness.api.delete("KongPlugin", "crm", "acme-jwt");
    harness.settle("the plugin back", |api| api.get("KongPlugin", "crm", "acme-jwt").is_some()).await;

    // The spec drops CORS and the sample route limit: their plugins go, and so do their names
    // from the annotations; the user's plugin stays.
    harness.api.clear_requests();
    harness.api.edit(
        "TenantPolicy",
        "crm",
        "acme",
        json!({"spec": {"cors": null, "rateLimit": {"routes": null}}}),
    );
    harness.settle("cors pruned", |api| api.get("KongPlugin", "crm", "acme-cors").is_none()).await;
    let deletes: Vec<String> =
        lines(&harness.writes(), true).into_iter().filter(|l| l.starts_with("DELETE")).collect();
    assert_eq!(
        deletes,
        [
            "DELETE /apis/configuration.konghq.com/v1/namespaces/crm/kongplugins/acme-cors",
            "DELETE /apis/configuration.konghq.com/v1/namespaces/crm/kongplugins/acme-rate-limiting-sample-requests",
        ]
    );
    let annotations =
        |name: &str| harness.api.get("Ingress", "crm", name).unwrap()["metadata"]["annotations"].clone();
    assert_eq!(
        annotations("crm-acme")["konghq.com/plugins"],
        "user-log,acme-pre-function,acme-correlation-id,acme-request-size-limiting,acme-jwt,acme-rate-limiting"
    );
    // The sample Ingress is no longer a target: the operator's names leave it entirely.
    assert_eq!(annotations("crm-acme-samples")["konghq.com/plugins"], Value::Null);
    assert_eq!(annotations("crm-acme-samples")["freshplan.io/managed-plugins"], Value::Null);
    harness.stop().await;
}

#[tokio::test]
async fn a_users_edit_of_a_targets_plugins_is_repaired_with_the_version_the_watch_showed() {
    let harness = Harness::start(full_cluster(), acme_cluster()).await;
    harness.settle("acme ready", |api| ready(api, "acme") == Some(("True".into(), "Applied".into()))).await;
    harness.api.clear_requests();
    // Someone sets the annotation to their plugin alone (and keeps the operator's record).
    harness.api.edit(
        "Ingress",
        "crm",
        "crm-acme",
        json!({"metadata": {"annotations": {"konghq.com/plugins": "user-log"}}}),
    );
    let version =
        harness.api.get("Ingress", "crm", "crm-acme").unwrap()["metadata"]["resourceVersion"].clone();
    let ours = |api: &FakeApi| {
        let plugins =
            api.get("Ingress", "crm", "crm-acme").unwrap()["metadata"]["annotations"]["konghq.com/plugins"]
                .clone();
        plugins.as_str().is_some_and(|p| p.starts_with("user-log,acme-"))
    };
    harness.settle("the names back", ours).await;
    // One write, no read: the watch's copy had the edit and its version.
    let requests = harness.api.requests();
    let target: Vec<&Recorded> =
        requests.iter().filter(|r| r.path.ends_with("/ingresses/crm-acme")).collect();
    assert_eq!(target.len(), 1, "{:#?}", lines(&requests, false));
    assert_eq!(target[0].method, "PATCH");
    assert_eq!(target[0].body().unwrap()["metadata"]["resourceVersion"], version);
    harness.stop().await;
}

#[tokio::test]
async fn a_conflict_on_a_target_is_retried_with_its_new_version_and_keeps_the_users_plugins() {
    let harness = Harness::start(full_cluster(), acme_cluster()).await;
    harness.api.fail_next(Fault {
        method: axum::http::Method::PATCH,
        path_contains: "/ingresses/crm-acme".into(),
        status: axum::http::StatusCode::CONFLICT,
    });
    harness.settle("acme ready", |api| ready(api, "acme") == Some(("True".into(), "Applied".into()))).await;
    let target: Vec<String> = lines(&harness.api.requests(), false)
        .into_iter()
        .filter(|l| l.ends_with("/ingresses/crm-acme"))
        .collect();
    // The first write carries the version the watch showed; after the conflict the target is
    // read again. Nothing more: the reconciles after read the watch's copy.
    assert_eq!(
        target,
        [
            "PATCH /apis/networking.k8s.io/v1/namespaces/crm/ingresses/crm-acme",
            "GET /apis/networking.k8s.io/v1/namespaces/crm/ingresses/crm-acme",
            "PATCH /apis/networking.k8s.io/v1/namespaces/crm/ingresses/crm-acme",
        ]
    );
    let plugins = harness.api.get("Ingress", "crm", "crm-acme").unwrap()["metadata"]["annotations"]["konghq.com/plugins"].clone();
    assert!(plugins.as_str().unwrap().starts_with("user-log,acme-"), "{plugins}");
    harness.stop().await;
}

#[tokio::test]
async fn an_invalid_spec_becomes_a_condition_and_a_warning_and_nothing_is_applied() {
    let mut policy = examples::policy("acme");
    policy["spec"]["rateLimit"]["limits"] = json!({"second": 100, "minute": 10});
    let harness = Harness::start(full_cluster(), vec![policy, examples::ingress("crm-acme", None)]).await;
    harness
        .settle("acme refused", |api| ready(api, "acme").is_some_and(|(_, reason)| reason == "InvalidSpec"))
        .await;
    let policy = harness.api.get("TenantPolicy", "crm", "acme").unwrap();
    let message = condition(&policy, "Ready").unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("spec.rateLimit.limits: limits must not decrease"), "{message}");
    assert!(harness.api.all("KongPlugin").is_empty());
    let events: Vec<Value> =
        harness.writes().iter().filter(|w| w.path.ends_with("/events")).filter_map(|w| w.body()).collect();
    assert_eq!(events.len(), 1, "one warning, not one per reconcile");
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["reason"].as_str()),
        (Some("Warning"), Some("InvalidSpec"))
    );
    harness.stop().await;
}

#[tokio::test]
async fn without_kong_the_policy_says_so_and_the_operator_keeps_running() {
    let served: Vec<Served> = full_cluster().into_iter().filter(|s| !s.prefix.contains("konghq")).collect();
    let harness = Harness::start(served, acme_cluster()).await;
    harness
        .settle("acme held", |api| ready(api, "acme").is_some_and(|(_, reason)| reason == "KongNotInstalled"))
        .await;
    assert!(harness.api.requests().iter().all(|r| !r.path.contains("/kongplugins") || r.method == "GET"));
    harness.stop().await;
}

#[tokio::test]
async fn a_deleted_policy_takes_its_plugins_out_of_the_targets_and_its_objects_go() {
    let harness = Harness::start(full_cluster(), acme_cluster()).await;
    harness.settle("acme ready", |api| ready(api, "acme") == Some(("True".into(), "Applied".into()))).await;
    harness.api.delete("TenantPolicy", "crm", "acme");
    harness.settle("acme gone", |api| api.get("TenantPolicy", "crm", "acme").is_none()).await;
    let annotations =
        harness.api.get("Ingress", "crm", "crm-acme").unwrap()["metadata"]["annotations"].clone();
    assert_eq!(annotations["konghq.com/plugins"], "user-log");
    assert!(harness.api.all("KongPlugin").is_empty() && harness.api.all("KongConsumer").is_empty());
    harness.stop().await;
}
