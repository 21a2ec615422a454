//! The gateway model as Kong Ingress Controller objects: a `KongConsumer` for the tenant, a
//! `Secret` per public key (a `jwt` credential), a `KongPlugin` per plugin, and for each target
//! the plugin names its `konghq.com/plugins` annotation must hold.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use super::plugins::{Gateway, Plugin};
use super::policy::Policy;
use crate::crd::tenant_policy::{SecretKeyRef, Target};

pub const API_VERSION: &str = "configuration.konghq.com/v1";
/// The label Kong Ingress Controller finds credential Secrets by, and their type.
pub const CREDENTIAL_LABEL: &str = "konghq.com/credential";
/// The annotation that binds a KongConsumer to a Kong Ingress Controller.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Marks a KongPlugin that only Kong Enterprise can run.
pub const EDITION_ANNOTATION: &str = "freshplan.io/kong-edition";

/// A `KongPlugin` (configuration.konghq.com/v1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KongPlugin {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub plugin: &'static str,
    pub config: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_patches: Vec<ConfigPatch>,
}

/// A value Kong Ingress Controller adds to `config` from a Secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigPatch {
    pub path: &'static str,
    pub value_from: ValueFrom,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    pub secret_key_ref: SecretKeyRef,
}

/// A `KongConsumer` (configuration.konghq.com/v1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KongConsumer {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub username: String,
    #[serde(rename = "custom_id")]
    pub custom_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
}

/// Everything Kong Ingress Controller reads for one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Objects {
    pub secrets: Vec<Secret>,
    pub consumer: KongConsumer,
    pub plugins: Vec<KongPlugin>,
    /// Per target, the names of the KongPlugins that must be in its `konghq.com/plugins`.
    pub targets: Vec<(Target, Vec<String>)>,
}

impl Objects {
    /// The objects as JSON, in the order they are applied: credentials before the consumer that
    /// names them, plugins before the annotations that name them.
    pub fn documents(&self) -> Result<Vec<Value>, serde_json::Error> {
        let mut documents = Vec::new();
        for secret in &self.secrets {
            documents.push(serde_json::to_value(secret)?);
        }
        documents.push(serde_json::to_value(&self.consumer)?);
        for plugin in &self.plugins {
            documents.push(serde_json::to_value(plugin)?);
        }
        Ok(documents)
    }
}

/// The Kong Ingress Controller objects of `gateway`, the model of `policy`.
pub fn render(policy: &Policy, gateway: &Gateway) -> Objects {
    let secrets: Vec<Secret> = gateway
        .consumer
        .credentials
        .iter()
        .map(|credential| {
            let mut metadata = policy.metadata(&credential.id);
            metadata.labels.get_or_insert_default().insert(CREDENTIAL_LABEL.to_owned(), "jwt".to_owned());
            let data = BTreeMap::from([
                ("key".to_owned(), ByteString(credential.kid.clone().into_bytes())),
                ("algorithm".to_owned(), ByteString(format!("{:?}", credential.algorithm).into_bytes())),
                ("rsa_public_key".to_owned(), ByteString(credential.public_key.clone().into_bytes())),
            ]);
            Secret { metadata, data: Some(data), type_: Some("Opaque".to_owned()), ..Secret::default() }
        })
        .collect();

    let mut consumer_metadata = policy.metadata("consumer");
    consumer_metadata.name = Some(policy.name.clone());
    consumer_metadata.annotations =
        Some(BTreeMap::from([(INGRESS_CLASS_ANNOTATION.to_owned(), policy.spec.ingress_class.clone())]));
    let consumer = KongConsumer {
        api_version: API_VERSION,
        kind: "KongConsumer",
        metadata: consumer_metadata,
        username: gateway.consumer.username.clone(),
        custom_id: gateway.consumer.username.clone(),
        credentials: secrets.iter().filter_map(|s| s.metadata.name.clone()).collect(),
    };

    let plugins = gateway.plugins.iter().map(|plugin| kong_plugin(policy, plugin)).collect();
    let targets = policy
        .targets()
        .into_iter()
        .map(|target| {
            let names = gateway.plugins_on(&target).iter().map(|p| policy.object_name(&p.id)).collect();
            (target, names)
        })
        .collect();
    Objects { secrets, consumer, plugins, targets }
}

fn kong_plugin(policy: &Policy, plugin: &Plugin) -> KongPlugin {
    let mut metadata = policy.metadata(&plugin.id);
    if plugin.enterprise {
        metadata.annotations =
            Some(BTreeMap::from([(EDITION_ANNOTATION.to_owned(), "enterprise".to_owned())]));
    }
    KongPlugin {
        api_version: API_VERSION,
        kind: "KongPlugin",
        metadata,
        plugin: plugin.plugin,
        config: plugin.config.clone(),
        config_patches: plugin
            .secret_values
            .iter()
            .map(|value| ConfigPatch {
                path: value.path,
                value_from: ValueFrom { secret_key_ref: value.secret.clone() },
            })
            .collect(),
    }
}
