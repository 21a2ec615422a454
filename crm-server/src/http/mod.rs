//! The HTTP API: routes, the middleware around them, and the server loop.
//!
//! ```text
//! request -> observe (correlation id, span, access log, metrics)
//!         -> problem (renders every error as problem+json)
//!         -> catch panic -> timeout
//!         -> routing (unknown path: 404; a method the path does not serve: 405 with `Allow`)
//!         -> idempotency key and body fingerprint -> body limit -> route handler
//! ```

mod activities;
mod admin;
pub mod caller;
mod cockpit;
mod contacts;
pub mod correlation;
mod customers;
mod events;
pub mod extract;
pub mod fields;
mod health;
pub mod idempotency;
mod methods;
mod observe;
pub mod openapi;
mod paging;
mod parse_errors;
pub mod preconditions;
pub mod problem;
mod projection;
mod samples;
mod settings;

use std::future::{Future, IntoFuture};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Role;
use crate::error::Error;
use crate::state::AppState;

/// The routes `role` serves, with their OpenAPI description: reads for `query`, writes for
/// `command`, both for `all`; operations endpoints everywhere.
fn api_router(role: Role) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi_json))
        .routes(routes!(admin::get_log_level, admin::put_log_level))
        .routes(routes!(projection::staleness));
    if role.serves_queries() {
        router = router
            .merge(customers::queries())
            .merge(contacts::queries())
            .merge(fields::queries())
            .merge(samples::queries())
            .merge(activities::queries())
            .merge(cockpit::queries())
            .merge(events::queries())
            .merge(settings::queries());
    }
    if role.serves_commands() {
        router = router
            .merge(customers::commands())
            .merge(contacts::commands())
            .merge(fields::commands())
            .merge(samples::commands())
            .merge(activities::commands())
            .merge(events::commands())
            .merge(settings::commands());
    }
    router
}

/// The OpenAPI 3.1 document served at `/openapi.json`: every route of every role.
pub fn openapi() -> serde_json::Value {
    openapi::document()
}

/// The whole application, ready to serve.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The application with `extra` routes inside the same middleware stack; tests use it to add a
/// handler that panics, say, and see exactly what production would answer.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let limit = state.http.body_limit;
    let (routes, doc) = api_router(state.role).split_for_parts();
    routes
        .merge(extra)
        .route_layer(
            ServiceBuilder::new()
                // A method the path does not serve is a 405 (with `Allow`) whatever the request's
                // headers and body, not an answer about its Idempotency-Key.
                .layer(from_fn_with_state(methods::Served::of(&doc), methods::refuse_unserved))
                // Reads the body of keyed requests itself, up to the same limit.
                .layer(from_fn_with_state(state.clone(), idempotency::fingerprint))
                // Rejects by Content-Length up front and caps streamed bodies; DefaultBodyLimit
                // gives extractors the same limit.
                .layer(RequestBodyLimitLayer::new(limit))
                .layer(DefaultBodyLimit::max(limit)),
        )
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(state.clone(), observe::observe))
                .layer(from_fn(problem::render))
                .layer(CatchPanicLayer::custom(problem::from_panic))
                .layer(TimeoutLayer::with_status_code(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    state.http.request_timeout,
                )),
        )
        .with_state(state)
}

async fn not_found() -> Error {
    Error::NotFound("no resource at this path".into())
}

/// `signal`, extended to tell the live streams of `state` to end, so that a shutdown drains
/// instead of waiting for them until its timeout.
pub fn ending_streams(
    state: &AppState,
    signal: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    let stopping = state.stopping.clone();
    async move {
        signal.await;
        stopping.send_replace(true);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish for
/// at most `drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, waiting for in-flight requests");
        let _ = stopping_tx.send(true);
    };
    let server =
        axum::serve(parse_errors::Listener(listener), app).with_graceful_shutdown(signal).into_future();
    let deadline = async move {
        // `wait_for` fails only when the sender is gone, i.e. the server already returned.
        if stopping.wait_for(|stopping| *stopping).await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(timeout_s = drain_timeout.as_secs_f64(), "in-flight requests did not finish in time; stopping anyway");
            Ok(())
        }
    }
}
