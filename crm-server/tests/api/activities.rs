//! Activities over HTTP: the four kinds and their validation, SLAs, follow-ups, the fields they
//! feed, the timeline with German full-text search, and isolation.

use axum::http::{Method, StatusCode};
use crm_server::auth::UserRole;
use crm_server::testing::{TestApp, TestResponse};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::customers::{create, loewen};
use crate::samples::{new_sample, set_status};

async fn post(app: &TestApp, body: &Value) -> TestResponse {
    app.send_json_with(Method::POST, "/activities", &[("idempotency-key", &Uuid::now_v7().to_string())], body)
        .await
}

async fn record(app: &TestApp, body: Value) -> Value {
    let res = post(app, &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{body}: {}", res.text());
    res.json()
}

/// An instant a day before now: an activity then is not overdue yet, whatever today is.
pub fn yesterday() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::days(1)
}

pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

async fn customer(app: &TestApp) -> String {
    create(app, loewen()).await["id"].as_str().unwrap().to_owned()
}

async fn fields(app: &TestApp, customer: &str) -> Value {
    app.get(&format!("/customers/{customer}/fields")).await.json()["values"].clone()
}

async fn write_fields(app: &TestApp, customer: &str, values: Value) {
    let res = app
        .send_json_with(
            Method::PATCH,
            &format!("/customers/{customer}/fields"),
            &[("if-match", "*")],
            &values,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn each_kind_is_validated_with_pointers() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let cases = [
        (json!({"kind": "PHONE_CALL", "customerId": id}), "/kind"),
        (json!({"customerId": id, "outcome": "QUALIFIED"}), "/kind"),
        (json!({"kind": "ROI_CONSULTATION", "customerId": id, "outcome": "QUALIFIED"}), "/roiScenarioId"),
        (
            json!({"kind": "ROI_CONSULTATION", "customerId": id, "roiScenarioId": Uuid::nil(), "outcome": "SUCCESS"}),
            "/outcome",
        ),
        (
            json!({"kind": "ROI_CONSULTATION", "customerId": id, "roiScenarioId": Uuid::nil(), "outcome": "QUALIFIED", "rating": 3}),
            "/rating",
        ),
        (
            json!({"kind": "ROI_CONSULTATION", "customerId": id, "roiScenarioId": Uuid::nil(), "outcome": "QUALIFIED", "savingsPerMonth": -5}),
            "/savingsPerMonth",
        ),
        (
            json!({"kind": "DECISION_MAKER_ALIGNMENT", "customerId": id, "roles": [], "alignmentScore": 50, "outcome": "ALIGNED"}),
            "/roles",
        ),
        (
            json!({"kind": "DECISION_MAKER_ALIGNMENT", "customerId": id, "roles": ["GF"], "alignmentScore": 50, "outcome": "ALIGNED"}),
            "/roles/0",
        ),
        (
            json!({"kind": "DECISION_MAKER_ALIGNMENT", "customerId": id, "roles": ["BUYER"], "alignmentScore": 150, "outcome": "ALIGNED"}),
            "/alignmentScore",
        ),
        (
            json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q4", "outcome": "DRAFT", "plannedDishes": [""]}),
            "/plannedDishes/0",
        ),
        (
            json!({"kind": "PRODUCTTEST_FEEDBACK", "customerId": id, "sampleId": Uuid::nil(), "outcome": "SUCCESS", "rating": 6}),
            "/rating",
        ),
        (
            json!({"kind": "PRODUCTTEST_FEEDBACK", "customerId": id, "sampleId": Uuid::nil(), "outcome": "SUCCESS"}),
            "/sampleId",
        ),
        (
            json!({"kind": "MENU_INTEGRATION", "customerId": Uuid::nil(), "season": "Q4", "outcome": "DRAFT"}),
            "/customerId",
        ),
        (
            json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q4", "outcome": "DRAFT", "occurredAt": "2999-01-01T00:00:00Z"}),
            "/occurredAt",
        ),
        (
            json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q4", "outcome": "DRAFT", "followUpOf": Uuid::nil()}),
            "/followUpOf",
        ),
    ];
    for (body, pointer) in cases {
        let problem = post(&app, &body).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{body}: {problem}");
    }
    let res = app
        .send_json(
            Method::POST,
            "/activities",
            &json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q4", "outcome": "DRAFT"}),
        )
        .await;
    assert_eq!(res.problem(StatusCode::BAD_REQUEST)["errors"][0]["parameter"], "Idempotency-Key");
    let activities: i64 =
        sqlx::query_scalar("SELECT count(*) FROM activity").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(activities, 0);
}

#[tokio::test]
async fn feedback_needs_a_delivered_sample_and_completes_its_follow_up() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let sample = new_sample(&app, &id).await;
    let sid = sample["id"].as_str().unwrap();
    let feedback = json!({"kind": "PRODUCTTEST_FEEDBACK", "customerId": id, "sampleId": sid, "rating": 4, "outcome": "SUCCESS",
                          "sensoricNotes": "Sauce schön cremig", "menuFit": true});
    let problem = post(&app, &feedback).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/sampleId");
    for status in ["PACKED", "SHIPPED", "DELIVERED"] {
        assert_eq!(set_status(&app, sid, json!({"newStatus": status})).await.status, StatusCode::OK);
    }
    let due = app.get(&format!("/samples/{sid}")).await.json()["followupDue"].clone();
    let activity = record(&app, feedback).await;
    assert_eq!(activity["kind"], "PRODUCTTEST_FEEDBACK");
    assert_eq!(activity["rating"], 4);
    assert_eq!(activity["sla"]["due"], due);
    assert_eq!(activity["sla"]["status"], "MET");
    let sample = app.get(&format!("/samples/{sid}")).await.json();
    assert!(sample["followupDoneAt"].is_string(), "{sample}");
    let created: Vec<Value> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "activity.created")
        .map(|e| e.data)
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["outcome"], "SUCCESS");
    assert_eq!(created[0]["activityId"], activity["id"]);
}

