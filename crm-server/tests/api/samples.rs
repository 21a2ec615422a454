//! Samples over HTTP: requests with the default kit, a kit or items; the lifecycle and its 409s;
//! the projection's sample status; the delivery follow-up SLA; territory isolation; and one
//! sample from 200 concurrent retries.

use axum::http::{Method, StatusCode};
use crm_server::auth::UserRole;
use crm_server::testing::{TestApp, TestResponse};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::customers::{create, loewen};

pub async fn post_sample(app: &TestApp, key: &str, body: &Value) -> TestResponse {
    app.send_json_with(Method::POST, "/samples", &[("idempotency-key", key)], body).await
}

pub async fn new_sample(app: &TestApp, customer: &str) -> Value {
    let res = post_sample(
        app,
        &Uuid::now_v7().to_string(),
        &json!({"customerId": customer, "deliveryDate": "2099-01-15"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

pub async fn set_status(app: &TestApp, sample: &str, body: Value) -> TestResponse {
    app.send_json(Method::PATCH, &format!("/samples/{sample}/status"), &body).await
}

async fn customer(app: &TestApp) -> String {
    create(app, loewen()).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_without_items_sends_the_default_kit() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let fields_before = app.get(&format!("/customers/{id}/fields")).await.header("etag").unwrap().to_owned();
    let res = post_sample(
        &app,
        "k-1",
        &json!({"customerId": id, "deliveryDate": "2099-01-15", "notes": "Küche ab 10 Uhr"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let sample = res.json();
    assert_eq!(sample["status"], "REQUESTED");
    assert_eq!(sample["kitId"], "cf-basis-5");
    assert_eq!(sample["items"].as_array().unwrap().len(), 5);
    assert!(sample["createdAt"].is_string());
    assert_eq!(res.header("location").unwrap(), format!("/samples/{}", sample["id"].as_str().unwrap()));
    let kits = app.get("/sample-kits").await.json();
    let basis = kits["items"].as_array().unwrap().iter().find(|k| k["isDefault"] == true).unwrap();
    assert_eq!(basis["name"], "Cook&Fresh Basis 5er");
    assert_eq!(basis["items"], sample["items"]);

    let requested: Vec<Value> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "sample.requested")
        .map(|e| e.data)
        .collect();
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["items"], sample["items"]);
    assert_eq!(requested[0]["deliveryDate"], "2099-01-15");

    let fields = app.get(&format!("/customers/{id}/fields")).await;
    assert_eq!(fields.json()["values"]["sample_status"], "REQUESTED", "{}", fields.text());
    assert_ne!(fields.header("etag").unwrap(), fields_before, "the fields' ETag covers the sample status");
    let found = app.get("/customers?sample_status=REQUESTED").await.json();
    assert_eq!(found["items"][0]["id"], id.as_str());
}

#[tokio::test]
async fn kits_and_items_are_checked_against_the_catalog() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let res = post_sample(
        &app,
        "k-2",
        &json!({"customerId": id, "kitId": "cf-festtag", "deliveryDate": "2099-01-15"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.json()["items"].as_array().unwrap().len(), 4);
    let items = json!([{"sku": "CF-3001", "quantity": 2}]);
    let res =
        post_sample(&app, "k-3", &json!({"customerId": id, "items": items, "deliveryDate": "2099-01-15"}))
            .await;
    assert_eq!(res.json()["items"], items);
    assert_eq!(res.json()["kitId"], Value::Null);

    let cases = [
        (
            json!({"customerId": id, "items": [{"sku": "CF-1001", "quantity": 1}, {"sku": "XX-1", "quantity": 1}], "deliveryDate": "2099-01-15"}),
            "/items/1/sku",
        ),
        (json!({"customerId": id, "kitId": "nope", "deliveryDate": "2099-01-15"}), "/kitId"),
        (json!({"customerId": Uuid::nil(), "deliveryDate": "2099-01-15"}), "/customerId"),
        (json!({"customerId": id, "deliveryDate": "2020-01-15"}), "/deliveryDate"),
        (
            json!({"customerId": id, "items": [{"sku": "CF-1001", "quantity": 0}], "deliveryDate": "2099-01-15"}),
            "/items/0/quantity",
        ),
        (json!({"customerId": id, "deliveryDate": "2099-01-15", "colour": "red"}), ""),
    ];
    for (n, (body, pointer)) in cases.iter().enumerate() {
        let res = post_sample(&app, &format!("bad-{n}"), body).await;
        let problem = res.problem(StatusCode::UNPROCESSABLE_ENTITY);
        if !pointer.is_empty() {
            assert_eq!(problem["errors"][0]["pointer"], *pointer, "{body}: {problem}");
        }
    }
    let res = app
        .send_json(Method::POST, "/samples", &json!({"customerId": id, "deliveryDate": "2099-01-15"}))
        .await;
    let problem = res.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["parameter"], "Idempotency-Key");
    let products = app.get("/products").await.json();
    assert!(products["items"].as_array().unwrap().iter().any(|p| p["sku"] == "CF-3001"));
}

#[tokio::test]
async fn the_lifecycle_is_enforced_and_every_change_is_an_event() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let sample = new_sample(&app, &id).await;
    let sid = sample["id"].as_str().unwrap();
    for status in ["PACKED", "SHIPPED", "DELIVERED"] {
        let res = set_status(&app, sid, json!({"newStatus": status})).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["status"], status);
    }
    let res = set_status(&app, sid, json!({"newStatus": "CANCELED"})).await;
    let problem = res.problem(StatusCode::CONFLICT);
    assert_eq!(problem["type"], "https://freshplan.io/problems/invalid-transition");
    assert_eq!(
        problem["allowedTransitions"],
        json!(["FEEDBACK_SUCCESS", "FEEDBACK_NEUTRAL", "FEEDBACK_FAIL"])
    );
    let res = set_status(&app, sid, json!({"newStatus": "FEEDBACK_SUCCESS"})).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.json()["followupDoneAt"].is_string(), "feedback completes the follow-up");
    set_status(&app, sid, json!({"newStatus": "PACKED"})).await.problem(StatusCode::CONFLICT);
    set_status(&app, sid, json!({"newStatus": "LOST"})).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    set_status(&app, sid, json!({"newStatus": "FEEDBACK_FAIL", "eventAt": "2000-01-01T00:00:00Z"}))
        .await
        .problem(StatusCode::CONFLICT);

    let changes: Vec<(String, String)> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "sample.status.changed")
        .map(|e| {
            (
                e.data["oldStatus"].as_str().unwrap().to_owned(),
                e.data["newStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("REQUESTED", "PACKED"),
        ("PACKED", "SHIPPED"),
        ("SHIPPED", "DELIVERED"),
        ("DELIVERED", "FEEDBACK_SUCCESS"),
    ];
    assert_eq!(changes, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let read = app.get(&format!("/samples/{sid}")).await.json();
    let history: Vec<&str> =
        read["history"].as_array().unwrap().iter().map(|h| h["newStatus"].as_str().unwrap()).collect();
    assert_eq!(history, ["REQUESTED", "PACKED", "SHIPPED", "DELIVERED", "FEEDBACK_SUCCESS"]);
}

#[tokio::test]
async fn event_times_are_checked_and_a_stale_etag_is_412() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let sid = new_sample(&app, &id).await["id"].as_str().unwrap().to_owned();
    let res = set_status(&app, &sid, json!({"newStatus": "PACKED", "eventAt": "2001-01-01T00:00:00Z"})).await;
    assert_eq!(res.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["pointer"], "/eventAt");
    let res = set_status(&app, &sid, json!({"newStatus": "PACKED", "eventAt": "2999-01-01T00:00:00Z"})).await;
    assert_eq!(res.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["pointer"], "/eventAt");
    let res = app
        .send_json_with(
            Method::PATCH,
            &format!("/samples/{sid}/status"),
            &[("if-match", "\"s7\"")],
            &json!({"newStatus": "PACKED"}),
        )
        .await;
    res.problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(res.header("etag"), Some("\"s1\""));
}

#[tokio::test]
async fn a_delivery_is_due_for_feedback_after_five_business_days_of_the_customers_state() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await; // DE-BY
    let sid = new_sample(&app, &id).await["id"].as_str().unwrap().to_owned();
    // As if requested weeks ago, so that the delivery can be recorded in the past.
    sqlx::query("UPDATE sample_request SET last_event_at = '2026-11-01T08:00:00Z' WHERE id = $1::uuid")
        .bind(&sid)
        .execute(&app.db.pool)
        .await
        .unwrap();
    for (status, at) in [("PACKED", "2026-11-10T08:00:00Z"), ("SHIPPED", "2026-11-11T08:00:00Z")] {
        assert_eq!(
            set_status(&app, &sid, json!({"newStatus": status, "eventAt": at})).await.status,
            StatusCode::OK
        );
    }
    // Delivered on Friday 20 November 2026 at 23:30 UTC, which is Saturday in Munich: the five
    // business days are 23-27 November.
    let res =
        set_status(&app, &sid, json!({"newStatus": "DELIVERED", "eventAt": "2026-11-20T23:30:00Z"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["followupDue"], "2026-11-27");
    let overdue = app.get("/sla/overdue").await.json();
    assert_eq!(overdue["items"][0]["id"], sid.as_str(), "due in the past and not done: overdue");
    assert_eq!(overdue["items"][0]["item"], "SAMPLE_FOLLOWUP");
    assert_eq!(overdue["items"][0]["due"], "2026-11-27");
    let res = set_status(&app, &sid, json!({"newStatus": "FEEDBACK_NEUTRAL"})).await;
    assert_eq!(res.status, StatusCode::OK);
    let overdue = app.get("/sla/overdue").await.json();
    assert_eq!(overdue["items"], json!([]));
}

#[tokio::test]
async fn lists_page_by_customer_and_status() {
    let app = TestApp::spawn().await;
    let a = customer(&app).await;
    let b = create(&app, json!({"name": "Hotel Post", "segment": "HOTEL", "territory": "BY"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut of_a = Vec::new();
    for _ in 0..5 {
        of_a.push(new_sample(&app, &a).await["id"].as_str().unwrap().to_owned());
    }
    new_sample(&app, &b).await;
    set_status(&app, &of_a[1], json!({"newStatus": "CANCELED"})).await;
    let mut seen = Vec::new();
    let mut url = format!("/samples?customerId={a}&limit=2");
    loop {
        let page = app.get(&url).await.json();
        seen.extend(page["items"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(cursor) => url = format!("/samples?customerId={a}&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    of_a.reverse();
    assert_eq!(seen, of_a, "newest first, every sample once");
    let canceled = app.get("/samples?status=CANCELED").await.json();
    assert_eq!(canceled["items"].as_array().unwrap().len(), 1);
    app.get("/samples?status=LOST").await.problem(StatusCode::BAD_REQUEST);
    app.get(&format!("/samples?customerId={a}&cursor=bogus")).await.problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn samples_of_another_territory_are_invisible_and_untouchable() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await; // BY
    let sid = new_sample(&app, &id).await["id"].as_str().unwrap().to_owned();
    let rep = format!("Bearer {}", app.token("rep-nrw", &[UserRole::SalesRep], &["NRW"], &[]));
    let auth = [("authorization", rep.as_str())];
    app.send(Method::GET, &format!("/samples/{sid}"), &auth, "").await.problem(StatusCode::NOT_FOUND);
    let listed = app.send(Method::GET, "/samples", &auth, "").await.json();
    assert_eq!(listed["items"], json!([]));
    let res = app
        .send(
            Method::POST,
            "/samples",
            &[
                ("authorization", rep.as_str()),
                ("content-type", "application/json"),
                ("idempotency-key", "x"),
            ],
            json!({"customerId": id, "deliveryDate": "2099-01-15"}).to_string(),
        )
        .await;
    assert_eq!(res.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["pointer"], "/customerId");
    let res = app
        .send(
            Method::PATCH,
            &format!("/samples/{sid}/status"),
            &[("authorization", rep.as_str()), ("content-type", "application/json")],
            r#"{"newStatus": "PACKED"}"#,
        )
        .await;
    res.problem(StatusCode::NOT_FOUND);
    // A BY rep who does not own it reads it (unowned customers of the territory) but may not change it.
    let by = format!("Bearer {}", app.token("rep-by", &[UserRole::SalesRep], &["BY"], &[]));
    let res = app
        .send(
            Method::PATCH,
            &format!("/samples/{sid}/status"),
            &[("authorization", by.as_str()), ("content-type", "application/json")],
            r#"{"newStatus": "PACKED"}"#,
        )
        .await;
    res.problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn two_hundred_concurrent_retries_make_one_sample_and_one_event() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let body = json!({"customerId": id, "deliveryDate": "2099-01-15"});
    let responses = futures::future::join_all((0..200).map(|_| post_sample(&app, "retry-me", &body))).await;
    let created: Vec<&TestResponse> = responses.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    assert!(!created.is_empty());
    for res in &responses {
        match res.status {
            StatusCode::CREATED => assert_eq!(res.body, created[0].body, "a replay is the first response"),
            _ => assert_eq!(
                res.problem(StatusCode::CONFLICT)["type"],
                "https://freshplan.io/problems/conflict"
            ),
        }
    }
    let samples: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sample_request").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(samples, 1);
    let events = app.events().await.into_iter().filter(|e| e.event_type == "sample.requested").count();
    assert_eq!(events, 1);
}
