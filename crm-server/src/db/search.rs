//! Customer search over the hot projection, with keyset pagination.
//!
//! The projection row carries every filterable value and the sort keys, so a page is an index
//! range scan on `cm_customer_hot_proj` joined to at most `limit + 1` customer rows. Sorting by a
//! column that may be NULL runs in two phases: first the rows with a value, in order, then the
//! rows without one, by id; a cursor says which phase it is in by its key being null or not.

use serde_json::{Value, json};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::db::customers::{self, CustomerRow};

/// What `GET /customers` may filter on. Every member is served by an index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFilter {
    pub sample_status: Option<String>,
    pub roi_bucket: Option<String>,
    /// Seasons overlapping `[from, to]`; an absent end is open.
    pub season: Option<(Option<Date>, Option<Date>)>,
    pub renewal_before: Option<Date>,
    pub exclusivity: Option<bool>,
    pub decision_maker_count_min: Option<i32>,
    pub territory: Option<String>,
    pub name_prefix: Option<String>,
    pub parent_account_id: Option<Uuid>,
}

impl CustomerFilter {
    /// A canonical text of the filters, which cursors are bound to.
    pub fn fingerprint(&self) -> String {
        format!("{self:?}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
pub enum Sort {
    /// By name, A to Z (the default).
    #[serde(rename = "name")]
    Name,
    /// Soonest contract renewal first; customers without one last.
    #[serde(rename = "renewal_date")]
    RenewalDate,
    /// Highest ROI value first; customers without one last.
    #[serde(rename = "-roi_value")]
    RoiValueDesc,
    /// Most recent sample event first; customers without samples last.
    #[serde(rename = "-sample_last_event_at")]
    SampleEventDesc,
}

impl Sort {
    /// Projection column, its SQL type, descending, nullable.
    fn spec(self) -> (&'static str, &'static str, bool, bool) {
        match self {
            Sort::Name => ("name_key", "text", false, false),
            Sort::RenewalDate => ("renewal_date", "date", false, true),
            Sort::RoiValueDesc => ("roi_value", "numeric", true, true),
            Sort::SampleEventDesc => ("sample_last_event_at", "timestamptz", true, true),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::RenewalDate => "renewal_date",
            Sort::RoiValueDesc => "-roi_value",
            Sort::SampleEventDesc => "-sample_last_event_at",
        }
    }
}

/// The hot projection's values of one customer.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct HotRow {
    pub sample_status: Option<String>,
    pub sample_last_event_at: Option<OffsetDateTime>,
    pub roi_bucket: Option<String>,
    pub roi_value: Option<f64>,
    pub decision_maker_count: Option<i32>,
    pub has_exec_alignment: Option<bool>,
    pub season_start: Option<Date>,
    pub season_end: Option<Date>,
    pub renewal_date: Option<Date>,
    pub exclusivity: Option<bool>,
}

#[derive(Debug, Clone, FromRow)]
pub struct SearchRow {
    #[sqlx(flatten)]
    pub customer: CustomerRow,
    #[sqlx(flatten)]
    pub hot: HotRow,
    /// The sort key as text (the cursor's first element).
    sort_value: Option<String>,
}

/// Where the previous page ended: the sort key (text, null in the second phase) and the id.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub value: Option<String>,
    pub id: Uuid,
}

impl After {
    pub fn to_json(&self) -> Value {
        json!([self.value, self.id])
    }

    pub fn from_json(key: &Value) -> Option<After> {
        let [value, id] = key.as_array()?.as_slice() else { return None };
        let value = match value {
            Value::Null => None,
            Value::String(s) if s.len() <= 256 => Some(s.clone()),
            _ => return None,
        };
        Some(After { value, id: id.as_str()?.parse().ok()? })
    }
}

pub struct Page {
    pub rows: Vec<SearchRow>,
    pub next: Option<After>,
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    WithValue,
    WithoutValue,
}

/// One page of customers matching `filter` in `sort` order, after `after`.
pub async fn search(
    conn: &mut PgConnection,
    filter: &CustomerFilter,
    sort: Sort,
    after: Option<&After>,
    limit: i64,
) -> Result<Page, sqlx::Error> {
    let (_, _, _, nullable) = sort.spec();
    let wanted = limit + 1;
    let mut rows = Vec::new();
    let second_phase_only = nullable && after.is_some_and(|a| a.value.is_none());
    if !second_phase_only {
        let mut query = build(filter, sort, Phase::WithValue, after, wanted);
        rows = query.build_query_as::<SearchRow>().fetch_all(&mut *conn).await?;
    }
    if nullable && (rows.len() as i64) < wanted {
        let after = after.filter(|a| a.value.is_none());
        let mut query = build(filter, sort, Phase::WithoutValue, after, wanted - rows.len() as i64);
        rows.extend(query.build_query_as::<SearchRow>().fetch_all(&mut *conn).await?);
    }
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|row| After { value: row.sort_value.clone(), id: row.customer.id })
    } else {
        None
    };
    Ok(Page { rows, next })
}

