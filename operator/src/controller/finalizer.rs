//! Adding and removing the operator's finalizer, as JSON patches that test the list they change
//! (two writers of `metadata.finalizers` never overwrite each other's).
//!
//! kube-runtime's `finalizer` helper adds the finalizer and ends the reconcile, waiting for the
//! watch to see the change; here the reconcile goes on to apply in the same pass, so a new policy
//! is reconciled once, not twice.

use json_patch::{AddOperation, PatchOperation, RemoveOperation, TestOperation};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::Error;

/// Whether `resource` carries `finalizer`.
pub fn has<K: Resource>(resource: &K, finalizer: &str) -> bool {
    resource.finalizers().iter().any(|f| f == finalizer)
}

/// Adds `finalizer` to `resource`'s list, as long as the list is still the one read.
pub async fn add<K>(api: &Api<K>, resource: &K, finalizer: &str) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let path = |p: &str| p.parse().expect("a JSON pointer");
    let current = resource.finalizers();
    let operations = if current.is_empty() {
        vec![
            PatchOperation::Test(TestOperation { path: path("/metadata/finalizers"), value: Value::Null }),
            PatchOperation::Add(AddOperation {
                path: path("/metadata/finalizers"),
                value: vec![finalizer].into(),
            }),
        ]
    } else {
        vec![
            PatchOperation::Test(TestOperation { path: path("/metadata/finalizers"), value: current.into() }),
            PatchOperation::Add(AddOperation {
                path: path("/metadata/finalizers/-"),
                value: finalizer.into(),
            }),
        ]
    };
    patch(api, resource, operations).await
}

/// Removes `finalizer` from `resource`'s list, as long as it is still where it was read.
pub async fn remove<K>(api: &Api<K>, resource: &K, finalizer: &str) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(at) = resource.finalizers().iter().position(|f| f == finalizer) else { return Ok(()) };
    let path: json_patch::jsonptr::PointerBuf =
        format!("/metadata/finalizers/{at}").parse().expect("a JSON pointer");
    let operations = vec![
        PatchOperation::Test(TestOperation { path: path.clone(), value: finalizer.into() }),
        PatchOperation::Remove(RemoveOperation { path }),
    ];
    patch(api, resource, operations).await
}

async fn patch<K>(api: &Api<K>, resource: &K, operations: Vec<PatchOperation>) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = Patch::Json::<()>(json_patch::Patch(operations));
    let client = api.clone().into_client();
    super::write::patch(
        &client,
        api.resource_url(),
        &resource.name_any(),
        None,
        &PatchParams::default(),
        &patch,
    )
    .await?;
    Ok(())
}
