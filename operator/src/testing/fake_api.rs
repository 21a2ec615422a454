//! An in-memory Kubernetes API server on loopback, for the controller tests, the end-to-end test
//! of the binary and the reconcile benchmark: the operator talks to it through kube's own client
//! over real HTTP, as it talks to a cluster.
//!
//! It serves what the operator uses, as the API server does: discovery of the kinds it is told to
//! serve (absent kinds are 404, as when KEDA or Kong is not installed), list and watch (with label
//! selectors and resource versions, events replayed from any version), create, replace with
//! `resourceVersion` preconditions (409 on a stale one), server-side apply, merge patches (with
//! their `resourceVersion` precondition), status subresources, delete with finalizers, and
//! garbage collection of dependents by owner uid. Every request is recorded (method, path,
//! query, content type, body) so a test can assert exactly what the operator sent, and faults can
//! be queued (a 409 or a 503 for the next matching request).
//!
//! Server-side apply is simplified: the applied object is merged into the stored one (maps
//! merged, lists and scalars replaced), which is what one field manager owning whole objects
//! sees; field ownership between managers is not modelled.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};

/// A kind the fake serves: where it lives and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// `api/v1` or `apis/<group>/<version>`.
    pub prefix: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Has a `status` subresource.
    pub status: bool,
}

impl Served {
    fn api_version(&self) -> String {
        self.prefix
            .strip_prefix("apis/")
            .or(self.prefix.strip_prefix("api/"))
            .unwrap_or(self.prefix)
            .to_owned()
    }
}

/// The kinds of a cluster with Kong and KEDA installed, and the ones the operator reads.
pub fn full_cluster() -> Vec<Served> {
    let kind = |prefix, plural, kind, status| Served { prefix, plural, kind, namespaced: true, status };
    vec![
        kind("apis/freshplan.io/v1alpha1", "tenantpolicies", "TenantPolicy", true),
        kind("apis/freshplan.io/v1alpha1", "scalingprofiles", "ScalingProfile", true),
        kind("apis/freshplan.io/v1alpha1", "seasonalwindows", "SeasonalWindow", true),
        kind("apis/configuration.konghq.com/v1", "kongplugins", "KongPlugin", false),
        kind("apis/configuration.konghq.com/v1", "kongconsumers", "KongConsumer", true),
        kind("apis/keda.sh/v1alpha1", "scaledobjects", "ScaledObject", true),
        kind("apis/autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true),
        kind("apis/apps/v1", "deployments", "Deployment", true),
        kind("apis/networking.k8s.io/v1", "ingresses", "Ingress", true),
        kind("apis/gateway.networking.k8s.io/v1", "httproutes", "HTTPRoute", true),
        kind("api/v1", "services", "Service", true),
        kind("api/v1", "secrets", "Secret", false),
        kind("apis/coordination.k8s.io/v1", "leases", "Lease", false),
        kind("apis/events.k8s.io/v1", "events", "Event", false),
    ]
}

/// One request as the operator sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// When it arrived.
    pub at: std::time::Instant,
    /// The body as sent: kept as bytes (shared with the request, not copied) and parsed when a
    /// test reads it, since benchmarks record tens of thousands of requests.
    raw: Bytes,
}

impl Recorded {
    /// The body as JSON (`null` if it was none); None without a body.
    pub fn body(&self) -> Option<Value> {
        (!self.raw.is_empty()).then(|| serde_json::from_slice(&self.raw).unwrap_or(Value::Null))
    }

