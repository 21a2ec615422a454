//! The ScalingProfile controller against the in-memory API server, seeded with the examples (the
//! CRM's profile, its calendars and Deployments) and with the clock pinned: what it writes, in
//! which order, and that every ScaledObject and HPA it sends is one KEDA and the API server accept.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Harness, condition};
use crate::bundle::Bundle;
use crate::plan::{Generated, Plan};
use crate::testing::examples;
use crate::testing::fake_api::{FakeApi, Recorded, Served, full_cluster};
use crate::upstream;

fn lines(requests: &[Recorded]) -> Vec<String> {
    super::lines(requests, false)
}

const MANAGER: &str = "?fieldManager=freshplan-operator";
const PROFILE: &str = "/apis/freshplan.io/v1alpha1/namespaces/crm/scalingprofiles/crm";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/crm/events";
/// The example Deployments, in name order (the order the controller applies in).
const DEPLOYMENTS: [&str; 6] =
    ["crm-command-by", "crm-command-nw", "crm-query-by", "crm-query-nw", "crm-relay-by", "crm-relay-nw"];

fn scaled_object(name: &str) -> String {
    format!("/apis/keda.sh/v1alpha1/namespaces/crm/scaledobjects/{name}")
}

fn hpa(name: &str) -> String {
    format!("/apis/autoscaling/v2/namespaces/crm/horizontalpodautoscalers/{name}")
}

fn berlin(local: &str) -> Timestamp {
    local.parse::<jiff::civil::DateTime>().unwrap().in_tz("Europe/Berlin").unwrap().timestamp()
}

/// Saturday of the 2026 opening weekend of the Oktoberfest, noon (2026-09-19T12:00+02:00).
fn oktoberfest_saturday() -> Timestamp {
    berlin("2026-09-19T12:00")
}

fn examples() -> Vec<Value> {
    examples::scaling()
}

fn bundle() -> Bundle {
    examples::bundle(&examples::scaling())
}

fn plan_at(keda: bool, now: Timestamp) -> Plan {
    let bundle = bundle();
    crate::plan::plan(&bundle.profiles[0], &bundle.windows, &bundle.deployments, keda, now)
}

fn example(kind: &str, name: &str) -> Value {
    examples().into_iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).unwrap()
}

fn without_keda() -> Vec<Served> {
    full_cluster().into_iter().filter(|s| !s.prefix.contains("keda.sh")).collect()
}

/// Every ScaledObject and HPA written is server-side applied, forced, as the operator's manager,
/// and one KEDA and the API server accept.
fn assert_valid(writes: &[Recorded]) {
    let keda = upstream::crd_schema("keda/keda.sh_scaledobjects.yaml", "v1alpha1");
    let hpa = upstream::openapi_component(
        "kubernetes/apis__autoscaling__v2_openapi.json",
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
    );
    for write in writes.iter().filter(|w| w.method == "PATCH") {
        let schema = if write.path.contains("/scaledobjects/") {
            &keda
        } else if write.path.contains("/horizontalpodautoscalers/") {
            &hpa
        } else {
            continue;
        };
        assert_eq!(write.content_type.as_deref(), Some("application/apply-patch+yaml"), "{}", write.line());
        assert_eq!(write.query.get("force").map(String::as_str), Some("true"), "{}", write.line());
        let body = &write.body().expect("a body");
        assert_eq!(upstream::violations(schema, body), Vec::<String>::new(), "{}: {body:#}", write.line());
        assert_eq!(body["metadata"]["labels"]["freshplan.io/scaling-profile"], "crm", "{body:#}");
    }
}

fn ready(api: &FakeApi, name: &str) -> Option<(String, String)> {
    let profile = api.get("ScalingProfile", "crm", name)?;
    let ready = condition(&profile, "Ready")?;
    Some((ready["status"].as_str()?.to_owned(), ready["reason"].as_str()?.to_owned()))
}

fn is_ready(api: &FakeApi) -> bool {
    ready(api, "crm") == Some(("True".into(), "Applied".into()))
}

