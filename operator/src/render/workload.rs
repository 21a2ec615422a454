//! What every generated object is made from: the Deployment it scales, its owner, and the
//! profile's scaling settings for the Deployment's component.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::component::{COMPONENT_LABEL, Component, TERRITORY_LABEL};

/// The label naming who manages a generated object.
pub const MANAGED_BY: &str = "freshplan-operator";

/// The label naming the ScalingProfile an object was generated for: the controller prunes by it
/// (and by the owner's uid), so that it never deletes another profile's objects.
pub const PROFILE_LABEL: &str = "freshplan.io/scaling-profile";

/// A Deployment a ScalingProfile selects, with the labels that place it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub territory: String,
    pub component: Component,
}

/// The profile's settings for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autoscaling {
    pub max_replicas: u32,
    pub metrics: Vec<Metric>,
    /// Scale-down stabilisation window.
    pub scale_down_stabilization_seconds: Option<u32>,
}

/// A metric the replicas follow above the floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// Average CPU utilisation of the pods, in percent of their requests.
    Cpu { average_utilization: u32 },
    /// A PromQL query and the value per replica it aims at.
    Prometheus { server_address: String, query: String, threshold: String },
}

/// Name, namespace, labels and owner of the object generated for `workload`: named after the
/// Deployment, labelled with its territory, its component and the profile (`owner`, whose name
/// is the profile's), owned by the profile (garbage collected with it).
pub fn metadata(workload: &Workload, owner: &OwnerReference) -> ObjectMeta {
    let labels = BTreeMap::from([
        (TERRITORY_LABEL.to_owned(), workload.territory.clone()),
        (COMPONENT_LABEL.to_owned(), workload.component.as_str().to_owned()),
        (PROFILE_LABEL.to_owned(), owner.name.clone()),
        ("app.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned()),
    ]);
    ObjectMeta {
        name: Some(workload.name.clone()),
        namespace: Some(workload.namespace.clone()),
        labels: Some(labels),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}
