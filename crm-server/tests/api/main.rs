//! Integration tests of the CRM server: real PostgreSQL (one throwaway cluster for this process,
//! one database per test), real HTTP over loopback. See `crm_server::testing`.

mod activities;
mod auth;
mod chaos;
mod cockpit;
mod contract;
mod customers;
mod demo;
mod embedded;
mod errors;
mod fields;
mod health;
mod idempotency;
mod isolation;
mod openapi;
mod outbox;
mod pool;
mod projection;
mod readme;
mod relay;
mod repository;
mod retention;
mod samples;
mod schemathesis;
mod search;
mod served;
mod settings;
mod stream;
mod sync_reports;
