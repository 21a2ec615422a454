//! Watch caches of the objects the operator generates: their metadata only (apply and prune need
//! no more, see [`Applied`]), without `managedFields`, and indexed by namespace, so that a
//! reconcile looks at its own namespace's objects and not at every object of the cluster.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Resource, ResourceExt};

use super::apply::APPLIED_ANNOTATION;
use super::kinds::Kind;
use crate::render::workload::MANAGED_BY;

/// A generated object as cached.
pub type Meta = PartialObjectMeta<DynamicObject>;

/// What the controllers' owner watches yield.
pub type ObjectStream = Pin<Box<dyn Stream<Item = Result<Meta, watcher::Error>> + Send>>;

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

/// The cache of one generated kind.
#[derive(Clone)]
pub struct Cache {
    store: Store<Meta>,
    index: NamespaceIndex,
}

impl Cache {
    /// The cached object `namespace/name` of `kind`.
    pub fn get(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Arc<Meta>> {
        self.store.get(&ObjectRef::new_with(name, kind.api_resource()).within(namespace))
    }

    /// The cached objects of `kind` in `namespace`, in name order.
    pub fn in_namespace(&self, kind: &Kind, namespace: &str) -> Vec<Arc<Meta>> {
        self.index.names(namespace).iter().filter_map(|name| self.get(kind, namespace, name)).collect()
    }

    /// What this process last applied to (or found in) `namespace/name`.
    pub fn applied(&self, namespace: &str, name: &str) -> Option<Applied> {
        self.index.lock().applied.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Remembers what `namespace/name` holds, until the watch sees it deleted.
    pub fn remember(&self, namespace: &str, name: &str, applied: Applied) {
        self.index.lock().applied.insert((namespace.to_owned(), name.to_owned()), applied);
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Waits until the first list has filled the cache.
    pub async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.store.wait_until_ready().await
    }
}

/// The cache of the objects of `kind` the operator manages, and the stream that fills it (for
/// the controller to own).
pub fn managed(client: &kube::Client, kind: &Kind) -> (Cache, ObjectStream) {
    let writer = reflector::store::Writer::new(kind.api_resource());
    let cache = Cache { store: writer.as_reader(), index: NamespaceIndex::default() };
    let config = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let index = cache.index.clone();
    let events = watch(kind.metadata_all(client), config).modify(keep_what_is_read).map(move |event| {
        if let Ok(event) = &event {
            index.apply(event);
        }
        event
    });
    let stream = reflector::reflector(writer, events).touched_objects().default_backoff();
    (cache, stream.boxed())
}

/// Drops the metadata no reconcile reads, for memory (tens of thousands of objects are cached):
/// what stays is the name, namespace, resource version, owner references, the operator's own
/// labels (`freshplan.io/...`, which prune selects by) and the fingerprint annotation.
fn keep_what_is_read(object: &mut Meta) {
    let meta = &mut object.metadata;
    meta.managed_fields = None;
    meta.creation_timestamp = None;
    meta.uid = None;
    meta.generation = None;
    if let Some(labels) = &mut meta.labels {
        labels.retain(|key, _| key.starts_with("freshplan.io/"));
    }
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|key, _| key == APPLIED_ANNOTATION);
    }
}

/// The names of a cache's objects per namespace, and what was applied to them, kept from the same
/// watch events as the cache.
#[derive(Clone, Default)]
struct NamespaceIndex(Arc<Mutex<Index>>);

#[derive(Default)]
struct Index {
    names: HashMap<String, BTreeSet<String>>,
    /// While a (re)list runs: what it has listed so far, which replaces `names` when it is done.
    listing: Option<HashMap<String, BTreeSet<String>>>,
    /// Per `(namespace, name)`: forgotten when the object is deleted or a relist misses it.
    applied: HashMap<(String, String), Applied>,
}

impl NamespaceIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn apply<K: Resource>(&self, event: &Event<K>) {
        let mut index = self.lock();
        let key = |object: &K| (object.namespace().unwrap_or_default(), object.name_any());
        match event {
            Event::Apply(object) => {
                let (namespace, name) = key(object);
                index.names.entry(namespace).or_default().insert(name);
            }
            Event::Delete(object) => {
                let (namespace, name) = key(object);
                if let Some(names) = index.names.get_mut(&namespace) {
                    names.remove(&name);
                    if names.is_empty() {
                        index.names.remove(&namespace);
                    }
                }
                index.applied.remove(&(namespace, name));
            }
            Event::Init => index.listing = Some(HashMap::new()),
            Event::InitApply(object) => {
                let (namespace, name) = key(object);
                index.listing.get_or_insert_default().entry(namespace).or_default().insert(name);
            }
            Event::InitDone => {
                if let Some(listed) = index.listing.take() {
                    index.applied.retain(|(namespace, name), _| {
                        listed.get(namespace).is_some_and(|n| n.contains(name))
                    });
                    index.names = listed;
                }
            }
        }
    }

    fn names(&self, namespace: &str) -> Vec<String> {
        let index = self.lock();
        index.names.get(namespace).map(|names| names.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use k8s_openapi::api::core::v1::ConfigMap;

    fn object(namespace: &str, name: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.namespace = Some(namespace.into());
        object.metadata.name = Some(name.into());
        object
    }

    #[test]
    fn the_index_follows_applies_deletes_and_a_relist_replaces_it() {
        let index = NamespaceIndex::default();
        index.apply(&Event::Apply(object("crm", "b")));
        index.apply(&Event::Apply(object("crm", "a")));
        index.apply(&Event::Apply(object("shop", "c")));
        assert_eq!(index.names("crm"), ["a", "b"]);
        index.apply(&Event::Delete(object("crm", "b")));
        assert_eq!(index.names("crm"), ["a"]);

        // A relist: until it is done the old names stand; then only what it listed.
        index.apply(&Event::<ConfigMap>::Init);
        index.apply(&Event::InitApply(object("crm", "d")));
        assert_eq!(index.names("crm"), ["a"]);
        let applied = Applied { fingerprint: "f".into(), resource_version: "1".into() };
        index.lock().applied.insert(("crm".into(), "a".into()), applied.clone());
        index.lock().applied.insert(("crm".into(), "d".into()), applied.clone());
        index.apply(&Event::<ConfigMap>::InitDone);
        // What was applied is forgotten with the object: the relist missed a; d goes when deleted.
        assert_eq!(index.lock().applied.keys().collect::<Vec<_>>(), [&("crm".to_owned(), "d".to_owned())]);
        assert_eq!((index.names("crm"), index.names("shop")), (vec!["d".to_owned()], Vec::<String>::new()));
        index.apply(&Event::Delete(object("crm", "d")));
        assert!(index.lock().applied.is_empty());
        assert_eq!(index.names("crm"), Vec::<String>::new());
    }
}
