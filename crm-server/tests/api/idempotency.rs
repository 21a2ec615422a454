//! `Idempotency-Key` on POST and PATCH: replay after completion, 409 while in flight, 422 for
//! another body, scoping per caller and path, expiry and purge. Shown on `POST /customers`; the
//! routes that require a key have their own tests.

use axum::http::{Method, StatusCode};
use crm_server::auth::UserRole;
use crm_server::testing::{TestApp, TestResponse};

const BODY: &str = r#"{"name": "Gasthof Krone", "segment": "RESTAURANT", "territory": "BY"}"#;

async fn post(app: &TestApp, auth: &str, key: &str, body: &str) -> TestResponse {
    let headers = [("authorization", auth), ("content-type", "application/json"), ("idempotency-key", key)];
    app.send(Method::POST, "/customers", &headers, body.to_owned()).await
}

async fn customers(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM customer").fetch_one(&app.db.pool).await.unwrap()
}

#[tokio::test]
async fn a_retry_after_completion_replays_the_stored_response() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["BY"], &[]));
    let first = post(&app, &auth, "\"k-1\"", BODY).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = post(&app, &auth, "k-1", BODY).await;
    assert_eq!(again.status, StatusCode::CREATED, "the unquoted form is the same key: {}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    for name in ["location", "etag", "content-type"] {
        assert_eq!(again.header(name), first.header(name), "{name}");
    }
    assert_eq!(customers(&app).await, 1);
    assert_eq!(app.events().await.iter().filter(|e| e.event_type == "customer.created").count(), 1);

    let other = post(&app, &auth, "k-1", &BODY.replace("Krone", "Sonne")).await;
    let problem = other.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["parameter"], "Idempotency-Key", "{problem}");
    assert_eq!(customers(&app).await, 1);

    // The key is the caller's: someone else's identical request is their own.
    let rep = format!("Bearer {}", app.token("rep", &[UserRole::SalesRep], &["BY"], &[]));
    assert_eq!(post(&app, &rep, "k-1", BODY).await.status, StatusCode::CREATED);
    assert_eq!(customers(&app).await, 2);
}

/// A stored outcome belongs to the subject *and* the access rights it was made with: the same
/// subject with a narrower token gets no stored reply it could not read directly, and the request
/// does not run twice either. The same rights listed in another order are the same rights.
#[tokio::test]
async fn a_replay_is_refused_to_the_same_subject_with_other_access_rights() {
    let app = TestApp::spawn().await;
    let wide = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["BY", "NRW"], &[]));
    let first = post(&app, &wide, "k-scope", BODY).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_owned();

    let narrow = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["NRW"], &[]));
    let direct = app.send(Method::GET, &format!("/customers/{id}"), &[("authorization", &narrow)], "").await;
    assert!(!direct.status.is_success(), "the narrower token cannot read the customer directly");
    let again = post(&app, &narrow, "k-scope", BODY).await;
    let problem = again.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["parameter"], "Idempotency-Key", "{problem}");
    assert!(!again.text().contains(&id), "nothing of the stored reply: {}", again.text());
    assert_eq!(again.header("idempotent-replayed"), None);
    assert_eq!(customers(&app).await, 1, "and the request did not run again");

    let same = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["NRW", "BY"], &[]));
    let replay = post(&app, &same, "k-scope", BODY).await;
    assert_eq!(replay.status, StatusCode::CREATED, "{}", replay.text());
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body);
}

/// The fingerprint is taken over the body's canonical JSON: a retry that re-encodes an equal
/// body (another member order, whitespace) replays; one with another value is a 422.
#[tokio::test]
async fn an_equal_body_encoded_differently_replays() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["BY"], &[]));
    let first = post(&app, &auth, "k-canon", BODY).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let reordered =
        "{\n  \"territory\" : \"BY\",\n  \"segment\": \"RESTAURANT\",\t\"name\": \"Gasthof Krone\"\n}";
    let again = post(&app, &auth, "k-canon", reordered).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let other = post(&app, &auth, "k-canon", &reordered.replace("BY", "BE")).await;
    other.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(customers(&app).await, 1);
}

#[tokio::test]
async fn a_failed_request_is_not_stored_and_its_retry_runs_again() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["BY"], &[]));
    let invalid =
        post(&app, &auth, "k-2", r#"{"name": "", "segment": "RESTAURANT", "territory": "BY"}"#).await;
    invalid.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(post(&app, &auth, "k-2", BODY).await.status, StatusCode::CREATED);
    assert_eq!(customers(&app).await, 1);
}

#[tokio::test]
async fn malformed_keys_are_400_and_keys_on_reads_are_ignored() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["BY"], &[]));
    for key in ["\"open", "two words", "\"\"", &"k".repeat(256)] {
        let res = post(&app, &auth, key, BODY).await;
        let problem = res.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["parameter"], "Idempotency-Key", "{key}: {problem}");
    }
    assert_eq!(customers(&app).await, 0);
    let res = app
        .send(Method::GET, "/customers", &[("authorization", &auth), ("idempotency-key", "\"open")], "")
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_key_runs_again_and_the_purge_removes_it() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["BY"], &[]));
    assert_eq!(post(&app, &auth, "k-3", BODY).await.status, StatusCode::CREATED);
    sqlx::query("UPDATE idempotency_key SET expires_at = now() - interval '1 second'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let again = post(&app, &auth, "k-3", BODY).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), None);
    assert_eq!(customers(&app).await, 2);
    sqlx::query("UPDATE idempotency_key SET expires_at = now() - interval '1 second'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(crm_server::jobs::purge_idempotency_keys(&app.state).await.unwrap(), 1);
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_key").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn concurrent_duplicates_create_one_customer_and_each_gets_the_replay_or_a_409() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.token("lead", &[UserRole::TeamLead], &["BY"], &[]));
    let responses = futures::future::join_all((0..40).map(|_| post(&app, &auth, "k-4", BODY))).await;
    let created: Vec<&TestResponse> = responses.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    assert!(!created.is_empty());
    assert!(created.iter().all(|r| r.body == created[0].body), "every success is the same response");
    for res in &responses {
        if res.status != StatusCode::CREATED {
            res.problem(StatusCode::CONFLICT);
        }
    }
    assert_eq!(customers(&app).await, 1);
}
