//! The outbox's write side: an event commits or rolls back with the change that caused it, and
//! never reaches the table unless it matches its schema. (Every test's outbox is also checked
//! against the CloudEvents schema when its TestDb is dropped.)

use crm_server::outbox::{self, Actor, ActorKind, EventType, NewEvent, Origin};
use crm_server::testing::TestDb;
use serde_json::json;

fn origin() -> Origin {
    Origin {
        actor: Actor { kind: ActorKind::User, id: "u_42".into() },
        correlation_id: Some("corr-1".into()),
    }
}

fn status_changed(sample: &str) -> NewEvent {
    NewEvent {
        event_type: EventType::SampleStatusChanged,
        subject: sample.into(),
        territory: Some("BY".into()),
        customer: None,
        data: json!({
            "sampleId": sample,
            "customerId": "6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60",
            "oldStatus": "DELIVERED",
            "newStatus": "FEEDBACK_SUCCESS",
            "eventAt": "2026-10-02T09:30:00+02:00"
        }),
    }
}

const SAMPLE: &str = "0b7e6c1a-8d2f-4a3b-9c4d-5e6f7a8b9c0d";

async fn all_events(db: &TestDb) -> Vec<outbox::StoredEvent> {
    let mut conn = db.pool.acquire().await.unwrap();
    outbox::events_after(&mut conn, 0, 1000).await.unwrap()
}

#[tokio::test]
async fn an_event_commits_with_its_transaction() {
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    let written = outbox::enqueue(&mut tx, &origin(), status_changed(SAMPLE)).await.unwrap();
    // Not visible to anyone else before the commit.
    assert!(all_events(&db).await.is_empty());
    tx.commit().await.unwrap();

    let events = all_events(&db).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!((event.seq, event.id), (written.seq, written.id));
    assert_eq!(event.event_type, "sample.status.changed");
    assert_eq!((event.aggregate_type.as_str(), event.aggregate_id.as_str()), ("sample", SAMPLE));
    assert_eq!((event.actor_type.as_str(), event.actor_id.as_str()), ("user", "u_42"));
    assert_eq!(event.correlation_id.as_deref(), Some("corr-1"));

    let cloudevent = event.to_cloudevent();
    assert_eq!(cloudevent["source"], outbox::SOURCE);
    assert_eq!(cloudevent["subject"], SAMPLE);
    assert_eq!(cloudevent["correlationid"], "corr-1");
    assert_eq!(cloudevent["data"]["newStatus"], "FEEDBACK_SUCCESS");
}

#[tokio::test]
async fn an_event_rolls_back_with_its_transaction() {
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, &origin(), status_changed(SAMPLE)).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(all_events(&db).await.is_empty());
}

#[tokio::test]
async fn events_of_one_transaction_keep_their_order() {
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    let mut seqs = Vec::new();
    for _ in 0..3 {
        seqs.push(outbox::enqueue(&mut tx, &origin(), status_changed(SAMPLE)).await.unwrap().seq);
    }
    tx.commit().await.unwrap();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let stored: Vec<i64> = all_events(&db).await.iter().map(|e| e.seq).collect();
    assert_eq!(stored, seqs);
}

#[tokio::test]
async fn data_that_breaks_its_schema_is_refused_and_nothing_is_written() {
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    let mut event = status_changed(SAMPLE);
    event.data["newStatus"] = json!("EATEN");
    let err = outbox::enqueue(&mut tx, &origin(), event).await.unwrap_err();
    assert_eq!(err.status_code(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(format!("{err:#}").contains("/newStatus"), "{err:#}");
    tx.commit().await.unwrap();
    assert!(all_events(&db).await.is_empty());
}

#[tokio::test]
async fn each_seed_event_type_can_be_written() {
    let db = TestDb::new().await;
    let customer = "6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60";
    let system =
        Origin { actor: Actor { kind: ActorKind::System, id: "automation".into() }, correlation_id: None };
    let events = [
        NewEvent {
            event_type: EventType::SampleRequested,
            subject: SAMPLE.into(),
            territory: None,
            customer: None,
            data: json!({"sampleId": SAMPLE, "customerId": customer, "items": [{"sku": "CF-100", "quantity": 2}],
                         "deliveryDate": "2026-12-01"}),
        },
        status_changed(SAMPLE),
        NewEvent {
            event_type: EventType::ActivityCreated,
            subject: "1a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d".into(),
            territory: None,
            customer: None,
            data: json!({"activityId": "1a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d", "customerId": customer,
                         "kind": "ROI_CONSULTATION", "occurredAt": "2026-11-23T10:00:00Z", "outcome": "QUALIFIED"}),
        },
        NewEvent {
            event_type: EventType::CustomerContactabilityChanged,
            subject: customer.into(),
            territory: Some("NRW".into()),
            customer: None,
            data: json!({"customerId": customer, "status": "HARD_BOUNCE", "previousStatus": "CONTACTABLE",
                         "alternateChannelRequired": true}),
        },
    ];
    let mut tx = db.pool.begin().await.unwrap();
    for event in events {
        outbox::enqueue(&mut tx, &system, event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let stored = all_events(&db).await;
    assert_eq!(stored.len(), 4);
    assert_eq!(crm_server::testing::events::check(&stored), Vec::<String>::new());
    assert!(stored.iter().all(|e| e.correlation_id.is_none() && e.actor_type == "system"));
}

#[tokio::test]
async fn the_table_refuses_rows_that_bypass_the_envelope_rules() {
    let db = TestDb::new().await;
    let result = sqlx::query(
        "INSERT INTO event_outbox (id, event_type, type_version, source, aggregate_type, aggregate_id, actor_type, actor_id, data)
         VALUES (gen_random_uuid(), 'Not A Type', 1, 'crm', 'sample', 's', 'robot', 'x', '{}')",
    )
    .execute(&db.pool)
    .await;
    assert!(result.unwrap_err().to_string().contains("check constraint"));
}
