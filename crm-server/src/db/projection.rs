//! Checking and rebuilding the hot projection from its sources, in batches of customers.
//!
//! Writers keep the projection current in their own transactions; this is the fallback (nightly
//! rebuild, repair after manual SQL) and the measure of drift. Both walk customers in id order in
//! batches; a rebuild batch share-locks its customers (customer and projection rows) with SKIP
//! LOCKED, so it never waits for a writer (a customer being written is retried at the end), and a
//! writer waits at most for one short batch.

use std::sync::LazyLock;

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::scope::Scope;
use crate::domain::projection::{columns, differs, recompute_select};

/// How many drifted ids a report lists.
const SAMPLE: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub rows_checked: u64,
    /// Customers whose projection row differs from a recompute from the sources (or is missing).
    pub drifted_rows: u64,
    /// The oldest source change among drifted rows: how long the projection has been wrong.
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_unrefreshed_change: Option<OffsetDateTime>,
    /// Up to 20 drifted customers.
    pub drifted_sample: Vec<Uuid>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebuildReport {
    pub rows_checked: u64,
    /// Rows written because they differed from the recompute (or were missing).
    pub rows_rewritten: u64,
    /// Customers being written at the time, refreshed in a second pass.
    pub rows_retried: u64,
}

static CHECK_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r AS ({} ORDER BY c.id LIMIT $2)
         SELECT r.customer_id, r.source_changed_at, (p.customer_id IS NULL OR {}) AS drifted
           FROM r LEFT JOIN cm_customer_hot_proj p ON p.customer_id = r.customer_id
          ORDER BY r.customer_id",
        recompute_select("c.id > $1"),
        differs("p", "r")
    )
});

static CHECK_IDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r AS ({})
         SELECT r.customer_id, r.source_changed_at, (p.customer_id IS NULL OR {}) AS drifted
           FROM r LEFT JOIN cm_customer_hot_proj p ON p.customer_id = r.customer_id",
        recompute_select("c.id = ANY($1)"),
        differs("p", "r")
    )
});

static UPSERT: LazyLock<String> = LazyLock::new(|| {
    let columns = columns();
    let list = columns.join(", ");
    let excluded: Vec<String> = columns.iter().map(|c| format!("EXCLUDED.{c}")).collect();
    let recomputed: Vec<String> = columns.iter().map(|c| format!("r.{c}")).collect();
    format!(
        "INSERT INTO cm_customer_hot_proj AS p (customer_id, {list}, updated_at)
         SELECT r.customer_id, {}, now() FROM ({}) r
         ON CONFLICT (customer_id) DO UPDATE SET ({list}) = ({}), updated_at = now()
          WHERE {}
         RETURNING p.customer_id",
        recomputed.join(", "),
        recompute_select("c.id = ANY($1)"),
        excluded.join(", "),
        differs("p", "EXCLUDED")
    )
});

type CheckRow = (Uuid, Option<OffsetDateTime>, bool);

fn tally(report: &mut CheckReport, rows: &[CheckRow]) {
    report.rows_checked += rows.len() as u64;
    for (id, changed, drifted) in rows {
        if *drifted {
            report.drifted_rows += 1;
            if report.drifted_sample.len() < SAMPLE {
                report.drifted_sample.push(*id);
            }
            if let Some(changed) = changed {
                report.oldest_unrefreshed_change =
                    Some(report.oldest_unrefreshed_change.map_or(*changed, |o| o.min(*changed)));
            }
        }
    }
}

