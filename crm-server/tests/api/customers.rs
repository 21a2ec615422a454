//! Customers, locations of chains and contacts over HTTP.

use axum::http::{Method, StatusCode};
use crm_server::config::HttpArgs;
use crm_server::testing::{TestApp, TestResponse};
use serde_json::{Value, json};

pub async fn create(app: &TestApp, body: Value) -> Value {
    let res = app.send_json(Method::POST, "/customers", &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

pub fn loewen() -> Value {
    json!({
        "name": "Gasthaus Zum Löwen", "segment": "RESTAURANT", "territory": "BY",
        "address": {"street": "Marienplatz 1", "postalCode": "80331", "city": "München", "region": "DE-BY"}
    })
}

fn etag(res: &TestResponse) -> String {
    res.header("etag").expect("an ETag").to_owned()
}

#[tokio::test]
async fn a_customer_is_created_read_and_changed_with_its_etag() {
    let app = TestApp::spawn().await;
    let res = app.send_json(Method::POST, "/customers", &loewen()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(res.header("location"), Some(format!("/customers/{id}").as_str()));
    assert_eq!(etag(&res), "\"c1\"");
    assert_eq!(created["address"]["country"], "DE");
    assert_eq!(
        created["contactability"],
        json!({"status": "CONTACTABLE", "alternateChannelRequired": false})
    );

    let read = app.get(&format!("/customers/{id}")).await;
    assert_eq!(read.json(), created);
    assert_eq!(etag(&read), "\"c1\"");

    let patch = json!({"name": "Zum Goldenen Löwen", "address": {"street": null}});
    let res = app
        .send_json_with(Method::PATCH, &format!("/customers/{id}"), &[("if-match", "\"c1\"")], &patch)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(etag(&res), "\"c2\"");
    let changed = res.json();
    assert_eq!(changed["name"], "Zum Goldenen Löwen");
    assert!(changed["address"].get("street").is_none(), "{changed}");
    assert_eq!(changed["address"]["city"], "München");

    let events = app.events().await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["customer.created", "customer.updated"]);
    assert_eq!(events[1].data["changed"], json!(["name", "address"]));
}

#[tokio::test]
async fn writes_need_the_current_etag() {
    let app = TestApp::spawn().await;
    let id = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    let path = format!("/customers/{id}");
    let patch = json!({"segment": "HOTEL"});

    let problem =
        app.send_json(Method::PATCH, &path, &patch).await.problem(StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(problem["type"], "https://freshplan.io/problems/if-match-required");

    let res = app.send_json_with(Method::PATCH, &path, &[("if-match", "\"c1\"")], &patch).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn a_stale_or_foreign_etag_is_412_with_the_current_one() {
    let app = TestApp::spawn().await;
    let id = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    let path = format!("/customers/{id}");
    let ok = app
        .send_json_with(Method::PATCH, &path, &[("if-match", "\"c1\"")], &json!({"segment": "HOTEL"}))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    for stale in ["\"c1\"", "\"f2\"", "W/\"c2\""] {
        let res = app
            .send_json_with(Method::PATCH, &path, &[("if-match", stale)], &json!({"segment": "OTHER"}))
            .await;
        let problem = res.problem(StatusCode::PRECONDITION_FAILED);
        assert_eq!(problem["type"], "https://freshplan.io/problems/stale-version");
        assert_eq!(res.header("etag"), Some("\"c2\""), "{stale}");
    }
    let res = app.send_json_with(Method::PATCH, &path, &[("if-match", "nonsense")], &json!({})).await;
    res.problem(StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&path).await.json()["segment"], "HOTEL");
}

#[tokio::test]
async fn without_required_if_match_a_write_applies_to_the_current_version() {
    let app =
        TestApp::spawn_with(HttpArgs { require_if_match: false, ..HttpArgs::default() }, Default::default())
            .await;
    let id = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    let res = app.send_json(Method::PATCH, &format!("/customers/{id}"), &json!({"segment": "CATERER"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["version"], 2);
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version_and_emits_nothing() {
    let app = TestApp::spawn().await;
    let id = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    let res = app
        .send_json_with(
            Method::PATCH,
            &format!("/customers/{id}"),
            &[("if-match", "*")],
            &json!({"territory": "BY"}),
        )
        .await;
    assert_eq!((res.status, etag(&res)), (StatusCode::OK, "\"c1\"".to_owned()));
    assert_eq!(app.events().await.len(), 1);
}

#[tokio::test]
async fn invalid_customers_are_refused_with_every_pointer_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let body =
        json!({"name": " ", "segment": "HOTEL", "territory": "bayern", "address": {"postalCode": "123"}});
    let problem =
        app.send_json(Method::POST, "/customers", &body).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let pointers: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/name", "/territory", "/address/postalCode"]);

    let problem = app
        .send_json(Method::POST, "/customers", &json!({"name": "A", "segment": "BAR", "territory": "BY"}))
        .await;
    assert_eq!(problem.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["pointer"], "/segment");

    let id = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    let res = app
        .send_json_with(
            Method::PATCH,
            &format!("/customers/{id}"),
            &[("if-match", "\"c1\"")],
            &json!({"id": "x"}),
        )
        .await;
    res.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.events().await.len(), 1);
}

#[tokio::test]
async fn malformed_and_unknown_ids_are_400_and_404() {
    let app = TestApp::spawn().await;
    for path in ["/customers/42", "/customers/42/fields", "/customers/42/contacts", "/contacts/x"] {
        app.get(path).await.problem(StatusCode::BAD_REQUEST);
    }
    let unknown = "0193a1b2-0000-7000-8000-000000000000";
    for path in ["", "/fields", "/fields/history", "/contacts", "/locations"] {
        app.get(&format!("/customers/{unknown}{path}")).await.problem(StatusCode::NOT_FOUND);
    }
    let res = app
        .send_json_with(Method::PATCH, &format!("/customers/{unknown}"), &[("if-match", "*")], &json!({}))
        .await;
    res.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn chains_have_locations_and_stay_chains_while_they_do() {
    let app = TestApp::spawn().await;
    let chain = create(
        &app,
        json!({"name": "Alpenhof Hotels", "segment": "HOTEL", "territory": "BY", "isChain": true}),
    )
    .await;
    let chain_id = chain["id"].as_str().unwrap();
    let single = create(&app, loewen()).await;

    for (name, territory) in [("Alpenhof Garmisch", "BY"), ("Alpenhof Köln", "NRW")] {
        create(
            &app,
            json!({"name": name, "segment": "HOTEL", "territory": territory, "parentAccountId": chain_id}),
        )
        .await;
    }
    let body = json!({"name": "X", "segment": "HOTEL", "territory": "BY", "parentAccountId": single["id"]});
    let problem =
        app.send_json(Method::POST, "/customers", &body).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/parentAccountId");

    let page = app.get(&format!("/customers/{chain_id}/locations")).await.json();
    let names: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Alpenhof Garmisch", "Alpenhof Köln"]);

    let res = app
        .send_json_with(
            Method::PATCH,
            &format!("/customers/{chain_id}"),
            &[("if-match", "*")],
            &json!({"isChain": false}),
        )
        .await;
    let problem = res.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/isChain");
    assert!(problem["errors"][0]["detail"].as_str().unwrap().contains("2 location"), "{problem}");
}

#[tokio::test]
async fn a_hard_bounce_changes_contactability_and_says_so() {
    let app = TestApp::spawn().await;
    let id = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    let patch = json!({"contactability": {"status": "HARD_BOUNCE"}});
    let res = app
        .send_json_with(Method::PATCH, &format!("/customers/{id}"), &[("if-match", "\"c1\"")], &patch)
        .await;
    assert_eq!(
        res.json()["contactability"],
        json!({"status": "HARD_BOUNCE", "alternateChannelRequired": true})
    );
    let events = app.events().await;
    let bounce =
        events.iter().find(|e| e.event_type == "customer.contactability.changed").expect("the seed event");
    assert_eq!(
        bounce.data,
        json!({"customerId": id, "status": "HARD_BOUNCE", "previousStatus": "CONTACTABLE", "alternateChannelRequired": true})
    );
}

#[tokio::test]
async fn contacts_hold_roles_at_several_accounts() {
    let app = TestApp::spawn().await;
    let loewen = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    let post = create(&app, json!({"name": "Hotel Post", "segment": "HOTEL", "territory": "BY"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let body = json!({"firstName": "Anna", "lastName": "Huber", "email": "anna@loewen.de", "roles": ["HEAD_CHEF", "OWNER"]});
    let res = app.send_json(Method::POST, &format!("/customers/{loewen}/contacts"), &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let anna = res.json();
    let anna_id = anna["id"].as_str().unwrap().to_owned();
    assert_eq!(anna["accounts"], json!([{"accountId": loewen, "roles": ["HEAD_CHEF", "OWNER"]}]));

    let res = app
        .send_json(
            Method::PUT,
            &format!("/customers/{post}/contacts/{anna_id}/roles"),
            &json!({"roles": ["BUYER"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["accounts"].as_array().unwrap().len(), 2);

    let listed = app.get(&format!("/customers/{post}/contacts")).await.json();
    assert_eq!(listed["items"][0]["accounts"], json!([{"accountId": post, "roles": ["BUYER"]}]));

    let contact = app.get(&format!("/contacts/{anna_id}")).await;
    let tag = etag(&contact);
    let res = app
        .send_json_with(
            Method::PATCH,
            &format!("/contacts/{anna_id}"),
            &[("if-match", &tag)],
            &json!({"phone": "+49 89 123"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["phone"], "+49 89 123");

    let res = app.send(Method::DELETE, &format!("/customers/{post}/contacts/{anna_id}/roles"), &[], "").await;
    assert_eq!(res.json()["accounts"].as_array().unwrap().len(), 1);
    assert!(
        app.get(&format!("/customers/{post}/contacts")).await.json()["items"].as_array().unwrap().is_empty()
    );

    let problem = app
        .send_json(
            Method::POST,
            &format!("/customers/{loewen}/contacts"),
            &json!({"firstName": "B", "lastName": "C", "roles": []}),
        )
        .await;
    assert_eq!(problem.problem(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["pointer"], "/roles");

    let types: Vec<String> = app.events().await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(
        types[2..],
        ["contact.created", "contact.roles.changed", "contact.updated", "contact.roles.changed"]
    );
}
