//! Every CEL rule of the CRDs against objects it must accept and objects it must reject.
//!
//! Each case names a rule by where it sits and its message. The rejected objects pass the OpenAPI
//! part of the schema, so each proves its rule is what stops them; the accepted ones pass all of
//! the CRD. A rule without a case, or a case without a rule, fails `every_rule_has_a_case`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{all_rules, cel_failures, schema_violations};

mod tenant_policy;

pub(super) struct Case {
    kind: &'static str,
    path: String,
    message: &'static str,
    accept: Vec<Value>,
    reject: Vec<Value>,
}

fn seasonal_window(spec: Value) -> Value {
    json!({
        "apiVersion": "freshplan.io/v1alpha1",
        "kind": "SeasonalWindow",
        "metadata": {"name": "calendar", "namespace": "crm"},
        "spec": spec,
    })
}

/// A calendar with one window, `fields` merged over a minimal valid one.
fn with_window(fields: Value) -> Value {
    let mut window =
        json!({"name": "peak", "yearly": {"from": "09-19", "to": "10-04"}, "floors": {"query": 4}});
    merge(&mut window, fields);
    seasonal_window(json!({"timezone": "Europe/Berlin", "windows": [window]}))
}

/// A calendar with one dark period, `fields` merged over a minimal valid one.
fn with_dark_period(fields: Value) -> Value {
    let mut dark =
        json!({"name": "nights", "hours": {"from": "00:00", "to": "06:00"}, "floors": {"query": 1}});
    merge(&mut dark, fields);
    seasonal_window(json!({"timezone": "Europe/Berlin", "darkPeriods": [dark]}))
}

/// A profile with `fields` merged over a minimal valid spec.
fn profile(fields: Value) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app.kubernetes.io/part-of": "freshplan"}},
        "components": {"query": {"minReplicas": 2, "maxReplicas": 20}},
    });
    merge(&mut spec, fields);
    json!({
        "apiVersion": "freshplan.io/v1alpha1",
        "kind": "ScalingProfile",
        "metadata": {"name": "crm", "namespace": "crm"},
        "spec": spec,
    })
}

