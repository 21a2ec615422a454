//! The relay: publishes committed events into the ordered log that consumers read.
//!
//! Writers never NOTIFY: a NOTIFY takes a database-wide lock at commit, which serialises
//! committers (it cost a fifth to a third of an 8-client write workload). An insert into
//! `event_outbox` queues its seq in the narrow, unlogged `outbox_pending` (a trigger); the relay
//! probes that queue every `poll_interval` (a read of a nearly empty table, no transaction id
//! taken), moves a batch of it into the append-only `outbox_log` with positions in seq order, in
//! one statement, and sends one NOTIFY with a constant-size payload (the last position) per batch,
//! which wakes the consumers and live streams of every process. Notifications are only a hint:
//! every reader also polls, and catches up from the log after a reconnect. A queue lost with a
//! crash is rebuilt from the outbox ([`publish_batch`]).
//!
//! The row of `outbox_relay` is locked first, in its own statement, so that two relays never
//! interleave, and the statement choosing the batch then sees everything the previous relay
//! committed (see the migrations `20261127000001_outbox_relay.sql` for why positions, not seqs,
//! and `20261202000001_outbox_log.sql` for why a log, not a column).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::db::scope::{self, Scope};

/// The channel the relay notifies; the payload is the last position published.
pub const CHANNEL: &str = "crm_events";

/// What one publishing step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub count: u64,
    pub last_position: i64,
}

/// Gives up to `batch` committed, unpublished events their positions, in seq order.
pub async fn publish_batch(pool: &PgPool, batch: i64) -> sqlx::Result<Published> {
    // The probe runs outside a transaction: an idle relay takes no locks and no transaction ids.
    let (waiting, intact, last): (bool, bool, i64) = sqlx::query_as(
        "SELECT EXISTS (SELECT FROM outbox_pending WHERE seq > 0), EXISTS (SELECT FROM outbox_pending WHERE seq = 0),
                (SELECT last_position FROM outbox_relay)",
    )
    .fetch_one(pool)
    .await?;
    if !waiting && intact {
        return Ok(Published { count: 0, last_position: last });
    }
    let mut tx = scope::begin(pool, &Scope::system()).await?;
    let last: i64 =
        sqlx::query_scalar("SELECT last_position FROM outbox_relay FOR UPDATE").fetch_one(&mut *tx).await?;
    if !intact {
        requeue(&mut tx).await?;
    }
    let count: i64 = sqlx::query_scalar(
        "WITH batch AS (
            DELETE FROM outbox_pending
             WHERE seq = ANY (ARRAY (SELECT seq FROM outbox_pending WHERE seq > 0 ORDER BY seq LIMIT $2))
            RETURNING seq
         ), logged AS (
            INSERT INTO outbox_log (position, seq)
            SELECT $1 + row_number() OVER (ORDER BY seq), seq FROM batch
            RETURNING 1
         )
         SELECT count(*) FROM logged",
    )
    .bind(last)
    .bind(batch)
    .fetch_one(&mut *tx)
    .await?;
    if count == 0 {
        tx.rollback().await?;
        return Ok(Published { count: 0, last_position: last });
    }
    let last_position = last + count;
    sqlx::query(
        "WITH moved AS (UPDATE outbox_relay SET last_position = $1, published_at = now() RETURNING last_position)
         SELECT pg_notify($2, last_position::text) FROM moved",
    )
    .bind(last_position)
    .bind(CHANNEL)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Published { count: count as u64, last_position })
}

/// The queue is unlogged (see the migration `20261202000001_outbox_log.sql`): after a crash, a
/// failover or a restore it is empty, its seq-0 row included. Every event the log lacks is queued
/// again, with that row, under the relay's lock; events written meanwhile queue themselves.
async fn requeue(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> sqlx::Result<()> {
    let queued = sqlx::query(
        "INSERT INTO outbox_pending (seq)
         SELECT 0
         UNION ALL
         SELECT e.seq FROM event_outbox e WHERE NOT EXISTS (SELECT FROM outbox_log l WHERE l.seq = e.seq)
         ON CONFLICT DO NOTHING",
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    tracing::warn!(
        queued = queued.saturating_sub(1),
        "the outbox queue was lost (a crash, failover or restore); queued every unpublished event again"
    );
    Ok(())
}

/// How the relay runs.
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// Events per publishing transaction.
    pub batch: i64,
    /// Pause between probes when nothing was waiting.
    pub poll_interval: Duration,
}

/// Publishes until the process ends; a full batch is followed by the next at once, an empty one
/// by `poll_interval`, an error by a growing pause (capped at five seconds). `published` carries
/// the last position to the consumers of this process without waiting for the notification.
pub async fn run(
    pool: PgPool,
    options: RelayOptions,
    published: Arc<watch::Sender<i64>>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut failures = 0u32;
    loop {
        match publish_batch(&pool, options.batch).await {
            Ok(step) => {
                failures = 0;
                if step.count > 0 {
                    metrics.observe_published(step.count);
                    published.send_replace(step.last_position);
                }
                if step.count < options.batch as u64 {
                    tokio::time::sleep(options.poll_interval).await;
                }
            }
            Err(error) => {
                failures += 1;
                metrics.observe_publish_error();
                let pause =
                    Duration::from_millis(100 * 2u64.pow(failures.min(6))).min(Duration::from_secs(5));
                tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "publishing outbox events failed");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// The backlog, the consumers' lag and dead letters, and the notification queue, for the metrics.
pub async fn stats(pool: &PgPool) -> sqlx::Result<crate::metrics::OutboxStats> {
    let mut tx = scope::begin(pool, &Scope::system()).await?;
    let (unpublished, oldest, queue): (i64, f64, f64) = sqlx::query_as(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(e.occurred_at)), 0)::float8,
                pg_notification_queue_usage()
           FROM outbox_pending p JOIN event_outbox e ON e.seq = p.seq WHERE p.seq > 0",
    )
    .fetch_one(&mut *tx)
    .await?;
    let consumers: Vec<crate::metrics::ConsumerStats> = sqlx::query_as(
        "SELECT c.consumer, greatest(r.last_position - c.position, 0) AS lag,
                (SELECT count(*) FROM consumer_dead_letter d WHERE d.consumer = c.consumer AND d.redriven_at IS NULL)
                    AS dead_letters
           FROM consumer_checkpoint c CROSS JOIN outbox_relay r ORDER BY c.consumer",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(crate::metrics::OutboxStats {
        unpublished,
        oldest_unpublished_seconds: oldest.max(0.0),
        consumers,
        notification_queue_usage: queue,
    })
}
