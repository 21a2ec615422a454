//! The operator's client of the CRM's settings registry.
//!
//! ```text
//! sync of a TenantPolicy:  effective(tenant, org) -> overlay -> apply -> report(what happened)
//!                          GET /settings/effective    (gateway::settings)    POST /settings/sync-reports
//! ```
//!
//! - [`CrmClient::effective`] reads a tenant's effective settings. It remembers the `ETag` of the
//!   last answer for each tenant and org and sends it as `If-None-Match`, so an unchanged registry
//!   costs a 304 and the remembered answer is returned.
//! - [`CrmClient::report`] records a sync as the CRM's audit entry, with an `Idempotency-Key`
//!   derived from the policy, the version and the outcome: a retried report is stored once.
//!
//! Every call runs under one deadline (`CrmConfig::timeout`) that covers connecting, sending and
//! reading the answer. Failures are [`CrmError`]s whose [`CrmError::reason`] names a status
//! condition's reason; none of them ever carries the token, which is sent as a sensitive header
//! and redacted from every `Debug`.
//!
//! The token is a bearer JWT of the CRM's `platform` role: given as it is, or as a file that is
//! read again whenever it changes (a projected service-account token, which the kubelet rotates).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use serde_json::{Value, json};

use crate::gateway::settings::{EffectiveSettings, Rejected};

/// Largest answer read; the effective settings of a tenant are a few KiB.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The CRM's bounds of a report (`crm_server::domain::settings::sync`): longer lists and strings
/// are cut here rather than refused there, so that a report is never lost for its length.
const MAX_ENTRIES: usize = 100;
const MAX_REASON_CHARS: usize = 2000;
const MAX_CHANGE_CHARS: usize = 10_000;
const MAX_DETAIL_CHARS: usize = 8000;
/// Longest `Idempotency-Key` the CRM takes.
const MAX_KEY_LEN: usize = 255;

/// Where the CRM is and how to call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmConfig {
    /// `http(s)://host[:port][/prefix]`; the API's paths are appended to it.
    pub base_url: String,
    /// Where the writes (the sync reports) go when the CRM serves reads and writes apart (its
    /// `query` and `command` roles behind two Services); None: `base_url`.
    pub command_url: Option<String>,
    pub token: Token,
    /// The deadline of one call: connecting, sending and reading the whole answer.
    pub timeout: Duration,
}

/// The bearer token of the CRM's `platform` role.
#[derive(Clone, PartialEq, Eq)]
pub enum Token {
    Static(String),
    /// A file holding the token (surrounding whitespace is ignored), read again whenever its
    /// modification time or length changes.
    File(PathBuf),
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Static(_) => f.write_str("Static(<redacted>)"),
            Token::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Why a call to the CRM failed.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// No connection could be made, or it broke before the answer was complete.
    #[error("the CRM is unreachable: {0}")]
    Unreachable(String),
    /// No complete answer within the configured timeout.
    #[error("the CRM did not answer in time")]
    Timeout,
    /// The CRM answered with an error status; title and detail are those of its problem body.
    #[error("the CRM answered {status}{}", describe(problem_title.as_deref(), detail.as_deref()))]
    Status { status: u16, problem_title: Option<String>, detail: Option<String> },
    /// The answer is not what this operator understands (another shape, not JSON, too large).
    #[error("the CRM's answer is not what the operator expects: {0}")]
    Decode(String),
    /// The client cannot be built or cannot authenticate as configured (a bad URL, an unreadable
    /// token file).
    #[error("the CRM client is misconfigured: {0}")]
    Config(String),
}

fn describe(title: Option<&str>, detail: Option<&str>) -> String {
    match (title, detail) {
        (Some(title), Some(detail)) => format!(" ({title}): {detail}"),
        (Some(title), None) => format!(" ({title})"),
        (None, Some(detail)) => format!(": {detail}"),
        (None, None) => String::new(),
    }
}

impl CrmError {
    /// Whether trying again later, unchanged, may succeed: an outage, a timeout, a server error,
    /// a conflict with a request still in flight, or too many requests. The others need a change
    /// (of the token, the configuration, the operator or the CRM).
    pub fn is_transient(&self) -> bool {
        match self {
            CrmError::Unreachable(_) | CrmError::Timeout => true,
            CrmError::Status { status, .. } => matches!(status, 408 | 409 | 425 | 429 | 500..=599),
            CrmError::Decode(_) | CrmError::Config(_) => false,
        }
    }
}

/// Whether the operator could apply the effective settings to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The policy with the applied settings is in force.
    Applied,
    /// It could not be applied; the last applied policy stays in force.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
        }
    }
}

