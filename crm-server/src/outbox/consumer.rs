//! Named consumers of the published log, each with a checkpoint in the database.
//!
//! One step of a consumer is one transaction: lock the consumer's checkpoint row (another
//! instance of the same consumer skips instead of waiting), read the events after it in position
//! order, run the handler on each in a savepoint, and move the checkpoint. A handler that writes
//! to this database commits its effects together with the checkpoint, so each event takes effect
//! exactly once there; anything else a handler does must tolerate redelivery.
//!
//! A handler error rolls back that event's savepoint, records the attempt and ends the step; the
//! event is retried after a pause, and after `max_attempts` it goes to `consumer_dead_letter`
//! with its error and the consumer moves on (`crm-server events redrive` runs it again later).

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::db::scope::{self, Scope};
use crate::outbox::{StoredEvent, published_after};

/// What a consumer does with an event.
pub trait Handler: Send + Sync {
    /// The checkpoint's name: `automation.lead-converted`.
    fn name(&self) -> &'static str;

    /// Whether the event is for this handler at all; others only move the checkpoint.
    fn wants(&self, event: &StoredEvent) -> bool;

    /// Handles one event inside the step's transaction (under the server's own scope).
    fn handle(&self, tx: &mut Tx, event: &StoredEvent) -> impl Future<Output = Result<(), String>> + Send;
}

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

#[derive(Debug, Clone, Copy)]
pub struct ConsumerOptions {
    pub batch: i64,
    /// Tries before an event goes to the dead letters.
    pub max_attempts: i32,
    /// Longest wait for new events when no notification comes.
    pub poll_interval: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions { batch: 500, max_attempts: 5, poll_interval: Duration::from_secs(1) }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Events handled (or passed over) up to the new checkpoint.
    Advanced { events: usize, checkpoint: i64 },
    /// Nothing after the checkpoint.
    Idle { checkpoint: i64 },
    /// Another instance holds the checkpoint.
    Busy,
    /// The handler failed on the event at `position`; it is retried later.
    Failed { position: i64 },
}

/// The checkpoint of `consumer`, creating it at 0.
pub async fn register(pool: &PgPool, consumer: &str) -> sqlx::Result<()> {
    let mut tx = scope::begin(pool, &Scope::system()).await?;
    sqlx::query("INSERT INTO consumer_checkpoint (consumer) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(consumer)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// One step of `handler` (registering its checkpoint on the first).
pub async fn step<H: Handler>(pool: &PgPool, handler: &H, options: &ConsumerOptions) -> sqlx::Result<Step> {
    if let Some(step) = step_once(pool, handler, options).await? {
        return Ok(step);
    }
    register(pool, handler.name()).await?;
    Ok(step_once(pool, handler, options).await?.unwrap_or(Step::Busy))
}

/// `None` when the consumer has no checkpoint yet. The batch first runs whole, without
/// savepoints (a round trip each way per event saved); only when a handler fails is it rolled
/// back and run again event by event, each in a savepoint, to find and account for the failing one.
async fn step_once<H: Handler>(
    pool: &PgPool,
    handler: &H,
    options: &ConsumerOptions,
) -> sqlx::Result<Option<Step>> {
    let mut tx = scope::begin(pool, &Scope::system()).await?;
    let Some(checkpoint) = lock(&mut tx, handler).await? else {
        return busy_or_unknown(&mut tx, handler).await;
    };
    let events = published_after(&mut tx, checkpoint.position, &[], options.batch).await?;
    let Some(last) = events.last().and_then(|e| e.position) else {
        return Ok(Some(Step::Idle { checkpoint: checkpoint.position }));
    };
    let mut failed = false;
    for event in events.iter().filter(|e| handler.wants(e)) {
        if handler.handle(&mut tx, event).await.is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        save(&mut tx, handler, last, None).await?;
        tx.commit().await?;
        return Ok(Some(Step::Advanced { events: events.len(), checkpoint: last }));
    }
    tx.rollback().await?;
    let mut tx = scope::begin(pool, &Scope::system()).await?;
    let Some(checkpoint) = lock(&mut tx, handler).await? else {
        return Ok(Some(Step::Busy));
    };
    let events = published_after(&mut tx, checkpoint.position, &[], options.batch).await?;
    let step = careful(&mut tx, handler, options, &checkpoint, &events).await?;
    tx.commit().await?;
    Ok(Some(step))
}

/// A consumer's checkpoint row, locked.
struct Checkpoint {
    position: i64,
    failing: Option<i64>,
    attempts: i32,
}

/// The checkpoint, locked for this transaction; `None` when another instance holds it or it
/// does not exist.
async fn lock<H: Handler>(tx: &mut Tx, handler: &H) -> sqlx::Result<Option<Checkpoint>> {
    let row: Option<(i64, Option<i64>, i32)> = sqlx::query_as(
        "SELECT position, failing_position, attempts FROM consumer_checkpoint
          WHERE consumer = $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(handler.name())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(position, failing, attempts)| Checkpoint { position, failing, attempts }))
}

async fn busy_or_unknown<H: Handler>(tx: &mut Tx, handler: &H) -> sqlx::Result<Option<Step>> {
    let known: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM consumer_checkpoint WHERE consumer = $1)")
            .bind(handler.name())
            .fetch_one(&mut **tx)
            .await?;
    Ok(known.then_some(Step::Busy))
}