fn event_bodies(writes: &[Recorded]) -> Vec<Value> {
    writes.iter().filter(|w| w.path.starts_with(EVENTS)).filter_map(|w| w.body()).collect()
}

fn min_replicas(api: &FakeApi, name: &str) -> Option<i64> {
    api.get("HorizontalPodAutoscaler", "crm", name)?["spec"]["minReplicas"].as_i64()
}

#[tokio::test]
async fn the_first_plan_applies_one_scaled_object_per_deployment_and_an_unchanged_one_writes_nothing() {
    let harness = Harness::start_at(full_cluster(), examples(), oktoberfest_saturday).await;
    harness.settle("crm ready", is_ready).await;
    let writes = harness.writes();
    assert_valid(&writes);

    // The ScaledObjects in the Deployments' name order, then the status, then one Event.
    let mut expected: Vec<String> =
        DEPLOYMENTS.iter().map(|d| format!("PATCH {}{MANAGER}", scaled_object(d))).collect();
    expected.push(format!("PATCH {PROFILE}/status"));
    expected.push(format!("POST {EVENTS}"));
    assert_eq!(lines(&writes), expected);

    let profile = harness.api.get("ScalingProfile", "crm", "crm").unwrap();
    let query_by = harness.api.get("ScaledObject", "crm", "crm-query-by").unwrap();
    assert_eq!(query_by["metadata"]["labels"]["freshplan.io/territory"], "BY");
    assert_eq!(query_by["metadata"]["ownerReferences"][0]["uid"], profile["metadata"]["uid"]);
    assert_eq!(query_by["spec"]["scaleTargetRef"]["name"], "crm-query-by");
    // The stretch under way (the opening weekend, 12) is a cron trigger from now on.
    let season: Vec<&Value> =
        query_by["spec"]["triggers"].as_array().unwrap().iter().filter(|t| t["type"] == "cron").collect();
    assert!(
        season
            .iter()
            .any(|t| t["metadata"]["start"] == "0 12 19 9 *" && t["metadata"]["desiredReplicas"] == "12"),
        "{season:#?}"
    );

    let status = &profile["status"];
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["floorSummary"], "query 2-12, command 2-6, relay 1");
    // Midnight in Berlin: the nights' dark period.
    assert_eq!(status["nextTransition"], "2026-09-19T22:00:00Z");
    let floors: Vec<(&str, i64, &str)> = status["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), w["floor"].as_i64().unwrap(), w["kind"].as_str().unwrap()))
        .collect();
    let planned = plan_at(true, oktoberfest_saturday());
    let expected_floors: Vec<(&str, i64, &str)> =
        planned.workloads.iter().map(|w| (w.name.as_str(), i64::from(w.floor), "ScaledObject")).collect();
    assert_eq!(floors, expected_floors);
    assert!(floors.contains(&("crm-query-by", 12, "ScaledObject")), "{floors:?}");
    let active = status["activeWindows"].as_array().unwrap();
    assert!(active.contains(&json!("oktoberfest/wiesn-2026-opening")), "{active:?}");
    let ready = condition(&profile, "Ready").unwrap();
    assert_eq!((&ready["status"], &ready["message"]), (&json!("True"), &json!("6 ScaledObjects")));

    let events = event_bodies(&writes);
    assert_eq!((events[0]["type"].as_str(), events[0]["reason"].as_str()), (Some("Normal"), Some("Applied")));
    assert_eq!(events[0]["note"], "applied 6 objects, pruned 0");

    // A reconcile of the unchanged profile reads its caches and sends nothing at all.
    harness.api.clear_requests();
    harness.touch("ScalingProfile", "crm", "yes").await;
    assert_eq!(lines(&harness.api.requests()), Vec::<String>::new());
    harness.stop().await;
}