/// What the operator did with a tenant's effective settings: the body of
/// `POST /settings/sync-reports`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    /// The TenantPolicy: `<namespace>/<name>`.
    pub policy: String,
    pub tenant: String,
    pub org: Option<String>,
    /// The effective version applied (or tried).
    pub version: i64,
    pub outcome: Outcome,
    /// The keys in force.
    pub applied: Vec<String>,
    pub rejected: Vec<Rejected>,
    /// What changed in the policy, one line per change.
    pub changes: Vec<String>,
    pub detail: Option<String>,
}

impl SyncReport {
    /// The report's `Idempotency-Key`: `settings-sync:<policy>:<version>:<outcome>`, with the
    /// policy replaced by its SHA-256 when it would not fit in a key (or is not a plain name). The
    /// same policy, version and outcome make the same key, so a retried report is stored once,
    /// whatever else differs.
    pub fn idempotency_key(&self) -> String {
        let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '/');
        let (version, outcome) = (self.version, self.outcome.as_str());
        let key = format!("settings-sync:{}:{version}:{outcome}", self.policy);
        if key.len() <= MAX_KEY_LEN && self.policy.chars().all(plain) {
            return key;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, self.policy.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("settings-sync:sha256-{hex}:{version}:{outcome}")
    }

    /// The JSON body, cut to the CRM's bounds.
    fn to_json(&self) -> Value {
        let rejected: Vec<Value> = self
            .rejected
            .iter()
            .take(MAX_ENTRIES)
            .map(|r| json!({"key": r.key, "scope": r.scope, "reason": cut(&r.reason, MAX_REASON_CHARS)}))
            .collect();
        let mut changes: Vec<String> = self.changes.iter().map(|c| cut(c, MAX_CHANGE_CHARS)).collect();
        if changes.len() > MAX_ENTRIES {
            let more = changes.len() - (MAX_ENTRIES - 1);
            changes.truncate(MAX_ENTRIES - 1);
            changes.push(format!("… and {more} more changes"));
        }
        json!({
            "policy": self.policy,
            "tenant": self.tenant,
            "org": self.org,
            "version": self.version,
            "outcome": self.outcome,
            "applied": self.applied.iter().take(MAX_ENTRIES).collect::<Vec<_>>(),
            "rejected": rejected,
            "changes": changes,
            "detail": self.detail.as_deref().map(|d| cut(d, MAX_DETAIL_CHARS)),
        })
    }
}

/// `text` in at most `max` characters, the last of a cut one being `…`.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let end = text.char_indices().nth(max - 1).map_or(text.len(), |(i, _)| i);
            format!("{}…", &text[..end])
        }
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The CRM's HTTP API for the operator. Cheap to clone: clones share the connection pool and
/// the remembered answers.
#[derive(Clone)]
pub struct CrmClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// The base URL without a trailing `/`.
    base: String,
    /// The base URL of the writes, without a trailing `/`.
    command_base: String,
    client: HttpsClient,
    token: TokenSource,
    timeout: Duration,
    answers: Mutex<Answers>,
}

/// Per (tenant, org): the `ETag` and the effective settings of the last full answer.
type Answers = HashMap<(String, Option<String>), (HeaderValue, EffectiveSettings)>;

impl fmt::Debug for CrmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrmClient")
            .field("base_url", &self.inner.base)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// `url` without a trailing `/`, if it is `http(s)://host[:port][/prefix]`.
