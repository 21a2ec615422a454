//! Watch caches of the objects the operator generates: of each object only what apply and prune
//! read (see [`Live`] and [`Applied`]), indexed by namespace, so that a reconcile looks at its own
//! namespace's objects and not at every object of the cluster.
//!
//! The same watch triggers the owners' reconciles, except for the echo of the operator's own
//! writes: an object seen at the `resourceVersion` this process applied, carrying the fingerprint
//! it applied, changed because of the reconcile that wrote it, and reconciling its owner again for
//! it would only find everything in force. The watch can show a write before its answer arrives;
//! what it shows of an object being written with the same fingerprint waits for that answer and
//! triggers only if its version is not the one written.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use kube::ResourceExt;
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use tokio::sync::watch as signal;

use super::apply::APPLIED_ANNOTATION;
use super::kinds::Kind;
use crate::render::workload::MANAGED_BY;

/// A generated object as its watch yields it.
pub type Meta = PartialObjectMeta<DynamicObject>;

/// What the controllers' owner watches yield.
pub type ObjectStream = Pin<Box<dyn Stream<Item = Result<Meta, watcher::Error>> + Send>>;

/// What a reconcile reads of a generated object: tens of thousands are cached, so this is all
/// that is kept of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub resource_version: String,
    /// Its `freshplan.io/applied` fingerprint.
    pub fingerprint: Option<u64>,
    /// The uid of its controlling owner.
    pub owner: Option<String>,
    /// Its `freshplan.io/...` labels, which prune selects by.
    pub labels: Vec<(String, String)>,
}

impl Live {
    fn of(object: &Meta) -> Live {
        let meta = &object.metadata;
        Live {
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            fingerprint: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(APPLIED_ANNOTATION))
                .and_then(|f| parse_fingerprint(f)),
            owner: object
                .owner_references()
                .iter()
                .find(|o| o.controller == Some(true))
                .map(|o| o.uid.clone()),
            labels: object
                .labels()
                .iter()
                .filter(|(key, _)| key.starts_with("freshplan.io/"))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The fingerprint annotation's value (16 hex digits) as a number.
pub fn parse_fingerprint(annotation: &str) -> Option<u64> {
    u64::from_str_radix(annotation, 16).ok()
}

/// An object as this process last applied it or found it in force: the fingerprint of what was
/// wanted, and the `resourceVersion` the object had then.
///
/// An object whose `resourceVersion` has not moved since it was applied still holds what was
/// applied. One that moved (someone wrote to it), or that this process has not seen before, is
/// read once and compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub fingerprint: u64,
    pub resource_version: String,
}

/// The cache of one generated kind.
#[derive(Clone)]
pub struct Cache {
    index: Arc<Mutex<Index>>,
    /// True once the first list is in.
    listed: signal::Receiver<bool>,
    /// Objects held back while their write was under way that turn out to be news after all.
    late: mpsc::UnboundedSender<Meta>,
}

/// A write under way: the fingerprint being applied, and what the watch showed meanwhile.
struct Writing {
    fingerprint: u64,
    seen: Option<Meta>,
}

type Objects = HashMap<String, BTreeMap<String, Live>>;

#[derive(Default)]
struct Index {
    objects: Objects,
    /// How many `objects` holds, kept as it changes: read after every reconcile for the metrics.
    count: usize,
    /// While a (re)list runs: what it has listed so far, which replaces `objects` when it is done.
    listing: Option<Objects>,
    /// Per `(namespace, name)`: forgotten when the object is deleted or a relist misses it.
    applied: HashMap<(String, String), Applied>,
    /// Per `(namespace, name)`: from just before a write until its answer.
    writing: HashMap<(String, String), Writing>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached object `namespace/name`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Live> {
        self.lock().objects.get(namespace)?.get(name).cloned()
    }

    /// The names of the cached objects in `namespace` labelled `label` whose controlling owner is
    /// `owner` (a uid), in name order.
    pub fn owned(&self, namespace: &str, label: (&str, &str), owner: &str) -> Vec<String> {
        let index = self.lock();
        let objects = index.objects.get(namespace).into_iter().flatten();
        let owned = objects
            .filter(|(_, live)| live.label(label.0) == Some(label.1) && live.owner.as_deref() == Some(owner));
        owned.map(|(name, _)| name.clone()).collect()
    }

