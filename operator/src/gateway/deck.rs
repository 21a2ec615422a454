//! The gateway model as a decK declarative file (`_format_version: "3.0"`), for Kong outside
//! Kubernetes: `deck gateway sync --select-tag <tag> file.yaml`.
//!
//! Every entity carries the policy's tag ([`Policy::select_tag`]), and `_info.select_tags` names
//! it, so a sync with it creates, changes and deletes only this tenant's entities. Targets are
//! Kong entities by name: a `Service` target is the Kong service of that name, an `Ingress` or
//! `HTTPRoute` target the Kong route of that name. Kong keeps one plugin per entity, so each
//! plugin becomes one entity per target.

use serde_json::{Value, json};

use super::plugins::{Gateway, Plugin};
use super::policy::Policy;
use crate::crd::tenant_policy::{SecretKeyRef, TargetKind};

/// The decK document of `gateway`, the model of `policy`.
pub fn render(policy: &Policy, gateway: &Gateway) -> Value {
    let tag = policy.select_tag();
    let jwt_secrets: Vec<Value> = gateway
        .consumer
        .credentials
        .iter()
        .map(|c| {
            json!({
                "key": c.kid,
                "algorithm": format!("{:?}", c.algorithm),
                "rsa_public_key": c.public_key,
                "tags": [tag],
            })
        })
        .collect();
    let mut consumer = json!({
        "username": gateway.consumer.username,
        "custom_id": gateway.consumer.username,
        "tags": [tag],
    });
    if !jwt_secrets.is_empty() {
        consumer["jwt_secrets"] = Value::Array(jwt_secrets);
    }
    let plugins: Vec<Value> = gateway
        .plugins
        .iter()
        .flat_map(|plugin| {
            plugin.targets.iter().map(|target| {
                let mut entity = json!({
                    "name": plugin.plugin,
                    "instance_name": format!("{}-{}", policy.object_name(&plugin.id), target.name),
                    "config": config_with_secrets(plugin),
                    "enabled": true,
                    "tags": [tag],
                });
                let scope = match target.kind {
                    TargetKind::Service => "service",
                    TargetKind::Ingress | TargetKind::HttpRoute => "route",
                };
                entity[scope] = json!(target.name);
                entity
            })
        })
        .collect();
    json!({
        "_format_version": "3.0",
        "_info": { "select_tags": [tag] },
        "consumers": [consumer],
        "plugins": plugins,
    })
}

/// `plugin`'s config with each Secret value as a decK environment reference
/// (`${{ env "DECK_..." }}`), which decK fills in at sync time: the file holds no secret.
fn config_with_secrets(plugin: &Plugin) -> Value {
    let mut config = plugin.config.clone();
    for value in &plugin.secret_values {
        let (parent, field) = value.path.rsplit_once('/').unwrap_or(("", value.path));
        let reference = format!("${{{{ env \"{}\" }}}}", env_name(&value.secret));
        if let Some(Value::Object(object)) = config.pointer_mut(parent) {
            object.insert(field.to_owned(), Value::String(reference));
        }
    }
    config
}

/// `DECK_<SECRET>_<KEY>`, upper case, other characters as `_` (decK reads only `DECK_` variables).
pub fn env_name(secret: &SecretKeyRef) -> String {
    let name: String = format!("{}_{}", secret.name, secret.key)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect();
    format!("DECK_{name}")
}
