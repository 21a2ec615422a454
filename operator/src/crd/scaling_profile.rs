//! `ScalingProfile` (`sp`): which Deployments scale, their baseline replicas per component, the
//! metrics they scale on, and the calendars (SeasonalWindows) whose floors apply.
//!
//! ```yaml
//! spec:
//!   selector: {matchLabels: {app.kubernetes.io/part-of: freshplan}}
//!   mode: auto
//!   calendars: [oktoberfest, christmas]
//!   components:
//!     query: {minReplicas: 2, maxReplicas: 20}
//!   metrics:
//!     - cpu: {averageUtilization: 70}
//!   scaleDown: {stabilizationSeconds: 300}
//! ```

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{
    MAX_CALENDARS, MAX_METRICS, OBJECT_NAME, OBJECT_NAME_MAX, QUERY_MAX, SERVER_ADDRESS, SERVER_ADDRESS_MAX,
    STABILIZATION_SECONDS_MAX, THRESHOLD, THRESHOLD_MAX,
};
use crate::component::Component;

/// How a set of Deployments scales: baselines, metrics, and the seasonal calendars that raise floors.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
// Every printer column repeats `type_ = "string"`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "freshplan.io",
    version = "v1alpha1",
    kind = "ScalingProfile",
    namespaced,
    status = "ScalingProfileStatus",
    shortname = "sp",
    category = "freshplan",
    derive = "PartialEq",
    doc = "How a set of Deployments scales: baseline replicas per component, metrics, and the seasonal calendars that raise their floors.",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Active",
        type_ = "string",
        description = "The windows of its calendars in force now",
        json_path = ".status.activeWindows"
    ),
    printcolumn(
        name = "Floors",
        type_ = "string",
        description = "The current floors per component",
        json_path = ".status.floorSummary"
    ),
    printcolumn(
        name = "Next",
        type_ = "string",
        description = "When a floor next changes",
        json_path = ".status.nextTransition"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingProfileSpec {
    /// The Deployments to scale. Each must carry `freshplan.io/territory` and
    /// `freshplan.io/component`; one ScaledObject or HPA is generated per Deployment.
    pub selector: LabelSelector,

    /// `keda`, `hpa`, or `auto`: KEDA when its CRDs are installed, else a HorizontalPodAutoscaler.
    #[serde(default)]
    pub mode: ScalingMode,

    /// SeasonalWindows in this namespace whose floors apply; omitted: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_CALENDARS), inner(pattern(OBJECT_NAME), length(max = OBJECT_NAME_MAX)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub calendars: Option<Vec<String>>,

    /// Baseline replicas per component; a component left out is not scaled.
    pub components: ComponentBaselines,

    /// What the autoscaler scales on, beyond the floors; each item is exactly one of `cpu`,
    /// `prometheus`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_METRICS))]
    pub metrics: Vec<Metric>,

    /// How cautiously replicas are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDown>,
}

/// Which autoscaler the operator generates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScalingMode {
    /// KEDA ScaledObjects with cron triggers.
    Keda,
    /// autoscaling/v2 HorizontalPodAutoscalers whose minReplicas the operator moves.
    Hpa,
    /// KEDA when its CRDs are installed, else HPA.
    #[default]
    Auto,
}

impl ScalingMode {
    /// The value in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalingMode::Keda => "keda",
            ScalingMode::Hpa => "hpa",
            ScalingMode::Auto => "auto",
        }
    }
}

impl fmt::Display for ScalingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Baseline replicas per component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentBaselines {
    /// The query role (reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<ReplicaRange>,
    /// The command role (writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<ReplicaRange>,
    /// The relay role (outbox publisher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<ReplicaRange>,
}

impl ComponentBaselines {
    /// The baseline of `component`; None: the component is not scaled.
    pub fn get(&self, component: Component) -> Option<&ReplicaRange> {
        match component {
            Component::Query => self.query.as_ref(),
            Component::Command => self.command.as_ref(),
            Component::Relay => self.relay.as_ref(),
        }
    }

    /// The scaled components with their baselines, in [`Component::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Component, &ReplicaRange)> + '_ {
        Component::ALL.into_iter().filter_map(|c| self.get(c).map(|range| (c, range)))
    }
}

/// The replica range of one component outside any window: floors from windows are clamped to
/// `maxReplicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("minReplicas must not exceed maxReplicas"))]
pub struct ReplicaRange {
    /// Replicas outside any window (`0` lets KEDA scale to zero).
    #[schemars(range(min = 0))]
    pub min_replicas: i32,
    /// The most replicas ever, windows included.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
}

/// One scaling metric: exactly one of `cpu`, `prometheus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.cpu) != has(self.prometheus)")
    .message("a metric needs exactly one of cpu, prometheus"))]
pub struct Metric {
    /// CPU utilisation across the Deployment's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuMetric>,
    /// A PromQL query and the value per replica to hold it at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
}

/// Scale on CPU utilisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CpuMetric {
    /// Target average utilisation, percent of the pods' CPU requests.
    #[schemars(range(min = 1))]
    pub average_utilization: i32,
}

/// Scale on a Prometheus query, such as p95 latency or outbox lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusMetric {
    /// Base URL of the Prometheus server, `http://` or `https://`.
    #[schemars(pattern(SERVER_ADDRESS), length(max = SERVER_ADDRESS_MAX))]
    pub server_address: String,
    /// The PromQL query; its value is compared with `threshold`.
    #[schemars(length(min = 1, max = QUERY_MAX))]
    pub query: String,
    /// The query value per replica to scale at, a decimal number such as `"0.25"`.
    #[schemars(pattern(THRESHOLD), length(max = THRESHOLD_MAX))]
    pub threshold: String,
}

/// Scale-down behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleDown {
    /// Seconds of lower recommendations before replicas are removed (0 to 3600).
    #[schemars(range(min = 0, max = STABILIZATION_SECONDS_MAX))]
    pub stabilization_seconds: i32,
}

/// What the controller last did for the profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingProfileStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// One entry per matching Deployment.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub workloads: Vec<WorkloadStatus>,

    /// Names of the windows of the profile's calendars in force now.
    #[serde(default)]
    pub active_windows: Vec<String>,

    /// The current floors at a glance, for `kubectl get`: per component, the lowest and highest
    /// floor over the workloads, such as `query 2-8, command 2-4, relay 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_summary: Option<String>,

    /// When a floor next changes (RFC 3339); the controller acts again then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_transition: Option<Time>,

    /// Conditions of the profile, one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One scaled Deployment and the object generated for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// The Deployment; the generated object has the same name.
    pub name: String,
    /// Its `freshplan.io/territory`.
    pub territory: String,
    /// Its `freshplan.io/component`.
    pub component: Component,
    /// The replica floor in force now.
    pub floor: i32,
    /// The kind of the generated object.
    pub kind: GeneratedKind,
}

/// The kind of object generated for a Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum GeneratedKind {
    /// A KEDA `ScaledObject` (keda.sh/v1alpha1).
    ScaledObject,
    /// An autoscaling/v2 `HorizontalPodAutoscaler`.
    HorizontalPodAutoscaler,
}
