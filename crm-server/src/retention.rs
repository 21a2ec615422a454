//! Retention (DSGVO): `crm-server retention run [--dry-run]`.
//!
//! Each policy finds the rows it affects in batches and changes one batch per transaction, so a
//! run never holds locks on many rows at once and rows a user is editing right now are skipped
//! (`SKIP LOCKED`) until the next run. A policy only ever selects rows it has not treated yet, so
//! a second run finds nothing: runs are idempotent and a run cut off half-way is finished by the
//! next one. Every run of a policy is recorded in `retention_run` (parameters, count, up to
//! [`SAMPLE`] affected keys); erasures of personal data also emit events, so consumers holding a
//! copy erase theirs.
//!
//! A customer is inactive since the later of its own last change and its fields' last change.
//! The run connects as the tables' owner, which row-level security does not restrict.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::domain::fields::FieldCatalog;
use crate::outbox::{self, Actor, ActorKind, EventType, NewEvent, Origin, rfc3339};

/// How many affected keys a report lists.
const SAMPLE: usize = 20;

/// The configured policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Policies {
    /// Customers unchanged this long are inactive: their contacts are anonymised and their
    /// personal fields removed.
    pub inactive_after: Duration,
    /// Dynamic fields holding personal notes; cold fields only (a hot one is in the projection).
    pub personal_fields: Vec<String>,
    /// Field history older than this is deleted.
    pub history_after: Duration,
    /// Activities that happened longer ago than this are deleted.
    pub activities_after: Duration,
    /// Outbox events older than this are deleted.
    pub outbox_after: Duration,
    /// Rows per batch (and per transaction).
    pub batch_size: i64,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            inactive_after: Duration::days(730),
            personal_fields: vec!["menu_notes".into()],
            history_after: Duration::days(5 * 365),
            activities_after: Duration::days(5 * 365),
            outbox_after: Duration::days(90),
            batch_size: 500,
        }
    }
}

