//! Compile time of a 50-window calendar against 100 Deployments (a program, not a test: it prints
//! figures). `cargo bench -p freshplan-operator --bench compile`
//!
//! One compile is what the controller does per Deployment: the floor's timeline over the next
//! 364 days (`calendar::timeline`), the cron triggers (`render::cron::compile`) and the
//! ScaledObject (`render::scaled_object::render`). The calendar: 50 windows (yearly ranges with
//! and without daily hours and pre-warm, one-off dates, Easter-relative ranges) over 10
//! territories, plus nightly and holiday dark periods. Environment: BENCH_ROUNDS (20).

use std::fmt::Write as _;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use freshplan_operator::calendar::{Baseline, Replicas, timeline};
use freshplan_operator::component::Component;
use freshplan_operator::crd::SeasonalWindowSpec;
use freshplan_operator::render::cron::{self, HORIZON};
use freshplan_operator::render::scaled_object;
use freshplan_operator::render::workload::{Autoscaling, Metric, Workload};
use freshplan_operator::validate;

const TERRITORIES: [&str; 10] = ["BY", "BW", "NW", "HE", "NI", "HH", "BE", "SN", "RP", "SH"];

fn calendar_yaml() -> String {
    let mut yaml = String::from("timezone: Europe/Berlin\nwindows:\n");
    for n in 0..50 {
        let territory = TERRITORIES[n % TERRITORIES.len()];
        let month = 1 + n % 12;
        let days = match n % 5 {
            0 | 1 => format!("yearly: {{from: \"{month:02}-05\", to: \"{month:02}-20\"}}"),
            2 => format!("yearly: {{from: \"{month:02}-25\", to: \"{:02}-03\"}}", 1 + month % 12),
            3 => format!("dates: {{from: \"2027-{month:02}-01\", to: \"2027-{month:02}-10\"}}"),
            _ => format!("easter: {{from: {}, to: {}}}", -(n as i32 % 20), n % 7),
        };
        let hours =
            if n % 2 == 0 { "    hours: {from: \"10:00\", to: \"22:30\"}\n    preWarm: 90m\n" } else { "" };
        let _ = write!(
            yaml,
            "  - name: window-{n}\n    {days}\n{hours}    territories: [{territory}]\n    floors: {{query: {}, command: {}, relay: 2}}\n",
            4 + n % 7,
            2 + n % 4
        );
    }
    yaml.push_str(
        "darkPeriods:\n  - name: nights\n    hours: {from: \"00:30\", to: \"05:30\"}\n    floors: {query: 1, command: 1, relay: 1}\n  - name: holidays\n    holidays: {}\n    floors: {query: 1}\n",
    );
    yaml
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let spec: SeasonalWindowSpec = serde_saphyr::from_str(&calendar_yaml()).expect("the bench calendar");
    let calendars = [validate::calendar(&spec).expect("a valid calendar")];
    let replicas = Replicas::new(2, 30).unwrap();
    let baseline: Baseline = Component::ALL.into_iter().map(|c| (c, replicas)).collect();
    let scaling = Autoscaling {
        max_replicas: 30,
        metrics: vec![Metric::Cpu { average_utilization: 70 }],
        scale_down_stabilization_seconds: Some(300),
    };
    let owner = OwnerReference {
        api_version: "freshplan.io/v1alpha1".into(),
        kind: "ScalingProfile".into(),
        name: "crm".into(),
        uid: "0".into(),
        ..OwnerReference::default()
    };
    // 100 Deployments over the 10 territories and the three components.
    let workloads: Vec<Workload> = (0..100)
        .map(|n| {
            let (territory, component) = (TERRITORIES[n % TERRITORIES.len()], Component::ALL[n % 3]);
            Workload {
                name: format!("crm-{component}-{}-{n}", territory.to_lowercase()),
                namespace: "crm".into(),
                territory: territory.into(),
                component,
            }
        })
        .collect();
    assert_eq!(workloads.len(), 100);

    let now: Timestamp = "2026-09-01T00:00:00Z".parse().unwrap();
    let until = now + HORIZON + SignedDuration::from_hours(24);
    let mut per_deployment = Vec::new();
    let (mut triggers, mut objects) = (0usize, 0usize);
    for _ in 0..rounds {
        for workload in &workloads {
            let started = Instant::now();
            let steps = timeline(&calendars, &baseline, &workload.territory, workload.component, now, until);
            let compiled = cron::compile(&steps, until, now, &calendars[0].timezone).expect("compiles");
            let object = scaled_object::render(workload, &owner, &scaling, &compiled);
            per_deployment.push(started.elapsed().as_secs_f64() * 1000.0);
            triggers += compiled.triggers.len();
            objects += object.spec.triggers.len();
        }
    }
    per_deployment.sort_by(f64::total_cmp);
    let p = |q: f64| per_deployment[((per_deployment.len() - 1) as f64 * q).round() as usize];
    let total: f64 = per_deployment.iter().sum::<f64>() / rounds as f64;
    println!(
        "50 windows + 2 dark periods, 100 Deployments, {rounds} rounds: per Deployment p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; \
         all 100: {total:.1} ms; {:.1} cron triggers per ScaledObject ({} triggers in all)",
        p(0.5),
        p(0.99),
        p(1.0),
        triggers as f64 / (rounds * workloads.len()) as f64,
        objects / rounds,
    );
    println!("target < 1 ms per Deployment compile: {}", if p(0.99) < 1.0 { "met" } else { "MISSED" });
}
