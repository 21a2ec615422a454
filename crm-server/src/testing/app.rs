//! A real server on a loopback port over a test database, and a small HTTP client for it.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use std::time::Duration;

use crate::auth::dev::DevKey;
use crate::auth::{ClaimNames, UserRole, Verifier};
use crate::config::{HttpArgs, Role};
use crate::state::AppState;
use crate::telemetry::{self, LogFilter};
use crate::testing::TestDb;

/// The server of one test: its own database, its own port, the production middleware stack, and
/// a token issuer it trusts. Requests carry an admin token unless they bring their own
/// `authorization` header (an empty one sends none).
pub struct TestApp {
    pub address: SocketAddr,
    pub state: AppState,
    pub db: TestDb,
    /// The key the server trusts; [`TestApp::token`] signs with it.
    pub key: DevKey,
    admin_token: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _log_guard: Box<dyn Send + Sync>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(HttpArgs::default(), Router::new()).await
    }

    /// With `extra` routes inside the production middleware (e.g. a handler that panics).
    pub async fn spawn_with(http: HttpArgs, extra: Router<AppState>) -> TestApp {
        TestApp::spawn_verified(http, extra, None).await
    }

    /// With a verifier of its own instead of the test key (for the token tests).
    pub async fn spawn_verified(
        http: HttpArgs,
        extra: Router<AppState>,
        verifier: Option<Verifier>,
    ) -> TestApp {
        TestApp::spawn_inner(http, extra, |key| match verifier {
            Some(verifier) => verifier,
            None => key.verifier(ClaimNames::default()).expect("a verifier"),
        })
        .await
    }

    /// Trusting the test key with `leeway` for `exp` and `nbf` instead of the default 30 s: for
    /// tests of what happens when a token expires.
    pub async fn spawn_with_leeway(leeway: Duration) -> TestApp {
        TestApp::spawn_inner(HttpArgs::default(), Router::new(), |key| Verifier {
            leeway,
            ..key.verifier(ClaimNames::default()).expect("a verifier")
        })
        .await
    }

    async fn spawn_inner(
        http: HttpArgs,
        extra: Router<AppState>,
        verifier: impl FnOnce(&DevKey) -> Verifier,
    ) -> TestApp {
        let db = TestDb::new().await;
        let (log_filter, guard) = log_filter();
        let key_dir = tempfile::tempdir().expect("a folder for the test key");
        let key = DevKey::load_or_create(key_dir.path()).expect("a test key");
        let verifier = verifier(&key);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect(&db.app_url)
            .await
            .expect("connecting as the app login");
        crate::db::check_app_role(&pool).await.expect("the app login is subject to row-level security");
        let state = AppState::load(pool, Role::All, http.clone(), log_filter, verifier)
            .await
            .expect("loading the application state");
        let admin_token =
            key.mint("test-admin", &[UserRole::Admin], &[], &[], Duration::from_secs(3600)).expect("a token");
        let router = crate::http::app_with(state.clone(), extra);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding a loopback port");
        let address = listener.local_addr().expect("the bound address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let signal = crate::http::ending_streams(&state, async move {
            let _ = stop.await;
        });
        let server = tokio::spawn(crate::http::serve(listener, router, signal, http.shutdown_timeout));
        TestApp {
            address,
            state,
            db,
            key,
            admin_token,
            shutdown: Some(shutdown),
            server: Some(server),
            _log_guard: guard,
        }
    }

    /// A token of `subject` with `roles`, `territories` and `chains`, valid for an hour.
    pub fn token(
        &self,
        subject: &str,
        roles: &[UserRole],
        territories: &[&str],
        chains: &[uuid::Uuid],
    ) -> String {
        let territories: Vec<String> = territories.iter().map(|t| t.to_string()).collect();
        self.key.mint(subject, roles, &territories, chains, Duration::from_secs(3600)).expect("a token")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(self.url(path));
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
            request = request.header("authorization", format!("Bearer {}", self.admin_token));
        }
        for (name, value) in headers {
            if !value.is_empty() || !name.eq_ignore_ascii_case("authorization") {
                request = request.header(*name, *value);
            }
        }
        let request = request.body(Full::new(body.into())).expect("a valid request");
        self.request(request).await
    }

    /// The status of an admin's request whose body is never read (a live stream).
    pub async fn head_status(&self, method: Method, path: &str) -> StatusCode {
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let request = Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("authorization", format!("Bearer {}", self.admin_token))
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        client.request(request).await.expect("a response head").status()
    }

    /// Sends a JSON body with `Content-Type: application/json`.
    pub async fn send_json(&self, method: Method, path: &str, body: &serde_json::Value) -> TestResponse {
        self.send_json_with(method, path, &[], body).await
    }

    /// Sends a JSON body with further headers (e.g. `If-Match`).
    pub async fn send_json_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> TestResponse {
        let bytes = serde_json::to_vec(body).expect("serialisable JSON");
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send(method, path, &all, bytes).await
    }

    /// Sets the setting `key` at `scope` to `value` as the admin, whatever it held before
    /// (`If-Match: *` once the key exists). Panics unless the server accepts it.
    pub async fn put_setting(&self, scope: &str, key: &str, value: serde_json::Value) {
        let path = format!("/settings/{scope}/{key}");
        let body = serde_json::json!({ "value": value });
        let mut res = self.send_json(Method::PUT, &path, &body).await;
        if res.status == StatusCode::PRECONDITION_REQUIRED {
            res = self.send_json_with(Method::PUT, &path, &[("if-match", "*")], &body).await;
        }
        assert!(res.status.is_success(), "PUT {path}: {} {}", res.status, res.text());
    }

    /// Publishes every committed event as the relay would, then runs the automations until they
    /// have handled all of them: what the background jobs do, without waiting for them.
    pub async fn relay_all(&self) {
        use crate::automations::{BounceToContactability, LeadConvertedToSample};
        use crate::outbox::consumer::{self, ConsumerOptions, Step};
        loop {
            let published =
                crate::outbox::relay::publish_batch(&self.state.db, 1000).await.expect("publishing");
            if published.count == 0 {
                break;
            }
            self.state.published.send_replace(published.last_position);
        }
        let options = ConsumerOptions::default();
        for name in ["lead", "bounce"] {
            loop {
                let step = match name {
                    "lead" => consumer::step(&self.state.db, &LeadConvertedToSample, &options).await,
                    _ => consumer::step(&self.state.db, &BounceToContactability, &options).await,
                };
                match step.expect("a consumer step") {
                    Step::Advanced { .. } => continue,
                    Step::Busy => panic!("another instance of the automation is running"),
                    Step::Failed { position } => panic!("an automation failed on event {position}"),
                    Step::Idle { .. } => break,
                }
            }
        }
    }

    /// The outbox's events so far, oldest first.
    pub async fn events(&self) -> Vec<crate::outbox::StoredEvent> {
        let mut conn = self.db.pool.acquire().await.expect("a connection");
        crate::outbox::events_after(&mut conn, 0, i64::MAX).await.expect("reading the outbox")
    }

    pub async fn request(&self, request: Request<Full<Bytes>>) -> TestResponse {
        fetch(request).await.expect("the test server answers")
    }

    /// Stops accepting, waits for in-flight requests (as on SIGTERM) and returns the server's result.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(server) => server.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Sends `request` on a new connection and buffers the response.
