//! Sample requests, their items and status history, the catalog they draw on, and the O(1)
//! update of the hot projection's sample columns.

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::sample::{SampleItem, SampleStatus};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SampleRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub kit_id: Option<String>,
    pub status: String,
    pub delivery_date: Date,
    pub delivery_address: Option<String>,
    pub contact_email: Option<String>,
    pub notes: Option<String>,
    pub last_event_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    pub followup_due: Option<Date>,
    pub followup_done_at: Option<OffsetDateTime>,
    pub version: i64,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl SampleRow {
    pub fn status(&self) -> anyhow::Result<SampleStatus> {
        SampleStatus::parse(&self.status)
            .ok_or_else(|| anyhow::anyhow!("sample {} has status {}", self.id, self.status))
    }
}

const COLUMNS: &str = "id, customer_id, kit_id, status, delivery_date, delivery_address, contact_email, notes, \
    last_event_at, delivered_at, followup_due, followup_done_at, version, created_by, created_at, updated_at";

/// The items of a kit (`None`: the default kit), with the kit's id; `None` if there is no such kit.
pub async fn kit_items(
    conn: &mut PgConnection,
    kit: Option<&str>,
) -> sqlx::Result<Option<(String, Vec<SampleItem>)>> {
    let rows: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT k.id, i.sku, i.quantity FROM sample_kit k JOIN sample_kit_item i ON i.kit_id = k.id
          WHERE CASE WHEN $1::text IS NULL THEN k.is_default ELSE k.id = $1 END ORDER BY i.sku",
    )
    .bind(kit)
    .fetch_all(conn)
    .await?;
    let Some(id) = rows.first().map(|(id, ..)| id.clone()) else {
        return Ok(None);
    };
    Ok(Some((id, rows.into_iter().map(|(_, sku, quantity)| SampleItem { sku, quantity }).collect())))
}

/// Those of `skus` that are not active products of the catalog.
pub async fn unknown_skus(conn: &mut PgConnection, skus: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT sku FROM unnest($1::text[]) sku
          WHERE NOT EXISTS (SELECT 1 FROM product p WHERE p.sku = sku.sku AND p.active)",
    )
    .bind(skus)
    .fetch_all(conn)
    .await
}

/// A sample request's contents, its items resolved.
pub struct SampleRequest<'a> {
    pub kit_id: Option<&'a str>,
    pub items: &'a [SampleItem],
    pub delivery_date: Date,
    pub delivery_address: Option<&'a str>,
    pub contact_email: Option<&'a str>,
    pub notes: Option<&'a str>,
    /// The inbound event an automation requests it for.
    pub origin_event_id: Option<Uuid>,
}

/// A new sample in REQUESTED, with its items and the first entry of its history.
pub struct NewSampleRow<'a> {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub request: &'a SampleRequest<'a>,
    pub actor: &'a str,
    pub correlation_id: Option<&'a str>,
}

pub async fn insert(conn: &mut PgConnection, new: &NewSampleRow<'_>) -> sqlx::Result<SampleRow> {
    let request = new.request;
    let skus: Vec<&str> = request.items.iter().map(|i| i.sku.as_str()).collect();
    let quantities: Vec<i32> = request.items.iter().map(|i| i.quantity).collect();
    let row: SampleRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH sample AS (
            INSERT INTO sample_request (id, customer_id, kit_id, delivery_date, delivery_address, contact_email, notes,
                                        last_event_at, created_by, origin_event_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $12)
            RETURNING {COLUMNS}
         ), items AS (
            INSERT INTO sample_item (sample_id, customer_id, sku, quantity)
            SELECT $1, $2, sku, quantity FROM unnest($9::text[], $10::int[]) AS i (sku, quantity)
         ), history AS (
            INSERT INTO sample_status_change (sample_id, customer_id, seq, old_status, new_status, event_at, actor, correlation_id)
            SELECT id, customer_id, 1, NULL, status, last_event_at, $8, $11 FROM sample
         )
         SELECT {COLUMNS} FROM sample"
    )))
    .bind(new.id)
    .bind(new.customer_id)
    .bind(request.kit_id)
    .bind(request.delivery_date)
    .bind(request.delivery_address)
    .bind(request.contact_email)
    .bind(request.notes)
    .bind(new.actor)
    .bind(&skus)
    .bind(&quantities)
    .bind(new.correlation_id)
    .bind(request.origin_event_id)
    .fetch_one(conn)
    .await?;
    Ok(row)
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<SampleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM sample_request WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The sample, locked for a change; `None` when it does not exist or the caller may not change it.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<SampleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM sample_request WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The items of each of `samples`, by sample.
pub async fn items(conn: &mut PgConnection, samples: &[Uuid]) -> sqlx::Result<Vec<(Uuid, SampleItem)>> {
    let rows: Vec<(Uuid, String, i32)> = sqlx::query_as(
        "SELECT sample_id, sku, quantity FROM sample_item WHERE sample_id = ANY($1) ORDER BY sample_id, sku",
    )
    .bind(samples)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id, sku, quantity)| (id, SampleItem { sku, quantity })).collect())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StatusChangeRow {
    pub old_status: Option<String>,
    pub new_status: String,
    pub event_at: OffsetDateTime,
    pub actor: String,
    pub correlation_id: Option<String>,
}