fn base_url(url: &str) -> Result<String, CrmError> {
    let base = url.trim_end_matches('/').to_owned();
    let uri: Uri = base.parse().map_err(|e| CrmError::Config(format!("the base URL `{base}`: {e}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https"))
        || uri.authority().is_none()
        || uri.query().is_some()
    {
        return Err(CrmError::Config(format!("the base URL `{base}` is not http(s)://host[:port][/prefix]")));
    }
    Ok(base)
}

/// A complete answer.
struct Answer {
    status: StatusCode,
    etag: Option<HeaderValue>,
    body: Bytes,
}

impl CrmClient {
    pub fn new(config: CrmConfig) -> Result<CrmClient, CrmError> {
        let base = base_url(&config.base_url)?;
        let command_base = match &config.command_url {
            Some(url) => base_url(url)?,
            None => base.clone(),
        };
        if config.timeout.is_zero() {
            return Err(CrmError::Config("the timeout must be more than zero".into()));
        }
        let token = match config.token {
            Token::Static(token) => TokenSource::Static(bearer(&token)?),
            Token::File(path) => TokenSource::File { path, read: Mutex::new(None) },
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| CrmError::Config(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_timer(TokioTimer::new()).build(connector);
        Ok(CrmClient {
            inner: Arc::new(Inner {
                base,
                command_base,
                client,
                token,
                timeout: config.timeout,
                answers: Mutex::default(),
            }),
        })
    }

    /// `GET /settings/effective?tenant=..[&org=..]`: the settings in force for a tenant and, if
    /// given, one of its orgs. Sends `If-None-Match` with the `ETag` of the last answer for this
    /// tenant and org, and returns that answer again when the CRM says 304.
    pub async fn effective(&self, tenant: &str, org: Option<&str>) -> Result<EffectiveSettings, CrmError> {
        // The serializer is not Send: built and dropped before the first await.
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("tenant", tenant);
            if let Some(org) = org {
                query.append_pair("org", org);
            }
            query.finish()
        };
        let uri = format!("{}/settings/effective?{query}", self.inner.base);
        let which = (tenant.to_owned(), org.map(str::to_owned));
        let known = self.answers().get(&which).cloned();
        let mut request = self.request(Method::GET, &uri, Bytes::new())?;
        if let Some((etag, _)) = &known {
            request.headers_mut().insert(IF_NONE_MATCH, etag.clone());
        }
        let answer = self.send(request).await?;
        match answer.status {
            StatusCode::NOT_MODIFIED => known.map(|(_, settings)| settings).ok_or_else(|| {
                CrmError::Decode("304 Not Modified to a request without If-None-Match".into())
            }),
            StatusCode::OK => {
                let settings: EffectiveSettings = decode(&answer.body)?;
                match answer.etag {
                    Some(etag) => self.answers().insert(which, (etag, settings.clone())),
                    None => self.answers().remove(&which),
                };
                Ok(settings)
            }
            _ => Err(status_error(&answer)),
        }
    }

    /// `POST /settings/sync-reports`: records `report` as the CRM's audit entry of a sync, with
    /// [`SyncReport::idempotency_key`]. A report the CRM already holds under that key is success,
    /// both when it is sent again unchanged (the CRM replays its answer) and when it differs
    /// (the CRM refuses the key for another body: the sync of that version and outcome is on
    /// record already).
    pub async fn report(&self, report: &SyncReport) -> Result<(), CrmError> {
        let uri = format!("{}/settings/sync-reports", self.inner.command_base);
        let body = serde_json::to_vec(&report.to_json()).map_err(|e| CrmError::Config(e.to_string()))?;
        let mut request = self.request(Method::POST, &uri, Bytes::from(body))?;
        let key = HeaderValue::try_from(report.idempotency_key())
            .map_err(|e| CrmError::Config(format!("the Idempotency-Key: {e}")))?;
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("idempotency-key", key);
        let answer = self.send(request).await?;
        match answer.status {
            StatusCode::OK | StatusCode::CREATED => Ok(()),
            StatusCode::UNPROCESSABLE_ENTITY if refuses_the_key(&answer.body) => Ok(()),
            _ => Err(status_error(&answer)),
        }
    }

    fn answers(&self) -> MutexGuard<'_, Answers> {
        self.inner.answers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request(&self, method: Method, uri: &str, body: Bytes) -> Result<Request<Full<Bytes>>, CrmError> {
        let authorization = self.inner.token.header()?;
        Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, "application/json, application/problem+json")
            .header(USER_AGENT, concat!("freshplan-operator/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body))
            .map_err(|e| CrmError::Config(format!("the request to {uri}: {e}")))
    }

    /// Sends `request` and reads the whole answer, all under the deadline.
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer, CrmError> {
        let exchange = async {
            let response =
                self.inner.client.request(request).await.map_err(|e| CrmError::Unreachable(causes(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await.map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    CrmError::Decode(format!("the answer is longer than {MAX_ANSWER_BYTES} bytes"))
                } else {
                    CrmError::Unreachable(format!("reading the answer: {}", causes(e.as_ref())))
                }
            })?;
            Ok(Answer { status: parts.status, etag: parts.headers.get(ETAG).cloned(), body: body.to_bytes() })
        };
        tokio::time::timeout(self.inner.timeout, exchange).await.map_err(|_| CrmError::Timeout)?
    }
}

/// An error and its causes, `: `-separated (hyper's own message alone says little).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CrmError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| match e.path().to_string().as_str() {
        "." => CrmError::Decode(e.inner().to_string()),
        path => CrmError::Decode(format!("{path}: {}", e.inner())),
    })
}

/// The error of an answer with an unexpected status, with its problem's title and detail.
fn status_error(answer: &Answer) -> CrmError {
    let problem: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let member = |name: &str| problem.as_ref().and_then(|p| p.get(name)?.as_str()).map(str::to_owned);
    CrmError::Status {
        status: answer.status.as_u16(),
        problem_title: member("title"),
        detail: member("detail"),
    }
}