    /// Not a read: anything but GET.
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }

    /// `METHOD path`, with `?fieldManager=` when one was sent: the line tests compare.
    pub fn line(&self) -> String {
        match self.query.get("fieldManager") {
            Some(manager) => format!("{} {}?fieldManager={manager}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }

    /// What the API server's RBAC authorizer would ask of this request: verb, group, resource
    /// (with its subresource) and where; None for discovery (`/api/v1`, `/apis/<group>/<version>`:
    /// non-resource URLs every authenticated user may read).
    pub fn access(&self) -> Option<Access> {
        let path = self.path.trim_matches('/');
        let (group, rest) = match path.strip_prefix("api/v1") {
            Some(rest) => ("", rest),
            None => {
                let mut parts = path.strip_prefix("apis/")?.splitn(3, '/');
                let (group, _version) = (parts.next()?, parts.next()?);
                (group, parts.next().unwrap_or_default())
            }
        };
        let mut segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let namespace = match segments.as_slice() {
            ["namespaces", namespace, _, ..] => {
                let namespace = (*namespace).to_owned();
                segments.drain(..2);
                Some(namespace)
            }
            _ => None,
        };
        let (resource, name) = match segments.as_slice() {
            [plural] => ((*plural).to_owned(), None),
            [plural, name] => ((*plural).to_owned(), Some((*name).to_owned())),
            [plural, name, subresource] => (format!("{plural}/{subresource}"), Some((*name).to_owned())),
            _ => return None,
        };
        let verb = match (self.method.as_str(), &name) {
            ("GET", _) if self.query.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
            ("GET", None) => "list",
            ("GET", Some(_)) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", None) => "deletecollection",
            ("DELETE", Some(_)) => "delete",
            _ => return None,
        };
        Some(Access { verb: verb.to_owned(), group: group.to_owned(), resource, namespace, name })
    }
}

/// A request as RBAC sees it ([`Recorded::access`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub verb: String,
    /// The API group; empty for the core group.
    pub group: String,
    /// The plural, with `/<subresource>` (`tenantpolicies/status`).
    pub resource: String,
    /// None for a request across namespaces.
    pub namespace: Option<String>,
    /// None for a collection (list, watch, create).
    pub name: Option<String>,
}

/// Where the object of `kind` (as `Served::kind`) `namespace/name` is stored; cluster-scoped
/// objects match any namespace.
fn find(served: &[Served], inner: &Inner, kind: &str, namespace: &str, name: &str) -> Option<Key> {
    let served = served.iter().find(|s| s.kind == kind)?;
    let key = key(served, namespace.to_owned(), name.to_owned());
    inner.objects.contains_key(&key).then_some(key)
}

/// The stored objects of `served`, in namespace and name order (a range of the store, not a scan
/// of every object).
fn of_kind<'a>(inner: &'a Inner, served: &Served) -> impl Iterator<Item = (&'a Key, &'a Value)> {
    let first = Key {
        prefix: served.prefix.to_owned(),
        plural: served.plural.to_owned(),
        namespace: String::new(),
        name: String::new(),
    };
    let (prefix, plural) = (served.prefix, served.plural);
    inner.objects.range(first..).take_while(move |(k, _)| k.prefix == prefix && k.plural == plural)
}

/// A response to give instead of handling the next request that matches.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Method,
    /// The request path must contain this.
    pub path_contains: String,
    pub status: StatusCode,
}

/// Where an object is stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    prefix: String,
    plural: String,
    namespace: String,
    name: String,
}

/// A change as every watcher sees it: shared, and written as a watch line once.
#[derive(Debug)]
struct Change {
    prefix: String,
    plural: String,
    namespace: String,
    /// The object's labels, for watches with selectors.
    labels: Value,
    /// `{"type": ..., "object": ...}` and a newline.
    line: Bytes,
}

#[derive(Default)]
struct Inner {
    version: u64,
    uids: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<(u64, Arc<Change>)>,
    log: Vec<Recorded>,
    faults: VecDeque<Fault>,
}

struct State {
    served: Vec<Served>,
    inner: Mutex<Inner>,
    changes: broadcast::Sender<(u64, Arc<Change>)>,
}

/// A running fake API server.
pub struct FakeApi {
    pub address: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeApi {
    /// Serves `served` on 127.0.0.1 on a free port.
    pub async fn start(served: Vec<Served>) -> FakeApi {
        let (changes, _) = broadcast::channel(65_536);
        let state = Arc::new(State { served, inner: Mutex::new(Inner::default()), changes });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("its address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeApi { address, state, shutdown: Some(shutdown) }
    }

    /// A kube client for this server, in namespace `default`.
    pub fn client(&self) -> kube::Client {
        let url = format!("http://{}", self.address).parse().expect("a URL");
        kube::Client::try_from(kube::Config::new(url)).expect("a client")
    }

    /// A kubeconfig file's contents that points at this server (for the binary).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://{}\"}}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake, namespace: default}}\n\
             current-context: fake\n",
            self.address
        )
    }

