//! Renders every error response as `application/problem+json`.
//!
//! Handlers' errors arrive as a [`Problem`] in the response extensions; any other error response
//! (axum's 405, a 413 from the body limit, a 503 from the timeout, a rejection of a built-in
//! extractor) is converted here, keeping its headers (`Allow`, `Retry-After`) and using its short
//! text body as the detail. Server errors are logged here, once, with their internal cause.

use std::any::Any;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Problem;
use crate::http::correlation::CorrelationId;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Longest plain-text body of a foreign error response kept as the problem's detail.
const MAX_DETAIL_BYTES: usize = 1024;

pub async fn render(req: Request, next: Next) -> Response {
    let instance = req.uri().path().to_owned();
    let correlation_id = req.extensions().get::<CorrelationId>().map(|c| c.0.clone());
    let mut response = next.run(req).await;

    let known = response.extensions_mut().remove::<Problem>();
    if known.is_none() && (!is_error(response.status()) || is_problem(&response)) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let problem = match known {
        Some(problem) => problem,
        None => from_foreign(&parts, body).await,
    };
    let problem = Problem { instance: Some(instance), correlation_id, ..problem };
    if problem.status >= 500 {
        tracing::error!(
            status = problem.status,
            cause = problem.internal.as_deref().unwrap_or("-"),
            "request failed"
        );
    }
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.status = problem.status_code();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(CONTENT_TYPE.as_bytes()))
}

/// A problem for an error response someone else produced; the response keeps its status and
/// headers, and the detail is ours where we know the cause better, else its short text body.
async fn from_foreign(parts: &axum::http::response::Parts, body: Body) -> Problem {
    let status = parts.status;
    if let Some(detail) = default_detail(status) {
        return Problem { detail: Some(detail.to_owned()), ..Problem::from_status(status) };
    }
    let is_text =
        parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    let detail = if is_text {
        axum::body::to_bytes(body, MAX_DETAIL_BYTES)
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .filter(|s| !s.is_empty())
    } else {
        None
    };
    Problem { detail, ..Problem::from_status(status) }
}

fn default_detail(status: StatusCode) -> Option<&'static str> {
    Some(match status {
        StatusCode::METHOD_NOT_ALLOWED => "the resource does not support this method; see the Allow header",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than the server accepts",
        StatusCode::SERVICE_UNAVAILABLE => {
            "the request took too long or the server is overloaded; retry later"
        }
        _ => return None,
    })
}

/// The response for a handler that panicked: a 500 problem. The panic message goes to the log
/// through `render`, not to the client.
pub fn from_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let problem = Problem {
        detail: Some("an internal error occurred; quote the correlation id when reporting it".into()),
        internal: Some(format!("handler panicked: {message}")),
        ..Problem::from_status(StatusCode::INTERNAL_SERVER_ERROR)
    };
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Extension(problem)).into_response()
}
