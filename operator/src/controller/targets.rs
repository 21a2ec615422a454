//! The `konghq.com/plugins` annotation of a TenantPolicy's targets: merged with the names users
//! put there ([`crate::gateway::annotation::merge`]), written with a merge patch that carries the
//! object's `resourceVersion`, so a concurrent edit is never overwritten: on a conflict the
//! object is read again and the merge redone. No other field of the user's object is touched.
//!
//! A reconcile reads its targets from [`Targets`], what the targets' metadata watches last showed,
//! as controllers read informer caches: a stale entry costs a refused write (409) and a read, and
//! a change the cache has not shown yet reconciles the policy again when the watch shows it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use tokio::sync::watch as signal;

use super::cache::Meta;
use super::context::Context;
use super::discovery::Installed;
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

/// The kinds a policy can target that the cluster serves: their watches fill [`Targets`].
pub fn watched(installed: &Installed) -> Vec<Kind> {
    let mut kinds = vec![kinds::INGRESS, kinds::SERVICE];
    if installed.gateway_api {
        kinds.push(kinds::HTTP_ROUTE);
    }
    kinds
}

/// `(kind, namespace, name)`.
type Key = (&'static str, String, String);

/// What a reconcile reads of a target: its version and the two annotations it merges.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    resource_version: String,
    plugins: Option<String>,
    managed: Option<String>,
}

impl Seen {
    fn of(meta: &ObjectMeta) -> Seen {
        let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
        Seen {
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            plugins: annotation(PLUGINS_ANNOTATION),
            managed: annotation(MANAGED_ANNOTATION),
        }
    }

    /// As the object's JSON, which [`annotation_patch`] reads.
    fn object(&self) -> Value {
        json!({"metadata": {
            "resourceVersion": self.resource_version,
            "annotations": {PLUGINS_ANNOTATION: self.plugins, MANAGED_ANNOTATION: self.managed},
        }})
    }
}

/// The targets of the [`watched`] kinds as their watches last showed them, and the versions this
/// process wrote whose echo the watch has not shown yet.
pub struct Targets {
    kinds: Vec<Kind>,
    /// Until when a reconcile waits for the first lists: once, from the start, so that a watch
    /// that cannot list (say, RBAC without `list` on Services) does not hold every reconcile.
    deadline: tokio::time::Instant,
    index: Mutex<TargetIndex>,
    /// The kinds whose first list is in.
    listed: signal::Sender<HashSet<&'static str>>,
}

#[derive(Default)]
struct TargetIndex {
    seen: HashMap<Key, Seen>,
    /// Per kind, while a (re)list runs: what it has listed so far, which then replaces the kind's.
    listing: HashMap<&'static str, HashMap<Key, Seen>>,
    /// The `resourceVersion` each target had after this process wrote its annotations, until
    /// the watch shows it.
    written: HashMap<Key, String>,
}

