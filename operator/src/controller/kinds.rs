//! The kinds the controllers write or read that have no Rust type here: Kong's and KEDA's custom
//! resources, and the core kinds handled as JSON alongside them.

use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::core::GroupVersionKind;

/// A kind, by group, version, kind and plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl Kind {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// Its API in `namespace`.
    pub fn api(&self, client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), namespace, &self.api_resource())
    }

    /// Its API across namespaces, metadata only, for the watch caches of generated objects.
    pub fn metadata_all(&self, client: &kube::Client) -> Api<PartialObjectMeta<DynamicObject>> {
        Api::all_with(client.clone(), &self.api_resource())
    }

    /// The kind of a JSON object's `apiVersion` and `kind`, among `kinds`.
    pub fn of<'a>(kinds: &'a [Kind], object: &serde_json::Value) -> Option<&'a Kind> {
        let (api_version, kind) = (object["apiVersion"].as_str()?, object["kind"].as_str()?);
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        kinds.iter().find(|k| k.kind == kind && k.group == group && k.version == version)
    }
}

pub const SECRET: Kind = Kind { group: "", version: "v1", kind: "Secret", plural: "secrets" };
pub const SERVICE: Kind = Kind { group: "", version: "v1", kind: "Service", plural: "services" };
pub const INGRESS: Kind =
    Kind { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses" };
pub const HTTP_ROUTE: Kind =
    Kind { group: "gateway.networking.k8s.io", version: "v1", kind: "HTTPRoute", plural: "httproutes" };
pub const KONG_PLUGIN: Kind =
    Kind { group: "configuration.konghq.com", version: "v1", kind: "KongPlugin", plural: "kongplugins" };
pub const KONG_CONSUMER: Kind =
    Kind { group: "configuration.konghq.com", version: "v1", kind: "KongConsumer", plural: "kongconsumers" };
pub const SCALED_OBJECT: Kind =
    Kind { group: "keda.sh", version: "v1alpha1", kind: "ScaledObject", plural: "scaledobjects" };
pub const HPA: Kind = Kind {
    group: "autoscaling",
    version: "v2",
    kind: "HorizontalPodAutoscaler",
    plural: "horizontalpodautoscalers",
};

/// What a TenantPolicy generates, in the order it is applied.
pub const GATEWAY: [Kind; 3] = [SECRET, KONG_CONSUMER, KONG_PLUGIN];
/// What a ScalingProfile generates.
pub const SCALING: [Kind; 2] = [SCALED_OBJECT, HPA];