/// Moves the checkpoint to `position`, with the failure being retried there, if any.
async fn save<H: Handler>(
    tx: &mut Tx,
    handler: &H,
    position: i64,
    failure: Option<(i64, i32, &str)>,
) -> sqlx::Result<()> {
    let (failing_position, attempts, error) = match failure {
        Some((position, attempts, error)) => (Some(position), attempts, Some(error)),
        None => (None, 0, None),
    };
    sqlx::query(
        "UPDATE consumer_checkpoint
            SET position = $2, failing_position = $3, attempts = $4, last_error = coalesce($5, last_error), updated_at = now()
          WHERE consumer = $1",
    )
    .bind(handler.name())
    .bind(position)
    .bind(failing_position)
    .bind(attempts)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The batch event by event, each handled in a savepoint: stops at a failing event (recording
/// the attempt), or dead-letters it once it has had its tries and goes on.
async fn careful<H: Handler>(
    tx: &mut Tx,
    handler: &H,
    options: &ConsumerOptions,
    checkpoint: &Checkpoint,
    events: &[StoredEvent],
) -> sqlx::Result<Step> {
    let mut position = checkpoint.position;
    let mut handled = 0;
    for event in events {
        let at = event.position.unwrap_or(position);
        if handler.wants(event) {
            sqlx::query("SAVEPOINT handler").execute(&mut **tx).await?;
            match handler.handle(tx, event).await {
                Ok(()) => {
                    sqlx::query("RELEASE SAVEPOINT handler").execute(&mut **tx).await?;
                }
                Err(error) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT handler").execute(&mut **tx).await?;
                    let attempts = if checkpoint.failing == Some(at) { checkpoint.attempts + 1 } else { 1 };
                    if attempts < options.max_attempts {
                        save(tx, handler, position, Some((at, attempts, &error))).await?;
                        return Ok(Step::Failed { position: at });
                    }
                    tracing::error!(consumer = handler.name(), position = at, %error, attempts, "giving up on an event: dead-lettered");
                    sqlx::query(
                        "INSERT INTO consumer_dead_letter (consumer, position, event_id, attempts, error)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (consumer, position) DO UPDATE
                            SET attempts = EXCLUDED.attempts, error = EXCLUDED.error, failed_at = now(), redriven_at = NULL",
                    )
                    .bind(handler.name())
                    .bind(at)
                    .bind(event.id)
                    .bind(attempts)
                    .bind(&error)
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        position = at;
        handled += 1;
    }
    save(tx, handler, position, None).await?;
    Ok(Step::Advanced { events: handled, checkpoint: position })
}

/// Runs `handler` until the process ends: a step whenever `published` moves past the
/// checkpoint or `poll_interval` passes, at once again after a full batch, and after a growing
/// pause when the handler or the database fails.
pub async fn run<H: Handler>(
    pool: PgPool,
    handler: H,
    options: ConsumerOptions,
    mut published: watch::Receiver<i64>,
) {
    let mut failures = 0u32;
    loop {
        let result = step(&pool, &handler, &options).await;
        if matches!(result, Ok(Step::Advanced { .. } | Step::Idle { .. } | Step::Busy)) {
            failures = 0;
        }
        let wait = match result {
            Ok(Step::Advanced { events, .. }) if events as i64 >= options.batch => Duration::ZERO,
            Ok(Step::Advanced { .. } | Step::Idle { .. } | Step::Busy) => options.poll_interval,
            Ok(Step::Failed { position }) => {
                failures += 1;
                tracing::warn!(consumer = handler.name(), position, failures, "handler failed; retrying");
                backoff(failures)
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(consumer = handler.name(), %error, "consumer step failed");
                backoff(failures)
            }
        };
        if wait.is_zero() {
            continue;
        }
        // A notification ends the wait early, except after a failure.
        if failures == 0 {
            let _ = tokio::time::timeout(wait, published.changed()).await;
        } else {
            tokio::time::sleep(wait).await;
        }
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(failures.min(5))).min(Duration::from_secs(10))
}

/// Runs `handler` again on the dead letters of its consumer, oldest first, each in its own
/// transaction: a success marks the letter re-driven; a failure records the new error. Returns
/// (re-driven, still failing).
pub async fn redrive<H: Handler>(pool: &PgPool, handler: &H) -> sqlx::Result<(u64, u64)> {
    let letters: Vec<(i64,)> = {
        let mut tx = scope::begin(pool, &Scope::system()).await?;
        let letters = sqlx::query_as(
            "SELECT position FROM consumer_dead_letter WHERE consumer = $1 AND redriven_at IS NULL ORDER BY position",
        )
        .bind(handler.name())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        letters
    };
    let (mut done, mut failing) = (0, 0);
    for (position,) in letters {
        let mut tx = scope::begin(pool, &Scope::system()).await?;
        let Some(event) = published_after(&mut tx, position - 1, &[], 1).await?.into_iter().next() else {
            continue;
        };
        sqlx::query("SAVEPOINT handler").execute(&mut *tx).await?;
        let outcome = handler.handle(&mut tx, &event).await;
        let update = match &outcome {
            Ok(()) => {
                "UPDATE consumer_dead_letter SET redriven_at = now() WHERE consumer = $1 AND position = $2"
            }
            Err(_) => {
                sqlx::query("ROLLBACK TO SAVEPOINT handler").execute(&mut *tx).await?;
                "UPDATE consumer_dead_letter SET attempts = attempts + 1, error = $3, failed_at = now()
                  WHERE consumer = $1 AND position = $2"
            }
        };
        let mut query = sqlx::query(update).bind(handler.name()).bind(position);
        if let Err(error) = &outcome {
            query = query.bind(error);
        }
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        match outcome {
            Ok(()) => done += 1,
            Err(_) => failing += 1,
        }
    }
    Ok((done, failing))
}
