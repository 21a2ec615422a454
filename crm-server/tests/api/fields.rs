//! The field bridge over HTTP: ETags, validation, audit, and the projection written with it.

use axum::http::{Method, StatusCode};
use crm_server::testing::TestApp;
use serde_json::{Value, json};

use crate::customers::{create, loewen};

async fn customer(app: &TestApp) -> String {
    create(app, loewen()).await["id"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, id: &str, etag: &str, body: Value) -> crm_server::testing::TestResponse {
    app.send_json_with(Method::PATCH, &format!("/customers/{id}/fields"), &[("if-match", etag)], &body).await
}

/// The projection row of a customer as JSON, for comparing.
async fn projection(app: &TestApp, id: &str) -> Value {
    sqlx::query_scalar(
        "SELECT to_jsonb(p) - 'updated_at' - 'customer_id' FROM cm_customer_hot_proj p WHERE customer_id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_catalog_lists_the_five_hot_fields_of_the_seeds() {
    let app = TestApp::spawn().await;
    let catalog = app.get("/fields").await.json();
    let hot: Vec<&str> = catalog["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["hot"] == true)
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        hot,
        [
            "current_supplier_contracts",
            "decision_makers",
            "roi_potential",
            "sample_status",
            "seasonal_menu_cycle"
        ]
    );
    let sample = catalog["fields"].as_array().unwrap().iter().find(|f| f["key"] == "sample_status").unwrap();
    assert_eq!(sample["writableBy"], json!([]));
}

#[tokio::test]
async fn fields_are_written_together_and_the_projection_follows_in_the_same_transaction() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let res = app.get(&format!("/customers/{id}/fields")).await;
    assert_eq!(res.header("etag"), Some("\"f1\""));
    assert_eq!(res.json()["values"], json!({}));

    let body = json!({
        "roi_potential": {"bucket": "HIGH", "value": 1800},
        "current_supplier_contracts": {"renewal_date": "2027-03-01", "exclusivity": true},
        "menu_notes": "Spargel ab April"
    });
    let res = app
        .send_json_with(
            Method::PATCH,
            &format!("/customers/{id}/fields"),
            &[("if-match", "\"f1\""), ("x-correlation-id", "fields-1")],
            &body,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("etag"), Some("\"f2\""));
    let written = res.json();
    assert_eq!(written["version"], 2);
    assert_eq!(written["changes"].as_array().unwrap().len(), 3);

    let read = app.get(&format!("/customers/{id}/fields")).await.json();
    assert_eq!(read["values"], body);
    assert_eq!(read["updated"]["menu_notes"]["by"], "user:test-admin");

    let hot = projection(&app, &id).await;
    assert_eq!(hot["roi_bucket"], "HIGH");
    assert_eq!(hot["roi_value"], 1800.0);
    assert_eq!(hot["renewal_date"], "2027-03-01");
    assert_eq!(hot["exclusivity"], true);
    assert_eq!(hot["season_start"], Value::Null);

    let history = app.get(&format!("/customers/{id}/fields/history")).await.json();
    let entry = history["items"].as_array().unwrap().iter().find(|e| e["key"] == "roi_potential").unwrap();
    assert_eq!(entry["oldValue"], Value::Null);
    assert_eq!(entry["newValue"], json!({"bucket": "HIGH", "value": 1800}));
    assert_eq!(entry["correlationId"], "fields-1");

    let events = app.events().await;
    let changed = events.iter().find(|e| e.event_type == "customer.fields.changed").unwrap();
    assert_eq!(changed.data["fieldsVersion"], 2);
    assert_eq!(changed.correlation_id.as_deref(), Some("fields-1"));
}

#[tokio::test]
async fn null_removes_a_field_and_clears_its_projection_columns() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let res =
        patch(&app, &id, "\"f1\"", json!({"decision_makers": {"count": 3, "has_exec_alignment": true}}))
            .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(projection(&app, &id).await["decision_maker_count"], 3);

    let res = patch(&app, &id, "\"f2\"", json!({"decision_makers": null})).await;
    assert_eq!(
        res.json()["changes"],
        json!([{"key": "decision_makers", "oldValue": {"count": 3, "has_exec_alignment": true}, "newValue": null}])
    );
    let hot = projection(&app, &id).await;
    assert_eq!(
        (hot["decision_maker_count"].clone(), hot["has_exec_alignment"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(app.get(&format!("/customers/{id}/fields")).await.json()["values"], json!({}));
}

#[tokio::test]
async fn the_etag_changes_on_every_write_even_without_a_change() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    patch(&app, &id, "\"f1\"", json!({"menu_notes": "a"})).await;
    let res = patch(&app, &id, "\"f2\"", json!({"menu_notes": "a"})).await;
    assert_eq!(res.header("etag"), Some("\"f3\""));
    assert_eq!(res.json()["changes"], json!([]));
    let history = app.get(&format!("/customers/{id}/fields/history")).await.json();
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    let changed: Vec<_> =
        app.events().await.into_iter().filter(|e| e.event_type == "customer.fields.changed").collect();
    assert_eq!(changed.len(), 1);
}

#[tokio::test]
async fn bad_writes_are_refused_whole_with_pointers_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let body = json!({
        "menu_notes": "would be fine",
        "roi_potential": {"bucket": "ENORMOUS", "value": 1},
        "sample_status": "DELIVERED",
        "favourite_colour": "blue"
    });
    let problem = patch(&app, &id, "\"f1\"", body).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let mut pointers: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    pointers.sort();
    assert_eq!(pointers, ["/favourite_colour", "/roi_potential/bucket", "/sample_status"]);

    let read = app.get(&format!("/customers/{id}/fields")).await;
    assert_eq!(read.header("etag"), Some("\"f1\""));
    assert_eq!(read.json()["values"], json!({}));
    assert!(
        app.get(&format!("/customers/{id}/fields/history")).await.json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn preconditions_guard_field_writes() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let body = json!({"menu_notes": "x"});
    app.send_json(Method::PATCH, &format!("/customers/{id}/fields"), &body)
        .await
        .problem(StatusCode::PRECONDITION_REQUIRED);
    let res = patch(&app, &id, "\"c1\"", body.clone()).await;
    res.problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(res.header("etag"), Some("\"f1\""));
    assert_eq!(patch(&app, &id, "*", body).await.status, StatusCode::OK);
}

/// Many writers with the same ETag: exactly one wins, every other gets 412, and the winner's
/// change is the only one in the audit trail.
#[tokio::test]
async fn concurrent_writers_with_one_etag_have_one_winner() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let id = customer(&app).await;
    let writers: Vec<_> = (0..16)
        .map(|n| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                patch(&app, &id, "\"f1\"", json!({"menu_notes": format!("writer {n}")})).await.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for writer in writers {
        statuses.push(writer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::PRECONDITION_FAILED).count(),
        15,
        "{statuses:?}"
    );
    let history = app.get(&format!("/customers/{id}/fields/history")).await.json();
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_history_pages_newest_first_and_filters_by_key() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    for n in 1..=5 {
        let res =
            patch(&app, &id, "*", json!({"menu_notes": format!("v{n}"), "kitchen_profile": {"staff": n}}))
                .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }
    let mut seen = Vec::new();
    let mut path = format!("/customers/{id}/fields/history?key=menu_notes&limit=2");
    loop {
        let page = app.get(&path).await.json();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["newValue"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => {
                path = format!("/customers/{id}/fields/history?key=menu_notes&limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen, ["v5", "v4", "v3", "v2", "v1"]);
    let other = app.get(&format!("/customers/{id}/fields/history?key=kitchen_profile&limit=2")).await.json();
    let cursor = other["nextCursor"].as_str().unwrap();
    app.get(&format!("/customers/{id}/fields/history?key=menu_notes&cursor={cursor}"))
        .await
        .problem(StatusCode::BAD_REQUEST);
}
