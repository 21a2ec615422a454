//! Contacts and their roles at accounts (`contact_roles`).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::customer::{AccountRoles, Contact, ContactDraft, ContactInput, ContactRole};
use crate::error::Error;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// `account_id:ROLE` pairs, aggregated by the query.
    pub roles: Vec<String>,
}

impl ContactRow {
    pub fn draft(&self) -> ContactDraft {
        ContactDraft {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
        }
    }

    pub fn to_api(&self) -> Result<Contact, Error> {
        let mut accounts: Vec<AccountRoles> = Vec::new();
        for pair in &self.roles {
            let parsed = pair
                .split_once(':')
                .and_then(|(account, role)| Some((account.parse::<Uuid>().ok()?, ContactRole::parse(role)?)));
            let (account_id, role) =
                parsed.ok_or_else(|| anyhow::anyhow!("contact {} has a bad role `{pair}`", self.id))?;
            match accounts.iter_mut().find(|a| a.account_id == account_id) {
                Some(account) => account.roles.push(role),
                None => accounts.push(AccountRoles { account_id, roles: vec![role] }),
            }
        }
        for account in &mut accounts {
            account.roles.sort();
        }
        Ok(Contact {
            id: self.id,
            attributes: self.draft(),
            accounts,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl From<ContactDraft> for ContactInput {
    fn from(draft: ContactDraft) -> Self {
        draft.to_input()
    }
}

/// Contacts with their roles; `scope` restricts the roles listed (and the contacts) to one account.
fn select(filter: &str) -> String {
    format!(
        "SELECT p.id, p.first_name, p.last_name, p.email, p.phone, p.version, p.created_at, p.updated_at,
                coalesce(array_agg(r.account_id::text || ':' || r.role ORDER BY r.account_id, r.role)
                         FILTER (WHERE r.role IS NOT NULL), '{{}}') AS roles
           FROM contact p LEFT JOIN contact_roles r ON r.contact_id = p.id
          WHERE {filter}
          GROUP BY p.id"
    )
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(select("p.id = $1"))).bind(id).fetch_optional(conn).await
}

/// The contacts of an account, each with its roles at that account only.
pub async fn of_account(conn: &mut PgConnection, account: Uuid) -> Result<Vec<ContactRow>, sqlx::Error> {
    let sql = format!(
        "{} ORDER BY p.last_name, p.first_name, p.id",
        select("r.account_id = $1").replace("LEFT JOIN contact_roles r", "JOIN contact_roles r")
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(account).fetch_all(conn).await
}

pub async fn insert(conn: &mut PgConnection, id: Uuid, draft: &ContactDraft) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO contact (id, first_name, last_name, email, phone) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(&draft.first_name)
        .bind(&draft.last_name)
        .bind(&draft.email)
        .bind(&draft.phone)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM contact WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn update(conn: &mut PgConnection, id: Uuid, draft: &ContactDraft) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE contact SET first_name = $2, last_name = $3, email = $4, phone = $5, version = version + 1,
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(&draft.first_name)
    .bind(&draft.last_name)
    .bind(&draft.email)
    .bind(&draft.phone)
    .execute(conn)
    .await
    .map(drop)
}

/// Replaces the contact's roles at `account` with `roles` (none: unlinks it) and returns the
/// previous roles. Bumps the contact's version: its representation lists its roles.
pub async fn set_roles(
    conn: &mut PgConnection,
    contact: Uuid,
    account: Uuid,
    roles: &[ContactRole],
) -> Result<Vec<ContactRole>, Error> {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    // Two statements: sub-statements of one WITH run in no defined order, and the insert may
    // re-add a (contact, account, role) the delete removes.
    let previous: Vec<String> = sqlx::query_scalar(
        "DELETE FROM contact_roles WHERE contact_id = $1 AND account_id = $2 RETURNING role",
    )
    .bind(contact)
    .bind(account)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "WITH added AS (
            INSERT INTO contact_roles (contact_id, account_id, role) SELECT $1, $2, unnest($3::text[])
         )
         UPDATE contact SET version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(contact)
    .bind(account)
    .bind(&names)
    .execute(conn)
    .await?;
    let mut previous: Vec<ContactRole> = previous.iter().filter_map(|r| ContactRole::parse(r)).collect();
    previous.sort();
    Ok(previous)
}