/// Whether a 422 problem names the `Idempotency-Key`: the key was used with another body.
fn refuses_the_key(body: &[u8]) -> bool {
    let Ok(problem) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let errors = problem.get("errors").and_then(Value::as_array);
    errors.is_some_and(|errors| {
        errors.iter().any(|e| e.get("parameter").and_then(Value::as_str) == Some("Idempotency-Key"))
    })
}

/// `Bearer <token>` as a sensitive header value (never printed by `Debug`).
fn bearer(token: &str) -> Result<HeaderValue, CrmError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(CrmError::Config("the token is empty".into()));
    }
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| CrmError::Config("the token has characters a header cannot carry".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

enum TokenSource {
    Static(HeaderValue),
    File { path: PathBuf, read: Mutex<Option<FileToken>> },
}

/// A token read from its file, and what the file looked like then.
struct FileToken {
    stamp: (Option<SystemTime>, u64),
    header: HeaderValue,
}

impl TokenSource {
    /// The `Authorization` value. A token file is looked at on every call (one `stat`, small and
    /// local, so it is read without leaving the async context) and read again when it changed.
    fn header(&self) -> Result<HeaderValue, CrmError> {
        match self {
            TokenSource::Static(header) => Ok(header.clone()),
            TokenSource::File { path, read } => {
                let meta = std::fs::metadata(path).map_err(|e| unreadable(path, &e))?;
                let stamp = (meta.modified().ok(), meta.len());
                let mut read = read.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(token) = read.as_ref().filter(|t| t.stamp == stamp) {
                    return Ok(token.header.clone());
                }
                // Read after the stamp: a change in between only makes the next call read again.
                let text = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))?;
                let header = bearer(&text)
                    .map_err(|e| CrmError::Config(format!("the token file {}: {e}", path.display())))?;
                *read = Some(FileToken { stamp, header: header.clone() });
                Ok(header)
            }
        }
    }
}