    /// Stores `object` as if a user had created it (not recorded).
    pub fn insert(&self, object: Value) -> Value {
        let mut inner = self.state.inner.lock().unwrap();
        let served = self.served_for(&object).unwrap_or_else(|| panic!("not a served kind: {object}"));
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
        let key = Key {
            prefix: served.prefix.to_owned(),
            plural: served.plural.to_owned(),
            namespace: if served.namespaced { namespace } else { String::new() },
            name: object["metadata"]["name"].as_str().expect("a name").to_owned(),
        };
        let stored = create(&mut inner, &self.state.changes, &self.state.served, key, object);
        serde_json::from_str(&stored).expect("stored objects are JSON")
    }

    /// The stored object of `kind` (as `Served::kind`), if any.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let inner = self.state.inner.lock().unwrap();
        find(&self.state.served, &inner, kind, namespace, name).map(|key| inner.objects[&key].clone())
    }

    /// Every stored object of `kind`.
    pub fn all(&self, kind: &str) -> Vec<Value> {
        let inner = self.state.inner.lock().unwrap();
        let Some(served) = self.state.served.iter().find(|s| s.kind == kind) else { return Vec::new() };
        of_kind(&inner, served).map(|(_, v)| v.clone()).collect()
    }

    /// How many stored objects of `kind` satisfy `test` (read in place: no copies).
    pub fn count(&self, kind: &str, test: impl Fn(&Value) -> bool) -> usize {
        let inner = self.state.inner.lock().unwrap();
        let Some(served) = self.state.served.iter().find(|s| s.kind == kind) else { return 0 };
        of_kind(&inner, served).filter(|(_, v)| test(v)).count()
    }

    /// Deletes an object as a user would (finalizers and garbage collection apply; not recorded).
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let mut inner = self.state.inner.lock().unwrap();
        if let Some(key) = find(&self.state.served, &inner, kind, namespace, name) {
            delete(&mut inner, &self.state.changes, &self.state.served, &key);
        }
    }

    /// Replaces what a user edits of an object: `patch` is merged into it as a JSON merge patch
    /// (not recorded).
    pub fn edit(&self, kind: &str, namespace: &str, name: &str, patch: Value) {
        let mut inner = self.state.inner.lock().unwrap();
        let key = find(&self.state.served, &inner, kind, namespace, name)
            .unwrap_or_else(|| panic!("no {kind} {namespace}/{name}"));
        let mut object = inner.objects[&key].clone();
        json_patch::merge(&mut object, &patch);
        store(&mut inner, &self.state.changes, &self.state.served, key, object, "MODIFIED");
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.inner.lock().unwrap().log.clone()
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        self.state.inner.lock().unwrap().log.clear();
    }

    /// Answers the next request matching `fault` with its status instead.
    pub fn fail_next(&self, fault: Fault) {
        self.state.inner.lock().unwrap().faults.push_back(fault);
    }

    fn served_for(&self, object: &Value) -> Option<Served> {
        let kind = object["kind"].as_str()?;
        self.state.served.iter().find(|s| s.kind == kind).cloned()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// What a request path names.
enum Target {
    Discovery(String),
    Collection { served: Served, namespace: Option<String> },
    Object { served: Served, namespace: String, name: String, status: bool },
}

fn parse(served: &[Served], path: &str) -> Option<Target> {
    let path = path.trim_matches('/');
    let find = |prefix: &str, plural: &str| {
        served.iter().find(|s| s.prefix == prefix && s.plural == plural).cloned()
    };
    let (prefix, rest) = if let Some(rest) = path.strip_prefix("api/v1") {
        ("api/v1".to_owned(), rest.trim_start_matches('/'))
    } else {
        let parts: Vec<&str> = path.splitn(4, '/').collect();
        if parts.len() < 3 || parts[0] != "apis" {
            return None;
        }
        (format!("apis/{}/{}", parts[1], parts[2]), parts.get(3).copied().unwrap_or(""))
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] => Some(Target::Discovery(prefix)),
        [plural] => Some(Target::Collection { served: find(&prefix, plural)?, namespace: None }),
        ["namespaces", namespace, plural] => Some(Target::Collection {
            served: find(&prefix, plural)?,
            namespace: Some((*namespace).to_owned()),
        }),
        ["namespaces", namespace, plural, name] => Some(Target::Object {
            served: find(&prefix, plural)?,
            namespace: (*namespace).to_owned(),
            name: (*name).to_owned(),
            status: false,
        }),
        ["namespaces", namespace, plural, name, "status"] => Some(Target::Object {
            served: find(&prefix, plural)?,
            namespace: (*namespace).to_owned(),
            name: (*name).to_owned(),
            status: true,
        }),
        [plural, name] => Some(Target::Object {
            served: find(&prefix, plural)?,
            namespace: String::new(),
            name: (*name).to_owned(),
            status: false,
        }),
        _ => None,
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, [("content-type", "application/json")], body.to_string()).into_response()
}

