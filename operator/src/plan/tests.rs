//! Plans of the examples and of hand-made resources: what is selected, what holds, what the
//! objects carry; every object against its upstream schema.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::bundle::Bundle;
use crate::upstream;

fn examples() -> Bundle {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut bundle = Bundle::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
        let text = std::fs::read_to_string(&file).unwrap();
        bundle.add_stream(&file.display().to_string(), &text).unwrap();
    }
    bundle
}

fn berlin(local: &str) -> Timestamp {
    local.parse::<jiff::civil::DateTime>().unwrap().in_tz("Europe/Berlin").unwrap().timestamp()
}

fn plan_at(bundle: &Bundle, keda: bool, now: Timestamp) -> Plan {
    plan(&bundle.profiles[0], &bundle.windows, &bundle.deployments, keda, now)
}

fn keda_schema() -> Value {
    upstream::crd_schema("keda/keda.sh_scaledobjects.yaml", "v1alpha1")
}

fn hpa_schema() -> Value {
    upstream::openapi_component(
        "kubernetes/apis__autoscaling__v2_openapi.json",
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
    )
}

fn assert_valid(plan: &Plan) {
    let (keda, hpa) = (keda_schema(), hpa_schema());
    for object in &plan.objects {
        let value = serde_json::to_value(object).unwrap();
        let schema = match object {
            Generated::ScaledObject(_) => &keda,
            Generated::Hpa(_) => &hpa,
        };
        assert_eq!(upstream::violations(schema, &value), Vec::<String>::new(), "{value:#}");
    }
}

#[test]
fn auto_is_keda_only_where_its_crds_are() {
    assert_eq!(backend(ScalingMode::Auto, true), Backend::Keda);
    assert_eq!(backend(ScalingMode::Auto, false), Backend::Hpa);
    assert_eq!(backend(ScalingMode::Keda, false), Backend::Keda);
    assert_eq!(backend(ScalingMode::Hpa, true), Backend::Hpa);
}

