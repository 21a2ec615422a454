//! The controllers: kube-runtime `Controller`s that apply what the pure renderers produce.
//!
//! ```text
//! context     what every reconcile shares: client, watch caches, installed APIs, Events, clock
//! discovery   which optional APIs (KEDA, Kong, Gateway API) the cluster serves
//! kinds       the generated and read kinds without Rust types (KongPlugin, ScaledObject, ...)
//! apply       server-side apply that skips what is already live, pruning by label and owner
//! targets     the konghq.com/plugins annotation of a policy's targets, under optimistic concurrency
//! status      conditions (pure) and the one status write
//! error       transient failures, their category and backoff
//! tenant_policy  the TenantPolicy reconcile
//! ```

pub mod apply;
pub mod context;
pub mod discovery;
pub mod error;
pub mod kinds;
pub mod status;
pub mod targets;
pub mod tenant_policy;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use self::context::Context;
use self::error::{Error, backoff};
use self::kinds::Kind;
use crate::crd::tenant_policy::TenantPolicy;
use crate::render::workload::MANAGED_BY;

type ObjectStream = Pin<Box<dyn Stream<Item = Result<DynamicObject, watcher::Error>> + Send>>;

/// A watch cache of the objects of `kind` the operator manages, and the stream that fills it.
fn managed_cache(client: &kube::Client, kind: &Kind) -> (Store<DynamicObject>, ObjectStream) {
    let writer = reflector::store::Writer::new(kind.api_resource());
    let reader = writer.as_reader();
    let config = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let stream = reflector::reflector(writer, watcher(kind.api_all(client), config))
        .touched_objects()
        .default_backoff();
    (reader, stream.boxed())
}

/// `Kind namespace/name`, the key of per-object bookkeeping and of log lines.
fn object_key<K: Resource<DynamicType = ()>>(resource: &K) -> String {
    format!("{} {}/{}", K::kind(&()), resource.namespace().unwrap_or_default(), resource.name_any())
}

fn error_policy<K: Resource<DynamicType = ()>>(resource: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = object_key(resource.as_ref());
    let failures = ctx.failed(&key);
    tracing::warn!(object = %key, category = error.category(), failures, %error, "reconcile failed");
    Action::requeue(backoff(failures - 1))
}

/// Runs the controllers until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    instance: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let installed = discovery::installed(&client).await;
    tracing::info!(?installed, "optional APIs");
    let mut ctx = Context::new(client.clone(), installed, instance);
    let mut owned = Vec::new();
    if installed.kong {
        for kind in kinds::GATEWAY {
            let (cache, stream) = managed_cache(&client, &kind);
            ctx.caches.insert(kind, cache);
            owned.push((kind, stream));
        }
    }
    let ctx = Arc::new(ctx);

    let mut policies = Controller::new(Api::<TenantPolicy>::all(client.clone()), watcher::Config::default());
    let store = policies.store();
    for (kind, stream) in owned {
        policies = policies.owns_stream_with(stream, kind.api_resource());
    }
    let mut targets = vec![kinds::INGRESS, kinds::SERVICE];
    if installed.gateway_api {
        targets.push(kinds::HTTP_ROUTE);
    }
    for kind in targets {
        let store = store.clone();
        let mapper = move |object: DynamicObject| policies_naming(&store, &kind, &object);
        policies = policies.watches_with(
            kind.api_all(&client),
            kind.api_resource(),
            watcher::Config::default(),
            mapper,
        );
    }
    policies
        .graceful_shutdown_on(shutdown)
        .run(reconcile_policy, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

async fn reconcile_policy(resource: Arc<TenantPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(resource.as_ref());
    let action = tenant_policy::reconcile(resource, ctx.clone()).await?;
    ctx.succeeded(&key);
    Ok(action)
}

/// The TenantPolicies that name `object` (an Ingress, Service or HTTPRoute) as a target.
fn policies_naming(
    store: &Store<TenantPolicy>,
    kind: &Kind,
    object: &DynamicObject,
) -> Vec<ObjectRef<TenantPolicy>> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    store
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|p| {
            let named =
                |t: &crate::crd::tenant_policy::Target| t.kind.as_str() == kind.kind && t.name == name;
            p.spec.targets.iter().any(named)
                || p.spec.rate_limit.iter().flat_map(|r| &r.routes).flat_map(|r| &r.targets).any(named)
                || p.status.iter().flat_map(|s| &s.annotated).any(named)
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests;