fn ok(code: StatusCode, body: &Value) -> Response {
    answer(code, body.to_string())
}

/// An answer of JSON serialized already (a stored object, as its watchers saw it).
fn answer(code: StatusCode, json: String) -> Response {
    (code, [("content-type", "application/json")], json).into_response()
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let recorded = Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        at: std::time::Instant::now(),
        raw: body,
    };
    let body = recorded.body();
    {
        let mut inner = state.inner.lock().unwrap();
        inner.log.push(recorded);
        let fault = inner.faults.iter().position(|f| f.method == method && path.contains(&f.path_contains));
        if let Some(at) = fault {
            let fault = inner.faults.remove(at).expect("queued");
            let reason = if fault.status == StatusCode::CONFLICT { "Conflict" } else { "ServiceUnavailable" };
            return status(fault.status, reason, "fault injected by the test");
        }
    }
    let Some(target) = parse(&state.served, &path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find the requested resource {path}"),
        );
    };
    match (method, target) {
        (Method::GET, Target::Discovery(prefix)) => discovery(&state, &prefix),
        (Method::GET, Target::Collection { served, namespace })
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") =>
        {
            watch(&state, served, namespace, &query)
        }
        (Method::GET, Target::Collection { served, namespace }) => list(&state, &served, namespace, &query),
        (Method::POST, Target::Collection { served, namespace }) => {
            let Some(object) = body else { return status(StatusCode::BAD_REQUEST, "BadRequest", "no body") };
            let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            let key = key(&served, namespace.unwrap_or_default(), name);
            let mut inner = state.inner.lock().unwrap();
            if inner.objects.contains_key(&key) {
                return status(StatusCode::CONFLICT, "AlreadyExists", "already exists");
            }
            answer(StatusCode::CREATED, create(&mut inner, &state.changes, &state.served, key, object))
        }
        (method, Target::Object { served, namespace, name, status: subresource }) => {
            let key = key(&served, namespace, name);
            object(&state, method, &served, key, subresource, &query, content_type.as_deref(), body)
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not served"),
    }
}

fn key(served: &Served, namespace: String, name: String) -> Key {
    Key {
        prefix: served.prefix.to_owned(),
        plural: served.plural.to_owned(),
        namespace: if served.namespaced { namespace } else { String::new() },
        name,
    }
}