impl Policies {
    /// Refuses personal fields the catalog does not have, or that are hot.
    pub fn check(&self, catalog: &FieldCatalog) -> Result<(), String> {
        for key in &self.personal_fields {
            match catalog.get(key) {
                None => return Err(format!("personal field `{key}` is not in the field catalog")),
                Some(field) if field.hot => {
                    return Err(format!(
                        "personal field `{key}` is hot (mirrored in the projection); only cold fields can be removed"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    pub policy: &'static str,
    pub dry_run: bool,
    /// Rows changed, or in a dry run the rows that would be.
    pub affected: u64,
    /// Up to 20 affected keys (contact ids, `customer/field`, history ids, event seqs).
    pub sample: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    AnonymiseContacts,
    RemovePersonalFields,
    DeleteOldHistory,
    DeleteOldActivities,
    DeleteOldEvents,
}

impl Policy {
    const ALL: [Policy; 5] = [
        Policy::AnonymiseContacts,
        Policy::RemovePersonalFields,
        Policy::DeleteOldHistory,
        Policy::DeleteOldActivities,
        Policy::DeleteOldEvents,
    ];

    fn name(self) -> &'static str {
        match self {
            Policy::AnonymiseContacts => "anonymise-contacts-of-inactive-customers",
            Policy::RemovePersonalFields => "remove-personal-fields-of-inactive-customers",
            Policy::DeleteOldHistory => "delete-old-field-history",
            Policy::DeleteOldActivities => "delete-old-activities",
            Policy::DeleteOldEvents => "delete-old-outbox-events",
        }
    }

    fn cutoff(self, p: &Policies, now: OffsetDateTime) -> OffsetDateTime {
        now - match self {
            Policy::AnonymiseContacts | Policy::RemovePersonalFields => p.inactive_after,
            Policy::DeleteOldHistory => p.history_after,
            Policy::DeleteOldActivities => p.activities_after,
            Policy::DeleteOldEvents => p.outbox_after,
        }
    }

    fn parameters(self, p: &Policies, cutoff: OffsetDateTime) -> Value {
        match self {
            Policy::RemovePersonalFields => json!({"before": cutoff, "fields": p.personal_fields}),
            _ => json!({"before": cutoff}),
        }
    }

    /// The keys of the rows still to treat, oldest first: `$1` is the cutoff, `$2` the personal
    /// fields (for that policy only).
    fn select(self) -> &'static str {
        match self {
            Policy::AnonymiseContacts => {
                "SELECT p.id::text FROM contact p
                  WHERE p.anonymised_at IS NULL AND p.updated_at < $1
                    AND EXISTS (SELECT 1 FROM contact_roles r WHERE r.contact_id = p.id)
                    AND NOT EXISTS (SELECT 1 FROM contact_roles r
                                      JOIN customer c ON c.id = r.account_id
                                      JOIN cm_customer_hot_proj h ON h.customer_id = c.id
                                     WHERE r.contact_id = p.id
                                       AND greatest(c.updated_at, h.fields_changed_at) >= $1)
                  ORDER BY p.id"
            }
            Policy::RemovePersonalFields => {
                "SELECT h.customer_id::text FROM cm_customer_hot_proj h JOIN customer c ON c.id = h.customer_id
                  WHERE greatest(c.updated_at, h.fields_changed_at) < $1
                    AND EXISTS (SELECT 1 FROM field_values v WHERE v.customer_id = h.customer_id AND v.field_key = ANY($2))
                  ORDER BY h.customer_id"
            }
            Policy::DeleteOldHistory => {
                "SELECT id::text FROM field_value_history
                  WHERE changed_at < $1
                  ORDER BY changed_at, id"
            }
            Policy::DeleteOldActivities => {
                "SELECT id::text FROM activity WHERE occurred_at < $1 ORDER BY occurred_at, id"
            }
            Policy::DeleteOldEvents => {
                // Only what every consumer has passed: unpublished events and events a consumer
                // still has to handle stay, whatever their age.
                "SELECT e.seq::text FROM event_outbox e JOIN outbox_log l ON l.seq = e.seq
                  WHERE e.occurred_at < $1
                    AND l.position <= (SELECT coalesce(min(position), 0) FROM consumer_checkpoint)
                  ORDER BY e.occurred_at, e.seq"
            }
        }
    }

    /// Locks a batch's rows; rows locked by someone else (a user editing them) are left for the
    /// next run.
    fn lock(self) -> &'static str {
        match self {
            Policy::AnonymiseContacts => "FOR UPDATE OF p SKIP LOCKED",
            Policy::RemovePersonalFields => "FOR UPDATE OF h SKIP LOCKED",
            Policy::DeleteOldHistory | Policy::DeleteOldActivities => "FOR UPDATE SKIP LOCKED",
            Policy::DeleteOldEvents => "FOR UPDATE OF e SKIP LOCKED",
        }
    }

    /// Treats the selected `keys` in the batch's transaction.
    async fn change(
        self,
        tx: &mut Transaction<'_, Postgres>,
        keys: &[String],
        p: &Policies,
    ) -> anyhow::Result<()> {
        match self {
            Policy::AnonymiseContacts => {
                let anonymised: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(
                    "UPDATE contact SET first_name = 'Anonymisiert', last_name = 'Anonymisiert', email = NULL,
                            phone = NULL, anonymised_at = now(), version = version + 1, updated_at = now()
                      WHERE id = ANY($1::text[]::uuid[])
                     RETURNING id, anonymised_at",
                )
                .bind(keys)
                .fetch_all(&mut **tx)
                .await?;
                for (id, at) in anonymised {
                    let data = json!({"contactId": id, "policy": self.name(), "anonymisedAt": rfc3339(at)});
                    emit(tx, EventType::ContactAnonymised, id, None, data).await?;
                }
            }
            Policy::RemovePersonalFields => {
                // Values and their history go; the fields' version moves (their ETag changes) but
                // not their change time, which would make the customer look active again.
                let removed: Vec<(Uuid, Vec<String>, i64, String)> = sqlx::query_as(
                    "WITH gone AS (
                        DELETE FROM field_values WHERE customer_id = ANY($1::text[]::uuid[]) AND field_key = ANY($2)
                        RETURNING customer_id, field_key
                     ), history AS (
                        DELETE FROM field_value_history h USING gone
                         WHERE h.customer_id = gone.customer_id AND h.field_key = gone.field_key
                     ), keys AS (
                        SELECT customer_id, array_agg(field_key ORDER BY field_key) AS fields FROM gone GROUP BY customer_id
                     )
                     UPDATE cm_customer_hot_proj p SET fields_version = fields_version + 1, updated_at = now()
                       FROM keys WHERE p.customer_id = keys.customer_id
                     RETURNING p.customer_id, keys.fields, p.fields_version, p.territory",
                )
                .bind(keys)
                .bind(&p.personal_fields)
                .fetch_all(&mut **tx)
                .await?;
                for (customer, fields, version, territory) in removed {
                    let data = json!({"customerId": customer, "policy": self.name(), "fields": fields,
                                      "fieldsVersion": version});
                    emit(tx, EventType::CustomerPersonalDataRemoved, customer, Some(territory), data).await?;
                }
            }
            Policy::DeleteOldHistory => {
                sqlx::query("DELETE FROM field_value_history WHERE id = ANY($1::text[]::bigint[])")
                    .bind(keys)
                    .execute(&mut **tx)
                    .await?;
            }
            Policy::DeleteOldActivities => {
                sqlx::query("DELETE FROM activity WHERE id = ANY($1::text[]::uuid[])")
                    .bind(keys)
                    .execute(&mut **tx)
                    .await?;
            }
            Policy::DeleteOldEvents => {
                // The log's rows go with their events: every consumer has passed them.
                sqlx::query(
                    "WITH from_log AS (DELETE FROM outbox_log WHERE seq = ANY($1::text[]::bigint[]))
                     DELETE FROM event_outbox WHERE seq = ANY($1::text[]::bigint[])",
                )
                .bind(keys)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }
}

async fn emit(
    tx: &mut Transaction<'_, Postgres>,
    event_type: EventType,
    subject: Uuid,
    territory: Option<String>,
    data: Value,
) -> anyhow::Result<()> {
    let origin =
        Origin { actor: Actor { kind: ActorKind::System, id: "retention".into() }, correlation_id: None };
    let customer = (event_type == EventType::CustomerPersonalDataRemoved).then_some(subject);
    let event = NewEvent { event_type, subject: subject.to_string(), territory, customer, data };
    outbox::enqueue(tx, &origin, event).await?;
    Ok(())
}

/// Applies every policy as of `now`; with `dry_run`, only counts and lists what it would do.
pub async fn run(
    pool: &PgPool,
    policies: &Policies,
    dry_run: bool,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<PolicyReport>> {
    let mut reports = Vec::new();
    for policy in Policy::ALL {
        reports.push(apply(pool, policy, policies, dry_run, now).await?);
    }
    Ok(reports)
}

/// The keys `sql` selects for `policy` (its selection wrapped by the caller).
async fn keys(
    conn: &mut PgConnection,
    policy: Policy,
    sql: String,
    cutoff: OffsetDateTime,
    p: &Policies,
) -> sqlx::Result<Vec<String>> {
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(cutoff);
    if policy == Policy::RemovePersonalFields {
        query = query.bind(&p.personal_fields);
    }
    query.fetch_all(conn).await
}

async fn apply(
    pool: &PgPool,
    policy: Policy,
    p: &Policies,
    dry_run: bool,
    started: OffsetDateTime,
) -> anyhow::Result<PolicyReport> {
    let cutoff = policy.cutoff(p, started);
    let (mut affected, mut sample) = (0u64, Vec::new());
    if dry_run {
        // Counted and listed without locking anything.
        let mut conn = pool.acquire().await?;
        let count = format!("SELECT count(*)::text FROM ({}) affected", policy.select());
        affected = keys(&mut conn, policy, count, cutoff, p)
            .await?
            .first()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        sample = keys(&mut conn, policy, format!("{} LIMIT {SAMPLE}", policy.select()), cutoff, p).await?;
    } else {
        loop {
            let mut tx = pool.begin().await?;
            let batch = format!("{} LIMIT {} {}", policy.select(), p.batch_size, policy.lock());
            let keys = keys(&mut tx, policy, batch, cutoff, p).await?;
            if keys.is_empty() {
                break;
            }
            policy.change(&mut tx, &keys, p).await?;
            tx.commit().await?;
            affected += keys.len() as u64;
            let room = SAMPLE.saturating_sub(sample.len());
            sample.extend(keys.into_iter().take(room));
        }
    }
    sqlx::query(
        "INSERT INTO retention_run (policy, dry_run, started_at, affected, details) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(policy.name())
    .bind(dry_run)
    .bind(started)
    .bind(affected as i64)
    .bind(json!({"parameters": policy.parameters(p, cutoff), "sample": sample}))
    .execute(pool)
    .await?;
    tracing::info!(policy = policy.name(), dry_run, affected, "retention policy applied");
    Ok(PolicyReport { policy: policy.name(), dry_run, affected, sample })
}