pub async fn fetch(request: Request<Full<Bytes>>) -> Result<TestResponse, String> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|e| format!("{e:?}"))?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(TestResponse { status: parts.status, headers: parts.headers, body })
}

/// `GET url` on a new connection.
pub async fn get_url(url: &str) -> Result<TestResponse, String> {
    fetch(Request::get(url).body(Full::new(Bytes::new())).map_err(|e| e.to_string())?).await
}

/// Tests log nothing unless `TEST_LOG` holds a filter; the filter is not the global subscriber's,
/// so a test that changes it affects only itself.
fn log_filter() -> (LogFilter, Box<dyn Send + Sync>) {
    let directives = std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into());
    let (filter, guard) = telemetry::detached_filter(&directives).expect("TEST_LOG is a valid filter");
    (filter, Box::new(guard))
}

/// A buffered response.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not, or when an object in it repeats a
    /// member name (see [`strict_json`](crate::testing::strict_json)).
    pub fn json(&self) -> serde_json::Value {
        crate::testing::strict_json::parse(&self.body)
            .unwrap_or_else(|e| panic!("not strict JSON ({e}): {}", self.text()))
    }

    /// Asserts an RFC 9457 problem with `status` and returns its body.
    pub fn problem(&self, status: StatusCode) -> serde_json::Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), Some(crate::http::problem::CONTENT_TYPE), "{}", self.text());
        let body = self.json();
        assert_eq!(body["status"], status.as_u16(), "{body}");
        assert!(body["type"].is_string() && body["title"].is_string(), "{body}");
        assert_eq!(body["correlationId"].as_str(), self.header("x-correlation-id"), "{body}");
        body
    }
}