#[tokio::test]
async fn an_roi_consultation_feeds_the_projection_and_waits_for_its_follow_up() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let roi = record(
        &app,
        json!({"kind": "ROI_CONSULTATION", "customerId": id, "roiScenarioId": Uuid::now_v7(), "assumptionsVersion": "2026-11",
               "savingsPerMonth": 1800, "outcome": "QUALIFIED", "occurredAt": rfc3339(yesterday())}),
    )
    .await;
    let due = crm_server::domain::berlin::date(yesterday()) + time::Duration::days(7);
    assert_eq!(roi["sla"]["due"], due.to_string(), "seven days after the consultation");
    assert_eq!(roi["sla"]["status"], "OPEN");
    assert_eq!(fields(&app, &id).await["roi_potential"], json!({"bucket": "HIGH", "value": 1800.0}));
    let found = app.get("/customers?roi_bucket=HIGH").await.json();
    assert_eq!(found["items"][0]["id"], id.as_str());
    assert!(app.events().await.iter().any(|e| e.event_type == "customer.fields.changed"));

    let next = record(
        &app,
        json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q1", "outcome": "DRAFT", "followUpOf": roi["id"]}),
    )
    .await;
    assert_eq!(next["followUpOf"], roi["id"]);
    let roi = app.get(&format!("/activities/{}", roi["id"].as_str().unwrap())).await.json();
    assert_eq!(roi["sla"]["status"], "MET");

    let old = record(
        &app,
        json!({"kind": "ROI_CONSULTATION", "customerId": id, "roiScenarioId": Uuid::now_v7(), "outcome": "NEEDS_DATA",
               "occurredAt": "2026-01-05T10:00:00Z"}),
    )
    .await;
    assert_eq!(old["sla"]["status"], "OVERDUE");
}

#[tokio::test]
async fn alignment_and_menu_slas_follow_the_contract_and_the_season() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let none = record(
        &app,
        json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q4/Xmas", "outcome": "DRAFT"}),
    )
    .await;
    assert_eq!(none["sla"], json!({"status": "NONE"}), "no season window, no SLA");
    write_fields(
        &app,
        &id,
        json!({"seasonal_menu_cycle": {"season_start": "2026-11-01", "season_end": "2026-12-20"},
               "current_supplier_contracts": {"renewal_date": "2027-03-01", "exclusivity": true},
               "decision_makers": {"count": 4, "has_exec_alignment": false}}),
    )
    .await;
    let menu = record(
        &app,
        json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q4/Xmas", "plannedDishes": ["Gänsebraten", "Rotkohl"],
               "rolloutWindow": {"start": "2026-12-01", "end": "2026-12-31"}, "outcome": "MENU_LOCKED",
               "occurredAt": "2026-11-20T10:00:00Z"}),
    )
    .await;
    assert_eq!(menu["sla"]["due"], "2026-12-20");
    assert_eq!(menu["sla"]["status"], "MET");
    let aligned = record(
        &app,
        json!({"kind": "DECISION_MAKER_ALIGNMENT", "customerId": id, "roles": ["HEAD_CHEF", "MANAGING_DIRECTOR"],
               "alignmentScore": 85, "outcome": "ALIGNED", "occurredAt": "2026-11-25T10:00:00Z"}),
    )
    .await;
    assert_eq!(aligned["sla"]["due"], "2027-01-30");
    assert_eq!(aligned["sla"]["status"], "MET");
    assert_eq!(fields(&app, &id).await["decision_makers"], json!({"count": 4, "has_exec_alignment": true}));
}

