//! An autoscaling/v2 HorizontalPodAutoscaler per Deployment, for clusters without KEDA: the
//! calendar's floor is `minReplicas`, which the controller rewrites at every transition.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::workload::{Autoscaling, Metric, Workload, metadata};

/// The HPA for `workload` holding `floor` now, and what of the profile it cannot express.
pub fn render(
    workload: &Workload,
    owner: &OwnerReference,
    scaling: &Autoscaling,
    floor: u32,
) -> (HorizontalPodAutoscaler, Vec<String>) {
    let mut warnings = Vec::new();
    // Without the HPAScaleToZero feature gate the API server refuses minReplicas 0.
    let min_replicas = if floor == 0 {
        warnings.push("a floor of 0 needs KEDA; the HPA keeps 1 replica".to_owned());
        1
    } else {
        floor
    };
    let metrics: Vec<MetricSpec> = scaling
        .metrics
        .iter()
        .filter_map(|metric| match metric {
            Metric::Cpu { average_utilization } => Some(MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(*average_utilization as i32),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }),
            Metric::Prometheus { query, .. } => {
                warnings.push(format!(
                    "the Prometheus metric `{query}` needs KEDA (an HPA reads no PromQL); it is left out"
                ));
                None
            }
        })
        .collect();
    let hpa = HorizontalPodAutoscaler {
        metadata: metadata(workload, owner),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: workload.name.clone(),
            },
            min_replicas: Some(min_replicas as i32),
            max_replicas: scaling.max_replicas.max(min_replicas) as i32,
            metrics: (!metrics.is_empty()).then_some(metrics),
            behavior: scaling.scale_down_stabilization_seconds.map(scale_down),
        }),
        status: None,
    };
    (hpa, warnings)
}

/// Scale-down stabilisation, the one part of the HPA's behaviour a profile sets.
pub fn scale_down(seconds: u32) -> HorizontalPodAutoscalerBehavior {
    HorizontalPodAutoscalerBehavior {
        scale_down: Some(HPAScalingRules {
            stabilization_window_seconds: Some(seconds.min(3600) as i32),
            ..HPAScalingRules::default()
        }),
        scale_up: None,
    }
}