pub async fn history(conn: &mut PgConnection, sample: Uuid) -> sqlx::Result<Vec<StatusChangeRow>> {
    sqlx::query_as(
        "SELECT old_status, new_status, event_at, actor, correlation_id FROM sample_status_change
          WHERE sample_id = $1 ORDER BY seq",
    )
    .bind(sample)
    .fetch_all(conn)
    .await
}

/// A status change of a locked sample.
pub struct StatusChange<'a> {
    pub to: SampleStatus,
    pub event_at: OffsetDateTime,
    /// Set when the sample is delivered: the end of its follow-up SLA.
    pub followup_due: Option<Date>,
    pub actor: &'a str,
    pub correlation_id: Option<&'a str>,
}

pub async fn change_status(
    conn: &mut PgConnection,
    id: Uuid,
    change: &StatusChange<'_>,
) -> sqlx::Result<SampleRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH changed AS (
            UPDATE sample_request
               SET status = $2, last_event_at = $3, version = version + 1, updated_at = now(),
                   delivered_at = CASE WHEN $2 = 'DELIVERED' THEN $3 ELSE delivered_at END,
                   followup_due = coalesce($4, followup_due),
                   followup_done_at = CASE WHEN $2 LIKE 'FEEDBACK_%' THEN coalesce(followup_done_at, $3)
                                           ELSE followup_done_at END
             WHERE id = $1
            RETURNING {COLUMNS}
         ), history AS (
            INSERT INTO sample_status_change (sample_id, customer_id, seq, old_status, new_status, event_at, actor, correlation_id)
            SELECT c.id, c.customer_id, 1 + (SELECT max(seq) FROM sample_status_change WHERE sample_id = $1),
                   (SELECT status FROM sample_request WHERE id = $1), $2, $3, $5, $6
              FROM changed c
         )
         SELECT {COLUMNS} FROM changed"
    )))
    .bind(id)
    .bind(change.to.as_str())
    .bind(change.event_at)
    .bind(change.followup_due)
    .bind(change.actor)
    .bind(change.correlation_id)
    .fetch_one(conn)
    .await
}

/// Whether an automation already requested a sample for the inbound event `event`.
pub async fn requested_for(conn: &mut PgConnection, event: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sample_request WHERE origin_event_id = $1)")
        .bind(event)
        .fetch_one(conn)
        .await
}

/// Marks a delivered sample's follow-up as done at `at` (product-test feedback was recorded).
pub async fn complete_followup(conn: &mut PgConnection, id: Uuid, at: OffsetDateTime) -> sqlx::Result<()> {
    sqlx::query("UPDATE sample_request SET followup_done_at = $2 WHERE id = $1 AND followup_done_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Mirrors a sample's status into its customer's projection row if it is now the customer's
/// newest sample, by (last event time, id) as the recompute orders them: one row update, which
/// also moves the fields' version (GET /customers/{id}/fields shows `sample_status`).
pub async fn project(conn: &mut PgConnection, sample: &SampleRow) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE cm_customer_hot_proj
            SET sample_status = $3, sample_last_event_at = $4, latest_sample_id = $2,
                fields_version = fields_version + 1, updated_at = now()
          WHERE customer_id = $1
            AND (sample_last_event_at IS NULL OR (sample_last_event_at, latest_sample_id) <= ($4, $2))",
    )
    .bind(sample.customer_id)
    .bind(sample.id)
    .bind(&sample.status)
    .bind(sample.last_event_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Filters of `GET /samples`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleFilter {
    pub customer: Option<Uuid>,
    pub status: Option<SampleStatus>,
}

/// Newest first, after `before` (the last id of the previous page).
pub async fn list(
    conn: &mut PgConnection,
    filter: &SampleFilter,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<SampleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM sample_request
          WHERE ($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
            AND ($3::uuid IS NULL OR id < $3)
          ORDER BY id DESC LIMIT $4"
    )))
    .bind(filter.customer)
    .bind(filter.status.map(SampleStatus::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}
