//! The outermost middleware: the correlation id, the request's span (so every log line of the
//! request carries the id), the access log line (debug for successes, info for failures), and
//! the HTTP metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::http::correlation::{self, CorrelationId};
use crate::metrics::UNMATCHED_ROUTE;
use crate::state::AppState;

pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let correlation_id = CorrelationId::from_headers(req.headers());
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE).to_owned();
    req.extensions_mut().insert(correlation_id.clone());

    let span = tracing::info_span!(
        "request",
        correlation_id = correlation_id.as_str(),
        method = %method,
        route = route.as_str(),
        subject = tracing::field::Empty,
    );
    let mut response = next.run(req).instrument(span.clone()).await;

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.observe_request(&method, &route, status, elapsed);
    // Successful requests are logged at debug: at thousands of requests per second the JSON line
    // costs a sixth of the server's CPU, and metrics already count and time them. Failures are
    // logged at info (server errors also at error, with their cause, by the problem middleware).
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 400 {
            tracing::info!(status, elapsed_ms, "request finished");
        } else {
            tracing::debug!(status, elapsed_ms, "request finished");
        }
    });
    if let Ok(value) = HeaderValue::from_str(correlation_id.as_str()) {
        response.headers_mut().insert(correlation::HEADER, value);
    }
    response
}
