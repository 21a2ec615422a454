//! FreshPlan CRM server: an axum + sqlx service on PostgreSQL.
//!
//! # Layout
//! - [`auth`]: bearer-token verification (JWKS, static keys, the development key) and identities.
//! - [`config`]: the command line and its environment variables.
//! - [`http`]: routes, middleware (correlation, metrics, problem details) and the server loop.
//! - [`error`]: the one error type and its outside form, RFC 9457 problem details.
//! - [`domain`]: business rules as pure functions: customers, the field catalog, the hot
//!   projection's mapping, merge patches, cursors.
//! - [`db`]: pool, migrations (`migrations/` at the workspace root), the schema check, and the
//!   queries of each aggregate.
//! - [`outbox`]: the transactional outbox, written in the caller's transaction; the relay that
//!   publishes it, consumers with checkpoints, and the wake-up listener.
//! - [`actions`]: writes several entry points share; [`automations`]: the seeds' automations.
//! - [`embedded_pg`]: a private PostgreSQL from the system's binaries, for the embedded default
//!   and the test harness; its supervisor, and finding the one a running server owns.
//! - [`demo`]: the demo data of `serve --demo`.
//! - [`jobs`]: background work of the `all` and `relay` roles.
//! - [`liveness`]: what `/healthz` looks at (the supervised PostgreSQL, the background jobs).
//! - [`retention`]: the DSGVO retention policies (`crm-server retention run`).
//! - [`metrics`], [`telemetry`], [`state`]: what the handlers share.
//! - `testing` (feature `testing`): the PostgreSQL test harness and repository checks.

pub mod actions;
pub mod auth;
pub mod automations;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod embedded_pg;
pub mod error;
pub mod http;
pub mod jobs;
pub mod liveness;
pub mod metrics;
pub mod outbox;
pub mod retention;
pub mod state;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, Result};
pub use http::{app, serve};
pub use state::AppState;
