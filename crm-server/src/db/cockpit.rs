//! The cockpit's figures, computed from the source tables (samples, activities, field values) so
//! that they never depend on the projection being current; and the list of overdue SLA items.
//! Every query runs under the caller's scope: a team lead's cockpit covers their territories.

use serde_json::Value;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Feedback outcomes of samples whose feedback came in within the period: (status, count).
pub async fn feedback(
    conn: &mut PgConnection,
    territory: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT s.status, count(*) FROM sample_request s JOIN customer c ON c.id = s.customer_id
          WHERE s.status LIKE 'FEEDBACK_%' AND s.last_event_at >= $2 AND s.last_event_at < $3
            AND ($1::text IS NULL OR c.territory = $1)
          GROUP BY s.status",
    )
    .bind(territory)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// Samples requested within the period.
pub async fn requested(
    conn: &mut PgConnection,
    territory: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM sample_request s JOIN customer c ON c.id = s.customer_id
          WHERE s.created_at >= $2 AND s.created_at < $3 AND ($1::text IS NULL OR c.territory = $1)",
    )
    .bind(territory)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await
}

/// Customers and monthly savings per ROI bucket, from the current `roi_potential` values.
pub async fn roi_pipeline(
    conn: &mut PgConnection,
    territory: Option<&str>,
) -> sqlx::Result<Vec<(String, i64, f64)>> {
    sqlx::query_as(
        "SELECT v.value ->> 'bucket', count(*), coalesce(sum((v.value ->> 'value')::float8), 0)
           FROM field_values v JOIN customer c ON c.id = v.customer_id
          WHERE v.field_key = 'roi_potential' AND ($1::text IS NULL OR c.territory = $1)
          GROUP BY 1",
    )
    .bind(territory)
    .fetch_all(conn)
    .await
}

/// An item whose SLA is past due and not met.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OverdueRow {
    /// `SAMPLE_FOLLOWUP` or `ACTIVITY`.
    pub item: String,
    pub id: Uuid,
    pub customer_id: Uuid,
    pub territory: String,
    /// The activity's kind.
    pub kind: Option<String>,
    pub due: Date,
}

const OVERDUE: &str = "
    SELECT 'SAMPLE_FOLLOWUP' AS item, s.id, s.customer_id, c.territory, NULL::text AS kind, s.followup_due AS due
      FROM sample_request s JOIN customer c ON c.id = s.customer_id
     WHERE s.followup_done_at IS NULL AND s.followup_due < $1 AND ($2::text IS NULL OR c.territory = $2)
    UNION ALL
    SELECT 'ACTIVITY', a.id, a.customer_id, c.territory, a.kind, a.sla_due
      FROM activity a JOIN customer c ON c.id = a.customer_id
     WHERE a.sla_met_at IS NULL AND a.sla_due < $1 AND ($2::text IS NULL OR c.territory = $2)";

/// Items overdue on `today`, oldest due first, after `after` (the last (due, id) of a page).
pub async fn overdue(
    conn: &mut PgConnection,
    today: Date,
    territory: Option<&str>,
    after: Option<(Date, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<OverdueRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({OVERDUE}) o
          WHERE $3::date IS NULL OR (o.due, o.id) > ($3, $4)
          ORDER BY o.due, o.id LIMIT $5"
    )))
    .bind(today)
    .bind(territory)
    .bind(after.map(|(due, _)| due))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// How many items are overdue, by item and activity kind: (item, kind, count).
pub async fn overdue_counts(
    conn: &mut PgConnection,
    today: Date,
    territory: Option<&str>,
) -> sqlx::Result<Vec<(String, Option<String>, i64)>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT item, kind, count(*) FROM ({OVERDUE}) o GROUP BY item, kind ORDER BY item, kind"
    )))
    .bind(today)
    .bind(territory)
    .fetch_all(conn)
    .await
}

/// Customers whose supplier contract renews between `from` and `until`, soonest first:
/// (customer, name, territory, the contract field's value).
pub async fn renewals(
    conn: &mut PgConnection,
    territory: Option<&str>,
    from: Date,
    until: Date,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, String, String, Value)>> {
    sqlx::query_as(
        "SELECT c.id, c.name, c.territory, v.value FROM field_values v JOIN customer c ON c.id = v.customer_id
          WHERE v.field_key = 'current_supplier_contracts'
            AND (v.value ->> 'renewal_date')::date BETWEEN $2 AND $3
            AND ($1::text IS NULL OR c.territory = $1)
          ORDER BY (v.value ->> 'renewal_date')::date, c.id LIMIT $4",
    )
    .bind(territory)
    .bind(from)
    .bind(until)
    .bind(limit)
    .fetch_all(conn)
    .await
}
