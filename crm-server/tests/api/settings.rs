//! The settings registry over HTTP: scopes and precedence, versions and ETags, preconditions,
//! validation per key, the audit trail, the event, roles, and what the database alone enforces.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use crm_server::auth::{Identity, UserRole};
use crm_server::db::scope;
use crm_server::testing::{TestApp, TestResponse};
use serde_json::{Value, json};

use crate::customers::{create, loewen};

const RATE: &str = "gateway.rateLimit";

fn at(scope: &str, key: &str) -> String {
    format!("/settings/{scope}/{key}")
}

/// `PUT` of `value` as the test admin, with further headers.
async fn put(app: &TestApp, scope: &str, key: &str, value: Value, headers: &[(&str, &str)]) -> TestResponse {
    app.send_json_with(Method::PUT, &at(scope, key), headers, &json!({ "value": value })).await
}

async fn delete(app: &TestApp, scope: &str, key: &str, headers: &[(&str, &str)]) -> TestResponse {
    app.send(Method::DELETE, &at(scope, key), headers, "").await
}

fn etag(res: &TestResponse) -> String {
    res.header("etag").unwrap_or_else(|| panic!("no ETag: {}", res.text())).to_owned()
}

async fn effective(app: &TestApp, query: &str) -> TestResponse {
    let res = app.get(&format!("/settings/effective?{query}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res
}

fn bearer(app: &TestApp, subject: &str, roles: &[UserRole], territories: &[&str]) -> String {
    format!("Bearer {}", app.token(subject, roles, territories, &[]))
}

#[tokio::test]
async fn the_catalog_lists_the_four_gateway_keys_with_their_schemas() {
    let app = TestApp::spawn().await;
    let catalog = app.get("/settings/keys").await.json();
    let keys: Vec<&str> =
        catalog["keys"].as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["gateway.cors.origins", "gateway.ipAllowlist", "gateway.rateLimit", "gateway.requestSizeLimit"]
    );
    for key in catalog["keys"].as_array().unwrap() {
        assert!(key["description"].as_str().unwrap().contains("TenantPolicy"), "{key}");
        assert_eq!(key["schema"]["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(key["schema"]["description"], key["description"]);
    }
}

#[tokio::test]
async fn a_setting_is_created_read_replaced_and_deleted_under_its_etag() {
    let app = TestApp::spawn().await;
    let res = put(&app, "tenant:acme", RATE, json!({"minute": 600}), &[]).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    let v1 = created["version"].as_i64().unwrap();
    assert_eq!(etag(&res), format!("\"k{v1}\""));
    assert_eq!(created["scope"], "tenant:acme");
    assert_eq!(created["key"], RATE);
    assert_eq!(created["value"], json!({"minute": 600}));
    assert_eq!(created["updatedBy"], "user:test-admin");
    assert!(created["updatedAt"].is_string());
    let members: BTreeSet<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(members, BTreeSet::from(["key", "scope", "updatedAt", "updatedBy", "value", "version"]));

    let read = app.get(&at("tenant:acme", RATE)).await;
    assert_eq!((read.status, etag(&read)), (StatusCode::OK, format!("\"k{v1}\"")));
    assert_eq!(read.json(), created);

    // Replacing needs the current tag.
    put(&app, "tenant:acme", RATE, json!({"minute": 500}), &[])
        .await
        .problem(StatusCode::PRECONDITION_REQUIRED);
    let stale = put(&app, "tenant:acme", RATE, json!({"minute": 500}), &[("if-match", "\"k999\"")]).await;
    stale.problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(etag(&stale), format!("\"k{v1}\""), "a 412 carries the current tag");
    put(&app, "tenant:acme", RATE, json!({"minute": 500}), &[("if-none-match", "*")])
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    let tag = format!("\"k{v1}\"");
    let res = put(&app, "tenant:acme", RATE, json!({"minute": 500}), &[("if-match", &tag)]).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let v2 = res.json()["version"].as_i64().unwrap();
    assert!(v2 > v1);
    assert_eq!(etag(&res), format!("\"k{v2}\""));

    // Writing the value it has is no change: same version, nothing in the history.
    let tag = format!("\"k{v2}\"");
    let res = put(&app, "tenant:acme", RATE, json!({"minute": 500}), &[("if-match", &tag)]).await;
    assert_eq!((res.status, res.json()["version"].as_i64()), (StatusCode::OK, Some(v2)));
    let history = app.get(&format!("{}/history", at("tenant:acme", RATE))).await.json();
    assert_eq!(history["items"].as_array().unwrap().len(), 2);

    delete(&app, "tenant:acme", RATE, &[]).await.problem(StatusCode::PRECONDITION_REQUIRED);
    delete(&app, "tenant:acme", RATE, &[("if-match", &format!("\"k{v1}\""))])
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    let res = delete(&app, "tenant:acme", RATE, &[("if-match", &tag)]).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert!(res.body.is_empty());
    app.get(&at("tenant:acme", RATE)).await.problem(StatusCode::NOT_FOUND);
    delete(&app, "tenant:acme", RATE, &[("if-match", "*")]).await.problem(StatusCode::NOT_FOUND);
    // If-Match on a setting that is not set cannot match.
    put(&app, "tenant:acme", RATE, json!({"minute": 500}), &[("if-match", "*")])
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    put(&app, "tenant:acme", RATE, json!({"minute": 500}), &[("if-match", &tag)])
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    // If-None-Match: * creates.
    let res = put(&app, "tenant:acme", RATE, json!({"minute": 500}), &[("if-none-match", "*")]).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

#[tokio::test]
async fn the_effective_view_takes_the_most_specific_value_whole_and_its_version_rises_with_every_change_in_the_chain()
 {
    let app = TestApp::spawn().await;
    let view = |query: &'static str| {
        let app = &app;
        async move { effective(app, query).await.json() }
    };
    let empty = view("tenant=acme&org=munich").await;
    assert_eq!(empty, json!({"tenant": "acme", "org": "munich", "version": 0, "settings": {}}));
    assert_eq!(
        view("tenant=acme").await,
        json!({"tenant": "acme", "org": null, "version": 0, "settings": {}})
    );

    let mut org_versions = vec![0];
    let mut tenant_versions = vec![0];
    let mut step = |org: &Value, tenant: &Value| {
        org_versions.push(org["version"].as_i64().unwrap());
        tenant_versions.push(tenant["version"].as_i64().unwrap());
    };

    put(&app, "global", RATE, json!({"second": 20, "minute": 900}), &[]).await;
    put(&app, "global", "gateway.requestSizeLimit", json!("8Mi"), &[]).await;
    let (org, tenant) = (view("tenant=acme&org=munich").await, view("tenant=acme").await);
    assert_eq!(org["settings"][RATE]["scope"], "global");
    assert_eq!(org["settings"]["gateway.requestSizeLimit"]["value"], "8Mi");
    step(&org, &tenant);

    let res = put(&app, "tenant:acme", RATE, json!({"minute": 600}), &[]).await;
    let tenant_rate = res.json()["version"].clone();
    let (org, tenant) = (view("tenant=acme&org=munich").await, view("tenant=acme").await);
    // Whole value: the global `second` does not shine through.
    assert_eq!(
        org["settings"][RATE],
        json!({"value": {"minute": 600}, "scope": "tenant:acme", "version": tenant_rate})
    );
    assert_eq!(org["settings"]["gateway.requestSizeLimit"]["scope"], "global");
    step(&org, &tenant);

    let res = put(&app, "org:acme:munich", RATE, json!({"minute": 300}), &[]).await;
    let org_etag = etag(&res);
    let (org, tenant) = (view("tenant=acme&org=munich").await, view("tenant=acme").await);
    assert_eq!(org["settings"][RATE]["scope"], "org:acme:munich");
    assert_eq!(tenant["settings"][RATE]["scope"], "tenant:acme", "an org's value is not the tenant's");
    step(&org, &tenant);

    // Other tenants and orgs are outside the chain.
    put(&app, "tenant:zeta", RATE, json!({"minute": 1}), &[]).await;
    put(&app, "org:acme:berlin", RATE, json!({"minute": 2}), &[]).await;
    let (org, tenant) = (view("tenant=acme&org=munich").await, view("tenant=acme").await);
    assert_eq!(org["settings"][RATE]["value"], json!({"minute": 300}));
    step(&org, &tenant);

    delete(&app, "org:acme:munich", RATE, &[("if-match", &org_etag)]).await;
    let (org, tenant) = (view("tenant=acme&org=munich").await, view("tenant=acme").await);
    assert_eq!(org["settings"][RATE]["scope"], "tenant:acme");
    step(&org, &tenant);

    delete(&app, "tenant:acme", RATE, &[("if-match", "*")]).await;
    let (org, tenant) = (view("tenant=acme&org=munich").await, view("tenant=acme").await);
    assert_eq!(org["settings"][RATE]["scope"], "global");
    step(&org, &tenant);

    delete(&app, "global", RATE, &[("if-match", "*")]).await;
    delete(&app, "global", "gateway.requestSizeLimit", &[("if-match", "*")]).await;
    let (org, tenant) = (view("tenant=acme&org=munich").await, view("tenant=acme").await);
    assert_eq!(org["settings"], json!({}));
    step(&org, &tenant);

    // The org's chain saw a change at every step but the one outside it; the tenant's chain also
    // not at the org's own changes.
    let rises = |versions: &[i64]| versions.windows(2).map(|w| w[1] > w[0]).collect::<Vec<_>>();
    assert!(org_versions.windows(2).all(|w| w[1] >= w[0]), "{org_versions:?}");
    assert_eq!(rises(&org_versions), [true, true, true, false, true, true, true], "{org_versions:?}");
    assert_eq!(rises(&tenant_versions), [true, true, false, false, false, true, true], "{tenant_versions:?}");
}

#[tokio::test]
async fn a_current_if_none_match_is_answered_304_until_something_in_the_chain_changes() {
    let app = TestApp::spawn().await;
    let res = put(&app, "tenant:acme", "gateway.cors.origins", json!(["https://cockpit.example"]), &[]).await;
    let single = etag(&res);
    let first = effective(&app, "tenant=acme&org=munich").await;
    let tag = etag(&first);
    let version = first.json()["version"].as_i64().unwrap();
    assert_eq!(tag, format!("\"e{version}:acme:munich\""));

    for sent in [tag.clone(), format!("W/{tag}"), format!("\"e0:acme:munich\", {tag}"), "*".to_owned()] {
        let res = app
            .send(Method::GET, "/settings/effective?tenant=acme&org=munich", &[("if-none-match", &sent)], "")
            .await;
        assert_eq!(res.status, StatusCode::NOT_MODIFIED, "{sent}: {}", res.text());
        assert!(res.body.is_empty());
        assert_eq!(etag(&res), tag);
    }
    // Another tenant's or org's view at the same version is another view.
    let other =
        app.send(Method::GET, "/settings/effective?tenant=acme", &[("if-none-match", &tag)], "").await;
    assert_eq!(other.status, StatusCode::OK);
    let res = app
        .send(Method::GET, &at("tenant:acme", "gateway.cors.origins"), &[("if-none-match", &single)], "")
        .await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);

    put(&app, "global", "gateway.requestSizeLimit", json!("1Mi"), &[]).await;
    let res = app
        .send(Method::GET, "/settings/effective?tenant=acme&org=munich", &[("if-none-match", &tag)], "")
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_ne!(etag(&res), tag);
    app.send(Method::GET, "/settings/effective?tenant=acme", &[("if-none-match", "c1")], "")
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn each_key_refuses_bad_values_with_one_error_per_violation_under_value_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (RATE, json!({"minute": 600, "hour": 100}), vec!["/value/hour"]),
        (
            RATE,
            json!({"second": 100, "minute": 50, "hour": 80, "day": 1000}),
            vec!["/value/hour", "/value/minute"],
        ),
        (RATE, json!({"second": 0, "week": 1}), vec!["/value", "/value/second"]),
        (RATE, json!({}), vec!["/value"]),
        (RATE, json!({"minute": 2_000_000_000_u64}), vec!["/value/minute"]),
        (RATE, json!({"minute": 600.0}), vec!["/value/minute"]),
        (
            "gateway.cors.origins",
            json!(["ftp://files.example", "*", "https://ok.example:443"]),
            vec!["/value/0"],
        ),
        ("gateway.cors.origins", json!(["*", "*"]), vec!["/value"]),
        ("gateway.cors.origins", json!([]), vec!["/value"]),
        ("gateway.requestSizeLimit", json!("8MB"), vec!["/value"]),
        ("gateway.requestSizeLimit", json!(8), vec!["/value"]),
        (
            "gateway.ipAllowlist",
            json!(["10.0.0.0/33", "2001:db8::/32", "300.1.1.1", "2001:db8::g", "10.1.2.3", "fe80::/129"]),
            vec!["/value/0", "/value/2", "/value/3", "/value/5"],
        ),
        ("gateway.ipAllowlist", json!("10.0.0.0/8"), vec!["/value"]),
        (RATE, Value::Null, vec!["/value"]),
    ];
    for (key, value, expected) in cases {
        let problem =
            put(&app, "global", key, value.clone(), &[]).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
        let mut pointers: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
        pointers.sort();
        assert_eq!(pointers, expected, "{key} = {value}: {problem}");
    }
    let problem = app
        .send_json(Method::PUT, &at("global", RATE), &json!({}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/value");
    let problem = app
        .send_json(Method::PUT, &at("global", RATE), &json!({"value": {"minute": 1}, "scope": "global"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/scope");

    assert_eq!(effective(&app, "tenant=acme").await.json()["version"], 0, "nothing was written");
    assert!(app.events().await.is_empty());
}

#[tokio::test]
async fn unknown_keys_are_404_and_malformed_scopes_and_tenants_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    for path in [at("global", "gateway.nope"), format!("{}/history", at("global", "gateway.nope"))] {
        app.get(&path).await.problem(StatusCode::NOT_FOUND);
    }
    put(&app, "global", "gateway.nope", json!(1), &[]).await.problem(StatusCode::NOT_FOUND);
    delete(&app, "tenant:acme", "gateway.nope", &[("if-match", "*")]).await.problem(StatusCode::NOT_FOUND);

    for scope in
        ["tenant:ACME", "org:acme", "site:x", "tenant:-acme", "tenant:acme:munich", "Global", "org:a:b:c"]
    {
        let problem = app.get(&at(scope, RATE)).await.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["parameter"], "scope", "{scope}: {problem}");
        let problem =
            put(&app, scope, RATE, json!({"minute": 1}), &[]).await.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["parameter"], "scope", "{scope}: {problem}");
    }
    let long = "x".repeat(64);
    for (query, parameter) in [
        ("", "tenant"),
        ("org=munich", "tenant"),
        ("tenant=Acme", "tenant"),
        (&*format!("tenant={long}"), "tenant"),
        ("tenant=acme&org=m%C3%BCnchen", "org"),
        ("tenant=acme&region=by", "region"),
    ] {
        let problem = app.get(&format!("/settings/effective?{query}")).await.problem(StatusCode::BAD_REQUEST);
        let named: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["parameter"].as_str().unwrap()).collect();
        assert!(named.contains(&parameter), "{query}: {problem}");
    }
}

#[tokio::test]
async fn the_history_records_who_what_when_and_the_correlation_id_and_no_version_is_ever_reissued() {
    let app = TestApp::spawn().await;
    let anna = bearer(&app, "ops-anna", &[UserRole::Admin], &[]);
    let key = "gateway.ipAllowlist";
    let send = |method: Method, headers: Vec<(&'static str, String)>, body: Option<Value>| {
        let (app, anna) = (&app, anna.clone());
        async move {
            let mut all: Vec<(&str, &str)> =
                vec![("authorization", &anna), ("content-type", "application/json")];
            all.extend(headers.iter().map(|(n, v)| (*n, v.as_str())));
            let body = body.map(|b| serde_json::to_vec(&json!({ "value": b })).unwrap()).unwrap_or_default();
            app.send(method, &at("org:acme:munich", key), &all, body).await
        }
    };
    let created =
        send(Method::PUT, vec![("x-correlation-id", "c-1".into())], Some(json!(["10.0.0.0/8"]))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let replaced = send(
        Method::PUT,
        vec![("x-correlation-id", "c-2".into()), ("if-match", etag(&created))],
        Some(json!(["10.0.0.0/8", "2001:db8::/32"])),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text());
    let deleted =
        send(Method::DELETE, vec![("x-correlation-id", "c-3".into()), ("if-match", etag(&replaced))], None)
            .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    let recreated =
        send(Method::PUT, vec![("x-correlation-id", "c-4".into())], Some(json!(["10.0.0.0/8"]))).await;
    assert_eq!(recreated.status, StatusCode::CREATED, "{}", recreated.text());
    assert_eq!(recreated.json()["value"], created.json()["value"]);
    assert_ne!(etag(&recreated), etag(&created), "the same value recreated gets a new tag");
    // The old tag cannot replace the recreated setting.
    send(Method::PUT, vec![("if-match", etag(&created))], Some(json!(["10.0.0.1"])))
        .await
        .problem(StatusCode::PRECONDITION_FAILED);

    let history = app.get(&format!("{}/history", at("org:acme:munich", key))).await.json();
    let items = history["items"].as_array().unwrap();
    assert!(history.get("nextCursor").is_none());
    let actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["set", "delete", "set", "set"], "newest first");
    let versions: Vec<i64> = items.iter().map(|i| i["version"].as_i64().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[0] > w[1]), "{versions:?}");
    assert_eq!(versions[0], recreated.json()["version"].as_i64().unwrap());
    let correlation: Vec<&str> = items.iter().map(|i| i["correlationId"].as_str().unwrap()).collect();
    assert_eq!(correlation, ["c-4", "c-3", "c-2", "c-1"]);
    assert!(items.iter().all(|i| i["actor"] == "user:ops-anna" && i["at"].is_string()), "{history}");
    assert_eq!(items[3]["oldValue"], Value::Null);
    assert_eq!(items[3]["newValue"], json!(["10.0.0.0/8"]));
    assert_eq!(items[2]["oldValue"], json!(["10.0.0.0/8"]));
    assert_eq!(items[1]["oldValue"], json!(["10.0.0.0/8", "2001:db8::/32"]));
    assert_eq!(items[1]["newValue"], Value::Null);
    assert_eq!(items[0]["oldValue"], Value::Null);
    let members: BTreeSet<&str> = items[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        members,
        BTreeSet::from(["action", "actor", "at", "correlationId", "newValue", "oldValue", "version"])
    );

    let base = format!("{}/history", at("org:acme:munich", key));
    let first = app.get(&format!("{base}?limit=3")).await.json();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["nextCursor"].as_str().unwrap();
    let rest = app.get(&format!("{base}?limit=3&cursor={cursor}")).await.json();
    assert_eq!(rest["items"][0]["version"], versions[3]);
    assert!(rest.get("nextCursor").is_none());
    // A cursor of one key's history is not another's.
    app.get(&format!("{}/history?cursor={cursor}", at("org:acme:berlin", key)))
        .await
        .problem(StatusCode::BAD_REQUEST);
    let empty = app.get(&format!("{}/history", at("global", key))).await.json();
    assert_eq!(empty, json!({"items": []}));
}

#[tokio::test]
async fn every_change_emits_settings_changed_valid_under_its_schema_and_a_refused_one_nothing() {
    let app = TestApp::spawn().await;
    let res = app
        .send_json_with(
            Method::PUT,
            &at("org:acme:munich", RATE),
            &[("x-correlation-id", "set-1")],
            &json!({"value": {"minute": 60}}),
        )
        .await;
    let version = res.json()["version"].as_i64().unwrap();
    put(&app, "org:acme:munich", RATE, json!({"minute": 70}), &[])
        .await
        .problem(StatusCode::PRECONDITION_REQUIRED);
    delete(&app, "org:acme:munich", RATE, &[("if-match", &etag(&res))]).await;
    put(&app, "global", "gateway.requestSizeLimit", json!("512Ki"), &[]).await;

    let events = app.events().await;
    assert_eq!(crm_server::testing::events::check(&events), Vec::<String>::new());
    assert!(events.iter().all(|e| e.event_type == "settings.changed"), "{events:?}");
    assert_eq!(events.len(), 3, "{events:?}");
    let set = &events[0];
    assert_eq!(
        (set.aggregate_type.as_str(), set.aggregate_id.as_str()),
        ("settings", "org:acme:munich/gateway.rateLimit")
    );
    assert_eq!(set.correlation_id.as_deref(), Some("set-1"));
    assert_eq!((set.actor_type.as_str(), set.actor_id.as_str()), ("user", "test-admin"));
    assert_eq!(set.territory, None);
    assert_eq!(
        set.data,
        json!({"scope": "org:acme:munich", "tenant": "acme", "org": "munich", "key": RATE, "action": "set",
               "version": version, "oldValue": null, "newValue": {"minute": 60}, "actor": "user:test-admin"})
    );
    assert_eq!(events[1].data["action"], "delete");
    assert_eq!(events[1].data["oldValue"], json!({"minute": 60}));
    assert_eq!(events[1].data["newValue"], Value::Null);
    assert!(events[1].data["version"].as_i64().unwrap() > version);
    assert_eq!((events[2].data["tenant"].clone(), events[2].data["org"].clone()), (Value::Null, Value::Null));
    let cloudevent = set.to_cloudevent();
    assert_eq!(cloudevent["subject"], "org:acme:munich/gateway.rateLimit");
    assert_eq!(cloudevent["dataschema"], "https://freshplan.io/schemas/events/settings.changed.v1.json");
}

#[tokio::test]
async fn settings_events_reach_admins_and_the_platform_but_not_sales_reps() {
    let app = TestApp::spawn().await;
    create(&app, loewen()).await;
    put(&app, "tenant:acme", RATE, json!({"minute": 600}), &[]).await;
    app.relay_all().await;
    let types = |auth: String| {
        let app = &app;
        async move {
            let page = app.send(Method::GET, "/events/replay", &[("authorization", &auth)], "").await.json();
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let admin = types(bearer(&app, "root", &[UserRole::Admin], &[])).await;
    assert_eq!(admin, ["customer.created", "settings.changed"]);
    let platform = types(bearer(&app, "operator", &[UserRole::Platform], &["BY"])).await;
    assert_eq!(platform, ["settings.changed"], "the platform sees settings events and no customer's");
    let rep = types(bearer(&app, "rep-a", &[UserRole::SalesRep], &["BY"])).await;
    assert_eq!(rep, ["customer.created"], "a rep sees the customer of their territory, not the settings");
    let lead = types(bearer(&app, "lead", &[UserRole::TeamLead, UserRole::ChainManager], &["BY"])).await;
    assert_eq!(lead, ["customer.created"]);
}

#[tokio::test]
async fn sales_reps_may_not_touch_settings_and_the_platform_may_read_them_and_no_customer() {
    let app = TestApp::spawn().await;
    let customer = create(&app, loewen()).await;
    let res = put(&app, "tenant:acme", RATE, json!({"minute": 600}), &[]).await;
    let tag = etag(&res);
    let reads = [
        "/settings/keys".to_owned(),
        "/settings/effective?tenant=acme".to_owned(),
        at("tenant:acme", RATE),
        format!("{}/history", at("tenant:acme", RATE)),
    ];
    let body = serde_json::to_vec(&json!({"value": {"minute": 1}})).unwrap();
    for roles in [&[UserRole::SalesRep][..], &[UserRole::TeamLead], &[UserRole::ChainManager]] {
        let auth = bearer(&app, "someone", roles, &["BY"]);
        for path in &reads {
            app.send(Method::GET, path, &[("authorization", &auth)], "").await.problem(StatusCode::FORBIDDEN);
        }
        let headers =
            [("authorization", auth.as_str()), ("content-type", "application/json"), ("if-match", &tag)];
        app.send(Method::PUT, &at("tenant:acme", RATE), &headers, body.clone())
            .await
            .problem(StatusCode::FORBIDDEN);
        app.send(Method::DELETE, &at("tenant:acme", RATE), &headers, "").await.problem(StatusCode::FORBIDDEN);
    }

    // The platform's token may carry territories: they grant it nothing.
    let platform = bearer(&app, "operator", &[UserRole::Platform], &["BY"]);
    for path in &reads {
        let res = app.send(Method::GET, path, &[("authorization", &platform)], "").await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
    }
    let headers =
        [("authorization", platform.as_str()), ("content-type", "application/json"), ("if-match", &tag)];
    let problem = app
        .send(Method::PUT, &at("tenant:acme", RATE), &headers, body.clone())
        .await
        .problem(StatusCode::FORBIDDEN);
    assert!(problem["detail"].as_str().unwrap().contains("admin"), "{problem}");
    app.send(Method::DELETE, &at("tenant:acme", RATE), &headers, "").await.problem(StatusCode::FORBIDDEN);
    assert_eq!(app.get(&at("tenant:acme", RATE)).await.json()["value"], json!({"minute": 600}));

    let list = app.send(Method::GET, "/customers?limit=500", &[("authorization", &platform)], "").await;
    assert_eq!((list.status, list.json()["items"].clone()), (StatusCode::OK, json!([])));
    let id = customer["id"].as_str().unwrap();
    for path in
        [format!("/customers/{id}"), format!("/customers/{id}/fields"), format!("/customers/{id}/contacts")]
    {
        app.send(Method::GET, &path, &[("authorization", &platform)], "")
            .await
            .problem(StatusCode::NOT_FOUND);
    }
    let new = app
        .send(
            Method::POST,
            "/customers",
            &[("authorization", &platform), ("content-type", "application/json")],
            serde_json::to_vec(&loewen()).unwrap(),
        )
        .await;
    new.problem(StatusCode::FORBIDDEN);
    let contact = app
        .send(
            Method::POST,
            &format!("/customers/{id}/contacts"),
            &[("authorization", &platform), ("content-type", "application/json")],
            r#"{"firstName": "Anna", "lastName": "Huber", "roles": ["BUYER"]}"#,
        )
        .await;
    contact.problem(StatusCode::NOT_FOUND);
}

/// Row-level security, not the server's role checks, keeps settings from other roles: under a
/// sales rep's scope the tables show nothing and refuse writes; under the platform's they show
/// the settings and still refuse writes.
#[tokio::test]
async fn the_database_alone_keeps_the_settings_tables_to_admins_and_the_platform() {
    let app = TestApp::spawn().await;
    put(&app, "global", RATE, json!({"minute": 600}), &[]).await;
    let pool = sqlx::PgPool::connect(&app.db.app_url).await.unwrap();
    let identity = |roles: &[UserRole]| Identity {
        subject: "someone".into(),
        roles: roles.iter().copied().collect(),
        territories: vec!["BY".into()],
        chains: vec![],
        expires_at: None,
    };
    let tables = ["setting", "setting_history", "setting_scope", "setting_version"];
    for (roles, sees) in [
        (vec![UserRole::SalesRep], false),
        (vec![UserRole::TeamLead, UserRole::ChainManager], false),
        (vec![UserRole::Platform], true),
    ] {
        let mut tx = scope::begin(&pool, &identity(&roles).scope()).await.unwrap();
        for table in tables {
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            assert_eq!(count > 0, sees, "{roles:?} reading {table}");
        }
        let bumped =
            sqlx::query("UPDATE setting_version SET last = last + 1").execute(&mut *tx).await.unwrap();
        let changed =
            sqlx::query("UPDATE setting SET value = '{\"minute\": 1}'").execute(&mut *tx).await.unwrap();
        let removed = sqlx::query("DELETE FROM setting").execute(&mut *tx).await.unwrap();
        assert_eq!(
            (bumped.rows_affected(), changed.rows_affected(), removed.rows_affected()),
            (0, 0, 0),
            "{roles:?}"
        );
        let inserted = sqlx::query(
            "INSERT INTO setting (scope, key, value, version, updated_by) VALUES ('tenant:x', 'gateway.rateLimit', '{}', 99, 'x')",
        )
        .execute(&mut *tx)
        .await;
        assert!(inserted.unwrap_err().to_string().contains("row-level security"), "{roles:?}");
        tx.rollback().await.unwrap();
    }
    // And without any scope, nothing.
    let mut bare = <sqlx::PgConnection as sqlx::Connection>::connect(&app.db.app_url).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM setting").fetch_one(&mut bare).await.unwrap();
    assert_eq!(count, 0);
    pool.close().await;
}

/// Writers racing on one key: with the same `If-Match`, exactly one wins and the others get 412;
/// creating with `If-None-Match: *`, one creates and the others get 412; creating blindly, one
/// creates and the others are told they need `If-Match`. The history holds only the winners.
#[tokio::test]
async fn two_writers_racing_on_one_key_never_both_win() {
    let app = Arc::new(TestApp::spawn().await);
    let tag = etag(&put(&app, "tenant:acme", RATE, json!({"minute": 1}), &[]).await);
    let race = |key: &'static str, headers: Vec<(&'static str, String)>, value: fn(u64) -> Value| {
        let app = app.clone();
        async move {
            let writers: Vec<_> = (1..=12u64)
                .map(|n| {
                    let (app, headers) = (app.clone(), headers.clone());
                    tokio::spawn(async move {
                        let headers: Vec<(&str, &str)> =
                            headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                        put(&app, "tenant:acme", key, value(n), &headers).await.status
                    })
                })
                .collect();
            let mut statuses = Vec::new();
            for writer in writers {
                statuses.push(writer.await.unwrap());
            }
            statuses.sort();
            statuses
        }
    };
    let count =
        |statuses: &[StatusCode], status: StatusCode| statuses.iter().filter(|s| **s == status).count();

    let replaced = race(RATE, vec![("if-match", tag)], |n| json!({"minute": n + 1})).await;
    assert_eq!(count(&replaced, StatusCode::OK), 1, "{replaced:?}");
    assert_eq!(count(&replaced, StatusCode::PRECONDITION_FAILED), 11, "{replaced:?}");

    let created =
        race("gateway.requestSizeLimit", vec![("if-none-match", "*".into())], |n| json!(format!("{n}Ki")))
            .await;
    assert_eq!(count(&created, StatusCode::CREATED), 1, "{created:?}");
    assert_eq!(count(&created, StatusCode::PRECONDITION_FAILED), 11, "{created:?}");

    let blind = race("gateway.cors.origins", vec![], |n| json!([format!("https://h{n}.example")])).await;
    assert_eq!(count(&blind, StatusCode::CREATED), 1, "{blind:?}");
    assert_eq!(count(&blind, StatusCode::PRECONDITION_REQUIRED), 11, "{blind:?}");

    for (key, changes) in [(RATE, 2), ("gateway.requestSizeLimit", 1), ("gateway.cors.origins", 1)] {
        let history = app.get(&format!("{}/history", at("tenant:acme", key))).await.json();
        assert_eq!(history["items"].as_array().unwrap().len(), changes, "{key}: {history}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_the_settings_routes_under_their_tag() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json").await.json();
    let operations = [
        ("/settings/keys", "get"),
        ("/settings/effective", "get"),
        ("/settings/{scope}/{key}", "get"),
        ("/settings/{scope}/{key}", "put"),
        ("/settings/{scope}/{key}", "delete"),
        ("/settings/{scope}/{key}/history", "get"),
    ];
    for (path, method) in operations {
        let operation = &doc["paths"][path][method];
        assert_eq!(operation["tags"], json!(["settings"]), "{method} {path}: {operation}");
    }
    let put = &doc["paths"]["/settings/{scope}/{key}"]["put"]["responses"];
    for status in ["200", "201", "412", "422", "428"] {
        assert!(put.get(status).is_some(), "PUT lacks {status}: {put}");
    }
    assert!(doc["paths"]["/settings/effective"]["get"]["responses"].get("304").is_some());
    assert!(doc["tags"].as_array().unwrap().iter().any(|t| t["name"] == "settings"));
}
