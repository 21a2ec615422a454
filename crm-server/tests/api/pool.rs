//! No request can leave a pooled connection dirty: a claim PostgreSQL cannot store is refused
//! before it reaches SQL, and a scope that cannot be set leaves the connection idle, so the
//! requests after it, the relay and the consumers go on as if nothing had happened.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use crm_server::auth::UserRole;
use crm_server::config::{RelayArgs, Role};
use crm_server::db::scope::{self, Scope};
use crm_server::testing::{TestApp, TestResponse};
use futures::future::join_all;
use serde_json::json;

async fn list(app: &TestApp, token: &str) -> TestResponse {
    app.send(Method::GET, "/customers", &[("authorization", &format!("Bearer {token}"))], "").await
}

/// The relay's position and the two automations' checkpoints.
async fn progress(app: &TestApp) -> (i64, i64, Vec<i64>) {
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_outbox").fetch_one(&app.db.pool).await.unwrap();
    let relayed: i64 =
        sqlx::query_scalar("SELECT last_position FROM outbox_relay").fetch_one(&app.db.pool).await.unwrap();
    let consumers: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM consumer_checkpoint ORDER BY consumer")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    (events, relayed, consumers)
}

/// The relay's failed publishing steps so far, from `/metrics`.
async fn publish_errors(app: &TestApp) -> f64 {
    let text = app.get("/metrics").await.text();
    text.lines()
        .find_map(|line| line.strip_prefix("crm_outbox_publish_errors_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_subject_with_a_nul_character_is_an_invalid_token_and_poisons_nothing() {
    let app = TestApp::spawn().await;
    for subject in ["evil\u{0}", "line\nbreak", "\u{7f}"] {
        let token = app.token(subject, &[UserRole::Admin], &[], &[]);
        let res = list(&app, &token).await;
        res.problem(StatusCode::UNAUTHORIZED);
        let challenge = res.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains("error=\"invalid_token\""), "{subject:?}: {challenge}");
    }
    let good = app.token("rep", &[UserRole::SalesRep], &["BY"], &[]);
    for _ in 0..50 {
        assert_eq!(list(&app, &good).await.status, StatusCode::OK);
    }
}

/// Fault injection: for a while the app login may not call `set_config`, so every statement
/// that sets a caller's scope fails, on every pooled connection, for requests, the relay and the
/// consumers alike. Once the fault is gone, every request succeeds and the background work
/// catches up: no connection was returned to the pool inside a failed transaction.
#[tokio::test]
async fn failures_to_set_the_scope_leave_no_connection_dirty() {
    let app = TestApp::spawn().await;
    let jobs = crm_server::jobs::spawn(&app.state, Role::All, &RelayArgs::default(), Duration::ZERO);
    let token = app.token("lead", &[UserRole::TeamLead], &["BY"], &[]);
    let auth = format!("Bearer {token}");

    let customer = crate::relay::customer(&app).await;

    let fault = "REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC";
    sqlx::query(fault).execute(&app.db.pool).await.unwrap();
    // An event another writer (here the owner, whom the fault does not touch) commits meanwhile:
    // the relay must try to publish it, and fail.
    let mut tx = app.db.pool.begin().await.unwrap();
    crm_server::outbox::enqueue(&mut tx, &crate::relay::origin(), crate::relay::bounce(customer))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Concurrent, so that every connection of the pool takes its share of failures.
    for _ in 0..4 {
        let failures = join_all((0..10).map(|_| list(&app, &token))).await;
        for res in failures {
            // PostgreSQL's "permission denied" is what a row-level security refusal raises too,
            // so the server answers 403; what matters is that it is a problem, not a success.
            assert!(res.status.is_client_error() || res.status.is_server_error(), "{}", res.text());
            res.problem(res.status);
        }
    }
    // The relay fails on it too (it counts each failed step) before the fault goes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while publish_errors(&app).await < 3.0 {
        assert!(tokio::time::Instant::now() < deadline, "the relay never failed to set its scope");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let repair = "GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO PUBLIC";
    sqlx::query(repair).execute(&app.db.pool).await.unwrap();

    let mut created = 0;
    for round in 0..100 {
        let batch = (0..10).map(|i| {
            let auth = auth.clone();
            let app = &app;
            async move {
                if i % 2 == 0 {
                    let body = json!({"name": format!("Gasthof {round}-{i}"), "segment": "RESTAURANT", "territory": "BY"});
                    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
                    app.send(Method::POST, "/customers", &headers, serde_json::to_vec(&body).unwrap()).await
                } else {
                    app.send(Method::GET, "/customers", &[("authorization", auth.as_str())], "").await
                }
            }
        });
        for res in join_all(batch).await {
            assert!(res.status.is_success(), "round {round}: {} {}", res.status, res.text());
            created += usize::from(res.status == StatusCode::CREATED);
        }
    }
    assert_eq!(created, 500);

    // The relay publishes every event and both automations read past all of them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (events, relayed, consumers) = progress(&app).await;
        if relayed == events && consumers.len() == 2 && consumers.iter().all(|p| *p == events) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the background work did not catch up: {events} events, relayed {relayed}, consumers {consumers:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for job in jobs {
        job.abort();
    }
}

/// A request cut short while its transaction starts (its timeout, a client gone) leaves no
/// transaction behind: whatever the moment of the cut, the next user of the connection finds it
/// idle, with no caller's scope set.
#[tokio::test]
async fn a_start_cut_short_at_any_moment_leaves_no_transaction_behind() {
    let app = TestApp::spawn().await;
    let pool =
        sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&app.db.app_url).await.unwrap();
    let scope = Scope { user: Some("cut-short".into()), admin: true, ..Scope::default() };
    for step in 0..60u64 {
        let begin = scope::begin(&pool, &scope);
        tokio::select! {
            biased;
            started = begin => drop(started.unwrap()),
            () = tokio::time::sleep(Duration::from_micros(50 * step)) => {}
        }
        let mut conn = pool.acquire().await.unwrap();
        let user: Option<String> = sqlx::query_scalar("SELECT nullif(current_setting('crm.user', true), '')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        // A savepoint can only be set inside a transaction block.
        let in_transaction = sqlx::raw_sql("SAVEPOINT probe").execute(&mut *conn).await.is_ok();
        assert!(
            !in_transaction && user.is_none(),
            "cut after {} µs: in a transaction as {user:?}",
            50 * step
        );
    }
}
