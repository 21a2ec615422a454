//! Activities: insert, read, a customer's timeline with filters and full-text search, and the
//! SLA bookkeeping of follow-ups.

use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::activity::ActivityKind;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ActivityRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub kind: String,
    pub occurred_at: OffsetDateTime,
    pub outcome: String,
    pub note: Option<String>,
    pub payload: Value,
    pub sample_id: Option<Uuid>,
    pub follow_up_of: Option<Uuid>,
    pub sla_due: Option<Date>,
    pub sla_met_at: Option<OffsetDateTime>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "id, customer_id, kind, occurred_at, outcome, note, payload, sample_id, follow_up_of, sla_due, \
    sla_met_at, created_by, created_at";

pub struct NewActivityRow<'a> {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub kind: ActivityKind,
    pub occurred_at: OffsetDateTime,
    pub outcome: &'a str,
    pub note: Option<&'a str>,
    pub payload: &'a Value,
    pub sample_id: Option<Uuid>,
    pub follow_up_of: Option<Uuid>,
    pub sla_due: Option<Date>,
    pub sla_met_at: Option<OffsetDateTime>,
    pub actor: &'a str,
    pub correlation_id: Option<&'a str>,
}

pub async fn insert(conn: &mut PgConnection, new: &NewActivityRow<'_>) -> sqlx::Result<ActivityRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO activity (id, customer_id, kind, occurred_at, outcome, note, payload, sample_id, follow_up_of,
                               sla_due, sla_met_at, created_by, correlation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING {COLUMNS}"
    )))
    .bind(new.id)
    .bind(new.customer_id)
    .bind(new.kind.as_str())
    .bind(new.occurred_at)
    .bind(new.outcome)
    .bind(new.note)
    .bind(new.payload)
    .bind(new.sample_id)
    .bind(new.follow_up_of)
    .bind(new.sla_due)
    .bind(new.sla_met_at)
    .bind(new.actor)
    .bind(new.correlation_id)
    .fetch_one(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<ActivityRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM activity WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Meets the SLA of `id` at `at` (a follow-up arrived), unless it was met already.
pub async fn meet_sla(conn: &mut PgConnection, id: Uuid, at: OffsetDateTime) -> sqlx::Result<()> {
    sqlx::query("UPDATE activity SET sla_met_at = $2 WHERE id = $1 AND sla_met_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// What a customer's SLAs depend on, from its projection row: the season window and the
/// contract renewal date.
pub async fn customer_dates(
    conn: &mut PgConnection,
    customer: Uuid,
) -> sqlx::Result<(Option<Date>, Option<Date>, Option<Date>)> {
    let row: Option<(Option<Date>, Option<Date>, Option<Date>)> = sqlx::query_as(
        "SELECT season_start, season_end, renewal_date FROM cm_customer_hot_proj WHERE customer_id = $1",
    )
    .bind(customer)
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or_default())
}

/// Filters of a customer's timeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityFilter {
    pub kind: Option<ActivityKind>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Words to find (PostgreSQL's web search syntax: `"ganze Phrase"`, `-ohne`, `or`).
    pub q: Option<String>,
}

/// Newest first, after `after` (the last (occurred_at, id) of the previous page).
pub async fn list(
    conn: &mut PgConnection,
    customer: Uuid,
    filter: &ActivityFilter,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<ActivityRow>> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM activity WHERE customer_id = "));
    q.push_bind(customer);
    if let Some(kind) = filter.kind {
        q.push(" AND kind = ").push_bind(kind.as_str());
    }
    if let Some(from) = filter.from {
        q.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        q.push(" AND occurred_at < ").push_bind(to);
    }
    if let Some(words) = &filter.q {
        q.push(" AND search @@ websearch_to_tsquery('german', ").push_bind(words.clone()).push(")");
    }
    if let Some((at, id)) = after {
        q.push(" AND (occurred_at, id) < (").push_bind(at).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY occurred_at DESC, id DESC LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(conn).await
}