fn discovery(state: &State, prefix: &str) -> Response {
    let resources: Vec<Value> = state
        .served
        .iter()
        .filter(|s| s.prefix == prefix)
        .map(|s| json!({"name": s.plural, "singularName": "", "namespaced": s.namespaced, "kind": s.kind, "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}))
        .collect();
    if resources.is_empty() {
        return status(StatusCode::NOT_FOUND, "NotFound", &format!("{prefix} is not served"));
    }
    let group_version = prefix.strip_prefix("apis/").or(prefix.strip_prefix("api/")).unwrap_or(prefix);
    ok(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// Whether `labels` satisfy a selector of `key=value`, `key==value`, `key!=value` and `key` terms.
fn selected(labels: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else { return true };
    selector.split(',').all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            labels[k.trim()].as_str() == Some(v.trim_start_matches('=').trim())
        } else {
            labels.get(term.trim()).is_some()
        }
    })
}

fn in_scope(key: &Key, served: &Served, namespace: &Option<String>) -> bool {
    key.prefix == served.prefix
        && key.plural == served.plural
        && namespace.as_ref().is_none_or(|n| *n == key.namespace)
}

fn list(
    state: &State,
    served: &Served,
    namespace: Option<String>,
    query: &BTreeMap<String, String>,
) -> Response {
    let inner = state.inner.lock().unwrap();
    let items: Vec<&Value> = of_kind(&inner, served)
        .filter(|(k, v)| {
            in_scope(k, served, &namespace) && selected(&v["metadata"]["labels"], query.get("labelSelector"))
        })
        .map(|(_, v)| v)
        .collect();
    ok(
        StatusCode::OK,
        &json!({
            "apiVersion": served.api_version(), "kind": format!("{}List", served.kind),
            "metadata": {"resourceVersion": inner.version.to_string()},
            "items": items,
        }),
    )
}

fn watch(
    state: &Arc<State>,
    served: Served,
    namespace: Option<String>,
    query: &BTreeMap<String, String>,
) -> Response {
    let from: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let timeout = query.get("timeoutSeconds").and_then(|v| v.parse().ok()).unwrap_or(290u64);
    let selector = query.get("labelSelector").cloned();
    let (replay, mut live) = {
        let inner = state.inner.lock().unwrap();
        let replay: Vec<(u64, Arc<Change>)> =
            inner.history.iter().filter(|(v, _)| *v > from).cloned().collect();
        (replay, state.changes.subscribe())
    };
    let matches = move |change: &Change| {
        change.prefix == served.prefix
            && change.plural == served.plural
            && namespace.as_ref().is_none_or(|n| *n == change.namespace)
            && selected(&change.labels, selector.as_ref())
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(1024);
    tokio::spawn(async move {
        let mut last = from;
        for (version, change) in &replay {
            last = *version;
            if matches(change) && tx.send(Ok(change.line.clone())).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                received = live.recv() => match received {
                    Ok((version, change)) if version > last => {
                        last = version;
                        if matches(&change) && tx.send(Ok(change.line.clone())).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("a response")
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, Infallible>>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[allow(clippy::too_many_arguments)]
fn object(
    state: &State,
    method: Method,
    served: &Served,
    key: Key,
    subresource: bool,
    query: &BTreeMap<String, String>,
    content_type: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    if method == Method::GET {
        return match inner.objects.get(&key) {
            Some(object) => ok(StatusCode::OK, object),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{} \"{}\" not found", served.plural, key.name),
            ),
        };
    }
    let current = inner.objects.get(&key).cloned();
    match method {
        Method::DELETE => match current {
            Some(_) => {
                let deleted = delete(&mut inner, &state.changes, &state.served, &key);
                answer(StatusCode::OK, deleted)
            }
            None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
        },
        Method::PUT => {
            let Some(mut object) = body else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "no body");
            };
            let Some(current) = current else {
                return status(StatusCode::NOT_FOUND, "NotFound", "not found");
            };
            if object["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "the object has been modified; please apply your changes to the latest version and try again",
                );
            }
            if subresource {
                let status_value = object["status"].take();
                object = current.clone();
                object["status"] = status_value;
            } else if served.status {
                object["status"] = current["status"].clone();
            }
            keep_server_fields(&mut object, &current);
            answer(StatusCode::OK, store(&mut inner, &state.changes, &state.served, key, object, "MODIFIED"))
        }
        Method::PATCH => {
            let Some(patch) = body else { return status(StatusCode::BAD_REQUEST, "BadRequest", "no body") };
            if content_type.is_some_and(|c| c.starts_with("application/json-patch")) {
                let Some(mut object) = current.clone() else {
                    return status(StatusCode::NOT_FOUND, "NotFound", "not found");
                };
                // As the API server (evanphx/json-patch) does, a `test` for null passes on a path
                // that does not exist.
                let operations: Vec<Value> = patch
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|op| {
                        let absent = op["path"].as_str().is_some_and(|path| object.pointer(path).is_none());
                        !(op["op"] == "test" && op["value"].is_null() && absent)
                    })
                    .cloned()
                    .collect();
                let Ok(operations) = serde_json::from_value::<json_patch::Patch>(Value::Array(operations))
                else {
                    return status(StatusCode::BAD_REQUEST, "BadRequest", "not a JSON patch");
                };
                if let Err(e) = json_patch::patch(&mut object, &operations) {
                    return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &e.to_string());
                }
                let current = current.expect("present");
                keep_server_fields(&mut object, &current);
                return answer(
                    StatusCode::OK,
                    store(&mut inner, &state.changes, &state.served, key, object, "MODIFIED"),
                );
            }
            let apply = content_type.is_some_and(|c| c.starts_with("application/apply-patch"));
            if apply && query.get("fieldManager").is_none() {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "fieldManager is required for apply patch",
                );
            }
            let Some(mut object) = current.clone() else {
                if !apply || subresource {
                    return status(StatusCode::NOT_FOUND, "NotFound", "not found");
                }
                return answer(
                    StatusCode::CREATED,
                    create(&mut inner, &state.changes, &state.served, key, patch),
                );
            };
            if let Some(expected) = patch["metadata"]["resourceVersion"].as_str()
                && Some(expected) != object["metadata"]["resourceVersion"].as_str()
            {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "the object has been modified; please apply your changes to the latest version and try again",
                );
            }
            let mut patch = patch;
            if let Some(metadata) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("resourceVersion");
            }
            if subresource {
                let mut status_value = object["status"].take();
                if status_value.is_null() {
                    status_value = json!({});
                }
                if apply {
                    merge_apply(&mut status_value, &patch["status"]);
                } else {
                    json_patch::merge(&mut status_value, &patch["status"]);
                }
                object["status"] = status_value;
            } else {
                let status_value = object["status"].clone();
                if apply {
                    merge_apply(&mut object, &patch);
                } else {
                    json_patch::merge(&mut object, &patch);
                }
                if served.status {
                    object["status"] = status_value;
                }
            }
            let current = current.expect("present");
            keep_server_fields(&mut object, &current);
            if object == current {
                return ok(StatusCode::OK, &object);
            }
            answer(StatusCode::OK, store(&mut inner, &state.changes, &state.served, key, object, "MODIFIED"))
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not served"),
    }
}

