//! The cockpit's KPIs against the data behind them, per territory and per caller's scope; the
//! stale flag; the overdue list.

use axum::http::{Method, StatusCode};
use crm_server::auth::UserRole;
use crm_server::testing::TestApp;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::activities::{rfc3339, yesterday};
use crate::customers::create;
use crate::samples::{new_sample, set_status};

async fn activity(app: &TestApp, body: Value) -> Value {
    let res = app
        .send_json_with(
            Method::POST,
            "/activities",
            &[("idempotency-key", &Uuid::now_v7().to_string())],
            &body,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

async fn customer_in(app: &TestApp, territory: &str) -> String {
    create(app, json!({"name": format!("Hotel {territory}"), "segment": "HOTEL", "territory": territory}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn sample_with_feedback(app: &TestApp, customer: &str, feedback: &str) {
    let sid = new_sample(app, customer).await["id"].as_str().unwrap().to_owned();
    for status in ["PACKED", "SHIPPED", "DELIVERED", feedback] {
        assert_eq!(set_status(app, &sid, json!({"newStatus": status})).await.status, StatusCode::OK);
    }
}

fn roi(customer: &str, savings: f64, occurred: &str) -> Value {
    json!({"kind": "ROI_CONSULTATION", "customerId": customer, "roiScenarioId": Uuid::now_v7(), "savingsPerMonth": savings,
           "outcome": "QUALIFIED", "occurredAt": occurred})
}

#[tokio::test]
async fn the_summary_counts_what_the_caller_may_see() {
    let app = TestApp::spawn().await;
    let by = customer_in(&app, "BY").await;
    let nrw = customer_in(&app, "NRW").await;
    for feedback in ["FEEDBACK_SUCCESS", "FEEDBACK_SUCCESS", "FEEDBACK_FAIL"] {
        sample_with_feedback(&app, &by, feedback).await;
    }
    sample_with_feedback(&app, &nrw, "FEEDBACK_NEUTRAL").await;
    new_sample(&app, &nrw).await;
    activity(&app, roi(&by, 1800.0, "2026-01-05T10:00:00Z")).await; // overdue since mid-January
    activity(&app, roi(&nrw, 700.0, &rfc3339(yesterday()))).await;
    let renewal = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    let res = app
        .send_json_with(
            Method::PATCH,
            &format!("/customers/{by}/fields"),
            &[("if-match", "*")],
            &json!({"current_supplier_contracts": {"renewal_date": renewal, "exclusivity": true}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);

    let all = app.get("/cockpit/summary").await.json();
    assert_eq!(all["samples"]["requested"], 5);
    assert_eq!(
        (
            &all["samples"]["feedbackSuccess"],
            &all["samples"]["feedbackNeutral"],
            &all["samples"]["feedbackFail"]
        ),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(all["samples"]["successRate"], 0.5);
    assert_eq!(
        all["roiPipeline"],
        json!([{"bucket": "HIGH", "customers": 1, "savingsPerMonth": 1800.0}, {"bucket": "MID", "customers": 1, "savingsPerMonth": 700.0}])
    );
    assert_eq!(all["overdue"]["activities"], 1);
    assert_eq!(all["overdue"]["byKind"], json!({"ROI_CONSULTATION": 1}));
    assert_eq!(all["renewalsDue"][0]["customerId"], by.as_str());
    assert_eq!(all["renewalsDue"][0]["exclusivity"], true);

    let bavaria = app.get("/cockpit/summary?territory=BY").await.json();
    assert_eq!(bavaria["samples"]["successRate"].as_f64().unwrap(), 2.0 / 3.0);
    assert_eq!(bavaria["roiPipeline"].as_array().unwrap().len(), 1);

    let lead = format!("Bearer {}", app.token("lead-nrw", &[UserRole::TeamLead], &["NRW"], &[]));
    let theirs = app.send(Method::GET, "/cockpit/summary", &[("authorization", &lead)], "").await.json();
    assert_eq!(theirs["samples"]["requested"], 2, "only NRW: {theirs}");
    assert_eq!(theirs["samples"]["successRate"], 0.0);
    assert_eq!(theirs["overdue"]["activities"], 0);
    assert_eq!(theirs["renewalsDue"], json!([]));
    let period = app.get("/cockpit/summary?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z").await.json();
    assert_eq!(period["samples"]["requested"], 0);
    assert!(period["samples"].get("successRate").is_none());
    app.get("/cockpit/summary?territory=bayern").await.problem(StatusCode::BAD_REQUEST);
    app.get("/cockpit/summary?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_summary_is_stale_without_a_recent_check_or_with_a_lagging_projection() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/cockpit/summary").await.json()["stale"], true, "never checked");
    assert_eq!(app.get("/projection/staleness").await.status, StatusCode::OK);
    let fresh = app.get("/cockpit/summary").await.json();
    assert_eq!(fresh["stale"], false, "{fresh}");
    assert!(fresh["projection"]["checkedAt"].is_string());
    sqlx::query(
        "INSERT INTO projection_check (rows_checked, drifted_rows, oldest_unrefreshed_change)
         VALUES (10, 1, now() - interval '20 minutes')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let lagging = app.get("/cockpit/summary").await.json();
    assert_eq!(lagging["stale"], true);
    assert_eq!(lagging["projection"]["driftedRows"], 1);
    assert!(lagging["projection"]["lagSeconds"].as_f64().unwrap() >= 1200.0);
}

#[tokio::test]
async fn overdue_items_page_oldest_due_first() {
    let app = TestApp::spawn().await;
    let by = customer_in(&app, "BY").await;
    let nrw = customer_in(&app, "NRW").await;
    let mut expected = Vec::new();
    for (n, customer) in [&by, &nrw, &by, &nrw, &by].into_iter().enumerate() {
        let a = activity(&app, roi(customer, 100.0, &format!("2026-0{}-10T10:00:00Z", n + 1))).await;
        expected.push(a["id"].as_str().unwrap().to_owned());
    }
    activity(&app, roi(&by, 100.0, &rfc3339(yesterday()))).await; // not due yet
    let mut seen = Vec::new();
    let mut url = "/sla/overdue?limit=2".to_owned();
    loop {
        let page = app.get(&url).await.json();
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["item"], "ACTIVITY");
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => url = format!("/sla/overdue?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    let nrw_only = app.get("/sla/overdue?territory=NRW").await.json();
    assert_eq!(nrw_only["items"].as_array().unwrap().len(), 2);
    app.get("/sla/overdue?cursor=nope").await.problem(StatusCode::BAD_REQUEST);
}
