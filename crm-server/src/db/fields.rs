//! Dynamic field values, their audit trail, and the one-statement write that keeps the hot
//! projection current.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::fields::{FieldCatalog, FieldDefinition, FieldWrite};
use crate::domain::projection;

pub async fn load_catalog(pool: &PgPool) -> anyhow::Result<FieldCatalog> {
    let rows: Vec<(String, String, String, Value, bool, Vec<String>)> = sqlx::query_as(
        "SELECT key, label, description, schema, hot, writable_by FROM field_catalog ORDER BY key",
    )
    .fetch_all(pool)
    .await?;
    let definitions = rows
        .into_iter()
        .map(|(key, label, description, schema, hot, writable_by)| FieldDefinition {
            key,
            label,
            description,
            schema,
            hot,
            writable_by,
        })
        .collect();
    FieldCatalog::new(definitions).map_err(anyhow::Error::msg)
}

/// The current values of a customer's fields, with who wrote each and when.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValues {
    pub version: i64,
    pub values: BTreeMap<String, (Value, OffsetDateTime, String)>,
}

/// The version of a customer's fields; `None` when the customer does not exist.
pub async fn version(conn: &mut PgConnection, customer: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT fields_version FROM cm_customer_hot_proj WHERE customer_id = $1")
        .bind(customer)
        .fetch_optional(conn)
        .await
}

/// The version of a customer's fields, locked until the transaction ends, so that a write of
/// derived values (from an activity) cannot be stale; `None` when the caller may not write them.
pub async fn lock_version(conn: &mut PgConnection, customer: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT fields_version FROM cm_customer_hot_proj WHERE customer_id = $1 FOR UPDATE")
        .bind(customer)
        .fetch_optional(conn)
        .await
}

/// Whether the caller's scope may write the customer's fields.
pub async fn writable(conn: &mut PgConnection, customer: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT crm_may_write_customer($1)").bind(customer).fetch_one(conn).await
}

/// `None` when the customer does not exist. `sample_status` is derived from samples and read
/// from the projection.
pub async fn values(conn: &mut PgConnection, customer: Uuid) -> Result<Option<FieldValues>, sqlx::Error> {
    let Some(version) = version(&mut *conn, customer).await? else {
        return Ok(None);
    };
    let rows: Vec<(String, Value, OffsetDateTime, String)> = sqlx::query_as(
        "SELECT field_key, value, updated_at, updated_by FROM field_values WHERE customer_id = $1
         UNION ALL
         SELECT 'sample_status', to_jsonb(sample_status), coalesce(sample_last_event_at, updated_at), 'system:samples'
           FROM cm_customer_hot_proj WHERE customer_id = $1 AND sample_status IS NOT NULL",
    )
    .bind(customer)
    .fetch_all(conn)
    .await?;
    let values = rows.into_iter().map(|(key, value, at, by)| (key, (value, at, by))).collect();
    Ok(Some(FieldValues { version, values }))
}

/// One changed field, as the audit trail and the event record it. `None` is "absent".
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PatchOutcome {
    /// Written: the new version, the customer's territory, and what actually changed (writes of
    /// an equal value are not changes).
    Applied {
        version: i64,
        territory: String,
        changes: Vec<Change>,
    },
    /// The customer's fields are at another version than the caller expected.
    Stale {
        current: i64,
    },
    NotFound,
}

/// Applies `writes` to the fields of `customer` if its fields version is one of `expected`, in one
/// statement: one update of the customer's projection row (the version bump, which takes the row
/// lock, and the columns of the hot fields written), upserts and deletes, and the audit rows.
/// Every writer of a customer's fields bumps the same version, so a version that still matches
/// once the row lock is granted means no write slipped in after this statement's snapshot, and
/// the old values it read are the current ones.
pub async fn patch(
    conn: &mut PgConnection,
    customer: Uuid,
    expected: &[i64],
    writes: &[FieldWrite],
    actor: &str,
    correlation_id: Option<&str>,
) -> Result<PatchOutcome, sqlx::Error> {
    let input: Map<String, Value> =
        writes.iter().map(|w| (w.key.clone(), w.value.clone().unwrap_or(Value::Null))).collect();
    let written: Vec<&str> = writes.iter().map(|w| w.key.as_str()).collect();
    // One row per change (version, territory, key, old, new), or one row of nulls when nothing
    // changed.
    type Row = (i64, String, Option<String>, Option<Value>, Option<Value>);
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(patch_sql(&written)))
        .bind(customer)
        .bind(expected)
        .bind(Value::Object(input))
        .bind(actor)
        .bind(correlation_id)
        .fetch_all(&mut *conn)
        .await?;
    let Some((version, territory, ..)) = rows.first() else {
        let current = version(conn, customer).await?;
        return Ok(current.map_or(PatchOutcome::NotFound, |current| PatchOutcome::Stale { current }));
    };
    let (version, territory) = (*version, territory.clone());
    let changes =
        rows.into_iter().filter_map(|(_, _, key, old, new)| Some(Change { key: key?, old, new })).collect();
    Ok(PatchOutcome::Applied { version, territory, changes })
}

