//! A TenantPolicy the API server would admit, and what names, labels and owns the objects
//! generated for it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::admission;
use crate::crd::tenant_policy::{Target, TenantPolicy, TenantPolicySpec};
use crate::render::workload::MANAGED_BY;
use crate::validate::Invalid;

/// The label on every object generated for a policy: its name. The controller finds the objects
/// to prune by it.
pub const POLICY_LABEL: &str = "freshplan.io/tenant-policy";
/// The label naming the tenant an object is for.
pub const TENANT_LABEL: &str = "freshplan.io/tenant";

/// An admitted TenantPolicy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub namespace: String,
    /// Empty for a policy read from a file: the API server gives the uid.
    pub uid: String,
    pub spec: TenantPolicySpec,
}

impl Policy {
    /// `resource` when the API server would admit it (its CRD's schema and CEL rules), else every
    /// reason it would not.
    pub fn admit(resource: &TenantPolicy) -> Result<Policy, Vec<Invalid>> {
        let found = admission::check(resource);
        if !found.is_empty() {
            return Err(found);
        }
        Ok(Policy {
            name: resource.name_any(),
            namespace: resource.namespace().unwrap_or_default(),
            uid: resource.meta().uid.clone().unwrap_or_default(),
            spec: resource.spec.clone(),
        })
    }

    /// This policy with another spec, when the API server would admit that.
    pub fn with_spec(&self, spec: TenantPolicySpec) -> Result<Policy, Vec<Invalid>> {
        Policy::admit(&self.resource(spec))
    }

    /// The resource of this policy with `spec`.
    fn resource(&self, spec: TenantPolicySpec) -> TenantPolicy {
        let mut resource = TenantPolicy::new(&self.name, spec);
        resource.metadata.namespace = Some(self.namespace.clone());
        resource.metadata.uid = (!self.uid.is_empty()).then(|| self.uid.clone());
        resource
    }

    /// Every object the policy protects: its targets, then those only its route limits name.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = self.spec.targets.clone();
        let routes = self.spec.rate_limit.iter().flat_map(|r| &r.routes).flat_map(|r| &r.targets);
        for target in routes {
            if !targets.contains(target) {
                targets.push(target.clone());
            }
        }
        targets
    }

    /// The name of the generated object `id` (`jwt`, `rate-limiting-sample-writes`): the
    /// policy's name first, so that `kubectl get kongplugins` groups them.
    pub fn object_name(&self, id: &str) -> String {
        format!("{}-{id}", self.name)
    }

    /// The Kong consumer's username and custom id: the tenant, or `tenant:org`. Unique in Kong,
    /// as the registry's scopes are.
    pub fn username(&self) -> String {
        match &self.spec.org_id {
            Some(org) => format!("{}:{org}", self.spec.tenant_id),
            None => self.spec.tenant_id.clone(),
        }
    }

    /// The decK tag of everything generated for the tenant (and org): `deck gateway sync
    /// --select-tag` with it touches nothing else.
    pub fn select_tag(&self) -> String {
        match &self.spec.org_id {
            Some(org) => format!("freshplan-tenant-{}-org-{org}", self.spec.tenant_id),
            None => format!("freshplan-tenant-{}", self.spec.tenant_id),
        }
    }

    /// Name, namespace, labels and owner of the generated object `id`: owned by the policy, so
    /// garbage collection deletes it with the policy.
    pub fn metadata(&self, id: &str) -> ObjectMeta {
        let labels = BTreeMap::from([
            ("app.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned()),
            (POLICY_LABEL.to_owned(), self.name.clone()),
            (TENANT_LABEL.to_owned(), self.spec.tenant_id.clone()),
        ]);
        ObjectMeta {
            name: Some(self.object_name(id)),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![self.owner()]),
            ..ObjectMeta::default()
        }
    }

    fn owner(&self) -> OwnerReference {
        OwnerReference {
            api_version: TenantPolicy::api_version(&()).into_owned(),
            kind: TenantPolicy::kind(&()).into_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}
