//! Test support: the PostgreSQL harness, a test server over loopback HTTP, and checks that run
//! over the repository's files (the README's command blocks among them). Compiled only with the
//! `testing` feature.

pub mod app;
pub mod db;
pub mod events;
pub mod migration_lint;
pub mod readme;
pub mod schema_compat;
pub mod strict_json;

pub use app::{TestApp, TestResponse};
pub use db::TestDb;
