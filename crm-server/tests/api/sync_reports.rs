//! The operator's sync reports over HTTP: storing one with who, when and the correlation id,
//! validation, roles, idempotent retries, the `settings.synced` event, the list with its filters
//! and pages, and what the database alone enforces.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use crm_server::auth::{Identity, UserRole};
use crm_server::db::scope;
use crm_server::testing::{TestApp, TestResponse};
use serde_json::{Value, json};

use crate::customers::{create, loewen};

const REPORTS: &str = "/settings/sync-reports";

fn bearer(app: &TestApp, subject: &str, roles: &[UserRole]) -> String {
    format!("Bearer {}", app.token(subject, roles, &["BY"], &[]))
}

fn platform(app: &TestApp) -> String {
    bearer(app, "system:serviceaccount:freshplan:operator", &[UserRole::Platform])
}

/// A report of `policy` at `version`, as the operator sends it.
fn report(policy: &str, tenant: &str, version: i64) -> Value {
    json!({
        "policy": policy, "tenant": tenant, "org": null, "version": version, "outcome": "applied",
        "applied": ["gateway.rateLimit"],
        "rejected": [{"key": "gateway.ipAllowlist", "scope": format!("tenant:{tenant}"),
                      "reason": "the policy with it would be refused: spec.ipAllowlist: not an address"}],
        "changes": ["gateway.rateLimit: {\"minute\":600} -> {\"minute\":900}"],
    })
}

/// `POST /settings/sync-reports` with `auth` (empty: the test admin) and `key` (empty: none).
async fn post(app: &TestApp, auth: &str, key: &str, body: &Value, more: &[(&str, &str)]) -> TestResponse {
    let mut headers = vec![("content-type", "application/json")];
    if !auth.is_empty() {
        headers.push(("authorization", auth));
    }
    if !key.is_empty() {
        headers.push(("idempotency-key", key));
    }
    headers.extend_from_slice(more);
    app.send(Method::POST, REPORTS, &headers, serde_json::to_vec(body).unwrap()).await
}

fn created(res: &TestResponse) -> Value {
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

async fn list(app: &TestApp, query: &str) -> Value {
    let res = app.get(&format!("{REPORTS}?{query}")).await;
    assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.text());
    res.json()
}