/// A clock the test moves, at `start` until it is set: the clock, and its setter.
fn moving_clock(start: Timestamp) -> (impl Fn() -> Timestamp + Send + Sync + 'static, impl Fn(Timestamp)) {
    let now = Arc::new(AtomicI64::new(start.as_millisecond()));
    let read = now.clone();
    let clock =
        move || Timestamp::from_millisecond(read.load(Ordering::SeqCst)).expect("a time set by the test");
    (clock, move |at: Timestamp| now.store(at.as_millisecond(), Ordering::SeqCst))
}

#[tokio::test]
async fn minutes_later_the_same_floors_are_not_written_again_and_a_transition_recompiles() {
    let (clock, set) = moving_clock(oktoberfest_saturday());
    let harness = Harness::start_at(full_cluster(), examples(), clock).await;
    harness.settle("crm ready", is_ready).await;

    // Compiled now, the triggers would start the opening weekend's stretch at 12:07; the ones
    // compiled at noon are just as right, and stay.
    harness.api.clear_requests();
    set(berlin("2026-09-19T12:07:30"));
    harness.touch("ScalingProfile", "crm", "later").await;
    assert_eq!(lines(&harness.api.requests()), Vec::<String>::new());

    // Past midnight the floors changed: the objects whose triggers differ are compiled again.
    let after = berlin("2026-09-20T00:00:30");
    let (noon, midnight) = (plan_at(true, oktoberfest_saturday()), plan_at(true, after));
    let spec = |object: &Generated| serde_json::to_value(object).unwrap()["spec"].clone();
    let changed: Vec<String> = noon
        .objects
        .iter()
        .zip(&midnight.objects)
        .zip(DEPLOYMENTS)
        .filter(|((a, b), _)| spec(a) != spec(b))
        .map(|(_, name)| format!("PATCH {}{MANAGER}", scaled_object(name)))
        .collect();
    assert!(!changed.is_empty());
    set(after);
    harness.touch("ScalingProfile", "crm", "past midnight").await;
    harness
        .settle("the status past midnight", |api| {
            api.get("ScalingProfile", "crm", "crm").unwrap()["status"]["nextTransition"]
                != "2026-09-19T22:00:00Z"
        })
        .await;
    let writes = harness.writes();
    assert_valid(&writes);
    let objects: Vec<String> = lines(&writes).into_iter().filter(|l| l.contains("/scaledobjects/")).collect();
    assert_eq!(objects, changed);
    harness.stop().await;
}

#[tokio::test]
async fn without_keda_auto_gives_hpas_at_the_floor_and_mode_keda_says_keda_is_not_installed() {
    let mut keda_only = example("ScalingProfile", "crm");
    keda_only["metadata"]["name"] = json!("crm-keda");
    keda_only["spec"]["mode"] = json!("keda");
    let mut objects = examples();
    objects.push(keda_only);
    let harness = Harness::start_at(without_keda(), objects, oktoberfest_saturday).await;
    harness
        .settle("both profiles reconciled", |api| {
            is_ready(api) && ready(api, "crm-keda").is_some_and(|(_, reason)| reason == "KedaNotInstalled")
        })
        .await;
    let writes = harness.writes();
    assert_valid(&writes);

    // The HPAs of `crm`, in order; `crm-keda` writes nothing but its status and one Warning.
    let objects: Vec<String> =
        lines(&writes).into_iter().filter(|l| l.contains("/horizontalpodautoscalers/")).collect();
    let expected: Vec<String> = DEPLOYMENTS.iter().map(|d| format!("PATCH {}{MANAGER}", hpa(d))).collect();
    assert_eq!(objects, expected);
    let keda_writes: Vec<String> = lines(&writes).into_iter().filter(|l| l.contains("crm-keda")).collect();
    assert_eq!(keda_writes, [format!("PATCH {PROFILE}-keda/status")]);
    assert!(harness.api.requests().iter().all(|r| !r.path.contains("/scaledobjects")));
    let warnings: Vec<Value> = event_bodies(&writes).into_iter().filter(|e| e["type"] == "Warning").collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["reason"], "KedaNotInstalled");
    assert_eq!(warnings[0]["regarding"]["name"], "crm-keda");

    // minReplicas is the floor now (1 where the floor is 0).
    let planned = plan_at(false, oktoberfest_saturday());
    for workload in &planned.workloads {
        assert_eq!(min_replicas(&harness.api, &workload.name), Some(i64::from(workload.floor.max(1))));
    }
    assert_eq!(min_replicas(&harness.api, "crm-query-by"), Some(12));
    let profile = harness.api.get("ScalingProfile", "crm", "crm").unwrap();
    let workloads = profile["status"]["workloads"].as_array().unwrap();
    assert!(workloads.iter().all(|w| w["kind"] == "HorizontalPodAutoscaler"), "{workloads:#?}");
    let message = condition(&profile, "Ready").unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("6 HorizontalPodAutoscalers; Deployments crm-command-by, "), "{message}");
    assert!(message.contains("needs KEDA"), "{message}");
    harness.stop().await;
}

