//! The settings registry's rows: current values, the number of each scope's last change, the
//! audit trail, and the counter every change takes its number from.
//!
//! A writer first takes the next number ([`next_version`]), which locks the counter's one row
//! until its transaction ends; everything it then reads and writes is therefore current, and
//! numbers follow commit order (see the migration `20261203000001_settings.sql`).

use serde_json::Value;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::domain::settings::{SettingScope, Stored};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SettingRow {
    pub scope: String,
    pub key: String,
    pub value: Value,
    pub version: i64,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

/// The value of `key` at `scope`, if it has one.
pub async fn find(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
) -> Result<Option<SettingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT scope, key, value, version, updated_at, updated_by FROM setting WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Takes the number of a change, and with it the registry's write lock until the transaction
/// ends. Rolled back with the transaction, so a refused write uses up no number.
pub async fn next_version(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("UPDATE setting_version SET last = last + 1 RETURNING last").fetch_one(conn).await
}

/// A change to record, after [`next_version`] gave it its number.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub version: i64,
    pub old: Option<&'a Value>,
    /// `None`: the setting is deleted.
    pub new: Option<&'a Value>,
    pub actor: &'a str,
    pub correlation_id: Option<&'a str>,
}

/// Writes `change` in one statement: the value (upserted or deleted), the scope's number and the
/// audit row. Returns the row as written; `None` for a delete.
pub async fn record(conn: &mut PgConnection, change: Change<'_>) -> Result<Option<SettingRow>, sqlx::Error> {
    let write = match change.new {
        Some(_) => {
            "INSERT INTO setting (scope, key, value, version, updated_by) VALUES ($1, $2, $4, $3, $5)
             ON CONFLICT (scope, key) DO UPDATE
                SET value = EXCLUDED.value, version = EXCLUDED.version, updated_at = now(), updated_by = EXCLUDED.updated_by
             RETURNING scope, key, value, version, updated_at, updated_by"
        }
        None => {
            "DELETE FROM setting WHERE scope = $1 AND key = $2
             RETURNING scope, key, value, version, updated_at, updated_by"
        }
    };
    let sql = format!(
        "WITH written AS ({write}
         ), history AS (
            INSERT INTO setting_history (version, scope, key, action, old_value, new_value, actor, correlation_id)
            VALUES ($3, $1, $2, CASE WHEN $4::jsonb IS NULL THEN 'delete' ELSE 'set' END, $6, $4, $5, $7)
         ), scoped AS (
            INSERT INTO setting_scope (scope, version) VALUES ($1, $3)
            ON CONFLICT (scope) DO UPDATE SET version = EXCLUDED.version
         )
         SELECT * FROM written"
    );
    let row: Option<SettingRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(change.scope)
        .bind(change.key)
        .bind(change.version)
        .bind(change.new)
        .bind(change.actor)
        .bind(change.old)
        .bind(change.correlation_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.filter(|_| change.new.is_some()))
}

/// What the effective view of a chain is made of, read in one statement (one snapshot, so the
/// version always belongs to the values): the values at the chain's scopes, and the number of the
/// last change at each of them.
pub async fn chain(
    conn: &mut PgConnection,
    chain: &[SettingScope],
) -> Result<(Vec<Stored>, Vec<(SettingScope, i64)>), sqlx::Error> {
    let scopes: Vec<String> = chain.iter().map(ToString::to_string).collect();
    // A row without a key is a scope's number.
    let rows: Vec<(String, Option<String>, Option<Value>, i64)> = sqlx::query_as(
        "SELECT scope, NULL::text, NULL::jsonb, version FROM setting_scope WHERE scope = ANY($1)
         UNION ALL
         SELECT scope, key, value, version FROM setting WHERE scope = ANY($1)",
    )
    .bind(&scopes)
    .fetch_all(conn)
    .await?;
    let mut stored = Vec::new();
    let mut versions = Vec::new();
    for (scope, key, value, version) in rows {
        // Only the chain's own scopes were asked for, so each is one of them.
        let Some(scope) = chain.iter().find(|s| s.to_string() == scope).cloned() else {
            continue;
        };
        match (key, value) {
            (Some(key), Some(value)) => stored.push(Stored { scope, key, value, version }),
            _ => versions.push((scope, version)),
        }
    }
    Ok((stored, versions))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub version: i64,
    pub action: String,
    pub old_value: Option<Value>,
    pub new_value: Option<Value>,
    pub actor: String,
    pub correlation_id: Option<String>,
    pub at: OffsetDateTime,
}

/// Changes of `key` at `scope`, newest first, starting below the number `before` (from a
/// previous page).
pub async fn history(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, action, old_value, new_value, actor, correlation_id, at FROM setting_history
          WHERE scope = $1 AND key = $2 AND ($3::bigint IS NULL OR version < $3)
          ORDER BY version DESC LIMIT $4",
    )
    .bind(scope)
    .bind(key)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}
