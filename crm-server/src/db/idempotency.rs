//! Stored outcomes of requests made with an `Idempotency-Key` (see the migration
//! `20261126000001_idempotency.sql` for the design). Every function runs in the request's own
//! transaction, under the caller's scope.

use serde_json::Value;
use sqlx::PgConnection;
use time::Duration;

/// Which request a key belongs to: the caller, the method and path, and the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef<'a> {
    pub owner: &'a str,
    pub request: &'a str,
    pub key: &'a str,
}

/// A stored outcome.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Stored {
    pub fingerprint: Vec<u8>,
    /// [`crate::db::scope::Scope::fingerprint`] of the caller that made the outcome; `None` on
    /// rows from binaries before it was kept.
    pub scope_fingerprint: Option<Vec<u8>>,
    pub status: i16,
    /// `[[name, value], ...]`
    pub headers: Value,
    pub body: Vec<u8>,
}

/// Takes the key's lock for the rest of the transaction, without waiting: `false` when another
/// transaction (the same request, still in flight) holds it.
pub async fn try_lock(conn: &mut PgConnection, key: &KeyRef<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtextextended($1 || ' ' || $2 || ' ' || $3, 7001))",
    )
    .bind(key.owner)
    .bind(key.request)
    .bind(key.key)
    .fetch_one(conn)
    .await
}

/// The outcome stored for the key, unless it has expired.
pub async fn find(conn: &mut PgConnection, key: &KeyRef<'_>) -> sqlx::Result<Option<Stored>> {
    sqlx::query_as(
        "SELECT fingerprint, scope_fingerprint, status, headers, body FROM idempotency_key
          WHERE owner_subject = $1 AND request = $2 AND key = $3 AND expires_at > now()",
    )
    .bind(key.owner)
    .bind(key.request)
    .bind(key.key)
    .fetch_optional(conn)
    .await
}

/// Stores the outcome for `ttl`, replacing an expired one of the same key.
pub async fn store(
    conn: &mut PgConnection,
    key: &KeyRef<'_>,
    outcome: &Stored,
    ttl: Duration,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM idempotency_key WHERE owner_subject = $1 AND request = $2 AND key = $3")
        .bind(key.owner)
        .bind(key.request)
        .bind(key.key)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO idempotency_key
                (owner_subject, request, key, fingerprint, scope_fingerprint, status, headers, body, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9)",
    )
    .bind(key.owner)
    .bind(key.request)
    .bind(key.key)
    .bind(&outcome.fingerprint)
    .bind(&outcome.scope_fingerprint)
    .bind(outcome.status)
    .bind(&outcome.headers)
    .bind(&outcome.body)
    .bind(ttl)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes up to `batch` expired keys; the number deleted.
pub async fn purge_expired(conn: &mut PgConnection, batch: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM idempotency_key WHERE ctid = ANY (ARRAY(
             SELECT ctid FROM idempotency_key WHERE expires_at <= now() ORDER BY expires_at LIMIT $1))",
    )
    .bind(batch)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
