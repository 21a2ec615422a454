//! The transactional outbox, write side.
//!
//! A domain change and its event commit or roll back together because the only way to write an
//! event is [`enqueue`], which takes the caller's open transaction. The relay (a later stage)
//! publishes from the table; the table, not NOTIFY, is the source of truth.
//!
//! Each event type has a JSON Schema under `crm-server/schemas/events/<type>.v<version>.json`;
//! `enqueue` validates the data against it, so a malformed event never reaches a consumer (the
//! write fails with a 500 instead, which a test then catches). Schemas evolve additively only.

pub mod consumer;
mod event_type;
pub mod listen;
pub mod relay;

use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

pub use event_type::{EventType, SCHEMA_BASE_URI};

use crate::error::Error;

/// An instant as events (and cursors) write it: RFC 3339. Formatting cannot fail for the instants
/// PostgreSQL stores.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// CloudEvents `source` of every event this server writes.
pub const SOURCE: &str = "crm.customer-management";

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A person, identified by the token's subject.
    User,
    /// Another program calling the API.
    Service,
    /// This server itself (automations, retention).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Service => "service",
            ActorKind::System => "system",
        }
    }
}

/// The request context an event carries: who, and under which correlation id.
#[derive(Debug, Clone)]
pub struct Origin {
    pub actor: Actor,
    pub correlation_id: Option<String>,
}

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: EventType,
    /// The id of the aggregate (sample, customer, ...) the event is about; the CloudEvents subject.
    pub subject: String,
    /// The sales territory the event belongs to, if any.
    pub territory: Option<String>,
    /// The customer the event is about, if any: the feeds show it to whoever can read that
    /// customer.
    pub customer: Option<Uuid>,
    pub data: Value,
}

/// What the database assigned to a written event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub seq: i64,
    pub id: Uuid,
    pub time: OffsetDateTime,
}

/// Writes `event` in the caller's transaction. It becomes visible when, and only if, the caller
/// commits.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    origin: &Origin,
    event: NewEvent,
) -> Result<Enqueued, Error> {
    event.event_type.validate(&event.data).map_err(|problems| {
        anyhow::anyhow!(
            "the data of a {} event does not match its schema: {}",
            event.event_type,
            problems.join("; ")
        )
    })?;
    let enqueued = insert(tx, origin, &event, SOURCE, None).await?;
    Ok(enqueued.ok_or_else(|| anyhow::anyhow!("an own event was taken for a duplicate"))?)
}

/// An event from another system (`POST /events/inbound`), kept with its own CloudEvents source
/// and id: `Ok(None)` when that one was accepted before. Data that breaks the type's schema is a
/// 422 naming it.
pub async fn enqueue_inbound(
    tx: &mut Transaction<'_, Postgres>,
    origin: &Origin,
    source: &str,
    inbound_id: &str,
    event: NewEvent,
) -> Result<Option<Enqueued>, Error> {
    event.event_type.validate(&event.data).map_err(|problems| {
        Error::Unprocessable(
            problems.into_iter().map(|p| crate::error::FieldError::new("/data", p)).collect(),
        )
    })?;
    insert(tx, origin, &event, source, Some(format!("{source} {inbound_id}"))).await
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    origin: &Origin,
    event: &NewEvent,
    source: &str,
    inbound_id: Option<String>,
) -> Result<Option<Enqueued>, Error> {
    let id = Uuid::now_v7();
    let row: Option<(i64, OffsetDateTime)> = sqlx::query_as(
        "INSERT INTO event_outbox
             (id, event_type, type_version, source, aggregate_type, aggregate_id, correlation_id, actor_type, actor_id, data,
              territory, customer_id, inbound_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (inbound_id) WHERE inbound_id IS NOT NULL DO NOTHING
         RETURNING seq, occurred_at",
    )
    .bind(id)
    .bind(event.event_type.name())
    .bind(event.event_type.version() as i32)
    .bind(source)
    .bind(event.event_type.aggregate_type())
    .bind(&event.subject)
    .bind(origin.correlation_id.as_deref())
    .bind(origin.actor.kind.as_str())
    .bind(&origin.actor.id)
    .bind(&event.data)
    .bind(&event.territory)
    .bind(event.customer)
    .bind(inbound_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(seq, time)| Enqueued { seq, id, time }))
}

/// A row of `event_outbox`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: Uuid,
    pub event_type: String,
    pub type_version: i32,
    pub source: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub occurred_at: OffsetDateTime,
    pub correlation_id: Option<String>,
    pub actor_type: String,
    pub actor_id: String,
    pub data: Value,
    pub territory: Option<String>,
    /// The event's place in the published log; `None` until the relay has published it.
    pub position: Option<i64>,
}