/// Compares every projection row that `scope` may see with a recompute, and records the result in
/// `projection_check`. (The server checks under the system scope; an owner connection sees
/// everything anyway.)
pub async fn check(pool: &PgPool, scope: &Scope, batch: i64) -> Result<CheckReport, sqlx::Error> {
    let mut report = CheckReport::default();
    let mut after = Uuid::nil();
    loop {
        let mut tx = crate::db::scope::begin(pool, scope).await?;
        let rows: Vec<CheckRow> = sqlx::query_as(sqlx::AssertSqlSafe(CHECK_BATCH.as_str()))
            .bind(after)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let Some((last, ..)) = rows.last() else { break };
        after = *last;
        tally(&mut report, &rows);
        if (rows.len() as i64) < batch {
            break;
        }
    }
    // Recorded, so that every replica can tell how far the projection lags (the cockpit).
    let mut tx = crate::db::scope::begin(pool, scope).await?;
    sqlx::query("INSERT INTO projection_check (rows_checked, drifted_rows, oldest_unrefreshed_change) VALUES ($1, $2, $3)")
        .bind(report.rows_checked as i64)
        .bind(report.drifted_rows as i64)
        .bind(report.oldest_unrefreshed_change)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(report)
}

/// The newest recorded check: when, and the oldest change it found unrefreshed.
pub async fn last_check(
    conn: &mut PgConnection,
) -> Result<Option<(OffsetDateTime, i64, Option<OffsetDateTime>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT checked_at, drifted_rows, oldest_unrefreshed_change FROM projection_check ORDER BY checked_at DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await
}

/// Compares the projection rows of `customers` with a recompute.
pub async fn check_customers(
    conn: &mut PgConnection,
    customers: &[Uuid],
) -> Result<CheckReport, sqlx::Error> {
    let rows: Vec<CheckRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(CHECK_IDS.as_str())).bind(customers).fetch_all(conn).await?;
    let mut report = CheckReport::default();
    tally(&mut report, &rows);
    Ok(report)
}

/// Rewrites every projection row that differs from a recompute, batch by batch.
pub async fn rebuild(pool: &PgPool, batch: i64) -> Result<RebuildReport, sqlx::Error> {
    let mut report = RebuildReport::default();
    let mut busy = Vec::new();
    let mut after = Uuid::nil();
    loop {
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM customer WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(batch)
            .fetch_all(pool)
            .await?;
        let Some(last) = ids.last() else { break };
        after = *last;
        report.rows_checked += ids.len() as u64;
        let (rewritten, skipped) = rebuild_batch(pool, &ids, true).await?;
        report.rows_rewritten += rewritten;
        busy.extend(skipped);
        if (ids.len() as i64) < batch {
            break;
        }
    }
    // Customers that were being written: wait for their writers this time.
    report.rows_retried = busy.len() as u64;
    for chunk in busy.chunks(batch.max(1) as usize) {
        let (rewritten, _) = rebuild_batch(pool, chunk, false).await?;
        report.rows_rewritten += rewritten;
    }
    Ok(report)
}

/// Locks `ids` (skipping locked ones when `skip_locked`), then recomputes and writes the rows
/// that differ, in one transaction. Returns the rows written and the ids skipped.
async fn rebuild_batch(
    pool: &PgPool,
    ids: &[Uuid],
    skip_locked: bool,
) -> Result<(u64, Vec<Uuid>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Writers of customer attributes hold the customer row, writers of fields the projection row;
    // a customer is rebuilt only with both (or with no projection row to hold).
    let skip = if skip_locked { " SKIP LOCKED" } else { "" };
    let customers: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM customer WHERE id = ANY($1) ORDER BY id FOR SHARE{skip}"
    )))
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let existing: Vec<Uuid> =
        sqlx::query_scalar("SELECT customer_id FROM cm_customer_hot_proj WHERE customer_id = ANY($1)")
            .bind(&customers)
            .fetch_all(&mut *tx)
            .await?;
    let held: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT customer_id FROM cm_customer_hot_proj WHERE customer_id = ANY($1) ORDER BY customer_id FOR SHARE{skip}"
    )))
    .bind(&existing)
    .fetch_all(&mut *tx)
    .await?;
    let locked: Vec<Uuid> =
        customers.into_iter().filter(|id| !existing.contains(id) || held.contains(id)).collect();
    // A new statement, so (read committed) a new snapshot that sees every write committed
    // before the locks were granted.
    let written: Vec<Uuid> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(UPSERT.as_str())).bind(&locked).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let skipped = ids.iter().filter(|id| !locked.contains(id)).copied().collect();
    Ok((written.len() as u64, skipped))
}
