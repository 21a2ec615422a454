use axum::http::StatusCode;
use crm_server::testing::TestApp;

#[tokio::test]
async fn healthz_says_ok_with_role_and_version() {
    let app = TestApp::spawn().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.json(),
        serde_json::json!({"status": "ok", "role": "all", "version": env!("CARGO_PKG_VERSION")})
    );
}

#[tokio::test]
async fn healthz_stays_up_when_the_database_is_gone_but_readyz_does_not() {
    let app = TestApp::spawn().await;
    app.state.db.close().await;
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let problem = app.get("/readyz").await.problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(problem["detail"].as_str().unwrap().contains("unreachable"), "{problem}");
}

#[tokio::test]
async fn readyz_is_ready_on_a_migrated_database() {
    let app = TestApp::spawn().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let applied = crm_server::db::MIGRATOR.iter().filter(|m| m.migration_type.is_up_migration()).count();
    assert_eq!(res.json()["applied_migrations"], applied);
}

#[tokio::test]
async fn readyz_names_pending_and_edited_migrations() {
    let app = TestApp::spawn().await;
    let versions: Vec<i64> = crm_server::db::MIGRATOR.iter().map(|m| m.version).collect();
    let first = versions[0];

    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = $1")
        .bind(first)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let problem = app.get("/readyz").await.problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["mismatchedMigrations"], serde_json::json!([first]), "{problem}");

    sqlx::query("DELETE FROM _sqlx_migrations").execute(&app.db.pool).await.unwrap();
    let problem = app.get("/readyz").await.problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["pendingMigrations"], serde_json::json!(versions), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("crm-server migrate"), "{problem}");
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_still_ready() {
    // Expand/contract: during a rolling deploy old binaries run on the expanded schema.
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'from a newer release', true, '\\x01', 1)",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_sample_the_pool() {
    let app = TestApp::spawn().await;
    app.get("/healthz").await;
    app.get("/no/such/thing/4711").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let text = res.text();
    assert!(
        text.contains(r#"crm_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    // Unknown paths share one label value instead of one series per path.
    assert!(
        text.contains(r#"crm_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("4711"), "{text}");
    assert!(
        text.contains(
            "crm_http_request_duration_seconds_bucket{le=\"0.2\",method=\"GET\",route=\"/healthz\""
        ),
        "{text}"
    );
    assert!(text.contains(r#"crm_db_pool_connections{state="idle"}"#), "{text}");
    assert!(text.contains("crm_db_pool_max_connections 5"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[tokio::test]
async fn a_given_correlation_id_is_echoed() {
    let app = TestApp::spawn().await;
    let res = app.send(axum::http::Method::GET, "/healthz", &[("x-correlation-id", "order-4711")], "").await;
    assert_eq!(res.header("x-correlation-id"), Some("order-4711"));
}

#[tokio::test]
async fn the_trace_id_of_traceparent_becomes_the_correlation_id() {
    let app = TestApp::spawn().await;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = app.send(axum::http::Method::GET, "/nowhere", &[("traceparent", tp)], "").await;
    assert_eq!(res.header("x-correlation-id"), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(res.problem(StatusCode::NOT_FOUND)["correlationId"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[tokio::test]
async fn without_either_header_a_fresh_id_is_generated() {
    let app = TestApp::spawn().await;
    let a = app.get("/healthz").await;
    let b = app.get("/healthz").await;
    let (a, b) = (a.header("x-correlation-id").unwrap(), b.header("x-correlation-id").unwrap());
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
}
