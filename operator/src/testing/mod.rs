//! Test support shared by the unit tests, the end-to-end test and the benchmarks.

pub mod examples;
pub mod fake_api;
pub mod process;