#[tokio::test]
async fn an_invalid_calendar_holds_the_profile_and_fixing_it_applies_again() {
    let harness = Harness::start_at(full_cluster(), examples(), oktoberfest_saturday).await;
    harness.settle("crm ready", is_ready).await;
    let applied = harness.api.all("ScaledObject");

    harness.api.clear_requests();
    harness.api.edit("SeasonalWindow", "crm", "oktoberfest", json!({"spec": {"timezone": "Europe/Munich"}}));
    harness
        .settle("crm held", |api| ready(api, "crm").is_some_and(|(_, reason)| reason == "CalendarInvalid"))
        .await;
    // Nothing deleted or changed: the status says why, and one Warning.
    assert_eq!(lines(&harness.writes()), [format!("PATCH {PROFILE}/status"), format!("POST {EVENTS}")]);
    assert_eq!(harness.api.all("ScaledObject"), applied);
    let profile = harness.api.get("ScalingProfile", "crm", "crm").unwrap();
    let message = condition(&profile, "Ready").unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("SeasonalWindow oktoberfest: spec.timezone: "), "{message}");
    assert!(message.contains("the objects applied before stay as they are"), "{message}");
    let events = event_bodies(&harness.writes());
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["reason"].as_str()),
        (Some("Warning"), Some("CalendarInvalid"))
    );
    // Reconciled again while held: no second Warning.
    harness.touch("ScalingProfile", "crm", "held").await;
    assert_eq!(event_bodies(&harness.writes()).len(), 1);

    // Fixed, with the Wiesn's query floor raised: that one ScaledObject changes.
    harness.api.clear_requests();
    let mut windows = example("SeasonalWindow", "oktoberfest")["spec"]["windows"].clone();
    windows[0]["floors"]["query"] = json!(10);
    harness.api.edit(
        "SeasonalWindow",
        "crm",
        "oktoberfest",
        json!({"spec": {"timezone": "Europe/Berlin", "windows": windows}}),
    );
    harness.settle("crm ready again", is_ready).await;
    let writes = lines(&harness.writes());
    assert_eq!(
        writes[..2],
        [format!("PATCH {}{MANAGER}", scaled_object("crm-query-by")), format!("PATCH {PROFILE}/status")]
    );
    assert_eq!(writes.len(), 3, "{writes:#?}");
    assert!(writes[2].contains(EVENTS), "{writes:#?}");
    harness.stop().await;
}