fn unreadable(path: &Path, error: &std::io::Error) -> CrmError {
    CrmError::Config(format!("reading the token file {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    //! Against a real CRM server (`crm_server::testing::TestApp`: its own PostgreSQL, a loopback
    //! port, tokens it trusts), and against listeners that refuse or never answer.

    use std::net::SocketAddr;
    use std::time::Instant;

    use crm_server::auth::UserRole;
    use crm_server::testing::TestApp;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::gateway::settings::{CORS_ORIGINS, IP_ALLOWLIST, KEYS, RATE_LIMIT, REQUEST_SIZE_LIMIT};

    const OPERATOR: &str = "system:serviceaccount:freshplan:operator";

    /// The reason of the status condition that reports `error`.
    fn reason(error: &CrmError) -> &'static str {
        crate::controller::reason::Reason::from(error).as_str()
    }

    fn token(app: &TestApp, subject: &str, role: UserRole) -> String {
        app.token(subject, &[role], &[], &[])
    }

    fn client_at(base_url: String, token: Token, timeout: Duration) -> CrmClient {
        CrmClient::new(CrmConfig { base_url, command_url: None, token, timeout }).unwrap()
    }

    /// The operator's client of `app`, with a `platform` token.
    fn operator(app: &TestApp) -> CrmClient {
        client_at(
            app.url(""),
            Token::Static(token(app, OPERATOR, UserRole::Platform)),
            Duration::from_secs(10),
        )
    }

    /// Sets `key` at `scope` as the test admin, over whatever value it had.
    async fn set(app: &TestApp, scope: &str, key: &str, value: Value) {
        let path = format!("/settings/{scope}/{key}");
        let body = json!({ "value": value });
        let mut res = app.send_json_with(Method::PUT, &path, &[], &body).await;
        if res.status == StatusCode::PRECONDITION_REQUIRED {
            res = app.send_json_with(Method::PUT, &path, &[("if-match", "*")], &body).await;
        }
        assert!(res.status.is_success(), "{path}: {}", res.text());
    }

    fn report(version: i64, outcome: Outcome) -> SyncReport {
        SyncReport {
            policy: "crm/acme".into(),
            tenant: "acme".into(),
            org: None,
            version,
            outcome,
            applied: vec![RATE_LIMIT.into()],
            rejected: vec![Rejected {
                key: IP_ALLOWLIST.into(),
                scope: "tenant:acme".into(),
                reason: "the policy with it would be refused: spec.ipAllowlist: not an address".into(),
            }],
            changes: vec![r#"gateway.rateLimit: {"minute":600} -> {"minute":900}"#.into()],
            detail: None,
        }
    }

    #[tokio::test]
    async fn the_crms_effective_settings_parse_exactly_into_the_operators_type() {
        let app = TestApp::spawn().await;
        set(&app, "global", RATE_LIMIT, json!({"second": 20, "minute": 900})).await;
        set(&app, "global", REQUEST_SIZE_LIMIT, json!("8Mi")).await;
        set(&app, "tenant:acme", RATE_LIMIT, json!({"minute": 600})).await;
        set(&app, "tenant:acme", CORS_ORIGINS, json!(["https://cockpit.freshfoodz.de"])).await;
        set(&app, "org:acme:munich", IP_ALLOWLIST, json!(["10.0.0.0/8"])).await;
        let crm = operator(&app);

        let org = crm.effective("acme", Some("munich")).await.unwrap();
        let answer = app.get("/settings/effective?tenant=acme&org=munich").await.json();
        assert_eq!(serde_json::to_value(&org).unwrap(), answer, "nothing of the answer is lost or added");
        assert_eq!((org.tenant.as_str(), org.org.as_deref()), ("acme", Some("munich")));
        assert_eq!(org.settings.keys().map(String::as_str).collect::<Vec<_>>().len(), KEYS.len());
        assert!(
            KEYS.iter().all(|key| org.settings.contains_key(*key)),
            "the CRM's catalog is the operator's keys"
        );
        assert_eq!(org.settings[RATE_LIMIT].value, json!({"minute": 600}));
        assert_eq!(org.settings[RATE_LIMIT].scope, "tenant:acme");
        assert_eq!(org.settings[IP_ALLOWLIST].scope, "org:acme:munich");
        assert_eq!(org.settings[REQUEST_SIZE_LIMIT].scope, "global");
        assert!(org.version >= org.settings.values().map(|s| s.version).max().unwrap());

        let tenant = crm.effective("acme", None).await.unwrap();
        assert_eq!(tenant.org, None);
        assert!(!tenant.settings.contains_key(IP_ALLOWLIST));
        assert!(tenant.version < org.version, "the org's change is not in the tenant's chain");

        // A later change is read.
        set(&app, "tenant:acme", RATE_LIMIT, json!({"minute": 700})).await;
        let changed = crm.effective("acme", Some("munich")).await.unwrap();
        assert_eq!(changed.settings[RATE_LIMIT].value, json!({"minute": 700}));
        assert!(changed.version > org.version);
    }

    /// A TCP relay that keeps every byte passing in each direction.
    struct Relay {
        address: SocketAddr,
        sent: Arc<Mutex<Vec<u8>>>,
        answered: Arc<Mutex<Vec<u8>>>,
    }

    impl Relay {
        async fn to(target: SocketAddr) -> Relay {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let (sent, answered) = (Arc::<Mutex<Vec<u8>>>::default(), Arc::<Mutex<Vec<u8>>>::default());
            let (up, down) = (sent.clone(), answered.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else { return };
                    let ((client_read, client_write), (server_read, server_write)) =
                        (client.into_split(), server.into_split());
                    tokio::spawn(pipe(client_read, server_write, up.clone()));
                    tokio::spawn(pipe(server_read, client_write, down.clone()));
                }
            });
            Relay { address, sent, answered }
        }

        fn text(bytes: &Mutex<Vec<u8>>) -> String {
            String::from_utf8_lossy(&bytes.lock().unwrap()).to_ascii_lowercase()
        }
    }

    async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, log: Arc<Mutex<Vec<u8>>>) {
        let mut buffer = [0u8; 8192];
        while let Ok(n @ 1..) = from.read(&mut buffer).await {
            log.lock().unwrap().extend_from_slice(&buffer[..n]);
            if to.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }

    #[tokio::test]
    async fn an_unchanged_view_costs_a_304_and_the_remembered_settings_are_returned() {
        let app = TestApp::spawn().await;
        set(&app, "tenant:acme", RATE_LIMIT, json!({"minute": 600})).await;
        let relay = Relay::to(app.address).await;
        let crm = client_at(
            format!("http://{}/", relay.address),
            Token::Static(token(&app, OPERATOR, UserRole::Platform)),
            Duration::from_secs(10),
        );
        let first = crm.effective("acme", None).await.unwrap();
        let again = crm.clone().effective("acme", None).await.unwrap();
        assert_eq!(again, first);

        let sent = Relay::text(&relay.sent);
        assert_eq!(sent.matches("get /settings/effective?tenant=acme http/1.1").count(), 2, "{sent}");
        let tag = format!("if-none-match: \"e{}:acme\"", first.version);
        assert_eq!(sent.matches(&tag).count(), 1, "only the second request carries the tag: {sent}");
        let answered = Relay::text(&relay.answered);
        assert_eq!(answered.matches("http/1.1 304 not modified").count(), 1, "{answered}");

        // Another tenant or org is another view, asked for without a tag.
        let org = crm.effective("acme", Some("munich")).await.unwrap();
        assert_eq!(org.settings, first.settings);
        assert_eq!(Relay::text(&relay.sent).matches("if-none-match").count(), 1);

        // After a change the tag is stale and the new view is read.
        set(&app, "global", REQUEST_SIZE_LIMIT, json!("1Mi")).await;
        let changed = crm.effective("acme", None).await.unwrap();
        assert!(changed.version > first.version);
        assert_eq!(changed.settings[REQUEST_SIZE_LIMIT].value, json!("1Mi"));
        let sent = Relay::text(&relay.sent);
        assert_eq!(sent.matches(&tag).count(), 2, "{sent}");
        assert_eq!(Relay::text(&relay.answered).matches("304 not modified").count(), 1);
    }

    #[tokio::test]
    async fn reports_go_to_the_command_url_and_reads_to_the_base_url() {
        let app = TestApp::spawn().await;
        // Nothing listens on the base URL: reads fail there, while reports reach the CRM.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let crm = CrmClient::new(CrmConfig {
            base_url: format!("http://{closed}"),
            command_url: Some(app.url("")),
            token: Token::Static(token(&app, OPERATOR, UserRole::Platform)),
            timeout: Duration::from_secs(10),
        })
        .unwrap();
        crm.report(&report(3, Outcome::Applied)).await.unwrap();
        let page = app.get("/settings/sync-reports?policy=crm/acme").await.json();
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
        let read = crm.effective("acme", None).await.unwrap_err();
        assert_eq!(reason(&read), "CrmUnreachable", "{read}");
    }

    #[tokio::test]
    async fn a_report_sent_twice_is_stored_once() {
        let app = TestApp::spawn().await;
        let crm = operator(&app);
        let applied = report(3, Outcome::Applied);
        crm.report(&applied).await.unwrap();
        crm.report(&applied).await.unwrap();
        // The same policy, version and outcome with other details is on record already.
        let retold = SyncReport { detail: Some("told again".into()), ..applied.clone() };
        crm.report(&retold).await.unwrap();
        // Another outcome of the same version is another report.
        let failed =
            SyncReport { detail: Some("the API server refused it".into()), ..report(3, Outcome::Failed) };
        crm.report(&failed).await.unwrap();

        let page = app.get("/settings/sync-reports?policy=crm/acme").await.json();
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{page}");
        let (newest, oldest) = (&items[0], &items[1]);
        assert_eq!(newest["outcome"], "failed");
        assert_eq!(newest["detail"], "the API server refused it");
        assert_eq!(oldest["outcome"], "applied");
        assert_eq!(oldest["detail"], Value::Null);
        assert_eq!(oldest["version"], 3);
        assert_eq!(oldest["applied"], json!([RATE_LIMIT]));
        assert_eq!(
            oldest["rejected"],
            json!([{"key": IP_ALLOWLIST, "scope": "tenant:acme",
                    "reason": "the policy with it would be refused: spec.ipAllowlist: not an address"}])
        );
        assert_eq!(oldest["changes"], json!(applied.changes));
        assert_eq!(oldest["actor"], format!("user:{OPERATOR}"));
        let synced = app.events().await.into_iter().filter(|e| e.event_type == "settings.synced").count();
        assert_eq!(synced, 2);
    }

    #[tokio::test]
    async fn a_refused_token_or_role_is_crm_unauthorized() {
        let app = TestApp::spawn().await;
        let base = app.url("");
        let forged = client_at(base.clone(), Token::Static("not-a-jwt".into()), Duration::from_secs(10));
        let err = forged.effective("acme", None).await.unwrap_err();
        assert!(matches!(err, CrmError::Status { status: 401, .. }), "{err:?}");
        assert_eq!(reason(&err), "CrmUnauthorized");
        assert!(!err.is_transient());
        let CrmError::Status { problem_title, detail, .. } = &err else { unreachable!() };
        assert_eq!(problem_title.as_deref(), Some("Unauthorized"));
        assert!(detail.is_some(), "{err}");
        assert!(!err.to_string().contains("not-a-jwt"), "{err}");

        let rep = Token::Static(token(&app, "rep-a", UserRole::SalesRep));
        let rep = client_at(base, rep, Duration::from_secs(10));
        for err in [
            rep.effective("acme", None).await.unwrap_err(),
            rep.report(&report(1, Outcome::Applied)).await.unwrap_err(),
        ] {
            assert!(matches!(err, CrmError::Status { status: 403, .. }), "{err:?}");
            assert_eq!(reason(&err), "CrmUnauthorized");
        }
        let bad = operator(&app).effective("ACME", None).await.unwrap_err();
        assert_eq!((reason(&bad), bad.is_transient()), ("CrmRejected", false), "{bad}");
    }

    #[tokio::test]
    async fn a_closed_port_is_crm_unreachable_at_once() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let crm = client_at(format!("http://{closed}"), Token::Static("t".into()), Duration::from_secs(10));
        let started = Instant::now();
        let err = crm.effective("acme", None).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        assert!(matches!(err, CrmError::Unreachable(_)), "{err:?}");
        assert_eq!(reason(&err), "CrmUnreachable");
        assert!(err.is_transient());
        assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
        let err = crm.report(&report(1, Outcome::Applied)).await.unwrap_err();
        assert_eq!(reason(&err), "CrmUnreachable");
    }

    #[tokio::test]
    async fn a_listener_that_never_answers_is_crm_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts, reads, and never says a word.
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let timeout = Duration::from_millis(300);
        let crm = client_at(format!("http://{address}"), Token::Static("t".into()), timeout);
        let started = Instant::now();
        let err = crm.effective("acme", None).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, CrmError::Timeout), "{err:?}");
        assert!(took >= timeout && took < Duration::from_secs(3), "took {took:?}");
        assert_eq!((reason(&err), err.is_transient()), ("CrmTimeout", true));
        let err = crm.report(&report(1, Outcome::Applied)).await.unwrap_err();
        assert_eq!(reason(&err), "CrmTimeout");
        silent.abort();
    }

    #[tokio::test]
    async fn a_token_file_is_read_again_when_it_changes() {
        let app = TestApp::spawn().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let crm = client_at(app.url(""), Token::File(path.clone()), Duration::from_secs(10));

        let err = crm.effective("acme", None).await.unwrap_err();
        assert_eq!(reason(&err), "CrmMisconfigured", "{err}");
        assert!(err.to_string().contains("token"), "{err}");

        std::fs::write(&path, "not-a-jwt\n").unwrap();
        assert_eq!(reason(&crm.effective("acme", None).await.unwrap_err()), "CrmUnauthorized");

        // A rotated token, as the kubelet writes it: trailing newline and all.
        std::fs::write(&path, format!("{}\n", token(&app, OPERATOR, UserRole::Platform))).unwrap();
        assert_eq!(crm.effective("acme", None).await.unwrap().tenant, "acme");
        crm.report(&report(1, Outcome::Applied)).await.unwrap();

        std::fs::write(&path, token(&app, "rep-anna-maria", UserRole::SalesRep)).unwrap();
        let err = crm.effective("acme", None).await.unwrap_err();
        assert!(matches!(err, CrmError::Status { status: 403, .. }), "{err:?}");

        std::fs::write(&path, "  \n").unwrap();
        assert_eq!(reason(&crm.effective("acme", None).await.unwrap_err()), "CrmMisconfigured");
    }

    #[test]
    fn the_idempotency_key_is_policy_version_and_outcome() {
        let applied = report(42, Outcome::Applied);
        assert_eq!(applied.idempotency_key(), "settings-sync:crm/acme:42:applied");
        let other = SyncReport { changes: vec![], detail: Some("x".into()), ..applied.clone() };
        assert_eq!(other.idempotency_key(), applied.idempotency_key());
        assert_ne!(report(42, Outcome::Failed).idempotency_key(), applied.idempotency_key());
        assert_ne!(report(43, Outcome::Applied).idempotency_key(), applied.idempotency_key());

        let long = SyncReport { policy: format!("crm/{}", "a".repeat(253)), ..applied.clone() };
        let key = long.idempotency_key();
        assert!(key.starts_with("settings-sync:sha256-") && key.ends_with(":42:applied"), "{key}");
        assert!(key.len() <= MAX_KEY_LEN);
        let odd = SyncReport { policy: "crm/Ac me".into(), ..applied };
        assert!(odd.idempotency_key().starts_with("settings-sync:sha256-"));
        assert!(odd.idempotency_key().bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn a_report_is_cut_to_the_crms_bounds() {
        let big = SyncReport {
            changes: (0..150).map(|i| format!("change {i}")).collect(),
            detail: Some("d".repeat(MAX_DETAIL_CHARS + 5)),
            rejected: vec![Rejected {
                key: RATE_LIMIT.into(),
                scope: "global".into(),
                reason: "ü".repeat(3000),
            }],
            ..report(1, Outcome::Failed)
        };
        let body = big.to_json();
        let changes = body["changes"].as_array().unwrap();
        assert_eq!(changes.len(), MAX_ENTRIES);
        assert_eq!(changes[98], "change 98");
        assert_eq!(changes[99], "… and 51 more changes");
        assert_eq!(body["detail"].as_str().unwrap().chars().count(), MAX_DETAIL_CHARS);
        assert!(body["detail"].as_str().unwrap().ends_with('…'));
        let reason = body["rejected"][0]["reason"].as_str().unwrap();
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
        assert_eq!(body["outcome"], "failed");
        assert_eq!(body["org"], Value::Null);
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly", 7), "exactly");
    }

    #[test]
    fn an_answer_of_another_shape_is_a_bad_answer_naming_where() {
        let extra = br#"{"tenant": "acme", "org": null, "version": 1, "settings": {}, "tenants": []}"#;
        let err = decode::<EffectiveSettings>(extra).unwrap_err();
        assert_eq!(reason(&err), "CrmBadAnswer");
        assert!(err.to_string().contains("tenants"), "{err}");
        let nested = br#"{"tenant": "acme", "org": null, "version": 1,
                          "settings": {"gateway.rateLimit": {"value": 1, "scope": "global"}}}"#;
        let err = decode::<EffectiveSettings>(nested).unwrap_err();
        assert!(err.to_string().contains("settings.gateway.rateLimit"), "{err}");
        assert!(decode::<EffectiveSettings>(b"<html>").is_err());
    }

    #[test]
    fn errors_name_the_reason_of_a_condition() {
        let status = |status| CrmError::Status { status, problem_title: None, detail: None };
        let reasons: Vec<&str> = [
            CrmError::Unreachable("refused".into()),
            CrmError::Timeout,
            status(401),
            status(403),
            status(503),
            status(422),
            status(500),
            CrmError::Decode("x".into()),
            CrmError::Config("x".into()),
        ]
        .iter()
        .map(reason)
        .collect();
        assert_eq!(
            reasons,
            [
                "CrmUnreachable",
                "CrmTimeout",
                "CrmUnauthorized",
                "CrmUnauthorized",
                "CrmUnreachable",
                "CrmRejected",
                "CrmRejected",
                "CrmBadAnswer",
                "CrmMisconfigured"
            ]
        );
        let described = CrmError::Status {
            status: 422,
            problem_title: Some("Validation failed".into()),
            detail: Some("1 invalid value(s)".into()),
        };
        assert_eq!(described.to_string(), "the CRM answered 422 (Validation failed): 1 invalid value(s)");
        assert!(refuses_the_key(br#"{"errors": [{"parameter": "Idempotency-Key", "detail": "x"}]}"#));
        assert!(!refuses_the_key(br#"{"errors": [{"pointer": "/policy", "detail": "x"}]}"#));
    }

    #[test]
    fn the_configuration_is_checked_and_the_token_never_printed() {
        let config = |base_url: &str, token: Token| CrmConfig {
            base_url: base_url.into(),
            command_url: None,
            token,
            timeout: Duration::from_secs(1),
        };
        for base in ["crm:8080", "ftp://crm", "http://", "http://crm?x=1", "not a url"] {
            let err = CrmClient::new(config(base, Token::Static("t".into()))).unwrap_err();
            assert_eq!(reason(&err), "CrmMisconfigured", "{base}");
            let command = CrmConfig {
                command_url: Some(base.into()),
                ..config("http://crm", Token::Static("t".into()))
            };
            assert_eq!(reason(&CrmClient::new(command).unwrap_err()), "CrmMisconfigured", "{base}");
        }
        assert!(CrmClient::new(config("http://crm:8080", Token::Static(" ".into()))).is_err());
        assert!(
            CrmClient::new(CrmConfig {
                timeout: Duration::ZERO,
                ..config("http://crm", Token::Static("t".into()))
            })
            .is_err()
        );
        let secret = config("https://crm.freshfoodz.de/api/", Token::Static("s3cr3t-token".into()));
        assert!(!format!("{secret:?}").contains("s3cr3t"), "{secret:?}");
        let client = CrmClient::new(secret).unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
        assert_eq!(client.inner.base, "https://crm.freshfoodz.de/api");
        let request = client.request(Method::GET, "https://crm.freshfoodz.de/api/x", Bytes::new()).unwrap();
        assert!(!format!("{request:?}").contains("s3cr3t"), "the header is sensitive");
        assert!(
            CrmClient::new(config("http://crm", Token::File("/nonexistent/token".into()))).is_ok(),
            "read on use"
        );
    }
}
