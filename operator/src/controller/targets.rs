//! The `konghq.com/plugins` annotation of a TenantPolicy's targets: merged with the names users
//! put there ([`crate::gateway::annotation::merge`]), written with a merge patch that carries the
//! object's `resourceVersion`, so a concurrent edit is never overwritten: on a conflict the
//! object is read again and the merge redone. No other field of the user's object is touched.

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::context::Context;
use super::error::Error;
use super::kinds::{self, Kind};
use super::write;
use crate::crd::tenant_policy::{Target, TargetKind};
use crate::gateway::annotation::{MANAGED_ANNOTATION, PLUGINS_ANNOTATION, merge, names};

/// Conflicts tolerated in a row before the reconcile fails (and is retried with backoff).
const ATTEMPTS: u32 = 5;

/// What became of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It holds the wanted names (written now or already).
    Annotated { written: bool },
    /// It does not exist.
    Missing,
}

fn kind_of(target: &Target) -> Kind {
    match target.kind {
        TargetKind::Ingress => kinds::INGRESS,
        TargetKind::Service => kinds::SERVICE,
        TargetKind::HttpRoute => kinds::HTTP_ROUTE,
    }
}

/// The annotations to patch so that `object` lists `wanted` as the operator's plugins; None when
/// it already does.
pub fn annotation_patch(object: &Value, wanted: &[String]) -> Option<Value> {
    let annotations = &object["metadata"]["annotations"];
    let current = annotations[PLUGINS_ANNOTATION].as_str();
    let ours_before = annotations[MANAGED_ANNOTATION].as_str().map(names).unwrap_or_default();
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let merged = merge(current, &ours_before, &wanted);
    let managed = (!wanted.is_empty()).then(|| wanted.join(","));
    if merged.as_deref() == current && managed.as_deref() == annotations[MANAGED_ANNOTATION].as_str() {
        return None;
    }
    Some(json!({
        "metadata": {
            "resourceVersion": object["metadata"]["resourceVersion"],
            "annotations": { PLUGINS_ANNOTATION: merged, MANAGED_ANNOTATION: managed },
        }
    }))
}

/// Makes `target` in `namespace` list `wanted` as the operator's plugins (none: removes the
/// operator's).
pub async fn annotate(
    ctx: &Context,
    namespace: &str,
    target: &Target,
    wanted: &[String],
) -> Result<Outcome, Error> {
    let kind = kind_of(target);
    if kind == kinds::HTTP_ROUTE && !ctx.installed.gateway_api {
        return Ok(Outcome::Missing);
    }
    let api = kind.api(&ctx.client, namespace);
    for _ in 0..ATTEMPTS {
        let Some(object) = api.get_opt(&target.name).await? else { return Ok(Outcome::Missing) };
        let object = serde_json::to_value(&object)?;
        let Some(patch) = annotation_patch(&object, wanted) else {
            return Ok(Outcome::Annotated { written: false });
        };
        let patch = Patch::Merge(&patch);
        match write::patch(
            &ctx.client,
            api.resource_url(),
            &target.name,
            None,
            &PatchParams::default(),
            &patch,
        )
        .await
        {
            Ok(version) => {
                ctx.wrote_target(&kind, namespace, &target.name, version);
                return Ok(Outcome::Annotated { written: true });
            }
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Outcome::Missing),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflicts {
        kind: kind.kind,
        namespace: namespace.to_owned(),
        name: target.name.clone(),
        attempts: ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(plugins: Option<&str>, managed: Option<&str>) -> Value {
        json!({"metadata": {"name": "crm-acme", "resourceVersion": "7", "annotations": {
            PLUGINS_ANNOTATION: plugins, MANAGED_ANNOTATION: managed, "other": "kept"}}})
    }

    #[test]
    fn the_patch_adds_ours_keeps_theirs_and_carries_the_resource_version() {
        let wanted = vec!["acme-jwt".to_owned(), "acme-cors".to_owned()];
        let patch = annotation_patch(&object(Some("user-log"), None), &wanted).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"resourceVersion": "7", "annotations": {
                PLUGINS_ANNOTATION: "user-log,acme-jwt,acme-cors", MANAGED_ANNOTATION: "acme-jwt,acme-cors"}}})
        );
        assert_eq!(
            annotation_patch(
                &object(Some("user-log,acme-jwt,acme-cors"), Some("acme-jwt,acme-cors")),
                &wanted
            ),
            None
        );
        // Removing ours leaves theirs, and drops the record of ours.
        let patch = annotation_patch(&object(Some("acme-jwt,user-log"), Some("acme-jwt")), &[]).unwrap();
        assert_eq!(
            patch["metadata"]["annotations"],
            json!({PLUGINS_ANNOTATION: "user-log", MANAGED_ANNOTATION: null})
        );
        let patch = annotation_patch(&object(Some("acme-jwt"), Some("acme-jwt")), &[]).unwrap();
        assert_eq!(
            patch["metadata"]["annotations"],
            json!({PLUGINS_ANNOTATION: null, MANAGED_ANNOTATION: null})
        );
    }
}