fn keep_server_fields(object: &mut Value, current: &Value) {
    for field in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "resourceVersion"] {
        if !current["metadata"][field].is_null() {
            object["metadata"][field] = current["metadata"][field].clone();
        }
    }
    object["apiVersion"] = current["apiVersion"].clone();
    object["kind"] = current["kind"].clone();
}

fn create(inner: &mut Inner, changes: &Changes, served: &[Served], key: Key, mut object: Value) -> String {
    let kind = served_kind(served, &key);
    inner.uids += 1;
    object["apiVersion"] = json!(kind.api_version());
    object["kind"] = json!(kind.kind);
    object["metadata"]["name"] = json!(key.name);
    if kind.namespaced {
        object["metadata"]["namespace"] = json!(key.namespace);
    }
    object["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", inner.uids));
    object["metadata"]["creationTimestamp"] = json!("2026-12-01T00:00:00Z");
    object["metadata"]["generation"] = json!(1);
    store(inner, changes, served, key, object, "ADDED")
}

type Changes = broadcast::Sender<(u64, Arc<Change>)>;

fn served_kind(served: &[Served], key: &Key) -> Served {
    served.iter().find(|s| s.prefix == key.prefix && s.plural == key.plural).cloned().expect("a served kind")
}

/// Anything of an object but its metadata and status: what `generation` counts changes of.
fn body(object: &Value) -> impl Iterator<Item = (&String, &Value)> {
    let fields = object.as_object().into_iter().flatten();
    fields.filter(|(k, _)| *k != "metadata" && *k != "status")
}

