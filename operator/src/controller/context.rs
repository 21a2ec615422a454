//! What every reconcile shares: the client, the caches of the objects the controllers generate
//! and read, which optional APIs the cluster serves, the Event recorder, and the clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use kube::runtime::events::{Recorder, Reporter};

use super::cache::{Cache, Meta};
use super::discovery::Installed;
use super::kinds::Kind;
use super::sync::Reads;
use crate::crm::CrmClient;
use crate::metrics::Metrics;

/// Where reconciles read the time: the wall clock, or one a test or demo chooses.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// An object as this process last applied it or found it in force: the fingerprint of what was
/// wanted, and the `resourceVersion` the object had then.
///
/// The caches hold metadata only, so that thousands of plugins and ScaledObjects do not keep
/// their bodies in memory; an object whose `resourceVersion` has not moved since it was applied
/// still holds what was applied. One that moved (someone wrote to it), or that this process has
/// not seen before, is read once and compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub fingerprint: String,
    pub resource_version: String,
}

/// The name the operator reports Events as.
pub const REPORTER: &str = "freshplan-operator";

/// Shared by every reconcile.
pub struct Context {
    pub client: kube::Client,
    /// The optional APIs the cluster serves, found at start.
    pub installed: Installed,
    /// Watch caches of the generated kinds, metadata only (see [`Applied`]), filled by the
    /// controllers' watches.
    pub caches: HashMap<Kind, Cache>,
    /// What this process applied or found in force, per object.
    applied: Mutex<HashMap<(Kind, String, String), Applied>>,
    pub recorder: Recorder,
    /// The clock, an argument so that tests choose the time.
    pub clock: Clock,
    pub metrics: Metrics,
    /// The CRM's settings registry; None: policies render from their spec alone.
    pub crm: Option<CrmClient>,
    /// When each policy's settings were last read, and the reads asked for.
    pub reads: Reads,
    /// Consecutive failed reconciles per object (`Kind namespace/name`), for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: kube::Client, installed: Installed, instance: Option<String>) -> Context {
        let reporter = Reporter { controller: REPORTER.into(), instance };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            installed,
            caches: HashMap::new(),
            applied: Mutex::new(HashMap::new()),
            clock: Arc::new(Timestamp::now),
            metrics: Metrics::new(),
            crm: None,
            reads: Reads::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a failed reconcile of `object`; returns how many in a row.
    pub fn failed(&self, object: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(object.to_owned()).or_default();
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of `object` after a reconcile succeeded.
    pub fn succeeded(&self, object: &str) {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(object);
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// The cached metadata of the object `kind` `namespace/name`; None when there is none or no
    /// cache of the kind.
    pub fn live(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Arc<Meta>> {
        self.caches.get(kind)?.get(kind, namespace, name)
    }

    /// The metadata of every cached object of `kind` in `namespace`, in name order.
    pub fn live_list(&self, kind: &Kind, namespace: &str) -> Vec<Arc<Meta>> {
        self.caches.get(kind).map(|cache| cache.in_namespace(kind, namespace)).unwrap_or_default()
    }

    /// What was last applied to (or found in) `kind` `namespace/name`.
    pub fn applied(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Applied> {
        let applied = self.applied.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        applied.get(&(*kind, namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Remembers that `kind` `namespace/name` holds what `applied` says.
    pub fn remember_applied(&self, kind: &Kind, namespace: &str, name: &str, applied: Applied) {
        let mut all = self.applied.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        all.insert((*kind, namespace.to_owned(), name.to_owned()), applied);
    }

    /// Forgets `kind` `namespace/name` (it was deleted).
    pub fn forget_applied(&self, kind: &Kind, namespace: &str, name: &str) {
        let mut all = self.applied.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        all.remove(&(*kind, namespace.to_owned(), name.to_owned()));
    }
}