/// Shallow merge; a `null` value removes the field.
pub(super) fn merge(target: &mut Value, fields: Value) {
    let (Some(target), Value::Object(fields)) = (target.as_object_mut(), fields) else {
        panic!("objects expected");
    };
    for (key, value) in fields {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

fn replicas(min: i64, max: i64) -> Value {
    json!({"minReplicas": min, "maxReplicas": max})
}

fn cases() -> Vec<Case> {
    let window = |name: &str| json!({"name": name, "yearly": {"from": "12-20", "to": "01-06"}, "floors": {"query": 2}});
    let dark = |name: &str| json!({"name": name, "floors": {"query": 1}});
    let calendar = |windows: Value, darks: Value| {
        seasonal_window(json!({"timezone": "Europe/Berlin", "windows": windows, "darkPeriods": darks}))
    };
    let mut cases = vec![
        Case {
            kind: "SeasonalWindow",
            path: "spec.windows".into(),
            message: "window names must be unique",
            accept: vec![calendar(json!([window("christmas"), window("easter")]), json!([dark("nights")]))],
            reject: vec![calendar(
                json!([window("christmas"), window("christmas")]),
                json!([dark("nights")]),
            )],
        },
        Case {
            kind: "SeasonalWindow",
            path: "spec.darkPeriods".into(),
            message: "dark period names must be unique",
            // Names are unique per list: a window and a dark period may share one.
            accept: vec![calendar(json!([window("nights")]), json!([dark("nights"), dark("holidays")]))],
            reject: vec![calendar(json!([window("christmas")]), json!([dark("nights"), dark("nights")]))],
        },
        Case {
            kind: "SeasonalWindow",
            path: "spec.windows[]".into(),
            message: "a window needs exactly one of yearly, dates, easter",
            accept: vec![
                with_window(json!({})),
                with_window(json!({"yearly": null, "dates": {"from": "2026-09-19", "to": "2026-10-04"}})),
                with_window(json!({"yearly": null, "easter": {"from": -14, "to": 1}})),
            ],
            reject: vec![
                with_window(json!({"yearly": null})),
                with_window(json!({"easter": {"from": -14, "to": 1}})),
                with_window(
                    json!({"dates": {"from": "2026-09-19", "to": "2026-10-04"}, "easter": {"from": 0, "to": 0}}),
                ),
            ],
        },
        Case {
            kind: "SeasonalWindow",
            path: "spec.darkPeriods[]".into(),
            message: "a dark period takes at most one of yearly, dates, easter, holidays",
            accept: vec![
                with_dark_period(json!({})),
                with_dark_period(json!({"holidays": {}})),
                with_dark_period(json!({"holidays": {"state": "BY"}, "hours": null})),
                with_dark_period(json!({"easter": {"from": -2, "to": 1}})),
            ],
            reject: vec![
                with_dark_period(
                    json!({"holidays": {"state": "BY"}, "yearly": {"from": "12-24", "to": "12-26"}}),
                ),
                with_dark_period(
                    json!({"dates": {"from": "2026-12-24", "to": "2026-12-26"}, "easter": {"from": 0, "to": 1}}),
                ),
            ],
        },
        Case {
            kind: "SeasonalWindow",
            path: "spec.windows[].preWarm".into(),
            message: "preWarm must be at most 168h (a week)",
            accept: ["90m", "2h", "1h30m", "168h", "10080m", "167h59m"]
                .map(|lead| with_window(json!({"preWarm": lead})))
                .into(),
            reject: ["169h", "168h1m", "10081m", "999h"]
                .map(|lead| with_window(json!({"preWarm": lead})))
                .into(),
        },
    ];

    // The rules windows and dark periods share, once for each.
    for (list, entry) in [
        ("windows", with_window as fn(Value) -> Value),
        ("darkPeriods", with_dark_period as fn(Value) -> Value),
    ] {
        let at = |suffix: &str| format!("spec.{list}[]{suffix}");
        // A window needs its day rule; a dark period may have none, so give both the same one.
        let days = |rule: Value| {
            if list == "windows" { json!({"yearly": null, "dates": rule}) } else { json!({"dates": rule}) }
        };
        let easter = |from: i64, to: i64| {
            let rule = json!({"from": from, "to": to});
            if list == "windows" { json!({"yearly": null, "easter": rule}) } else { json!({"easter": rule}) }
        };
        cases.extend([
            Case {
                kind: "SeasonalWindow",
                path: at(""),
                message: "components may only name components that floors sets",
                accept: vec![
                    entry(json!({"floors": {"query": 4, "command": 2}, "components": ["command"]})),
                    entry(json!({"floors": {"query": 4, "command": 2, "relay": 1}, "components": ["relay", "query", "command"]})),
                    entry(json!({"floors": {"relay": 1}})),
                ],
                reject: vec![
                    entry(json!({"floors": {"query": 4}, "components": ["relay"]})),
                    entry(json!({"floors": {"query": 4, "relay": 1}, "components": ["query", "command"]})),
                ],
            },
            Case {
                kind: "SeasonalWindow",
                path: at(".dates"),
                message: "dates.to must not be before dates.from",
                accept: vec![
                    entry(days(json!({"from": "2026-09-19", "to": "2026-09-19"}))),
                    entry(days(json!({"from": "2026-12-31", "to": "2027-01-01"}))),
                ],
                reject: vec![
                    entry(days(json!({"from": "2026-10-04", "to": "2026-09-19"}))),
                    entry(days(json!({"from": "2027-01-01", "to": "2026-12-31"}))),
                ],
            },
            Case {
                kind: "SeasonalWindow",
                path: at(".easter"),
                message: "easter.from must not be after easter.to",
                accept: vec![entry(easter(-14, 1)), entry(easter(0, 0)), entry(easter(-52, -46))],
                reject: vec![entry(easter(1, -14)), entry(easter(2, 1))],
            },
            Case {
                kind: "SeasonalWindow",
                path: at(".floors"),
                message: "floors must set at least one of query, command, relay",
                accept: vec![entry(json!({"floors": {"relay": 0}})), entry(json!({"floors": {"command": 3}}))],
                reject: vec![entry(json!({"floors": {}}))],
            },
        ]);
    }

    for component in ["query", "command", "relay"] {
        cases.push(Case {
            kind: "ScalingProfile",
            path: format!("spec.components.{component}"),
            message: "minReplicas must not exceed maxReplicas",
            accept: vec![
                profile(json!({"components": {component: replicas(2, 2)}})),
                profile(json!({"components": {component: replicas(0, 1)}})),
            ],
            reject: vec![profile(json!({"components": {component: replicas(3, 2)}}))],
        });
    }

    let cpu = json!({"averageUtilization": 70});
    let prometheus = json!({"serverAddress": "http://prometheus.monitoring:9090", "query": "sum(outbox_lag)", "threshold": "100"});
    cases.push(Case {
        kind: "ScalingProfile",
        path: "spec.metrics[]".into(),
        message: "a metric needs exactly one of cpu, prometheus",
        accept: vec![
            profile(json!({"metrics": [{"cpu": cpu}]})),
            profile(json!({"metrics": [{"cpu": cpu}, {"prometheus": prometheus}]})),
        ],
        reject: vec![
            profile(json!({"metrics": [{"cpu": cpu, "prometheus": prometheus}]})),
            profile(json!({"metrics": [{}]})),
        ],
    });
    cases.extend(tenant_policy::cases());
    cases
}

#[test]
fn every_rule_has_a_case_and_every_case_a_rule() {
    let rules: BTreeSet<_> = all_rules().into_iter().map(|r| (r.kind, r.path, r.message)).collect();
    let cases: BTreeSet<_> = cases().into_iter().map(|c| (c.kind, c.path, c.message.to_owned())).collect();
    let untested: Vec<_> = rules.difference(&cases).collect();
    let stale: Vec<_> = cases.difference(&rules).collect();
    assert!(
        untested.is_empty() && stale.is_empty(),
        "rules without a case: {untested:#?}\ncases without a rule: {stale:#?}"
    );
}

#[test]
fn every_rule_accepts_its_valid_objects() {
    for case in cases() {
        for object in &case.accept {
            assert_eq!(
                schema_violations(case.kind, object),
                Vec::<String>::new(),
                "{}: {object:#}",
                case.message
            );
            assert_eq!(cel_failures(case.kind, object), Vec::<String>::new(), "{}: {object:#}", case.message);
        }
    }
}

#[test]
fn every_rule_rejects_its_invalid_objects_with_its_message_alone() {
    for case in cases() {
        assert!(!case.reject.is_empty(), "{}: no object to reject", case.message);
        for object in &case.reject {
            // Valid but for the rule: the OpenAPI part lets it through, so the rule is what stops it.
            assert_eq!(
                schema_violations(case.kind, object),
                Vec::<String>::new(),
                "{}: {object:#}",
                case.message
            );
            assert_eq!(
                cel_failures(case.kind, object),
                vec![format!("{}: {}", case.path, case.message)],
                "{object:#}"
            );
        }
    }
}

#[test]
fn rules_never_compare_with_the_old_object() {
    // Transition rules (oldSelf) would need the stored object to test and make updates fail where
    // creates pass; none are used.
    for rule in all_rules() {
        assert!(!rule.rule.contains("oldSelf"), "{rule:?}");
        assert!(!rule.message.is_empty(), "a rule without a message: {rule:?}");
    }
}