/// The write statement for a patch of the `written` keys (the SQL differs only in which
/// projection columns it assigns). Public so that the benchmark can run the very same statement
/// through pgbench.
pub fn patch_sql(written: &[&str]) -> String {
    let value_of = |field: &str| format!("(SELECT value FROM input WHERE key = '{field}')");
    let projected =
        projection::incremental_assignments(written, value_of).map(|a| format!(", {a}")).unwrap_or_default();
    format!(
        "WITH input AS (
            SELECT key, value FROM jsonb_each($3::jsonb)
         ), bumped AS (
            UPDATE cm_customer_hot_proj
               SET fields_version = fields_version + 1, fields_changed_at = now(), updated_at = now(){projected}
             WHERE customer_id = $1 AND fields_version = ANY($2)
            RETURNING customer_id AS id, fields_version, territory
         ), old AS (
            SELECT field_key, value FROM field_values
             WHERE customer_id = $1 AND field_key IN (SELECT key FROM input)
         ), upserted AS (
            INSERT INTO field_values AS fv (customer_id, field_key, value, updated_by, updated_at)
            SELECT b.id, i.key, i.value, $4, now() FROM bumped b CROSS JOIN input i
             WHERE i.value <> 'null'::jsonb
            ON CONFLICT (customer_id, field_key) DO UPDATE
               SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
             WHERE fv.value IS DISTINCT FROM EXCLUDED.value
         ), deleted AS (
            DELETE FROM field_values fv USING bumped b, input i
             WHERE fv.customer_id = b.id AND fv.field_key = i.key AND i.value = 'null'::jsonb
         ), changes AS (
            SELECT i.key, o.value AS old_value, nullif(i.value, 'null'::jsonb) AS new_value
              FROM bumped b CROSS JOIN input i LEFT JOIN old o ON o.field_key = i.key
             WHERE o.value IS DISTINCT FROM nullif(i.value, 'null'::jsonb)
         ), history AS (
            INSERT INTO field_value_history (customer_id, field_key, old_value, new_value, actor, correlation_id)
            SELECT $1, key, old_value, new_value, $4, $5 FROM changes
         )
         SELECT b.fields_version, b.territory, c.key, c.old_value, c.new_value
           FROM bumped b LEFT JOIN changes c ON true
          ORDER BY c.key"
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub field_key: String,
    pub old_value: Option<Value>,
    pub new_value: Option<Value>,
    pub actor: String,
    pub correlation_id: Option<String>,
    pub changed_at: OffsetDateTime,
}

/// Changes newest first, starting below `before` (an id from a previous page).
pub async fn history(
    conn: &mut PgConnection,
    customer: Uuid,
    key: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, field_key, old_value, new_value, actor, correlation_id, changed_at
           FROM field_value_history
          WHERE customer_id = $1 AND ($2::text IS NULL OR field_key = $2) AND ($3::bigint IS NULL OR id < $3)
          ORDER BY id DESC LIMIT $4",
    )
    .bind(customer)
    .bind(key)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_assigns_only_the_columns_of_the_hot_fields_written() {
        assert!(!patch_sql(&["menu_notes"]).contains("roi_bucket"));
        let sql = patch_sql(&["menu_notes", "roi_potential"]);
        assert!(sql.contains("updated_at = now(), roi_bucket = "), "{sql}");
        assert!(!sql.contains("renewal_date"), "{sql}");
    }
}
