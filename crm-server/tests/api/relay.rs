//! The relay and its readers: publishing in an order no reader can skip, replay under the
//! caller's scope, inbound events and the automations (once per event), dead letters and
//! re-drive, retention that waits for the consumers, and the outbox metrics. The live stream has
//! its own file.

use axum::http::{Method, StatusCode};
use crm_server::auth::UserRole;
use crm_server::outbox::consumer::{self, ConsumerOptions, Handler, Step};
use crm_server::outbox::{self, Actor, ActorKind, EventType, NewEvent, Origin, StoredEvent, relay};
use crm_server::testing::TestApp;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::customers::{create, loewen};

pub fn origin() -> Origin {
    Origin { actor: Actor { kind: ActorKind::System, id: "test".into() }, correlation_id: None }
}

pub fn bounce(customer: Uuid) -> NewEvent {
    NewEvent {
        event_type: EventType::CustomerContactabilityChanged,
        subject: customer.to_string(),
        territory: Some("BY".into()),
        customer: Some(customer),
        data: json!({"customerId": customer, "status": "SOFT_BOUNCE"}),
    }
}

pub async fn customer(app: &TestApp) -> Uuid {
    create(app, loewen()).await["id"].as_str().unwrap().parse().unwrap()
}

async fn positions(app: &TestApp) -> Vec<(i64, Option<i64>)> {
    sqlx::query_as(
        "SELECT e.seq, l.position FROM event_outbox e LEFT JOIN outbox_log l ON l.seq = e.seq ORDER BY e.seq",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

/// A transaction that took its seq first but commits last is published after the others, not
/// skipped: readers follow positions, which are only given to committed events.
#[tokio::test]
async fn a_late_commit_with_a_lower_seq_is_published_later_and_never_skipped() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    relay::publish_batch(&app.state.db, 100).await.unwrap();
    let mut late = app.db.pool.begin().await.unwrap();
    let late_event = outbox::enqueue(&mut late, &origin(), bounce(id)).await.unwrap();
    let mut early = app.db.pool.begin().await.unwrap();
    let early_event = outbox::enqueue(&mut early, &origin(), bounce(id)).await.unwrap();
    early.commit().await.unwrap();
    assert!(late_event.seq < early_event.seq);

    let published = relay::publish_batch(&app.state.db, 100).await.unwrap();
    assert_eq!(published.count, 1, "the open transaction's event is not visible yet");
    late.commit().await.unwrap();
    let published = relay::publish_batch(&app.state.db, 100).await.unwrap();
    assert_eq!(published.count, 1);
    let all = positions(&app).await;
    let position_of = |seq: i64| all.iter().find(|(s, _)| *s == seq).unwrap().1.unwrap();
    assert!(position_of(late_event.seq) > position_of(early_event.seq));
    let mut dense: Vec<i64> = all.iter().filter_map(|(_, p)| *p).collect();
    dense.sort();
    assert_eq!(dense, (1..=dense.len() as i64).collect::<Vec<_>>(), "positions are dense");

    // A rolled-back event is never published.
    let mut rolled = app.db.pool.begin().await.unwrap();
    outbox::enqueue(&mut rolled, &origin(), bounce(id)).await.unwrap();
    rolled.rollback().await.unwrap();
    assert_eq!(relay::publish_batch(&app.state.db, 100).await.unwrap().count, 0);
}

/// The queue is unlogged: a crash empties it. The relay sees its seq-0 row gone and queues every
/// event the log lacks again; each is published once, after what was published before.
#[tokio::test]
async fn a_lost_queue_is_rebuilt_from_the_outbox_and_nothing_is_published_twice() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    relay::publish_batch(&app.state.db, 1000).await.unwrap();
    let mut tx = app.db.pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, &origin(), bounce(id)).await.unwrap();
    tx.commit().await.unwrap();
    // What a crash leaves: an empty queue, sign included.
    sqlx::query("TRUNCATE outbox_pending").execute(&app.db.pool).await.unwrap();
    let mut tx = app.db.pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, &origin(), bounce(id)).await.unwrap();
    tx.commit().await.unwrap();

    let published = relay::publish_batch(&app.state.db, 1000).await.unwrap();
    assert_eq!(published.count, 2, "the event queued before the loss and the one after");
    let all = positions(&app).await;
    assert!(all.iter().all(|(_, p)| p.is_some()), "every event is published: {all:?}");
    let mut dense: Vec<i64> = all.iter().filter_map(|(_, p)| *p).collect();
    dense.sort();
    assert_eq!(dense, (1..=all.len() as i64).collect::<Vec<_>>(), "once each");
    let sign: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM outbox_pending").fetch_all(&app.db.pool).await.unwrap();
    assert_eq!(sign, [0], "the queue is intact again");
    assert_eq!(relay::publish_batch(&app.state.db, 1000).await.unwrap().count, 0);
}

