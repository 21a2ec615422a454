//! Background work of the server, run by the `all` and `relay` roles only (the query and command
//! roles scale out, and this work must not run once per replica).

use std::time::Duration;

use crate::db::projection;
use crate::db::scope::Scope;
use crate::state::AppState;

/// Customers per batch of the periodic projection check.
const CHECK_BATCH: i64 = 1000;

/// Checks the hot projection every `interval` and publishes the result as metrics, so that drift
/// (a bug, or a manual change in SQL) shows up on a dashboard and in an alert rather than in a
/// wrong search result.
pub async fn check_projection_periodically(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match projection::check(&state.db, &Scope::system(), CHECK_BATCH).await {
            Ok(report) => {
                state.metrics.observe_projection_check(&report, time::OffsetDateTime::now_utc());
                if report.drifted_rows > 0 {
                    tracing::warn!(
                        drifted = report.drifted_rows,
                        sample = ?report.drifted_sample,
                        "the hot projection differs from its sources; run `crm-server projection rebuild`"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "checking the hot projection failed"),
        }
    }
}