#[tokio::test]
async fn the_platform_reports_a_sync_which_is_stored_with_who_when_and_the_correlation_id() {
    let app = TestApp::spawn().await;
    let operator = platform(&app);
    let mut body = report("crm/acme", "acme", 42);
    body["org"] = json!("munich");
    body["detail"] = json!("KongPlugin acme-rate-limiting updated");
    let res = post(&app, &operator, "crm/acme@42/applied", &body, &[("x-correlation-id", "sync-1")]).await;
    let stored = created(&res);
    assert!(res.header("idempotent-replayed").is_none());
    assert_eq!(res.header("content-type"), Some("application/json"));
    let members: BTreeSet<&str> = stored.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        members,
        BTreeSet::from([
            "actor",
            "applied",
            "at",
            "changes",
            "correlationId",
            "detail",
            "id",
            "org",
            "outcome",
            "policy",
            "rejected",
            "tenant",
            "version"
        ])
    );
    for member in
        ["policy", "tenant", "org", "version", "outcome", "applied", "rejected", "changes", "detail"]
    {
        assert_eq!(stored[member], body[member], "{member}");
    }
    assert_eq!(stored["actor"], "user:system:serviceaccount:freshplan:operator");
    assert_eq!(stored["correlationId"], "sync-1");
    assert!(stored["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert!(stored["at"].is_string());

    let page = list(&app, "").await;
    assert_eq!(page, json!({"items": [stored]}));
}

#[tokio::test]
async fn bad_reports_are_422_naming_each_value_and_store_nothing() {
    let app = TestApp::spawn().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"policy": "acme"}), vec!["/policy"]),
        (json!({"policy": "crm/Acme"}), vec!["/policy"]),
        (json!({"policy": "crm/acme/x"}), vec!["/policy"]),
        (json!({"policy": format!("crm/{}", "a".repeat(254))}), vec!["/policy"]),
        (json!({"tenant": "ACME"}), vec!["/tenant"]),
        (json!({"org": "münchen"}), vec!["/org"]),
        (json!({"version": -1}), vec!["/version"]),
        (json!({"version": 1.5}), vec!["/version"]),
        (json!({"outcome": "done"}), vec!["/outcome"]),
        (json!({"applied": ["gateway.rateLimit", "Not A Key"]}), vec!["/applied/1"]),
        (
            json!({"rejected": [{"key": "gateway.x", "scope": "tenant:acme:x", "reason": "r"}]}),
            vec!["/rejected/0/scope"],
        ),
        (json!({"rejected": [{"key": "gateway.x", "scope": "global"}]}), vec!["/rejected/0/reason"]),
        (json!({"changes": vec!["c"; 101]}), vec!["/changes"]),
        (json!({"changes": ["x".repeat(10_001)]}), vec!["/changes/0"]),
        (json!({"detail": "d".repeat(8001)}), vec!["/detail"]),
        (json!({"colour": "red"}), vec!["/colour"]),
        (json!({"policy": "x", "tenant": "-x", "version": -5}), vec!["/policy", "/tenant", "/version"]),
    ];
    for (n, (change, expected)) in cases.into_iter().enumerate() {
        let mut body = report("crm/acme", "acme", 1);
        for (member, value) in change.as_object().unwrap() {
            body[member] = value.clone();
        }
        let problem =
            post(&app, "", &format!("bad-{n}"), &body, &[]).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
        let mut pointers: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
        pointers.sort();
        assert_eq!(pointers, expected, "{change}: {problem}");
    }
    let mut missing = report("crm/acme", "acme", 1);
    missing.as_object_mut().unwrap().remove("outcome");
    let problem = post(&app, "", "missing", &missing, &[]).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/outcome");

    // Without a key, a 400 naming the header; not JSON, a 415.
    let problem =
        post(&app, "", "", &report("crm/acme", "acme", 1), &[]).await.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["parameter"], "Idempotency-Key");
    app.send(Method::POST, REPORTS, &[("idempotency-key", "k")], "policy=crm/acme")
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert_eq!(list(&app, "").await, json!({"items": []}));
    assert!(app.events().await.is_empty());
}

#[tokio::test]
async fn a_retried_report_is_stored_once_and_its_key_cannot_carry_another_body() {
    let app = TestApp::spawn().await;
    let operator = platform(&app);
    let body = report("crm/acme", "acme", 7);
    let first = post(&app, &operator, "crm/acme@7/applied", &body, &[]).await;
    let stored = created(&first);
    let retry = post(&app, &operator, "crm/acme@7/applied", &body, &[]).await;
    assert_eq!(created(&retry), stored);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));

    let mut other = body.clone();
    other["detail"] = json!("something else");
    let problem = post(&app, &operator, "crm/acme@7/applied", &other, &[])
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["parameter"], "Idempotency-Key");

    // Keys are the caller's: the same key of another caller is another report.
    let admin = bearer(&app, "ops-anna", &[UserRole::Admin]);
    created(&post(&app, &admin, "crm/acme@7/applied", &body, &[]).await);
    let items = list(&app, "").await["items"].as_array().unwrap().len();
    assert_eq!(items, 2);
    let events = app.events().await;
    assert_eq!(events.iter().filter(|e| e.event_type == "settings.synced").count(), 2);
}