/// The log replaced a column (20261202000001): events published before it keep their
/// positions, events not yet published are queued, and publishing goes on from there.
#[tokio::test]
async fn events_from_before_the_log_keep_their_positions_and_the_rest_are_published_after_them() {
    let db = crm_server::testing::TestDb::migrated_until(20261127000004).await;
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let mut tx = db.pool.begin().await.unwrap();
        seqs.push(outbox::enqueue(&mut tx, &origin(), bounce(Uuid::new_v4())).await.unwrap().seq);
        tx.commit().await.unwrap();
    }
    // The old relay had published the first two.
    sqlx::query("UPDATE event_outbox SET position = seq - $1 + 1, published_at = now() WHERE seq < $2")
        .bind(seqs[0])
        .bind(seqs[2])
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE outbox_relay SET last_position = 2").execute(&db.pool).await.unwrap();

    db.migrate().await;
    let logged: Vec<(i64, i64)> = sqlx::query_as("SELECT position, seq FROM outbox_log ORDER BY position")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(logged, [(1, seqs[0]), (2, seqs[1])]);
    let pending: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM outbox_pending WHERE seq > 0").fetch_all(&db.pool).await.unwrap();
    assert_eq!(pending, [seqs[2]]);

    let published = relay::publish_batch(&db.pool, 100).await.unwrap();
    assert_eq!(published, relay::Published { count: 1, last_position: 3 });
    let mut conn = db.pool.acquire().await.unwrap();
    let events = outbox::published_after(&mut conn, 0, &[], 10).await.unwrap();
    let order: Vec<(i64, Option<i64>)> = events.iter().map(|e| (e.seq, e.position)).collect();
    assert_eq!(order, [(seqs[0], Some(1)), (seqs[1], Some(2)), (seqs[2], Some(3))]);
}

/// A page of the log reads only that page's events, by seq, however the plan was made. The
/// statement is prepared once per connection, and PostgreSQL may keep a generic plan made while
/// the tables were nearly empty (a scan and a hash join are cheapest then) for as long as no
/// ANALYZE invalidates it: a consumer that started on an empty outbox then read the whole outbox
/// for every page, slowest when it was furthest behind.
#[tokio::test]
async fn a_page_of_the_log_reads_that_page_only() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let mut conn = app.state.db.acquire().await.unwrap();
    let as_system = "BEGIN; SELECT set_config('crm.admin', 'on', true)";
    // Plans made on an empty log: more than the five custom plans after which PostgreSQL may
    // switch to a generic one.
    sqlx::raw_sql(as_system).execute(&mut *conn).await.unwrap();
    for _ in 0..10 {
        outbox::published_after(&mut conn, 0, &[], 50).await.unwrap();
        outbox::published_after(&mut conn, 0, &["customer.contactability.changed".to_owned()], 50)
            .await
            .unwrap();
    }
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();

    let mut tx = app.db.pool.begin().await.unwrap();
    for _ in 0..3000 {
        outbox::enqueue(&mut tx, &origin(), bounce(id)).await.unwrap();
    }
    tx.commit().await.unwrap();
    let published = relay::publish_batch(&app.state.db, 10_000).await.unwrap();
    assert!(published.count >= 3000, "{published:?}");

    sqlx::raw_sql(as_system).execute(&mut *conn).await.unwrap();
    let after = published.last_position - 100;
    for types in [vec![], vec!["customer.contactability.changed".to_owned()]] {
        let page = outbox::published_after(&mut conn, after, &types, 50).await.unwrap();
        let positions: Vec<i64> = page.iter().filter_map(|e| e.position).collect();
        assert_eq!(positions, (after + 1..=after + 50).collect::<Vec<_>>());
    }
    // This transaction's own reads of the tables: the rows of the two pages, not more.
    let read: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname::text, seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables
          WHERE relname IN ('event_outbox', 'outbox_log') ORDER BY relname",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
    assert_eq!(read, [("event_outbox".to_owned(), 100), ("outbox_log".to_owned(), 100)]);
}