#[test]
fn the_examples_give_one_scaled_object_per_deployment() {
    let bundle = examples();
    let now = berlin("2026-09-19T12:00");
    let plan = plan_at(&bundle, true, now);
    assert_eq!(plan.problems, Vec::new());
    assert_eq!(plan.backend, Backend::Keda);
    assert_eq!(plan.objects.len(), 6);
    assert_valid(&plan);
    let names: Vec<&str> = plan.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        ["crm-command-by", "crm-command-nw", "crm-query-by", "crm-query-nw", "crm-relay-by", "crm-relay-nw"]
    );
    let query_by = serde_json::to_value(&plan.objects[2]).unwrap();
    assert_eq!(query_by["kind"], "ScaledObject");
    assert_eq!(query_by["metadata"]["name"], "crm-query-by");
    assert_eq!(query_by["metadata"]["namespace"], "crm");
    assert_eq!(query_by["metadata"]["labels"]["freshplan.io/territory"], "BY");
    assert_eq!(query_by["metadata"]["ownerReferences"][0]["name"], "crm");
    assert_eq!(query_by["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(query_by["spec"]["scaleTargetRef"]["name"], "crm-query-by");
    // The opening weekend of 2026 on top of the Wiesn: 12 for BY's queries, NW untouched.
    let floors: Vec<(&str, i32)> = plan.workloads.iter().map(|w| (w.name.as_str(), w.floor)).collect();
    assert!(floors.contains(&("crm-query-by", 12)), "{floors:?}");
    assert!(floors.contains(&("crm-query-nw", 2)), "{floors:?}");
    assert_eq!(plan.floor_summary.as_deref(), Some("query 2-12, command 2-6, relay 1"));
    assert!(plan.active_windows.contains(&"oktoberfest/wiesn".to_owned()), "{:?}", plan.active_windows);
    assert!(plan.active_windows.contains(&"oktoberfest/wiesn-2026-opening".to_owned()));
    // At 23:30 the Wiesn closes, but the opening weekend holds BY up all day; the first change is
    // the nights' dark period at midnight.
    assert_eq!(plan.requeue_at, Some(berlin("2026-09-20T00:00")));
}

#[test]
fn without_keda_auto_gives_hpas_holding_the_floor_now() {
    let bundle = examples();
    let plan = plan_at(&bundle, false, berlin("2026-09-22T12:00"));
    assert_eq!(plan.backend, Backend::Hpa);
    assert_valid(&plan);
    let Generated::Hpa(query_by) = &plan.objects[2] else { panic!("an HPA") };
    assert_eq!(query_by.metadata.name.as_deref(), Some("crm-query-by"));
    assert_eq!(query_by.spec.as_ref().unwrap().min_replicas, Some(8));
    assert!(plan.workloads.iter().all(|w| w.kind == GeneratedKind::HorizontalPodAutoscaler));
    // The p95 metric is PromQL, which an HPA cannot read: said once per Deployment.
    assert_eq!(plan.notes.iter().filter(|n| n.text.contains("needs KEDA")).count(), 6, "{:?}", plan.notes);
}

#[test]
fn a_missing_or_invalid_calendar_holds_the_profile() {
    let mut bundle = examples();
    bundle.windows.retain(|w| w.meta().name.as_deref() != Some("christmas"));
    let plan = plan_at(&bundle, true, berlin("2026-12-01T12:00"));
    assert!(plan.objects.is_empty());
    assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
    assert_eq!(plan.problems[0].kind, ProblemKind::CalendarMissing);
    assert_eq!(plan.problems[0].invalid.path, "spec.calendars");
    assert!(plan.problems[0].invalid.message.contains("no SeasonalWindow christmas in namespace crm"));

    let mut bundle = examples();
    let oktoberfest =
        bundle.windows.iter_mut().find(|w| w.meta().name.as_deref() == Some("oktoberfest")).unwrap();
    oktoberfest.spec.timezone = "Europe/Munich".into();
    let plan = plan_at(&bundle, true, berlin("2026-09-19T12:00"));
    assert!(plan.objects.is_empty());
    assert_eq!(
        plan.problems[0].invalid.path, "SeasonalWindow oktoberfest: spec.timezone",
        "{:?}",
        plan.problems
    );
    assert_eq!(plan.problems[0].kind, ProblemKind::CalendarInvalid);
}

#[test]
fn only_the_selected_labelled_deployments_of_its_namespace_are_scaled() {
    let mut bundle = examples();
    let template = bundle.deployments[0].clone();
    let with = |name: &str, namespace: &str, labels: &[(&str, &str)]| {
        let mut d = template.clone();
        d.metadata.name = Some(name.into());
        d.metadata.namespace = Some(namespace.into());
        d.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        d
    };
    let part_of = ("app.kubernetes.io/part-of", "freshplan");
    bundle.deployments.extend([
        with(
            "elsewhere",
            "other",
            &[part_of, ("freshplan.io/territory", "BY"), ("freshplan.io/component", "query")],
        ),
        with("unrelated", "crm", &[("freshplan.io/territory", "BY"), ("freshplan.io/component", "query")]),
        with("no-territory", "crm", &[part_of, ("freshplan.io/component", "query")]),
        with(
            "a-worker",
            "crm",
            &[part_of, ("freshplan.io/territory", "BY"), ("freshplan.io/component", "worker")],
        ),
    ]);
    let mut profile = bundle.profiles[0].clone();
    profile.spec.components.relay = None;
    let plan = plan(&profile, &bundle.windows, &bundle.deployments, true, berlin("2026-09-19T12:00"));
    let names: Vec<&str> = plan.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["crm-command-by", "crm-command-nw", "crm-query-by", "crm-query-nw"]);
    let notes = plan.notes.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(notes.contains("Deployment no-territory: has no freshplan.io/territory label"), "{notes}");
    assert!(notes.contains("Deployment a-worker: freshplan.io/component=worker"), "{notes}");
    assert!(notes.contains("Deployment crm-relay-by: the profile has no baseline for relay"), "{notes}");
    assert!(!notes.contains("elsewhere") && !notes.contains("unrelated"), "{notes}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// At any instant of two years, the HPAs hold the calendar's floor (1 where it is 0), and it
    /// does not change before the plan's requeue.
    #[test]
    fn hpas_hold_the_floor_until_the_requeue(minutes in 0i64..(2 * 365 * 24 * 60)) {
        let bundle = examples();
        let now = berlin("2026-01-01T00:00") + SignedDuration::from_mins(minutes);
        let plan = plan_at(&bundle, false, now);
        let profile = &bundle.profiles[0];
        let calendars: Vec<Calendar> = bundle.windows.iter().map(|w| validate::calendar(&w.spec).unwrap()).collect();
        let baseline = validate::baseline(&profile.spec).unwrap();
        let requeue = plan.requeue_at.expect("the examples change within a year");
        prop_assert!(requeue > now);
        for (object, workload) in plan.objects.iter().zip(&plan.workloads) {
            let Generated::Hpa(hpa) = object else { panic!("an HPA") };
            let want = floor(&calendars, &baseline, &workload.territory, workload.component, now).unwrap();
            prop_assert_eq!(hpa.spec.as_ref().unwrap().min_replicas, Some(want.max(1) as i32));
            prop_assert_eq!(workload.floor, want as i32);
            let steps = timeline(&calendars, &baseline, &workload.territory, workload.component, now, requeue);
            prop_assert_eq!(steps, vec![(now, want)]);
        }
    }
}
