//! Rendered objects against the upstream schemas, and what they carry.

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Value, json};

use super::cron::{self, HORIZON};
use super::workload::{Autoscaling, Metric, Workload};
use super::{hpa, scaled_object};
use crate::component::Component;
use crate::upstream;

fn workload() -> Workload {
    Workload {
        name: "crm-query-by".into(),
        namespace: "crm".into(),
        territory: "BY".into(),
        component: Component::Query,
    }
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "freshplan.io/v1alpha1".into(),
        kind: "ScalingProfile".into(),
        name: "crm".into(),
        uid: "5b7c0e5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn scaling() -> Autoscaling {
    Autoscaling {
        max_replicas: 20,
        metrics: vec![
            Metric::Cpu { average_utilization: 70 },
            Metric::Prometheus {
                server_address: "http://prometheus.monitoring:9090".into(),
                query: "sum(rate(http_requests_total[2m]))".into(),
                threshold: "100".into(),
            },
        ],
        scale_down_stabilization_seconds: Some(300),
    }
}

fn triggers() -> cron::Triggers {
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let at = |s: &str| s.parse::<jiff::civil::DateTime>().unwrap().to_zoned(tz.clone()).unwrap().timestamp();
    let now = at("2026-09-10T00:00");
    let steps = vec![(now, 2), (at("2026-09-19T08:00"), 8), (at("2026-10-05T00:00"), 2)];
    cron::compile(&steps, now + HORIZON + SignedDuration::from_hours(24), now, &tz).unwrap()
}

fn keda_schema() -> Value {
    upstream::crd_schema("keda/keda.sh_scaledobjects.yaml", "v1alpha1")
}

#[test]
fn a_scaled_object_is_what_keda_accepts() {
    let object =
        serde_json::to_value(scaled_object::render(&workload(), &owner(), &scaling(), &triggers())).unwrap();
    assert_eq!(upstream::violations(&keda_schema(), &object), Vec::<String>::new(), "{object:#}");
    assert_eq!(object["metadata"]["name"], "crm-query-by");
    assert_eq!(object["metadata"]["labels"]["freshplan.io/territory"], "BY");
    assert_eq!(object["metadata"]["labels"]["freshplan.io/component"], "query");
    assert_eq!(object["metadata"]["ownerReferences"][0]["kind"], "ScalingProfile");
    assert_eq!(object["spec"]["minReplicaCount"], 2);
    let cron = &object["spec"]["triggers"][2];
    assert_eq!(
        cron,
        &json!({"type": "cron", "name": "season-1", "metadata": {
            "timezone": "Europe/Berlin", "start": "0 8 19 9 *", "end": "0 0 5 10 *", "desiredReplicas": "8"}})
    );
}

#[test]
fn the_schema_check_catches_what_keda_refuses() {
    let mut object =
        serde_json::to_value(scaled_object::render(&workload(), &owner(), &scaling(), &triggers())).unwrap();
    object["spec"]["minReplicaCount"] = json!("two");
    object["spec"]["triggers"][0].as_object_mut().unwrap().remove("type");
    let found = upstream::violations(&keda_schema(), &object);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn an_hpa_is_what_the_api_server_accepts_and_says_what_it_left_out() {
    let schema = upstream::openapi_component(
        "kubernetes/apis__autoscaling__v2_openapi.json",
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
    );
    let (object, warnings) = hpa::render(&workload(), &owner(), &scaling(), 6);
    let object = serde_json::to_value(object).unwrap();
    assert_eq!(upstream::violations(&schema, &object), Vec::<String>::new(), "{object:#}");
    assert_eq!(object["spec"]["minReplicas"], 6);
    assert_eq!(object["spec"]["maxReplicas"], 20);
    assert_eq!(object["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 300);
    assert_eq!(object["spec"]["metrics"].as_array().unwrap().len(), 1, "only CPU");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("needs KEDA"), "{warnings:?}");

    let (zero, warnings) = hpa::render(&workload(), &owner(), &scaling(), 0);
    assert_eq!(zero.spec.unwrap().min_replicas, Some(1));
    assert!(warnings.iter().any(|w| w.contains("floor of 0")));

    let mut broken = object.clone();
    broken["spec"]["maxReplicas"] = json!("many");
    assert!(!upstream::violations(&schema, &broken).is_empty());
}

#[test]
fn a_now_between_minutes_compiles_as_its_minute() {
    // The controller and `render` without --now compile at the clock's instant, seconds and all;
    // the timeline then starts there. The stretch under way starts on its minute.
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let at = |s: &str| s.parse::<jiff::civil::DateTime>().unwrap().to_zoned(tz.clone()).unwrap().timestamp();
    let whole = at("2026-09-19T10:00");
    let steps = |now| vec![(now, 8), (at("2026-10-05T00:00"), 2)];
    let until = |now| now + HORIZON + SignedDuration::from_hours(24);
    let expected = cron::compile(&steps(whole), until(whole), whole, &tz).unwrap();
    let now = at("2026-09-19T10:00:49.550696451");
    let compiled = cron::compile(&steps(now), until(now), now, &tz).unwrap();
    assert_eq!(compiled.triggers, expected.triggers);
    assert_eq!(compiled.min_replica_count, expected.min_replica_count);
}