#[tokio::test]
async fn deployments_coming_and_going_and_a_switch_to_hpa_are_followed() {
    let harness = Harness::start_at(full_cluster(), examples(), oktoberfest_saturday).await;
    harness.settle("crm ready", is_ready).await;

    // A new Deployment the selector matches gets its ScaledObject.
    harness.api.clear_requests();
    let mut hessen = example("Deployment", "crm-query-nw");
    hessen["metadata"]["name"] = json!("crm-query-he");
    hessen["metadata"]["labels"]["freshplan.io/territory"] = json!("HE");
    harness.api.insert(hessen);
    harness
        .settle("crm-query-he scaled", |api| api.get("ScaledObject", "crm", "crm-query-he").is_some())
        .await;
    let writes = lines(&harness.writes());
    assert_eq!(
        writes[..2],
        [format!("PATCH {}{MANAGER}", scaled_object("crm-query-he")), format!("PATCH {PROFILE}/status")]
    );
    assert_eq!(writes.len(), 3, "{writes:#?}");
    assert_valid(&harness.writes());

    // One that goes has its ScaledObject pruned.
    harness.api.clear_requests();
    harness.api.delete("Deployment", "crm", "crm-relay-nw");
    harness
        .settle("crm-relay-nw pruned", |api| api.get("ScaledObject", "crm", "crm-relay-nw").is_none())
        .await;
    let writes = lines(&harness.writes());
    assert_eq!(
        writes[..2],
        [format!("DELETE {}", scaled_object("crm-relay-nw")), format!("PATCH {PROFILE}/status")]
    );
    assert_eq!(writes.len(), 3, "{writes:#?}");

    // Switched to HPAs: they are applied, then the ScaledObjects go.
    harness.api.clear_requests();
    harness.api.edit("ScalingProfile", "crm", "crm", json!({"spec": {"mode": "hpa"}}));
    harness.settle("scaled objects gone", |api| api.all("ScaledObject").is_empty() && is_ready(api)).await;
    let names =
        ["crm-command-by", "crm-command-nw", "crm-query-by", "crm-query-he", "crm-query-nw", "crm-relay-by"];
    let mut expected: Vec<String> = names.iter().map(|d| format!("PATCH {}{MANAGER}", hpa(d))).collect();
    expected.extend(names.iter().map(|d| format!("DELETE {}", scaled_object(d))));
    expected.push(format!("PATCH {PROFILE}/status"));
    let writes = harness.writes();
    assert_valid(&writes);
    let writes = lines(&writes);
    assert_eq!(writes[..writes.len() - 1], expected);
    assert!(writes.last().unwrap().contains(EVENTS), "{writes:#?}");
    assert_eq!(harness.api.all("HorizontalPodAutoscaler").len(), 6);
    harness.stop().await;
}

#[tokio::test]
async fn at_a_transition_the_hpas_min_replicas_move_without_anything_else_happening() {
    let transition = plan_at(false, oktoberfest_saturday()).requeue_at.unwrap();
    let (before, after) = (
        transition - jiff::SignedDuration::from_millis(1500),
        transition + jiff::SignedDuration::from_secs(1),
    );
    let (planned_before, planned_after) = (plan_at(false, before), plan_at(false, after));
    let moving: Vec<(&str, i64)> = planned_before
        .workloads
        .iter()
        .zip(&planned_after.workloads)
        .filter(|(b, a)| b.floor.max(1) != a.floor.max(1))
        .map(|(_, a)| (a.name.as_str(), i64::from(a.floor.max(1))))
        .collect();
    assert!(!moving.is_empty(), "a transition moves some HPA");

    let (clock, set) = moving_clock(before);
    let harness = Harness::start_at(without_keda(), examples(), clock).await;
    harness.settle("crm ready", is_ready).await;
    let profile = harness.api.get("ScalingProfile", "crm", "crm").unwrap();
    let next: Timestamp = profile["status"]["nextTransition"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, transition);

    // The clock passes the transition; the controller's requeue (1.5 s after its plan) moves the
    // floors: no watch event, no edit.
    harness.api.clear_requests();
    set(after);
    harness
        .settle("the floors moved", |api| {
            moving.iter().all(|(name, min)| min_replicas(api, name) == Some(*min))
        })
        .await;
    let writes = harness.writes();
    assert_valid(&writes);
    let objects: Vec<String> =
        lines(&writes).into_iter().filter(|l| l.contains("/horizontalpodautoscalers/")).collect();
    let expected: Vec<String> =
        moving.iter().map(|(name, _)| format!("PATCH {}{MANAGER}", hpa(name))).collect();
    assert_eq!(objects, expected);
    harness.stop().await;
}