/// The plan PostgreSQL chooses for the first query of a page (for tests and diagnosis).
pub async fn explain(
    conn: &mut PgConnection,
    filter: &CustomerFilter,
    sort: Sort,
    limit: i64,
) -> Result<Value, sqlx::Error> {
    let mut query = build(filter, sort, Phase::WithValue, None, limit + 1);
    let mut explain: QueryBuilder<Postgres> = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
    explain.push(query.sql().as_str());
    let sql = explain.into_string();
    let arguments =
        sqlx::Execute::take_arguments(&mut query.build()).map_err(sqlx::Error::Encode)?.unwrap_or_default();
    sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), arguments).fetch_one(conn).await
}

fn build<'a>(
    filter: &'a CustomerFilter,
    sort: Sort,
    phase: Phase,
    after: Option<&'a After>,
    limit: i64,
) -> QueryBuilder<Postgres> {
    let (column, sql_type, descending, nullable) = sort.spec();
    let mut q = QueryBuilder::new(format!(
        "SELECT {}, p.sample_status, p.sample_last_event_at, p.roi_bucket, p.roi_value::float8 AS roi_value,
                p.decision_maker_count, p.has_exec_alignment, p.season_start, p.season_end, p.renewal_date,
                p.exclusivity, p.{column}::text AS sort_value
           FROM cm_customer_hot_proj p JOIN customer c ON c.id = p.customer_id
          WHERE true",
        customers::columns("c")
    ));
    if let Some(status) = &filter.sample_status {
        q.push(" AND p.sample_status = ").push_bind(status);
    }
    if let Some(bucket) = &filter.roi_bucket {
        q.push(" AND p.roi_bucket = ").push_bind(bucket);
    }
    if let Some((from, to)) = &filter.season {
        // Overlap of [start, end] with [from, to] as date comparisons: leakproof, so an index can
        // serve them under row-level security (the range operator && is not).
        q.push(" AND p.season_start IS NOT NULL AND p.season_end IS NOT NULL");
        if let Some(to) = to {
            q.push(" AND p.season_start <= ").push_bind(*to);
        }
        if let Some(from) = from {
            q.push(" AND p.season_end >= ").push_bind(*from);
        }
    }
    if let Some(before) = filter.renewal_before {
        q.push(" AND p.renewal_date < ").push_bind(before);
    }
    if let Some(exclusive) = filter.exclusivity {
        q.push(" AND p.exclusivity = ").push_bind(exclusive);
    }
    if let Some(min) = filter.decision_maker_count_min {
        q.push(" AND p.decision_maker_count >= ").push_bind(min);
    }
    if let Some(territory) = &filter.territory {
        q.push(" AND p.territory = ").push_bind(territory);
    }
    if let Some(prefix) = &filter.name_prefix {
        // A range rather than LIKE: it uses the index with any plan, and lower() on both sides
        // keeps the database's notion of lower case.
        q.push(" AND p.name_key >= lower(").push_bind(prefix).push(") AND p.name_key < lower(");
        q.push_bind(prefix).push(") || chr(1114111)");
    }
    if let Some(parent) = filter.parent_account_id {
        q.push(" AND c.parent_account_id = ").push_bind(parent);
    }

    let (cmp, direction) = if descending { ("<", "DESC") } else { (">", "ASC") };
    match phase {
        Phase::WithValue => {
            if nullable {
                q.push(format!(" AND p.{column} IS NOT NULL"));
            }
            if let Some(after) = after {
                q.push(format!(" AND (p.{column}, p.customer_id) {cmp} ("));
                q.push_bind(after.value.as_deref()).push(format!("::{sql_type}, "));
                q.push_bind(after.id).push(")");
            }
            q.push(format!(" ORDER BY p.{column} {direction}, p.customer_id {direction}"));
        }
        Phase::WithoutValue => {
            q.push(format!(" AND p.{column} IS NULL"));
            if let Some(after) = after {
                q.push(format!(" AND p.customer_id {cmp} ")).push_bind(after.id);
            }
            q.push(format!(" ORDER BY p.customer_id {direction}"));
        }
    }
    q.push(" LIMIT ").push_bind(limit);
    q
}
