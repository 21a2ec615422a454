//! Patches whose answer the operator reads only the new `resourceVersion` of.
//!
//! kube's `Api::patch` parses the whole object the API server returns; a reconcile that writes a
//! dozen objects needs none of them back but their versions (to recognise the watch's echo of its
//! own write, see [`super::cache`]), and skipping the rest of each answer unparsed is a good part
//! of what a write costs the operator.

use kube::api::{Patch, PatchParams};
use kube::core::Request;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Written {
    metadata: Version,
}

#[derive(Deserialize)]
struct Version {
    #[serde(rename = "resourceVersion", default)]
    resource_version: Option<String>,
}

/// PATCHes the object `name` (or its `subresource`) of the collection at `collection` (a URL path,
/// as `Api::resource_url`); returns its new `resourceVersion`. Errors as `Api::patch`'s.
pub async fn patch<P: Serialize + std::fmt::Debug>(
    client: &kube::Client,
    collection: &str,
    name: &str,
    subresource: Option<&str>,
    params: &PatchParams,
    patch: &Patch<P>,
) -> Result<String, kube::Error> {
    let request = Request::new(collection);
    let request = match subresource {
        Some(subresource) => request.patch_subresource(subresource, name, params, patch),
        None => request.patch(name, params, patch),
    }
    .map_err(kube::Error::BuildRequest)?;
    let written: Written = client.request(request).await?;
    Ok(written.metadata.resource_version.unwrap_or_default())
}
