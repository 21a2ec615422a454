//! The admin HTTP server every replica runs, leader or standby.
//!
//! ```text
//! GET  /healthz                   200 while the process runs (liveness)
//! GET  /readyz                    200 when the controllers report ready, else 503 (readiness)
//! GET  /metrics                   the registry, OpenMetrics text
//! POST /sync/{namespace}/{name}   sync that TenantPolicy's settings now: 202, or a problem
//! ```
//!
//! A sync request only queues the TenantPolicy for the controller; it never waits for the sync.
//! Only the leader reconciles, so a standby answers 503 and the caller retries on another replica,
//! and so does the leader when its queue is full, rather than hold the request. Errors are RFC
//! 9457 problem details, as the CRM server's.

use std::future::Future;

use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::crd::TenantPolicy;
use crate::metrics::{self, Metrics};

/// What the handlers read, and where sync requests go.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: Metrics,
    /// True once the controllers are ready to work (see `/readyz`).
    pub ready: watch::Receiver<bool>,
    /// True while this replica leads (`LeaderElector::leading`).
    pub leading: watch::Receiver<bool>,
    /// The TenantPolicies to sync now, for the TenantPolicy controller. Bounded: a full queue
    /// answers 503 instead of growing.
    pub sync: mpsc::Sender<ObjectRef<TenantPolicy>>,
}

/// The routes, without a listener (tests and embedding).
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/sync/{namespace}/{name}", post(sync))
        .with_state(state)
}

/// Serves the admin routes on `listener` until `shutdown` completes and open requests are answered.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// Why a request to the admin server failed, as the caller sees it.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the path is not /sync/{{namespace}}/{{name}}: {0}")]
    BadPath(String),
    #[error("{what} {value:?} is not a {expected}: {reason}")]
    InvalidName { what: &'static str, value: String, expected: &'static str, reason: &'static str },
    #[error("this replica is not the leader; send the request again, it may reach the leader")]
    NotLeader,
    #[error("too many syncs are waiting; try again shortly")]
    QueueFull,
    #[error("the TenantPolicy controller is not running")]
    Stopped,
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            AdminError::BadPath(_) | AdminError::InvalidName { .. } => StatusCode::BAD_REQUEST,
            AdminError::NotLeader | AdminError::QueueFull | AdminError::Stopped => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The problem type and its title.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            AdminError::BadPath(_) => {
                ("https://freshplan.io/problems/malformed-request", "Malformed request")
            }
            AdminError::InvalidName { .. } => {
                ("https://freshplan.io/problems/validation-failed", "Not a Kubernetes object name")
            }
            AdminError::NotLeader => ("https://freshplan.io/problems/not-leader", "Not the leader"),
            AdminError::QueueFull => ("https://freshplan.io/problems/sync-queue-full", "Sync queue full"),
            AdminError::Stopped => ("about:blank", "Service Unavailable"),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (type_uri, title) = self.kind();
        let body = json!({
            "type": type_uri,
            "title": title,
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        let mut response =
            (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if *state.ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: the controllers are starting\n")
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], state.metrics.encode())
}

async fn sync(
    State(state): State<AdminState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), AdminError> {
    let Path((namespace, name)) = path.map_err(|rejection| AdminError::BadPath(rejection.body_text()))?;
    dns_label(&namespace).map_err(|reason| AdminError::InvalidName {
        what: "namespace",
        value: namespace.clone(),
        expected: "DNS label",
        reason,
    })?;
    dns_subdomain(&name).map_err(|reason| AdminError::InvalidName {
        what: "name",
        value: name.clone(),
        expected: "DNS subdomain",
        reason,
    })?;
    if !*state.leading.borrow() {
        return Err(AdminError::NotLeader);
    }
    state.sync.try_send(ObjectRef::new(&name).within(&namespace)).map_err(|err| match err {
        mpsc::error::TrySendError::Full(_) => AdminError::QueueFull,
        mpsc::error::TrySendError::Closed(_) => AdminError::Stopped,
    })?;
    tracing::info!(namespace, name, "settings sync requested");
    let body = json!({"kind": "TenantPolicy", "namespace": namespace, "name": name, "status": "queued"});
    Ok((StatusCode::ACCEPTED, Json(body)))
}

const DNS_CHARACTERS: &str =
    "only lowercase letters, digits and '-', beginning and ending with a letter or digit";

/// A namespace's name: an RFC 1123 label, as the API server checks it.
fn dns_label(value: &str) -> Result<(), &'static str> {
    if value.len() > 63 {
        return Err("longer than 63 characters");
    }
    label(value)
}

/// An object's name: RFC 1123 labels joined by dots, at most 253 characters.
fn dns_subdomain(value: &str) -> Result<(), &'static str> {
    if value.len() > 253 {
        return Err("longer than 253 characters");
    }
    value.split('.').try_for_each(label)
}

fn label(value: &str) -> Result<(), &'static str> {
    let bytes = value.as_bytes();
    let inner = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if value.is_empty() {
        Err("empty")
    } else if bytes.iter().all(inner) && edge(bytes.first()) && edge(bytes.last()) {
        Ok(())
    } else {
        Err(DNS_CHARACTERS)
    }
}

#[cfg(test)]
mod tests;
