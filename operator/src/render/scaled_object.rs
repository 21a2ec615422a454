//! A KEDA ScaledObject (keda.sh/v1alpha1) per Deployment: the calendar's floors as cron triggers
//! beside the profile's metrics.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Serialize;

use super::cron::Triggers;
use super::workload::{Autoscaling, Metric, Workload, metadata};

pub const API_VERSION: &str = "keda.sh/v1alpha1";
pub const KIND: &str = "ScaledObject";

/// The part of KEDA's ScaledObject the operator writes (the rest keeps KEDA's defaults).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: ScaledObjectSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    pub scale_target_ref: ScaleTargetRef,
    pub min_replica_count: u32,
    pub max_replica_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advanced: Option<Advanced>,
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Advanced {
    pub horizontal_pod_autoscaler_config: HpaConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HpaConfig {
    pub behavior: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior,
}

/// One trigger: `type`, an optional name and metric type, and the scaler's string metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<&'static str>,
    pub metadata: BTreeMap<&'static str, String>,
}

/// The ScaledObject for `workload`: the profile's metrics first, then one cron trigger per
/// compiled calendar trigger (`season-1`, `season-2`, ... in the order of their first start).
pub fn render(
    workload: &Workload,
    owner: &OwnerReference,
    scaling: &Autoscaling,
    calendar: &Triggers,
) -> ScaledObject {
    let mut triggers: Vec<Trigger> = scaling
        .metrics
        .iter()
        .enumerate()
        .map(|(n, metric)| match metric {
            Metric::Cpu { average_utilization } => Trigger {
                kind: "cpu",
                name: format!("cpu-{}", n + 1),
                metric_type: Some("Utilization"),
                metadata: BTreeMap::from([("value", average_utilization.to_string())]),
            },
            Metric::Prometheus { server_address, query, threshold } => Trigger {
                kind: "prometheus",
                name: format!("prometheus-{}", n + 1),
                metric_type: None,
                metadata: BTreeMap::from([
                    ("serverAddress", server_address.clone()),
                    ("query", query.clone()),
                    ("threshold", threshold.clone()),
                ]),
            },
        })
        .collect();
    triggers.extend(calendar.triggers.iter().enumerate().map(|(n, cron)| Trigger {
        kind: "cron",
        name: format!("season-{}", n + 1),
        metric_type: None,
        metadata: BTreeMap::from([
            ("timezone", cron.timezone.clone()),
            ("start", cron.start.clone()),
            ("end", cron.end.clone()),
            ("desiredReplicas", cron.desired_replicas.to_string()),
        ]),
    }));
    ScaledObject {
        api_version: API_VERSION,
        kind: KIND,
        metadata: metadata(workload, owner),
        spec: ScaledObjectSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: "apps/v1",
                kind: "Deployment",
                name: workload.name.clone(),
            },
            min_replica_count: calendar.min_replica_count,
            max_replica_count: scaling.max_replicas.max(calendar.min_replica_count),
            advanced: scaling.scale_down_stabilization_seconds.map(|seconds| Advanced {
                horizontal_pod_autoscaler_config: HpaConfig { behavior: super::hpa::scale_down(seconds) },
            }),
            triggers,
        },
    }
}