#[tokio::test]
async fn the_timeline_filters_by_kind_time_and_german_text_and_pages() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let mut ids = Vec::new();
    for (day, note) in [
        (1, "Saucen probiert, sehr gut"),
        (2, "Termin mit der Geschäftsführung"),
        (3, "Braten zu salzig"),
        (4, "Rückruf vereinbart"),
    ] {
        let body = json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Frühling", "outcome": "DRAFT", "note": note,
                          "occurredAt": format!("2026-11-0{day}T10:00:00Z"), "plannedDishes": ["Spargel mit Sauce Hollandaise"]});
        ids.push(record(&app, body).await["id"].as_str().unwrap().to_owned());
    }
    record(&app, json!({"kind": "ROI_CONSULTATION", "customerId": id, "roiScenarioId": Uuid::nil(), "outcome": "NO_INTEREST",
                        "occurredAt": "2026-11-05T10:00:00Z"})).await;
    let get = |query: &str| {
        let url = format!("/customers/{id}/activities?{query}");
        let app = &app;
        async move {
            let res = app.get(&url).await;
            assert_eq!(res.status, StatusCode::OK, "{url}: {}", res.text());
            res.json()
        }
    };
    let ids_of = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    let menu = get("kind=MENU_INTEGRATION").await;
    assert_eq!(ids_of(&menu), ids.iter().rev().cloned().collect::<Vec<_>>(), "newest first");
    assert_eq!(get("").await["items"].as_array().unwrap().len(), 5);
    let window = get("from=2026-11-02T00:00:00Z&to=2026-11-04T00:00:00Z").await;
    assert_eq!(ids_of(&window), [ids[2].clone(), ids[1].clone()]);
    // German stemming: "Sauce" finds "Saucen"; the payload's texts are searched too.
    assert_eq!(ids_of(&get("q=Sauce&kind=MENU_INTEGRATION").await).len(), 4, "plannedDishes mention a sauce");
    assert_eq!(ids_of(&get("q=salzigen").await), [ids[2].clone()]);
    assert_eq!(ids_of(&get("q=%22Gesch%C3%A4ftsf%C3%BChrung%22").await), [ids[1].clone()]);

    let mut seen = Vec::new();
    let mut page = get("limit=2").await;
    loop {
        seen.extend(ids_of(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => page = get(&format!("limit=2&cursor={cursor}")).await,
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    app.get(&format!("/customers/{id}/activities?kind=CALL")).await.problem(StatusCode::BAD_REQUEST);
    app.get(&format!(
        "/customers/{id}/activities?limit=2&kind=ROI_CONSULTATION&cursor={}",
        menu["nextCursor"].as_str().unwrap_or("x")
    ))
    .await
    .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn activities_of_another_territory_are_invisible() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await; // BY
    let activity = record(
        &app,
        json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q4", "outcome": "DRAFT"}),
    )
    .await;
    let rep = format!("Bearer {}", app.token("rep-nrw", &[UserRole::SalesRep], &["NRW"], &[]));
    let auth = [("authorization", rep.as_str())];
    app.send(Method::GET, &format!("/customers/{id}/activities"), &auth, "")
        .await
        .problem(StatusCode::NOT_FOUND);
    app.send(Method::GET, &format!("/activities/{}", activity["id"].as_str().unwrap()), &auth, "")
        .await
        .problem(StatusCode::NOT_FOUND);
    let res = app
        .send(
            Method::POST,
            "/activities",
            &[
                ("authorization", rep.as_str()),
                ("content-type", "application/json"),
                ("idempotency-key", "x"),
            ],
            json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Q4", "outcome": "DRAFT"})
                .to_string(),
        )
        .await;
    assert_eq!(res.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["pointer"], "/customerId");
}

#[tokio::test]
async fn dates_outside_the_years_1900_to_9999_are_refused_naming_where() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    let cases = [
        (
            json!({"kind": "ROI_CONSULTATION", "customerId": id, "roiScenarioId": Uuid::nil(), "outcome": "QUALIFIED",
                "occurredAt": "0000-01-01T00:00:00Z"}),
            "/occurredAt",
        ),
        (
            json!({"kind": "MENU_INTEGRATION", "customerId": id, "season": "Xmas", "outcome": "DRAFT",
                "rolloutWindow": {"start": "1899-12-31", "end": "2027-01-06"}}),
            "/rolloutWindow/start",
        ),
    ];
    for (body, pointer) in cases {
        let problem = post(&app, &body).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    }
    let ok = json!({"kind": "ROI_CONSULTATION", "customerId": id, "roiScenarioId": Uuid::nil(), "outcome": "QUALIFIED",
                    "occurredAt": "1900-01-01T00:00:00Z"});
    assert_eq!(post(&app, &ok).await.status, StatusCode::CREATED);
    for (path, parameter) in [
        (format!("/customers/{id}/activities?from=0001-01-01T00:00:00Z"), "from"),
        ("/customers?renewal_before=0000-12-31".to_owned(), "renewal_before"),
        ("/cockpit/summary?to=1899-01-01T00:00:00Z".to_owned(), "to"),
    ] {
        let problem = app.get(&path).await.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["parameter"], parameter, "{problem}");
    }
}
