//! The operator's sync reports (`setting_sync_report`): appended, never changed; listed newest
//! first by `(at, id)`.

use serde_json::Value;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SyncReportRow {
    pub id: Uuid,
    pub policy: String,
    pub tenant: String,
    pub org: Option<String>,
    pub version: i64,
    pub outcome: String,
    pub applied: Vec<String>,
    /// `[{"key", "scope", "reason"}]`.
    pub rejected: Value,
    pub changes: Vec<String>,
    pub detail: Option<String>,
    pub actor: String,
    pub correlation_id: Option<String>,
    pub at: OffsetDateTime,
}

const COLUMNS: &str = "id, policy, tenant, org, version, outcome, applied, rejected, changes, detail, actor, correlation_id, at";

/// A report to store.
#[derive(Debug, Clone, Copy)]
pub struct NewSyncReport<'a> {
    pub id: Uuid,
    pub policy: &'a str,
    pub tenant: &'a str,
    pub org: Option<&'a str>,
    pub version: i64,
    pub outcome: &'a str,
    pub applied: &'a [String],
    pub rejected: &'a Value,
    pub changes: &'a [String],
    pub detail: Option<&'a str>,
    pub actor: &'a str,
    pub correlation_id: Option<&'a str>,
}

pub async fn insert(
    conn: &mut PgConnection,
    report: NewSyncReport<'_>,
) -> Result<SyncReportRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO setting_sync_report
            (id, policy, tenant, org, version, outcome, applied, rejected, changes, detail, actor, correlation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(report.id)
        .bind(report.policy)
        .bind(report.tenant)
        .bind(report.org)
        .bind(report.version)
        .bind(report.outcome)
        .bind(report.applied)
        .bind(report.rejected)
        .bind(report.changes)
        .bind(report.detail)
        .bind(report.actor)
        .bind(report.correlation_id)
        .fetch_one(conn)
        .await
}

/// Which reports to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReportFilter {
    pub tenant: Option<String>,
    pub policy: Option<String>,
}

/// Reports matching `filter`, newest first, starting after `after` (the last of a previous page).
pub async fn list(
    conn: &mut PgConnection,
    filter: &SyncReportFilter,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<SyncReportRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM setting_sync_report
          WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR policy = $2)
            AND ($3::timestamptz IS NULL OR (at, id) < ($3, $4::uuid))
          ORDER BY at DESC, id DESC LIMIT $5"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(filter.tenant.as_deref())
        .bind(filter.policy.as_deref())
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .bind(limit)
        .fetch_all(conn)
        .await
}