#[tokio::test]
async fn each_report_emits_settings_synced_valid_under_its_schema_seen_by_admins_and_the_platform_only() {
    let app = TestApp::spawn().await;
    create(&app, loewen()).await;
    let operator = platform(&app);
    let mut body = report("crm/acme.munich", "acme", 0);
    body["org"] = json!("munich");
    body["outcome"] = json!("failed");
    body["applied"] = json!([]);
    body["detail"] = json!("the API server refused the KongPlugin");
    let stored = created(&post(&app, &operator, "k-1", &body, &[("x-correlation-id", "sync-2")]).await);

    let events = app.events().await;
    assert_eq!(crm_server::testing::events::check(&events), Vec::<String>::new());
    let synced: Vec<_> = events.iter().filter(|e| e.event_type == "settings.synced").collect();
    assert_eq!(synced.len(), 1, "{events:?}");
    let event = synced[0];
    assert_eq!((event.aggregate_type.as_str(), event.aggregate_id.as_str()), ("settings", "crm/acme.munich"));
    assert_eq!(
        (event.actor_type.as_str(), event.actor_id.as_str()),
        ("user", "system:serviceaccount:freshplan:operator")
    );
    assert_eq!(event.correlation_id.as_deref(), Some("sync-2"));
    assert_eq!((event.territory.as_deref(), event.type_version), (None, 1));
    assert_eq!(
        event.data,
        json!({"reportId": stored["id"], "policy": "crm/acme.munich", "tenant": "acme", "org": "munich",
               "version": 0, "outcome": "failed", "applied": [], "rejected": body["rejected"],
               "changes": body["changes"], "detail": "the API server refused the KongPlugin",
               "actor": "user:system:serviceaccount:freshplan:operator"})
    );
    let cloudevent = event.to_cloudevent();
    assert_eq!(cloudevent["dataschema"], "https://freshplan.io/schemas/events/settings.synced.v1.json");

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
    assert_eq!(
        types(bearer(&app, "root", &[UserRole::Admin])).await,
        ["customer.created", "settings.synced"]
    );
    assert_eq!(types(operator.clone()).await, ["settings.synced"]);
    assert_eq!(types(bearer(&app, "rep-a", &[UserRole::SalesRep])).await, ["customer.created"]);
}