/// The columns of [`StoredEvent`].
const COLUMNS: &str = "e.seq, e.id, e.event_type, e.type_version, e.source, e.aggregate_type, e.aggregate_id, \
    e.occurred_at, e.correlation_id, e.actor_type, e.actor_id, e.data, e.territory, l.position";

impl StoredEvent {
    /// The CloudEvents 1.0 JSON form. The seeds' `correlationId` and `actor` travel as the
    /// extension attributes `correlationid`, `actortype` and `actorid`, the territory as
    /// `territory` (extension names must be
    /// lower-case alphanumerics, and their values scalars). `sequence` (the sequence extension)
    /// is the outbox seq, zero-padded so that it also orders as a string.
    pub fn to_cloudevent(&self) -> Value {
        let mut event = json!({
            "specversion": "1.0",
            "id": self.id.to_string(),
            "source": self.source,
            "type": self.event_type,
            "subject": self.aggregate_id,
            "time": rfc3339(self.occurred_at),
            "datacontenttype": "application/json",
            "dataschema": format!("{SCHEMA_BASE_URI}{}.v{}.json", self.event_type, self.type_version),
            "sequence": format!("{:019}", self.seq),
            "aggregatetype": self.aggregate_type,
            "actortype": self.actor_type,
            "actorid": self.actor_id,
            "data": self.data,
        });
        if let Some(correlation_id) = &self.correlation_id {
            event["correlationid"] = json!(correlation_id);
        }
        if let Some(territory) = &self.territory {
            event["territory"] = json!(territory);
        }
        if let Some(position) = self.position {
            event["position"] = json!(position);
        }
        event
    }
}

/// Events with `seq > after`, in seq order.
pub async fn events_after(
    conn: &mut sqlx::PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM event_outbox e LEFT JOIN outbox_log l ON l.seq = e.seq
          WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Published events with `position > after`, in position order; only those of `types` when
/// given. Under a caller's scope, the events of customers the caller can read.
///
/// The plan is fixed by the statement's form, not left to the planner's view of the tables: the
/// log in position order from its primary key, and each event found by its seq, until `limit`
/// are found. The statement is prepared once per connection, and PostgreSQL may keep a generic
/// plan made while the outbox was nearly empty (where a scan and a hash join are cheapest) until
/// an ANALYZE invalidates it; as a join, that plan read the whole outbox for every page, so a
/// consumer got slower the further it fell behind (the bench's consumer lag; the test
/// `a_page_of_the_log_reads_that_page_only`). (`LIMIT 1` keeps the lookup a subquery of its
/// own, run per log row, which the planner cannot turn back into a join.)
pub async fn published_after(
    conn: &mut sqlx::PgConnection,
    after: i64,
    types: &[String],
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox_log l
           CROSS JOIN LATERAL (SELECT * FROM event_outbox e
                                WHERE e.seq = l.seq AND (cardinality($2::text[]) = 0 OR e.event_type = ANY($2))
                                LIMIT 1) e
          WHERE l.position > $1
          ORDER BY l.position LIMIT $3"
    )))
    .bind(after)
    .bind(types)
    .bind(limit)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> StoredEvent {
        StoredEvent {
            seq: 42,
            id: Uuid::nil(),
            event_type: "sample.status.changed".into(),
            type_version: 1,
            source: SOURCE.into(),
            aggregate_type: "sample".into(),
            aggregate_id: "s-1".into(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            correlation_id: None,
            actor_type: "user".into(),
            actor_id: "u_42".into(),
            data: json!({"a": 1}),
            territory: None,
            position: None,
        }
    }

    #[test]
    fn the_cloudevent_carries_the_schema_of_its_version() {
        let event = stored().to_cloudevent();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["dataschema"], "https://freshplan.io/schemas/events/sample.status.changed.v1.json");
        assert_eq!(event["time"], "1970-01-01T00:00:00Z");
        assert_eq!(event["subject"], "s-1");
        assert_eq!(event["data"], json!({"a": 1}));
    }

    #[test]
    fn sequence_values_order_as_strings() {
        let mut a = stored();
        let mut b = stored();
        a.seq = 9;
        b.seq = 10;
        assert!(a.to_cloudevent()["sequence"].as_str() < b.to_cloudevent()["sequence"].as_str());
    }

    #[test]
    fn the_correlation_id_is_an_extension_only_when_known() {
        assert!(stored().to_cloudevent().get("correlationid").is_none());
        let mut with = stored();
        with.correlation_id = Some("c-1".into());
        assert_eq!(with.to_cloudevent()["correlationid"], "c-1");
    }
}