/// Stores `object` under a new resource version, bumping `generation` when anything but status and
/// metadata changed, and tells the watchers; returns the object stored, as JSON.
fn store(
    inner: &mut Inner,
    changes: &Changes,
    served: &[Served],
    key: Key,
    mut object: Value,
    event: &'static str,
) -> String {
    if let Some(previous) = inner.objects.get(&key) {
        let same = body(previous).eq(body(&object));
        if !same {
            let generation = previous["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            object["metadata"]["generation"] = json!(generation);
        }
    }
    // An object being deleted whose last finalizer was removed goes.
    let finalizers_gone = object["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
    if !object["metadata"]["deletionTimestamp"].is_null() && finalizers_gone {
        inner.objects.insert(key.clone(), object);
        return delete(inner, changes, served, &key);
    }
    inner.version += 1;
    object["metadata"]["resourceVersion"] = json!(inner.version.to_string());
    let json = record(inner, changes, &key, event, &object);
    inner.objects.insert(key, object);
    json
}

/// Tells the watchers of `object`'s change; returns the object as JSON. It is serialized once,
/// for the watch line and the answer alike.
fn record(inner: &mut Inner, changes: &Changes, key: &Key, event: &'static str, object: &Value) -> String {
    let json = object.to_string();
    let change = Arc::new(Change {
        prefix: key.prefix.clone(),
        plural: key.plural.clone(),
        namespace: key.namespace.clone(),
        labels: object["metadata"]["labels"].clone(),
        line: Bytes::from(format!("{{\"type\":\"{event}\",\"object\":{json}}}\n")),
    });
    inner.history.push((inner.version, change.clone()));
    let _ = changes.send((inner.version, change));
    json
}

/// Deletes `key`: an object with finalizers only gets a deletion timestamp; otherwise it goes,
/// and so do its dependents (garbage collection by owner uid).
fn delete(inner: &mut Inner, changes: &Changes, served: &[Served], key: &Key) -> String {
    let Some(mut object) = inner.objects.get(key).cloned() else { return Value::Null.to_string() };
    if object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()) {
        if object["metadata"]["deletionTimestamp"].is_null() {
            object["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:01Z");
            return store(inner, changes, served, key.clone(), object, "MODIFIED");
        }
        return object.to_string();
    }
    inner.objects.remove(key);
    inner.version += 1;
    object["metadata"]["resourceVersion"] = json!(inner.version.to_string());
    let json = record(inner, changes, key, "DELETED", &object);
    let uid = object["metadata"]["uid"].clone();
    let dependents: Vec<Key> = inner
        .objects
        .iter()
        .filter(|(_, v)| {
            v["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for dependent in dependents {
        delete(inner, changes, served, &dependent);
    }
    json
}

/// Server-side apply as one manager owning what it applies sees it: maps merged, the rest
/// replaced.
fn merge_apply(target: &mut Value, applied: &Value) {
    match (target.as_object_mut(), applied) {
        (Some(object), Value::Object(applied)) => {
            for (key, value) in applied {
                merge_apply(object.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        _ => *target = applied.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_what_rbac_asks() {
        let request = |method: &str, path: &str, watch: bool| Recorded {
            method: method.to_owned(),
            path: path.to_owned(),
            query: if watch { [("watch".to_owned(), "true".to_owned())].into() } else { Default::default() },
            content_type: None,
            at: std::time::Instant::now(),
            raw: Bytes::new(),
        };
        let access = |method, path, watch| {
            request(method, path, watch).access().map(|a| (a.verb, a.group, a.resource, a.namespace, a.name))
        };
        let owned = |s: &str| Some(s.to_owned());
        assert_eq!(access("GET", "/apis/keda.sh/v1alpha1", false), None, "discovery");
        assert_eq!(
            access("GET", "/apis/freshplan.io/v1alpha1/tenantpolicies", true),
            Some(("watch".into(), "freshplan.io".into(), "tenantpolicies".into(), None, None))
        );
        assert_eq!(
            access("PATCH", "/apis/freshplan.io/v1alpha1/namespaces/crm/scalingprofiles/crm/status", false),
            Some((
                "patch".into(),
                "freshplan.io".into(),
                "scalingprofiles/status".into(),
                owned("crm"),
                owned("crm")
            ))
        );
        assert_eq!(
            access("GET", "/api/v1/namespaces/crm/services/x", false),
            Some(("get".into(), String::new(), "services".into(), owned("crm"), owned("x")))
        );
        assert_eq!(
            access("POST", "/apis/coordination.k8s.io/v1/namespaces/crm/leases", false),
            Some(("create".into(), "coordination.k8s.io".into(), "leases".into(), owned("crm"), None))
        );
    }
}