#[tokio::test]
async fn sales_reps_may_neither_report_nor_list_and_the_platform_may_do_both_but_still_not_write_settings() {
    let app = TestApp::spawn().await;
    let body = report("crm/acme", "acme", 1);
    for roles in [&[UserRole::SalesRep][..], &[UserRole::TeamLead], &[UserRole::ChainManager]] {
        let auth = bearer(&app, "someone", roles);
        let problem = post(&app, &auth, "k", &body, &[]).await.problem(StatusCode::FORBIDDEN);
        assert!(problem["detail"].as_str().unwrap().contains("platform"), "{problem}");
        app.send(Method::GET, REPORTS, &[("authorization", &auth)], "").await.problem(StatusCode::FORBIDDEN);
    }
    let operator = platform(&app);
    created(&post(&app, &operator, "k", &body, &[]).await);
    let page = app.send(Method::GET, REPORTS, &[("authorization", &operator)], "").await;
    assert_eq!((page.status, page.json()["items"].as_array().unwrap().len()), (StatusCode::OK, 1));

    let headers = [("authorization", operator.as_str()), ("content-type", "application/json")];
    app.send(Method::PUT, "/settings/tenant:acme/gateway.rateLimit", &headers, r#"{"value": {"minute": 1}}"#)
        .await
        .problem(StatusCode::FORBIDDEN);
    assert_eq!(list(&app, "").await["items"].as_array().unwrap().len(), 1);
    let view = app.get("/settings/effective?tenant=acme").await.json();
    assert_eq!(view["version"], 0, "nothing was written to the registry");
}

#[tokio::test]
async fn the_list_is_newest_first_filtered_by_tenant_and_policy_and_paged() {
    let app = TestApp::spawn().await;
    let reports = [
        ("crm/acme", "acme", 1),
        ("crm/zeta", "zeta", 2),
        ("crm/acme", "acme", 3),
        ("shop/acme", "acme", 4),
        ("crm/acme", "acme", 5),
    ];
    for (policy, tenant, version) in reports {
        created(&post(&app, "", &format!("{policy}@{version}"), &report(policy, tenant, version), &[]).await);
    }
    let versions = |page: &Value| -> Vec<i64> {
        page["items"].as_array().unwrap().iter().map(|i| i["version"].as_i64().unwrap()).collect()
    };
    assert_eq!(versions(&list(&app, "").await), [5, 4, 3, 2, 1]);
    assert_eq!(versions(&list(&app, "tenant=acme").await), [5, 4, 3, 1]);
    assert_eq!(versions(&list(&app, "policy=crm/acme").await), [5, 3, 1]);
    assert_eq!(versions(&list(&app, "policy=crm%2Facme&tenant=acme").await), [5, 3, 1]);
    assert_eq!(versions(&list(&app, "tenant=zeta&policy=crm/acme").await), Vec::<i64>::new());

    let first = list(&app, "tenant=acme&limit=3").await;
    assert_eq!(versions(&first), [5, 4, 3]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let rest = list(&app, &format!("tenant=acme&limit=3&cursor={cursor}")).await;
    assert_eq!(versions(&rest), [1]);
    assert!(rest.get("nextCursor").is_none());
    // A cursor belongs to its filters.
    let problem =
        app.get(&format!("{REPORTS}?tenant=zeta&cursor={cursor}")).await.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["parameter"], "cursor");

    for (query, parameter) in [
        ("tenant=ACME", "tenant"),
        ("policy=acme", "policy"),
        ("policy=crm/acme/x", "policy"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=nonsense", "cursor"),
        ("org=munich", "org"),
    ] {
        let problem = app.get(&format!("{REPORTS}?{query}")).await.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["parameter"], parameter, "{query}: {problem}");
    }
}

/// Row-level security, not the server's role checks, keeps reports to admins and the platform: a
/// sales rep's scope sees none and adds none; the platform's sees them and adds only under its own
/// name; and nobody's changes or removes one.
#[tokio::test]
async fn the_database_alone_keeps_reports_appended_by_admins_and_the_platform_under_their_own_name() {
    let app = TestApp::spawn().await;
    created(&post(&app, "", "k", &report("crm/acme", "acme", 1), &[]).await);
    let pool = sqlx::PgPool::connect(&app.db.app_url).await.unwrap();
    let identity = |subject: &str, roles: &[UserRole]| Identity {
        subject: subject.into(),
        roles: roles.iter().copied().collect(),
        territories: vec!["BY".into()],
        chains: vec![],
        expires_at: None,
    };
    let insert = |actor: &str| {
        format!(
            "INSERT INTO setting_sync_report (id, policy, tenant, version, outcome, applied, rejected, changes, actor)
             VALUES (gen_random_uuid(), 'crm/acme', 'acme', 1, 'applied', '{{}}', '[]', '{{}}', '{actor}')"
        )
    };
    for (roles, sees) in [
        (vec![UserRole::SalesRep], false),
        (vec![UserRole::TeamLead, UserRole::ChainManager], false),
        (vec![UserRole::Platform], true),
    ] {
        let mut tx = scope::begin(&pool, &identity("op", &roles).scope()).await.unwrap();
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM setting_sync_report").fetch_one(&mut *tx).await.unwrap();
        assert_eq!(count > 0, sees, "{roles:?}");
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await.unwrap();
        let forged =
            sqlx::query(sqlx::AssertSqlSafe(insert("user:someone-else"))).execute(&mut *savepoint).await;
        assert!(forged.unwrap_err().to_string().contains("row-level security"), "{roles:?}");
        savepoint.rollback().await.unwrap();
        let own = sqlx::query(sqlx::AssertSqlSafe(insert("user:op"))).execute(&mut *tx).await;
        assert_eq!(own.is_ok(), sees, "{roles:?}: {own:?}");
        tx.rollback().await.unwrap();
    }
    for statement in ["UPDATE setting_sync_report SET version = 9", "DELETE FROM setting_sync_report"] {
        for roles in [&[UserRole::Admin][..], &[UserRole::Platform]] {
            let mut tx = scope::begin(&pool, &identity("op", roles).scope()).await.unwrap();
            let refused = sqlx::query(statement).execute(&mut *tx).await;
            assert!(refused.unwrap_err().to_string().contains("permission denied"), "{roles:?} {statement}");
            tx.rollback().await.unwrap();
        }
    }
    pool.close().await;
}

#[tokio::test]
async fn the_openapi_document_lists_both_operations_under_the_settings_tag() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json").await.json();
    for method in ["get", "post"] {
        let operation = &doc["paths"][REPORTS][method];
        assert_eq!(operation["tags"], json!(["settings"]), "{method}: {operation}");
    }
    let post = &doc["paths"][REPORTS]["post"];
    for status in ["201", "400", "403", "409", "422"] {
        assert!(post["responses"].get(status).is_some(), "POST lacks {status}");
    }
    let key = post["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "Idempotency-Key").unwrap();
    assert_eq!(key["required"], true);
    for schema in ["SyncReportInput", "SyncReportView", "SyncReportPage", "RejectedSetting", "Outcome"] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "{schema} is not in the document");
    }
}