impl Targets {
    /// The targets of `kinds`, whose first lists reconciles wait for during `wait` from now.
    pub fn new(kinds: Vec<Kind>, wait: Duration) -> Targets {
        let (index, listed) = (Mutex::default(), signal::Sender::new(HashSet::new()));
        Targets { kinds, deadline: tokio::time::Instant::now() + wait, index, listed }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TargetIndex> {
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Seen> {
        self.lock().seen.get(&(kind.kind, namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Waits, until the deadline at most, for the first list of every watched kind; whether
    /// they are in. A reconcile that goes on without them reads its targets from the API server.
    pub async fn ready(&self) -> bool {
        let mut listed = self.listed.subscribe();
        let all = listed.wait_for(|listed| self.kinds.iter().all(|kind| listed.contains(kind.kind)));
        matches!(tokio::time::timeout_at(self.deadline, all).await, Ok(Ok(_)))
    }

    /// Remembers that this process wrote `annotations` (the patch's) to a target, which then had
    /// `resource_version`.
    fn wrote(&self, kind: &Kind, namespace: &str, name: &str, resource_version: String, annotations: &Value) {
        let key = (kind.kind, namespace.to_owned(), name.to_owned());
        let annotation = |key: &str| annotations[key].as_str().map(str::to_owned);
        let seen = Seen {
            resource_version: resource_version.clone(),
            plugins: annotation(PLUGINS_ANNOTATION),
            managed: annotation(MANAGED_ANNOTATION),
        };
        let mut index = self.lock();
        index.seen.insert(key.clone(), seen);
        index.written.insert(key, resource_version);
    }

    /// Takes in a watch event of `kind`; returns the target whose policies are to be reconciled,
    /// if any: not the echo of this process's own write (each write is recognised once), nor an
    /// object a relist finds unchanged.
    pub fn observe(&self, kind: &Kind, event: Event<Meta>) -> Option<Meta> {
        let key = |object: &Meta| (kind.kind, object.namespace().unwrap_or_default(), object.name_any());
        let mut index = self.lock();
        match event {
            Event::Apply(object) => {
                let (key, seen) = (key(&object), Seen::of(&object.metadata));
                let echo = index.written.get(&key) == Some(&seen.resource_version);
                if echo {
                    index.written.remove(&key);
                }
                index.seen.insert(key, seen);
                (!echo).then_some(object)
            }
            Event::Delete(object) => {
                let key = key(&object);
                index.seen.remove(&key);
                index.written.remove(&key);
                Some(object)
            }
            Event::Init => {
                index.listing.insert(kind.kind, HashMap::new());
                None
            }
            Event::InitApply(object) => {
                let (key, seen) = (key(&object), Seen::of(&object.metadata));
                let known = index.seen.get(&key) == Some(&seen);
                index.listing.entry(kind.kind).or_default().insert(key, seen);
                (!known).then_some(object)
            }
            Event::InitDone => {
                let listed = index.listing.remove(kind.kind).unwrap_or_default();
                index.seen.retain(|key, _| key.0 != kind.kind);
                index.seen.extend(listed);
                drop(index);
                self.listed.send_modify(|listed| {
                    listed.insert(kind.kind);
                });
                None
            }
        }
    }
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
    for attempt in 0..ATTEMPTS {
        // The watch's copy first; after a conflict, the object as it is now.
        let cached = (attempt == 0).then(|| ctx.targets.get(&kind, namespace, &target.name)).flatten();
        let object = match cached {
            Some(seen) => seen.object(),
            None => match api.get_opt(&target.name).await? {
                Some(object) => serde_json::to_value(&object)?,
                None => return Ok(Outcome::Missing),
            },
        };
        let Some(patch) = annotation_patch(&object, wanted) else {
            return Ok(Outcome::Annotated { written: false });
        };
        let params = PatchParams::default();
        match write::patch(
            &ctx.client,
            api.resource_url(),
            &target.name,
            None,
            &params,
            &Patch::Merge(&patch),
        )
        .await
        {
            Ok(version) => {
                let annotations = &patch["metadata"]["annotations"];
                ctx.targets.wrote(&kind, namespace, &target.name, version, annotations);
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

    fn meta(name: &str, version: &str, plugins: Option<&str>) -> Meta {
        let mut object: Meta = serde_json::from_value(json!({"metadata": {
            "namespace": "crm", "name": name, "resourceVersion": version}}))
        .unwrap();
        object.metadata.annotations = plugins.map(|p| [(PLUGINS_ANNOTATION.to_owned(), p.to_owned())].into());
        object
    }

    // The clock paused: the deadline is virtual time, and nothing here waits on the real one.
    #[tokio::test(start_paused = true)]
    async fn the_watch_fills_the_cache_and_only_news_reconciles_policies() {
        let targets = Targets::new(vec![kinds::INGRESS], Duration::from_millis(10));
        let observe = |event| targets.observe(&kinds::INGRESS, event).map(|o| o.name_any());
        let plugins = |name: &str| targets.get(&kinds::INGRESS, "crm", name).and_then(|seen| seen.plugins);
        assert!(!targets.ready().await, "not listed yet");
        let waited = tokio::time::Instant::now();
        assert!(!targets.ready().await);
        assert_eq!(waited.elapsed(), Duration::ZERO, "past the deadline nothing waits");

        // The first list: everything is news.
        observe(Event::Init);
        assert_eq!(observe(Event::InitApply(meta("a", "1", Some("user-log")))), Some("a".into()));
        assert_eq!(observe(Event::InitApply(meta("b", "2", None))), Some("b".into()));
        assert_eq!(plugins("a"), None, "a list under way stands in for nothing yet");
        observe(Event::InitDone);
        assert!(targets.ready().await, "listed: ready, deadline or not");
        assert_eq!(plugins("a").as_deref(), Some("user-log"));
        assert_eq!(
            targets.get(&kinds::INGRESS, "crm", "a").unwrap().object()["metadata"]["resourceVersion"],
            "1"
        );

        // This process's write is in the cache at once, and its echo is no news, once.
        let written = json!({PLUGINS_ANNOTATION: "user-log,acme-jwt", MANAGED_ANNOTATION: "acme-jwt"});
        targets.wrote(&kinds::INGRESS, "crm", "a", "3".into(), &written);
        assert_eq!(plugins("a").as_deref(), Some("user-log,acme-jwt"));
        assert_eq!(observe(Event::Apply(meta("a", "3", Some("user-log,acme-jwt")))), None);
        assert_eq!(observe(Event::Apply(meta("a", "3", Some("user-log,acme-jwt")))), Some("a".into()));
        // Someone's edit is news and replaces the cached copy.
        assert_eq!(observe(Event::Apply(meta("a", "4", Some("user-log")))), Some("a".into()));
        assert_eq!(plugins("a").as_deref(), Some("user-log"));

        // A relist: what it finds unchanged is no news; what it misses is forgotten.
        observe(Event::Init);
        assert_eq!(observe(Event::InitApply(meta("a", "4", Some("user-log")))), None);
        observe(Event::InitDone);
        assert!(targets.get(&kinds::INGRESS, "crm", "b").is_none());
        assert_eq!(observe(Event::Delete(meta("a", "5", None))), Some("a".into()));
        assert!(targets.get(&kinds::INGRESS, "crm", "a").is_none());
    }
}
