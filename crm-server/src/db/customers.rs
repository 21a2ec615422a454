//! Customer rows. The projection row of a customer is written in the same statement as the
//! customer (a data-modifying CTE), so the two never disagree about name and territory.

use std::sync::LazyLock;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::customer::{
    Address, ContactabilityStatus, CoveragePolicy, Customer, CustomerDraft, CustomerMembers, Segment,
};
use crate::domain::projection::CUSTOMER_COLUMNS;
use crate::error::{Error, FieldError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: Uuid,
    pub name: String,
    pub segment: String,
    pub is_chain: bool,
    pub parent_account_id: Option<Uuid>,
    pub territory: String,
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country: String,
    pub region: Option<String>,
    pub contactability_status: String,
    pub alternate_channel_required: bool,
    pub owner_subject: Option<String>,
    pub coverage_policy: String,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, name, segment, is_chain, parent_account_id, territory, street, postal_code, city, \
    country, region, contactability_status, alternate_channel_required, owner_subject, coverage_policy, version, \
    created_at, updated_at";

/// The columns of [`CustomerRow`], qualified by `alias`.
pub fn columns(alias: &str) -> String {
    COLUMNS.split(", ").map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

impl CustomerRow {
    pub fn draft(&self) -> Result<CustomerDraft, Error> {
        let invalid =
            |what: &str, value: &str| anyhow::anyhow!("customer {} has an unknown {what} `{value}`", self.id);
        Ok(CustomerDraft {
            name: self.name.clone(),
            segment: Segment::parse(&self.segment).ok_or_else(|| invalid("segment", &self.segment))?,
            territory: self.territory.clone(),
            is_chain: self.is_chain,
            parent_account_id: self.parent_account_id,
            address: Address {
                street: self.street.clone(),
                postal_code: self.postal_code.clone(),
                city: self.city.clone(),
                country: self.country.clone(),
                region: self.region.clone(),
            },
            contactability: ContactabilityStatus::parse(&self.contactability_status)
                .ok_or_else(|| invalid("contactability status", &self.contactability_status))?,
            alternate_channel_required: self.alternate_channel_required,
            owner_subject: self.owner_subject.clone(),
            coverage_policy: CoveragePolicy::parse(&self.coverage_policy)
                .ok_or_else(|| invalid("coverage policy", &self.coverage_policy))?,
        })
    }

    pub fn to_api(&self) -> Result<Customer, Error> {
        Ok(Customer {
            id: self.id,
            attributes: CustomerMembers::from(&self.draft()?),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<CustomerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM customer WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The row, locked against concurrent writers until the transaction ends.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<CustomerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM customer WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The projection's copy of customer columns, as `INSERT` column list and `SELECT` list over `c`.
fn projection_copy() -> (String, String) {
    let columns: Vec<&str> = CUSTOMER_COLUMNS.iter().map(|(column, _)| *column).collect();
    let exprs: Vec<&str> = CUSTOMER_COLUMNS.iter().map(|(_, expr)| *expr).collect();
    (columns.join(", "), exprs.join(", "))
}

static INSERT: LazyLock<String> = LazyLock::new(|| {
    let (columns, exprs) = projection_copy();
    format!(
        "WITH c AS (
            INSERT INTO customer (id, name, segment, is_chain, parent_account_id, territory, street, postal_code,
                                  city, country, region, contactability_status, alternate_channel_required,
                                  owner_subject, coverage_policy)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            RETURNING {COLUMNS}
         ), p AS (
            INSERT INTO cm_customer_hot_proj (customer_id, {columns}) SELECT c.id, {exprs} FROM c
         )
         SELECT {COLUMNS} FROM c"
    )
});

static UPDATE: LazyLock<String> = LazyLock::new(|| {
    let (columns, exprs) = projection_copy();
    format!(
        "WITH c AS (
            UPDATE customer SET name = $2, segment = $3, is_chain = $4, parent_account_id = $5, territory = $6,
                   street = $7, postal_code = $8, city = $9, country = $10, region = $11,
                   contactability_status = $12, alternate_channel_required = $13, owner_subject = $14,
                   coverage_policy = $15, version = version + 1, updated_at = now()
             WHERE id = $1
            RETURNING {COLUMNS}
         ), p AS (
            UPDATE cm_customer_hot_proj SET ({columns}) = (SELECT {exprs} FROM c), updated_at = now()
             WHERE customer_id = $1
         )
         SELECT {COLUMNS} FROM c"
    )
});

/// Binds `$2..=$15` in the order of INSERT and UPDATE.
fn bind_draft<'q>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, CustomerRow, sqlx::postgres::PgArguments>,
    draft: &'q CustomerDraft,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, CustomerRow, sqlx::postgres::PgArguments> {
    query
        .bind(&draft.name)
        .bind(draft.segment.as_str())
        .bind(draft.is_chain)
        .bind(draft.parent_account_id)
        .bind(&draft.territory)
        .bind(&draft.address.street)
        .bind(&draft.address.postal_code)
        .bind(&draft.address.city)
        .bind(&draft.address.country)
        .bind(&draft.address.region)
        .bind(draft.contactability.as_str())
        .bind(draft.alternate_channel_required)
        .bind(&draft.owner_subject)
        .bind(draft.coverage_policy.as_str())
}

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    draft: &CustomerDraft,
) -> Result<CustomerRow, sqlx::Error> {
    bind_draft(sqlx::query_as(sqlx::AssertSqlSafe(INSERT.as_str())).bind(id), draft).fetch_one(conn).await
}

/// Writes `draft` over the (locked) customer `id` and bumps its version.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    draft: &CustomerDraft,
) -> Result<CustomerRow, sqlx::Error> {
    bind_draft(sqlx::query_as(sqlx::AssertSqlSafe(UPDATE.as_str())).bind(id), draft).fetch_one(conn).await
}

/// A location's parent must exist (for the caller) and be a chain.
pub async fn check_parent(conn: &mut PgConnection, parent: Uuid) -> Result<(), Error> {
    let is_chain: Option<bool> = sqlx::query_scalar("SELECT is_chain FROM customer WHERE id = $1")
        .bind(parent)
        .fetch_optional(conn)
        .await?;
    match is_chain {
        Some(true) => Ok(()),
        Some(false) => Err(Error::Unprocessable(vec![FieldError::new(
            "/parentAccountId",
            "this customer is not a chain",
        )])),
        None => Err(Error::Unprocessable(vec![FieldError::new("/parentAccountId", "no such customer")])),
    }
}

pub async fn count_locations(conn: &mut PgConnection, chain: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM customer WHERE parent_account_id = $1")
        .bind(chain)
        .fetch_one(conn)
        .await
}
