//! The controllers: kube-runtime `Controller`s that apply what the pure renderers produce.
//!
//! ```text
//! context     what every reconcile shares: client, watch caches, installed APIs, Events, clock
//! discovery   which optional APIs (KEDA, Kong, Gateway API) the cluster serves
//! kinds       the generated and read kinds without Rust types (KongPlugin, ScaledObject, ...)
//! cache       metadata caches of the generated kinds, by namespace
//! apply       server-side apply that skips what is already live, pruning by label and owner
//! targets     the konghq.com/plugins annotation of a policy's targets, under optimistic concurrency
//! reason      the reasons of conditions and Events, for both controllers
//! status      conditions (pure), the one status write, and the hold when nothing is applied
//! error       transient failures, their category and backoff
//! finalizer   the TenantPolicy's finalizer, added and removed by tested JSON patches
//! sync        when a TenantPolicy's CRM settings are read again, and what is overlaid meanwhile
//! write       patches that read back only the new resourceVersion
//! tenant_policy  the TenantPolicy reconcile
//! scaling_profile  the ScalingProfile reconcile
//! ```

pub mod apply;
pub mod cache;
pub mod context;
pub mod discovery;
pub mod error;
pub mod finalizer;
pub mod kinds;
pub mod reason;
pub mod scaling_profile;
pub mod status;
pub mod sync;
pub mod targets;
pub mod tenant_policy;
pub mod write;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{FutureExt, Shared};
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use kube::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use self::context::{Clock, Context};
use self::error::{Error, backoff};
use crate::crd::tenant_policy::TenantPolicy;
use crate::crm::CrmClient;
use crate::metrics::{Metrics, Outcome};

/// How long a reconcile waits for the watch caches' first lists (a ScalingProfile's then tries
/// again later; TenantPolicies' wait that long from the start, then read their targets from the
/// API server instead).
const CACHE_WAIT: Duration = Duration::from_secs(10);

/// The shutdown signal, shared by the controllers.
pub type Shutdown = Shared<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>;

/// What the controllers need besides a client.
#[derive(Clone)]
pub struct Options {
    /// This replica's name in Events (the pod name).
    pub instance: Option<String>,
    pub metrics: Metrics,
    /// The CRM's settings registry; None: TenantPolicies render from their spec alone.
    pub crm: Option<CrmClient>,
    /// Requests to sync a TenantPolicy's settings now (`POST /sync/{namespace}/{name}`). Shared,
    /// so that the controllers of each term as leader read the same queue.
    pub sync_requests: Option<SyncRequests>,
    /// How long a controller waits for more changes to an object before it reconciles it.
    pub debounce: Duration,
    /// How many objects each controller reconciles at once. Bounded, so that a start with
    /// thousands of objects queues them instead of opening a connection and holding a plan for
    /// each at the same time.
    pub concurrency: u16,
    /// The clock the reconciles plan with (`Context::clock`); tests pin it.
    pub clock: Clock,
}

/// The queue of `POST /sync` requests.
pub type SyncRequests = Arc<tokio::sync::Mutex<mpsc::Receiver<ObjectRef<TenantPolicy>>>>;

impl Options {
    pub fn new(metrics: Metrics) -> Options {
        Options {
            instance: None,
            metrics,
            crm: None,
            sync_requests: None,
            debounce: Duration::from_millis(200),
            concurrency: 16,
            clock: Arc::new(Timestamp::now),
        }
    }
}

/// The primary watch of a controller: `K`s, in a cache the controller reads, passed on only when
/// something a reconcile acts on changed (spec, labels, annotations, deletion) and not when only
/// the status or the finalizers did: what a reconcile writes there does not reconcile again. (A
/// finalizer someone removes is put back by the next periodic reconcile.)
fn primary<K>(
    client: &kube::Client,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + use<K>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let watch = watcher(Api::<K>::all(client.clone()), watcher::Config::default()).modify(lean);
    let stream = reflector::reflector(writer, watch)
        .default_backoff()
        .applied_objects()
        .predicate_filter(reconciled_part::<K>, Default::default());
    (store, stream)
}

