//! Background work of the server. Most of it runs in the `all` and `relay` roles only (the query
//! and command roles scale out, and this work must not run once per replica).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::automations::{BounceToContactability, LeadConvertedToSample};
use crate::config::{RelayArgs, Role};
use crate::db::scope::{self, Scope};
use crate::db::{idempotency, projection};
use crate::outbox::consumer::{self, ConsumerOptions};
use crate::outbox::listen;
use crate::outbox::relay::{self, RelayOptions};
use crate::state::AppState;

/// Customers per batch of the periodic projection check.
const CHECK_BATCH: i64 = 1000;
/// Expired idempotency keys deleted per transaction.
const PURGE_BATCH: i64 = 1000;
/// How often expired idempotency keys are purged; they are ignored once expired anyway, so this
/// only bounds the table's size.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Outbox metrics are sampled this often.
const STATS_INTERVAL: Duration = Duration::from_secs(10);

/// The background work of a process: in every role, the listener that wakes live streams; in
/// the `all` and `relay` roles, the relay, the automations, the outbox metrics, the purge of
/// expired idempotency keys and the projection check every `projection_interval` (zero: never).
pub fn spawn(
    state: &AppState,
    role: Role,
    relay: &RelayArgs,
    projection_interval: Duration,
) -> Vec<JoinHandle<()>> {
    let mut jobs = Vec::new();
    let mut start = |name: &'static str, job: Pin<Box<dyn Future<Output = ()> + Send>>| {
        let handle = tokio::spawn(job);
        // Every job loops for as long as the process runs; `/healthz` reports one that ended.
        state.liveness.watch_job(name, &handle);
        jobs.push(handle);
    };
    start("listener", Box::pin(listen::run(state.db.clone(), state.published.clone())));
    if !role.runs_background_jobs() {
        return jobs;
    }
    let options =
        RelayOptions { batch: relay.relay_batch, poll_interval: Duration::from_millis(relay.relay_poll_ms) };
    start(
        "relay",
        Box::pin(relay::run(state.db.clone(), options, state.published.clone(), state.metrics.clone())),
    );
    let consumers =
        ConsumerOptions { max_attempts: relay.consumer_max_attempts, ..ConsumerOptions::default() };
    start(
        "automation.lead-converted",
        Box::pin(consumer::run(
            state.db.clone(),
            LeadConvertedToSample,
            consumers,
            state.published.subscribe(),
        )),
    );
    start(
        "automation.email-bounce",
        Box::pin(consumer::run(
            state.db.clone(),
            BounceToContactability,
            consumers,
            state.published.subscribe(),
        )),
    );
    start("outbox metrics", Box::pin(observe_outbox_periodically(state.clone())));
    start("idempotency purge", Box::pin(purge_idempotency_keys_periodically(state.clone(), PURGE_INTERVAL)));
    if !projection_interval.is_zero() {
        start(
            "projection check",
            Box::pin(check_projection_periodically(state.clone(), projection_interval)),
        );
    }
    jobs
}

async fn observe_outbox_periodically(state: AppState) {
    let mut ticker = tokio::time::interval(STATS_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match relay::stats(&state.db).await {
            Ok(stats) => state.metrics.observe_outbox(&stats),
            Err(error) => tracing::warn!(%error, "sampling the outbox's state failed"),
        }
    }
}

/// Deletes expired idempotency keys every `interval`, in batches.
pub async fn purge_idempotency_keys_periodically(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = purge_idempotency_keys(&state).await {
            tracing::warn!(%error, "purging expired idempotency keys failed");
        }
    }
}

/// One purge: batches until none is left; the number deleted.
pub async fn purge_idempotency_keys(state: &AppState) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut tx = scope::begin(&state.db, &Scope::system()).await?;
        let deleted = idempotency::purge_expired(&mut tx, PURGE_BATCH).await?;
        tx.commit().await?;
        total += deleted;
        if deleted < PURGE_BATCH as u64 {
            if total > 0 {
                tracing::info!(deleted = total, "purged expired idempotency keys");
            }
            return Ok(total);
        }
    }
}

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
