//! What every reconcile shares: the client, the caches of the objects the controllers generate
//! and read (and of the policies' targets), which optional APIs the cluster serves, the Event
//! recorder, and the clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::cache::{Applied, Cache, Live};
use super::discovery::Installed;
use super::kinds::Kind;
use super::reason::Reason;
use super::sync::Reads;
use super::targets::{self, Targets};
use crate::crm::CrmClient;
use crate::metrics::Metrics;

/// Where reconciles read the time: the wall clock, or one a test or demo chooses.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The name the operator reports Events as.
pub const REPORTER: &str = "freshplan-operator";

/// Shared by every reconcile.
pub struct Context {
    pub client: kube::Client,
    /// The optional APIs the cluster serves, found at start.
    pub installed: Installed,
    /// Watch caches of the generated kinds, a few fields of each object (see [`Live`] and
    /// [`Applied`]), filled by the controllers' watches.
    pub caches: HashMap<Kind, Cache>,
    /// One Event recorder per namespace: a recorder keeps the Events of the last minutes to count
    /// repeats up, and looks through all of them on each publish; per namespace that stays a few.
    recorders: Mutex<HashMap<String, Recorder>>,
    reporter: Reporter,
    /// The clock, an argument so that tests choose the time.
    pub clock: Clock,
    pub metrics: Metrics,
    /// The CRM's settings registry; None: policies render from their spec alone.
    pub crm: Option<CrmClient>,
    /// When each policy's settings were last read, and the reads asked for.
    pub reads: Reads,
    /// Consecutive failed reconciles per object (`Kind namespace/name`), for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The targets of policies as their watches show them.
    pub targets: Targets,
}

impl Context {
    pub fn new(client: kube::Client, installed: Installed, instance: Option<String>) -> Context {
        let reporter = Reporter { controller: REPORTER.into(), instance };
        Context {
            recorders: Mutex::new(HashMap::new()),
            reporter,
            client,
            installed,
            caches: HashMap::new(),
            clock: Arc::new(Timestamp::now),
            metrics: Metrics::new(),
            crm: None,
            reads: Reads::default(),
            failures: Mutex::new(HashMap::new()),
            targets: Targets::new(targets::watched(&installed), super::CACHE_WAIT),
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

    /// What is cached of the object `kind` `namespace/name`; None when there is none or no cache
    /// of the kind.
    pub fn live(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Live> {
        self.caches.get(kind)?.get(namespace, name)
    }

    /// The names of the cached objects of `kind` in `namespace` labelled `label` and controlled by
    /// the owner with uid `owner`, in name order.
    pub fn owned(&self, kind: &Kind, namespace: &str, label: (&str, &str), owner: &str) -> Vec<String> {
        self.caches.get(kind).map(|cache| cache.owned(namespace, label, owner)).unwrap_or_default()
    }

    /// Publishes an Event about `resource`; a failure to publish is logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        resource: &K,
        warning: bool,
        reason: Reason,
        note: String,
    ) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.as_str().to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        let namespace = resource.meta().namespace.clone().unwrap_or_default();
        let recorder = {
            let mut recorders = self.recorders.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let recorder = recorders
                .entry(namespace)
                .or_insert_with(|| Recorder::new(self.client.clone(), self.reporter.clone()));
            recorder.clone()
        };
        if let Err(e) = recorder.publish(&event, &resource.object_ref(&())).await {
            tracing::warn!(error = %e, %reason, "could not publish an Event");
        }
    }

    /// What was last applied to (or found in) `kind` `namespace/name`.
    pub fn applied(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Applied> {
        self.caches.get(kind)?.applied(namespace, name)
    }

    /// Notes that `kind` `namespace/name` is about to be written with `fingerprint`; ended by
    /// [`Context::remember_applied`] or [`Context::abandon`].
    pub fn writing(&self, kind: &Kind, namespace: &str, name: &str, fingerprint: u64) {
        if let Some(cache) = self.caches.get(kind) {
            cache.writing(namespace, name, fingerprint);
        }
    }

    /// Ends a write of `kind` `namespace/name` that failed.
    pub fn abandon(&self, kind: &Kind, namespace: &str, name: &str) {
        if let Some(cache) = self.caches.get(kind) {
            cache.abandon(namespace, name);
        }
    }

    /// Remembers that `kind` `namespace/name` holds what `applied` says (until the watch sees it
    /// deleted).
    pub fn remember_applied(&self, kind: &Kind, namespace: &str, name: &str, applied: Applied) {
        if let Some(cache) = self.caches.get(kind) {
            cache.remember(namespace, name, applied);
        }
    }
}
