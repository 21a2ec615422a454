//! Business rules as pure functions and types that cannot hold invalid values. No axum, no sqlx:
//! everything here is testable with plain values.

pub mod activity;
pub mod berlin;
pub mod calendar;
pub mod cursor;
pub mod customer;
pub mod dates;
pub mod fields;
pub mod integral;
pub mod merge_patch;
pub mod projection;
pub mod sample;
pub mod settings;
pub mod sla;