#[tokio::test]
async fn replay_pages_through_the_log_for_whoever_can_read_the_customer() {
    let app = TestApp::spawn().await;
    let by = customer(&app).await;
    let nrw: Uuid = create(
        &app,
        json!({"name": "Kölsch-Stube", "segment": "RESTAURANT", "territory": "NRW"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for _ in 0..3 {
        let res = app
            .send_json_with(
                Method::PATCH,
                &format!("/customers/{by}/fields"),
                &[("if-match", "*")],
                &json!({"menu_notes": Uuid::now_v7()}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    app.relay_all().await;

    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = app.get(&format!("/events/replay?after={after}&limit=2")).await.json();
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        for item in &items {
            seen.push(item["position"].as_i64().unwrap());
        }
        after = page["nextAfter"].as_i64().unwrap();
    }
    assert_eq!(seen, (1..=5).collect::<Vec<_>>(), "two customer.created, three customer.fields.changed");
    let fields = app.get("/events/replay?types=customer.fields.changed").await.json();
    assert_eq!(fields["items"].as_array().unwrap().len(), 3);
    assert!(
        fields["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["specversion"] == "1.0" && e["territory"] == "BY")
    );

    let lead = format!("Bearer {}", app.token("lead-nrw", &[UserRole::TeamLead], &["NRW"], &[]));
    let theirs = app.send(Method::GET, "/events/replay", &[("authorization", &lead)], "").await.json();
    let subjects: Vec<&str> =
        theirs["items"].as_array().unwrap().iter().map(|e| e["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, [nrw.to_string().as_str()], "only the NRW customer's events");
    app.get("/events/replay?types=sample.lost").await.problem(StatusCode::BAD_REQUEST);
    app.get("/events/replay?after=-1").await.problem(StatusCode::BAD_REQUEST);
}

fn inbound(source: &str, id: &str, event_type: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "source": source, "type": event_type, "datacontenttype": "application/json",
           "time": "2026-12-01T10:00:00Z", "data": data})
}

#[tokio::test]
async fn an_inbound_event_dated_before_1900_is_refused_naming_the_date() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let data = json!({"leadId": "L-1", "customerId": id, "convertedAt": "0000-01-01T00:00:00Z"});
    let event = inbound("crm.lead-management", "lead-1", "lead.converted", data);
    let problem = app
        .send_json(Method::POST, "/events/inbound", &event)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/data/convertedAt", "{problem}");
}

#[tokio::test]
async fn an_inbound_source_that_is_no_uri_reference_is_refused_so_every_stored_event_is_a_cloudevent() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let data = json!({"customerId": id, "bounceType": "SOFT"});
    let event = inbound("mail system", "b-1", "email.bounce", data.clone());
    let problem = app
        .send_json(Method::POST, "/events/inbound", &event)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/source", "{problem}");
    let event = inbound("urn:freshplan:mail", "b-1", "email.bounce", data);
    assert_eq!(app.send_json(Method::POST, "/events/inbound", &event).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_converted_lead_gets_one_sample_however_often_it_is_delivered() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let event = inbound(
        "crm.lead-management",
        "lead-77",
        "lead.converted",
        json!({"leadId": "L-77", "customerId": id}),
    );
    let res = app.send_json(Method::POST, "/events/inbound", &event).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    let again = app.send_json(Method::POST, "/events/inbound", &event).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["accepted"], false);
    app.relay_all().await;
    let samples = app.get(&format!("/samples?customerId={id}")).await.json();
    assert_eq!(samples["items"].as_array().unwrap().len(), 1);
    assert_eq!(samples["items"][0]["kitId"], "cf-basis-5");
    assert_eq!(samples["items"][0]["createdBy"], "system:automation.lead-converted");

    // Redelivery: the consumer starts over from the beginning of the log.
    sqlx::query("UPDATE consumer_checkpoint SET position = 0").execute(&app.db.pool).await.unwrap();
    app.relay_all().await;
    let samples = app.get(&format!("/samples?customerId={id}")).await.json();
    assert_eq!(samples["items"].as_array().unwrap().len(), 1, "no second sample");
    let requested = app.events().await.into_iter().filter(|e| e.event_type == "sample.requested").count();
    assert_eq!(requested, 1);
}

#[tokio::test]
async fn a_hard_bounce_makes_the_customer_hard_bounce_once() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    for n in 0..2 {
        let event = inbound(
            "mail.freshfoodz",
            &format!("b-{n}"),
            "email.bounce",
            json!({"customerId": id, "email": "chef@loewen.de", "bounceType": "HARD"}),
        );
        assert_eq!(app.send_json(Method::POST, "/events/inbound", &event).await.status, StatusCode::ACCEPTED);
    }
    app.relay_all().await;
    let customer = app.get(&format!("/customers/{id}")).await.json();
    assert_eq!(customer["contactability"]["status"], "HARD_BOUNCE", "{customer}");
    assert_eq!(customer["contactability"]["alternateChannelRequired"], true);
    let changed: Vec<Value> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "customer.contactability.changed")
        .map(|e| e.data)
        .collect();
    assert_eq!(
        changed,
        [
            json!({"customerId": id, "status": "HARD_BOUNCE", "previousStatus": "CONTACTABLE", "alternateChannelRequired": true})
        ]
    );
}

#[tokio::test]
async fn inbound_events_are_checked_before_they_are_accepted() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let cases = [
        (
            json!({"specversion": "0.3", "id": "x", "source": "s", "type": "lead.converted", "data": {"leadId": "L", "customerId": id}}),
            "/specversion",
        ),
        (inbound("s", "x", "lead.lost", json!({})), "/type"),
        (inbound("s", "", "lead.converted", json!({"leadId": "L", "customerId": id})), "/id"),
        (inbound("s", "x", "lead.converted", json!({"customerId": id})), "/data"),
        (inbound("s", "x", "email.bounce", json!({"customerId": id, "bounceType": "MAYBE"})), "/data"),
        (
            inbound("s", "x", "email.bounce", json!({"customerId": Uuid::nil(), "bounceType": "HARD"})),
            "/data/customerId",
        ),
    ];
    for (body, pointer) in cases {
        let problem = app
            .send_json(Method::POST, "/events/inbound", &body)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{body}: {problem}");
    }
    let nrw = format!("Bearer {}", app.token("rep-nrw", &[UserRole::SalesRep], &["NRW"], &[]));
    let res = app
        .send(
            Method::POST,
            "/events/inbound",
            &[("authorization", nrw.as_str()), ("content-type", "application/json")],
            inbound("s", "y", "email.bounce", json!({"customerId": id, "bounceType": "HARD"})).to_string(),
        )
        .await;
    res.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let inbound_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE inbound_id IS NOT NULL")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(inbound_rows, 0);
}

/// Fails on every event whose data names `poison`.
struct Picky {
    poison: Uuid,
    fail: bool,
}

impl Handler for Picky {
    fn name(&self) -> &'static str {
        "test.picky"
    }

    fn wants(&self, event: &StoredEvent) -> bool {
        event.event_type == "customer.contactability.changed"
    }

    async fn handle(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        event: &StoredEvent,
    ) -> Result<(), String> {
        // An effect in the same transaction, to show that a failed try leaves none.
        sqlx::query("INSERT INTO projection_check (rows_checked, drifted_rows) VALUES (0, 0)")
            .execute(&mut **tx)
            .await
            .unwrap();
        if self.fail && event.data["customerId"] == json!(self.poison) {
            Err("the poison customer".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_after_its_tries_and_can_be_redriven() {
    let app = TestApp::spawn().await;
    let good = customer(&app).await;
    let poison = Uuid::now_v7();
    for customer in [poison, good] {
        let mut tx = app.db.pool.begin().await.unwrap();
        outbox::enqueue(&mut tx, &origin(), bounce(customer)).await.unwrap();
        tx.commit().await.unwrap();
    }
    relay::publish_batch(&app.state.db, 100).await.unwrap();
    let options = ConsumerOptions { max_attempts: 3, ..ConsumerOptions::default() };
    let handler = Picky { poison, fail: true };
    let effects = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM projection_check")
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
    };
    for attempt in 1..3 {
        let step = consumer::step(&app.state.db, &handler, &options).await.unwrap();
        assert!(matches!(step, Step::Failed { .. }), "attempt {attempt}: {step:?}");
        assert_eq!(effects().await, 0, "a failed try leaves no effect");
    }
    let step = consumer::step(&app.state.db, &handler, &options).await.unwrap();
    assert!(matches!(step, Step::Advanced { .. }), "{step:?}");
    assert_eq!(effects().await, 1, "the good event behind it was handled");
    let letter: (i32, String) =
        sqlx::query_as("SELECT attempts, error FROM consumer_dead_letter WHERE consumer = 'test.picky'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(letter, (3, "the poison customer".to_owned()));
    let stats = relay::stats(&app.state.db).await.unwrap();
    let picky = stats.consumers.iter().find(|c| c.consumer == "test.picky").unwrap();
    assert_eq!((picky.lag, picky.dead_letters), (0, 1));

    let (redriven, failing) = consumer::redrive(&app.state.db, &Picky { poison, fail: false }).await.unwrap();
    assert_eq!((redriven, failing), (1, 0));
    assert_eq!(
        relay::stats(&app.state.db)
            .await
            .unwrap()
            .consumers
            .iter()
            .find(|c| c.consumer == "test.picky")
            .unwrap()
            .dead_letters,
        0
    );
}

#[tokio::test]
async fn outbox_metrics_show_the_backlog_and_the_consumers() {
    let app = TestApp::spawn().await;
    customer(&app).await;
    let stats = relay::stats(&app.state.db).await.unwrap();
    assert_eq!(stats.unpublished, 1);
    assert!(stats.oldest_unpublished_seconds >= 0.0);
    app.state.metrics.observe_outbox(&stats);
    app.relay_all().await;
    let stats = relay::stats(&app.state.db).await.unwrap();
    assert_eq!(stats.unpublished, 0);
    assert!(stats.consumers.iter().all(|c| c.lag == 0), "{stats:?}");
    app.state.metrics.observe_outbox(&stats);
    let metrics = app.get("/metrics").await.text();
    for name in [
        "crm_outbox_unpublished_events 0",
        "crm_outbox_consumer_lag_events{consumer=\"automation.lead-converted\"} 0",
        "crm_db_notification_queue_usage_ratio",
        "crm_outbox_published_events_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
}