    /// What this process last applied to (or found in) `namespace/name`.
    pub fn applied(&self, namespace: &str, name: &str) -> Option<Applied> {
        self.lock().applied.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Remembers what `namespace/name` holds, until the watch sees it deleted; ends a write
    /// under way.
    pub fn remember(&self, namespace: &str, name: &str, applied: Applied) {
        let key = (namespace.to_owned(), name.to_owned());
        let mut index = self.lock();
        let seen = index.writing.remove(&key).and_then(|writing| writing.seen);
        if let Some(seen) = seen
            && seen.metadata.resource_version.as_deref() != Some(applied.resource_version.as_str())
        {
            let _ = self.late.unbounded_send(seen);
        }
        index.applied.insert(key, applied);
    }

    /// Notes that `namespace/name` is about to be written with `fingerprint`.
    pub fn writing(&self, namespace: &str, name: &str, fingerprint: u64) {
        let key = (namespace.to_owned(), name.to_owned());
        self.lock().writing.insert(key, Writing { fingerprint, seen: None });
    }

    /// Ends a write under way that failed: what the watch showed meanwhile is news.
    pub fn abandon(&self, namespace: &str, name: &str) {
        let seen = self.lock().writing.remove(&(namespace.to_owned(), name.to_owned()));
        if let Some(seen) = seen.and_then(|writing| writing.seen) {
            let _ = self.late.unbounded_send(seen);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the first list has filled the cache; Err when the watch has ended.
    pub async fn wait_until_ready(&self) -> Result<(), signal::error::RecvError> {
        self.listed.clone().wait_for(|listed| *listed).await.map(|_| ())
    }

    /// Takes in a watch event; returns the object to reconcile the owner of, if any.
    fn apply(&self, event: Event<Meta>, listed: &signal::Sender<bool>) -> Option<Meta> {
        let mut index = self.lock();
        let key = |object: &Meta| (object.namespace().unwrap_or_default(), object.name_any());
        match event {
            Event::Apply(object) => {
                let ((namespace, name), live) = (key(&object), Live::of(&object));
                let echo = index.applied.get(&(namespace.clone(), name.clone())).is_some_and(|applied| {
                    Some(applied.fingerprint) == live.fingerprint
                        && applied.resource_version == live.resource_version
                });
                let key = (namespace, name);
                let written = index.writing.get_mut(&key).filter(|w| Some(w.fingerprint) == live.fingerprint);
                let triggered = match written {
                    _ if echo => None,
                    Some(writing) => {
                        writing.seen = Some(object);
                        None
                    }
                    None => {
                        let (namespace, name, version) = (&key.0, &key.1, &live.resource_version);
                        tracing::trace!(%namespace, %name, %version, "a generated object changed: its owner is reconciled");
                        Some(object)
                    }
                };
                if index.objects.entry(key.0).or_default().insert(key.1, live).is_none() {
                    index.count += 1;
                }
                triggered
            }
            Event::Delete(object) => {
                let (namespace, name) = key(&object);
                if let Some(names) = index.objects.get_mut(&namespace) {
                    let removed = names.remove(&name).is_some();
                    if names.is_empty() {
                        index.objects.remove(&namespace);
                    }
                    index.count -= usize::from(removed);
                }
                index.applied.remove(&(namespace, name));
                Some(object)
            }
            Event::Init => {
                index.listing = Some(HashMap::new());
                None
            }
            Event::InitApply(object) => {
                let ((namespace, name), live) = (key(&object), Live::of(&object));
                // Only what is new or changed since the last list is news to its owner.
                let known = index.objects.get(&namespace).and_then(|n| n.get(&name)) == Some(&live);
                index.listing.get_or_insert_default().entry(namespace).or_default().insert(name, live);
                (!known).then_some(object)
            }
            Event::InitDone => {
                if let Some(listed) = index.listing.take() {
                    index.applied.retain(|(namespace, name), _| {
                        listed.get(namespace).is_some_and(|n| n.contains_key(name))
                    });
                    index.count = listed.values().map(BTreeMap::len).sum();
                    index.objects = listed;
                }
                listed.send_replace(true);
                None
            }
        }
    }
}

/// The cache of the objects of `kind` the operator manages, and the stream that fills it and
/// yields what their owners are reconciled for (for the controller to own).
pub fn managed(client: &kube::Client, kind: &Kind) -> (Cache, ObjectStream) {
    let (listed, receiver) = signal::channel(false);
    let (late, held) = mpsc::unbounded();
    let cache = Cache { index: Arc::default(), listed: receiver, late };
    let config = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let filler = cache.clone();
    let stream = watch_into(client, kind, config, move |event| filler.apply(event, &listed));
    (cache, futures::stream::select(stream, held.map(Ok)).boxed())
}

/// The metadata watch of `kind` with `config` (backing off on errors, which pass on), each event
/// taken in by `take`, which fills a cache and says which object, if any, is news to reconcile for.
pub fn watch_into(
    client: &kube::Client,
    kind: &Kind,
    config: watcher::Config,
    take: impl Fn(Event<Meta>) -> Option<Meta> + Send + 'static,
) -> ObjectStream {
    let stream = watch(kind.metadata_all(client), config).default_backoff().filter_map(move |event| {
        std::future::ready(match event {
            Ok(event) => take(event).map(Ok),
            Err(e) => Some(Err(e)),
        })
    });
    stream.boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn object(namespace: &str, name: &str, version: &str, fingerprint: Option<u64>) -> Meta {
        let mut object = Meta { types: None, metadata: Default::default(), _phantom: Default::default() };
        let meta = &mut object.metadata;
        meta.namespace = Some(namespace.into());
        meta.name = Some(name.into());
        meta.resource_version = Some(version.into());
        meta.labels = Some(
            [("freshplan.io/tenant-policy", "acme"), ("app.kubernetes.io/managed-by", "freshplan-operator")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        meta.annotations = fingerprint.map(|f| [(APPLIED_ANNOTATION.to_owned(), format!("{f:016x}"))].into());
        meta.owner_references = Some(vec![OwnerReference {
            uid: "uid-acme".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        object
    }

    fn names(cache: &Cache, namespace: &str) -> Vec<String> {
        cache.lock().objects.get(namespace).into_iter().flatten().map(|(name, _)| name.clone()).collect()
    }

    #[test]
    fn the_index_follows_applies_deletes_and_a_relist_replaces_it() {
        let (listed, receiver) = signal::channel(false);
        let (late, mut held) = mpsc::unbounded();
        let cache = Cache { index: Arc::default(), listed: receiver, late };
        let apply = |event| cache.apply(event, &listed).map(|o: Meta| o.name_any());
        assert_eq!(apply(Event::Apply(object("crm", "b", "1", None))), Some("b".into()));
        apply(Event::Apply(object("crm", "a", "2", Some(7))));
        apply(Event::Apply(object("shop", "c", "3", None)));
        assert_eq!(names(&cache, "crm"), ["a", "b"]);
        let a = cache.get("crm", "a").unwrap();
        assert_eq!(
            (a.fingerprint, a.owner.as_deref(), a.label("freshplan.io/tenant-policy")),
            (Some(7), Some("uid-acme"), Some("acme"))
        );
        assert_eq!(a.labels.len(), 1, "only the operator's own labels are kept");
        assert_eq!(cache.owned("crm", ("freshplan.io/tenant-policy", "acme"), "uid-acme"), ["a", "b"]);
        assert_eq!(
            cache.owned("crm", ("freshplan.io/tenant-policy", "acme"), "uid-other"),
            Vec::<String>::new()
        );
        assert_eq!(
            cache.owned("crm", ("freshplan.io/tenant-policy", "other"), "uid-acme"),
            Vec::<String>::new()
        );
        assert_eq!(apply(Event::Delete(object("crm", "b", "4", None))), Some("b".into()));
        assert_eq!(names(&cache, "crm"), ["a"]);
        assert_eq!(cache.len(), 2, "a in crm, c in shop");
        apply(Event::Delete(object("crm", "b", "4", None)));
        assert_eq!(cache.len(), 2, "deleting what is gone counts nothing");

        // The echo of a write this process made does not trigger; a later change by someone does.
        cache.remember("crm", "a", Applied { fingerprint: 8, resource_version: "5".into() });
        assert_eq!(apply(Event::Apply(object("crm", "a", "5", Some(8)))), None);
        assert_eq!(apply(Event::Apply(object("crm", "a", "6", Some(8)))), Some("a".into()));

        // A write whose echo the watch shows before the answer: held, and dropped when the answer
        // names its version...
        let mut late = || held.try_recv().ok().map(|o| o.name_any());
        cache.writing("crm", "a", 9);
        assert_eq!(apply(Event::Apply(object("crm", "a", "7", Some(9)))), None);
        cache.remember("crm", "a", Applied { fingerprint: 9, resource_version: "7".into() });
        assert_eq!(late(), None);
        // ...passed on when the answer names another (someone wrote after it)...
        cache.writing("crm", "a", 10);
        assert_eq!(apply(Event::Apply(object("crm", "a", "9", Some(10)))), None);
        cache.remember("crm", "a", Applied { fingerprint: 10, resource_version: "8".into() });
        assert_eq!(late(), Some("a".into()));
        // ...or when the write failed; a change with another fingerprint is never held.
        cache.writing("crm", "a", 11);
        assert_eq!(apply(Event::Apply(object("crm", "a", "10", Some(12)))), Some("a".into()));
        assert_eq!(apply(Event::Apply(object("crm", "a", "11", Some(11)))), None);
        cache.abandon("crm", "a");
        assert_eq!(late(), Some("a".into()));
        cache.remember("crm", "a", Applied { fingerprint: 8, resource_version: "6".into() });
        apply(Event::Apply(object("crm", "a", "6", Some(8))));

        // A relist: until it is done the old objects stand; then only what it listed. What it
        // lists unchanged is no news.
        assert!(!*listed.borrow());
        apply(Event::Init);
        assert_eq!(apply(Event::InitApply(object("crm", "a", "6", Some(8)))), None);
        assert_eq!(apply(Event::InitApply(object("crm", "d", "7", None))), Some("d".into()));
        assert_eq!(names(&cache, "shop"), ["c"]);
        cache.remember("crm", "d", Applied { fingerprint: 1, resource_version: "7".into() });
        cache.remember("shop", "c", Applied { fingerprint: 1, resource_version: "3".into() });
        apply(Event::InitDone);
        assert!(*listed.borrow());
        // What was applied is forgotten with the object: the relist missed c; d goes when deleted.
        assert_eq!(
            (names(&cache, "crm"), names(&cache, "shop")),
            (vec!["a".to_owned(), "d".to_owned()], vec![])
        );
        assert!(cache.applied("shop", "c").is_none());
        apply(Event::Delete(object("crm", "d", "8", None)));
        assert!(cache.applied("crm", "d").is_none());
        assert_eq!(cache.len(), 1);
    }
}