/// Drops what no reconcile reads and the caches would otherwise hold for every object: the
/// `managedFields`, often bigger than the rest of the object.
fn lean<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// The hash of what of `object` a reconcile acts on: everything but the status.
fn reconciled_part<K: Resource>(object: &K) -> Option<u64> {
    let meta = object.meta();
    let part = (&meta.generation, &meta.labels, &meta.annotations, &meta.deletion_timestamp);
    Some(crate::hash::fnv1a(format!("{part:?}").as_bytes()))
}

/// `Kind namespace/name`, the key of per-object bookkeeping and of log lines.
fn object_key<K: Resource<DynamicType = ()>>(resource: &K) -> String {
    format!("{} {}/{}", K::kind(&()), resource.namespace().unwrap_or_default(), resource.name_any())
}

/// A reconcile wrapped in what every controller does around it: metrics, and forgetting the
/// failures of an object once it succeeds.
async fn observed<K, F>(
    kind: &'static str,
    resource: Arc<K>,
    ctx: Arc<Context>,
    reconcile: impl FnOnce(Arc<K>, Arc<Context>) -> F,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: Future<Output = Result<Action, Error>>,
{
    let key = object_key(resource.as_ref());
    let timer = ctx.metrics.reconcile_timer(kind);
    // Every line logged during the reconcile carries the object (in JSON: `span.object`).
    let span = tracing::info_span!("reconcile", object = %key);
    let result = reconcile(resource, ctx.clone()).instrument(span.clone()).await;
    match &result {
        Ok(action) => {
            span.in_scope(|| tracing::debug!(?action, "reconciled"));
            ctx.succeeded(&key)
        }
        Err(e) => ctx.metrics.error(kind, e.category()),
    }
    timer.finish(Outcome::from(&result));
    // What the watch caches hold is what the operator manages: cheap to count after each reconcile.
    for (kind, cache) in &ctx.caches {
        ctx.metrics.set_managed(kind.kind, cache.len());
    }
    result
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
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let installed = discovery::installed(&client).await;
    tracing::info!(?installed, "optional APIs");
    let mut ctx = Context::new(client.clone(), installed, options.instance.clone());
    ctx.metrics = options.metrics.clone();
    ctx.crm = options.crm.clone();
    ctx.clock = options.clock.clone();
    let mut gateway = Vec::new();
    if installed.kong {
        for kind in kinds::GATEWAY {
            let (cache, stream) = cache::managed(&client, &kind);
            ctx.caches.insert(kind, cache);
            gateway.push((kind, stream));
        }
    }
    let mut scaling = Vec::new();
    for kind in kinds::SCALING.into_iter().filter(|kind| installed.keda || *kind != kinds::SCALED_OBJECT) {
        let (cache, stream) = cache::managed(&client, &kind);
        ctx.caches.insert(kind, cache);
        scaling.push((kind, stream));
    }
    let ctx = Arc::new(ctx);
    let shutdown: Shutdown = (Box::pin(shutdown) as Pin<Box<dyn Future<Output = ()> + Send + Sync>>).shared();
    let config = ControllerConfig::default().debounce(options.debounce).concurrency(options.concurrency);
    // Each controller is a task of its own, on the runtime's worker threads: polled by the caller
    // (the main thread's `block_on`), every reconcile would run on one thread and hand each
    // request to a worker and back.
    let policies = tokio::spawn(tenant_policy::controller(
        ctx.clone(),
        gateway,
        options.sync_requests,
        config.clone(),
        shutdown.clone(),
    ));
    let profiles = tokio::spawn(scaling_profile::controller(ctx.clone(), scaling, config, shutdown.clone()));
    for ended in [policies.await, profiles.await] {
        // A panic goes on as it would have inline (nothing aborts these tasks).
        if let Err(e) = ended
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// Logs what a controller's stream yields that is not a reconcile result worth keeping.
async fn drain<T, E: std::fmt::Display>(results: impl Stream<Item = Result<T, E>>) {
    results
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests;
