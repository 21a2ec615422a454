//! Which optional APIs the cluster serves, found once at start: KEDA's ScaledObject, Kong's
//! KongPlugin and KongConsumer, Gateway API's HTTPRoute. A missing one is reported and its
//! resources' status says so; the operator never crash-loops on it, and `mode: auto` scaling
//! falls back to HPAs.

use super::kinds::{self, Kind};

/// The optional APIs the cluster serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    pub keda: bool,
    pub kong: bool,
    pub gateway_api: bool,
}

impl Installed {
    /// Everything installed (tests, and `render`'s default).
    pub const ALL: Installed = Installed { keda: true, kong: true, gateway_api: true };
}

/// Asks the API server. An API that cannot be listed (404, or any error) counts as not installed:
/// the controllers then report it rather than fail on every watch.
pub async fn installed(client: &kube::Client) -> Installed {
    Installed {
        keda: serves(client, &kinds::SCALED_OBJECT).await,
        kong: serves(client, &kinds::KONG_PLUGIN).await && serves(client, &kinds::KONG_CONSUMER).await,
        gateway_api: serves(client, &kinds::HTTP_ROUTE).await,
    }
}

async fn serves(client: &kube::Client, kind: &Kind) -> bool {
    match client.list_api_group_resources(&kind.api_version()).await {
        Ok(list) => list.resources.iter().any(|r| r.name == kind.plural),
        Err(e) => {
            tracing::info!(api = %kind.api_version(), kind = kind.kind, error = %e, "API not served");
            false
        }
    }
}
