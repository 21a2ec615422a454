//! `serve --demo`'s data: written through the router, in three territories, once.

use std::collections::BTreeSet;

use axum::http::Method;
use crm_server::auth::UserRole;
use crm_server::demo;
use crm_server::testing::app::TestApp;

async fn customers(app: &TestApp, token: &str) -> Vec<serde_json::Value> {
    let authorization = format!("Bearer {token}");
    let answer =
        app.send(Method::GET, "/customers?limit=500", &[("authorization", &authorization)], "").await;
    assert!(answer.status.is_success(), "{}", answer.text());
    answer.json()["items"].as_array().cloned().unwrap_or_default()
}

/// Today in Germany: the demo's samples are delivered today.
fn today() -> time::Date {
    crm_server::domain::berlin::date(time::OffsetDateTime::now_utc())
}

#[tokio::test]
async fn demo_data_spans_three_territories_through_the_api_and_is_written_once() {
    let app = TestApp::spawn().await;
    let admin = app.token("demo-admin", &[UserRole::Admin], &[], &[]);
    let router = crm_server::http::app(app.state.clone());
    let seeded =
        demo::seed(router.clone(), &admin, today()).await.expect("the demo data").expect("a first seed");

    let all = customers(&app, &admin).await;
    assert_eq!(all.len(), seeded.customers.len());
    let territories: BTreeSet<&str> = all.iter().filter_map(|c| c["territory"].as_str()).collect();
    assert_eq!(territories, demo::TERRITORIES.into_iter().collect(), "{all:?}");

    // The writes went through the API: samples with their lifecycle, activities, and their events.
    let events = app.events().await;
    let count = |kind: &str| events.iter().filter(|e| e.event_type == kind).count();
    assert_eq!(count("customer.created"), seeded.customers.len());
    assert_eq!(count("sample.requested"), seeded.samples);
    assert_eq!(count("activity.created"), seeded.activities);
    assert!(seeded.samples >= 3 && seeded.activities > seeded.samples);
    let open = app.get(&format!("/samples/{}", seeded.open_sample)).await.json();
    assert_eq!(open["status"], "DELIVERED", "{open}");
    let cockpit = app.get("/cockpit/summary").await.json();
    assert!(seeded.feedback > 0, "{seeded:?}");
    assert_eq!(cockpit["samples"]["feedbackSuccess"], seeded.feedback, "{cockpit}");
    assert_eq!(cockpit["samples"]["requested"], seeded.samples, "{cockpit}");

    // Territory isolation holds for the demo's sales rep token.
    let rep = app.token("demo-rep-by", &[UserRole::SalesRep], &["BY"], &[]);
    let seen = customers(&app, &rep).await;
    assert!(!seen.is_empty() && seen.iter().all(|c| c["territory"] == "BY"), "{seen:?}");

    // A second start writes nothing.
    let again = demo::seed(router, &admin, today()).await.expect("no error");
    assert!(again.is_none());
    assert_eq!(app.events().await.len(), events.len());

    let guide = demo::guide("http://127.0.0.1:8080", &admin, &rep, Some(&seeded));
    assert!(guide.contains(&admin) && guide.contains(&seeded.open_sample), "{guide}");
}
