//! The admin server over real HTTP on 127.0.0.1, one route or error per test.

use axum::body::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

/// A running admin server and the ends of its channels the controllers would hold.
struct Admin {
    address: std::net::SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    metrics: Metrics,
    ready: watch::Sender<bool>,
    leading: watch::Sender<bool>,
    syncs: mpsc::Receiver<ObjectRef<TenantPolicy>>,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

/// What came back.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

impl Admin {
    /// Serves with a sync queue of `capacity`; not ready, not leading.
    async fn start(capacity: usize) -> Admin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (ready, ready_rx) = watch::channel(false);
        let (leading, leading_rx) = watch::channel(false);
        let (sync, syncs) = mpsc::channel(capacity);
        let metrics = Metrics::new();
        let state = AdminState { metrics: metrics.clone(), ready: ready_rx, leading: leading_rx, sync };
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, state, async move {
            let _ = stop.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Admin { address, client, metrics, ready, leading, syncs, shutdown, server }
    }

    async fn call(&self, method: Method, path: &str) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.address))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body =
            String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Answer { status, content_type, body }
    }

    /// Expects a problem with `status` whose detail starts with `detail`.
    async fn problem(&self, path: &str, status: u16, detail: &str) -> Value {
        let answer = self.call(Method::POST, path).await;
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(answer.content_type, "application/problem+json");
        let problem = answer.json();
        assert_eq!(problem["status"], status);
        assert!(problem["detail"].as_str().unwrap().starts_with(detail), "{problem}");
        problem
    }
}

#[tokio::test]
async fn healthz_answers_while_the_process_runs_and_serve_returns_on_shutdown() {
    let admin = Admin::start(1).await;
    let answer = admin.call(Method::GET, "/healthz").await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok\n"));
    assert_eq!(admin.call(Method::GET, "/nothing").await.status, 404);

    let Admin { shutdown, server, client, .. } = admin;
    drop(client); // no idle keep-alive connection to wait for
    shutdown.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn readyz_answers_503_until_the_controllers_report_ready() {
    let admin = Admin::start(1).await;
    let answer = admin.call(Method::GET, "/readyz").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body, "not ready: the controllers are starting\n");
    admin.ready.send(true).unwrap();
    let answer = admin.call(Method::GET, "/readyz").await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ready\n"));
}

#[tokio::test]
async fn metrics_are_served_as_openmetrics_text() {
    let admin = Admin::start(1).await;
    admin.metrics.set_managed("TenantPolicy", 2);
    let answer = admin.call(Method::GET, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(answer.body.contains("freshplan_operator_managed_objects{kind=\"TenantPolicy\"} 2\n"));
    assert!(answer.body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn the_leader_queues_a_sync_request_and_answers_202() {
    let mut admin = Admin::start(4).await;
    admin.leading.send(true).unwrap();
    let answer = admin.call(Method::POST, "/sync/crm/kaiserhof.munich").await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.content_type, "application/json");
    let body = answer.json();
    assert_eq!(
        body,
        serde_json::json!({"kind": "TenantPolicy", "namespace": "crm", "name": "kaiserhof.munich", "status": "queued"})
    );
    let queued = admin.syncs.try_recv().unwrap();
    assert_eq!(queued, ObjectRef::new("kaiserhof.munich").within("crm"));
    assert_eq!(admin.call(Method::GET, "/sync/crm/acme").await.status, 405);
}

#[tokio::test]
async fn a_standby_refuses_a_sync_request_so_the_caller_retries_elsewhere() {
    let mut admin = Admin::start(4).await;
    let problem = admin.problem("/sync/crm/acme", 503, "this replica is not the leader").await;
    assert_eq!(problem["type"], "https://freshplan.io/problems/not-leader");
    assert_eq!(problem["title"], "Not the leader");
    assert!(admin.syncs.try_recv().is_err(), "nothing queued");
}

#[tokio::test]
async fn a_full_sync_queue_answers_503_instead_of_waiting() {
    let admin = Admin::start(1).await;
    admin.leading.send(true).unwrap();
    assert_eq!(admin.call(Method::POST, "/sync/crm/acme").await.status, 202);
    let problem = admin.problem("/sync/crm/bergblick", 503, "too many syncs are waiting").await;
    assert_eq!(problem["type"], "https://freshplan.io/problems/sync-queue-full");
    let answer = admin.call(Method::POST, "/sync/crm/bergblick").await;
    assert_eq!(answer.status, 503);
}

#[tokio::test]
async fn a_sync_request_after_the_controller_stopped_answers_503() {
    let mut admin = Admin::start(1).await;
    admin.syncs.close();
    admin.leading.send(true).unwrap();
    let problem = admin.problem("/sync/crm/acme", 503, "the TenantPolicy controller is not running").await;
    assert_eq!(problem["type"], "about:blank");
}

#[tokio::test]
async fn names_that_are_not_kubernetes_names_are_refused_with_400() {
    let admin = Admin::start(1).await;
    admin.leading.send(true).unwrap();
    let long = "a".repeat(254);
    for (path, detail) in [
        ("/sync/crm/Acme", "name \"Acme\" is not a DNS subdomain: only lowercase letters"),
        ("/sync/crm/acme_1", "name \"acme_1\" is not a DNS subdomain"),
        ("/sync/crm/-acme", "name \"-acme\" is not a DNS subdomain"),
        ("/sync/crm/acme..munich", "name \"acme..munich\" is not a DNS subdomain: empty"),
        ("/sync/crm/ac%20me", "name \"ac me\" is not a DNS subdomain"),
        (&format!("/sync/crm/{long}"), "name \"aaaa"),
        ("/sync/crm.prod/acme", "namespace \"crm.prod\" is not a DNS label"),
        ("/sync/crm/%FF", "the path is not /sync/{namespace}/{name}"),
    ] {
        let problem = admin.problem(path, 400, detail).await;
        let expected = if path.ends_with("%FF") {
            "https://freshplan.io/problems/malformed-request"
        } else {
            "https://freshplan.io/problems/validation-failed"
        };
        assert_eq!(problem["type"], expected, "{path}");
    }
    let answer = admin.call(Method::POST, &format!("/sync/crm/{long}")).await;
    assert!(answer.json()["detail"].as_str().unwrap().ends_with("longer than 253 characters"));
}

#[test]
fn dns_names_are_checked_as_the_api_server_does() {
    assert_eq!(dns_label("crm-1"), Ok(()));
    assert_eq!(dns_label(&"a".repeat(63)), Ok(()));
    assert_eq!(dns_label(&"a".repeat(64)), Err("longer than 63 characters"));
    assert_eq!(dns_label(""), Err("empty"));
    assert_eq!(dns_label("crm-"), Err(DNS_CHARACTERS));
    assert_eq!(dns_subdomain("kaiserhof.munich-2"), Ok(()));
    assert_eq!(dns_subdomain(&format!("{}.{}", "a".repeat(100), "b".repeat(100))), Ok(()));
    assert_eq!(dns_subdomain("acme."), Err("empty"));
    assert_eq!(dns_subdomain("ACME"), Err(DNS_CHARACTERS));
}
