//! Bad input gets a clear problem+json answer, never a bare text body, never a panic.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use crm_server::config::HttpArgs;
use crm_server::testing::TestApp;
use crm_server::testing::app::get_url;
use crm_server::{AppState, Error};
use serde_json::json;

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::spawn().await;
    let problem = app.get("/customers/nope/nothing").await.problem(StatusCode::NOT_FOUND);
    assert_eq!(problem["instance"], "/customers/nope/nothing");
    assert_eq!(problem["type"], "about:blank");
}

#[tokio::test]
async fn a_method_not_allowed_is_a_405_problem_that_keeps_the_allow_header() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::DELETE, "/admin/log-level", &[], "").await;
    let problem = res.problem(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(problem["title"], "Method Not Allowed");
    let allow = res.header("allow").unwrap();
    assert!(allow.contains("GET") && allow.contains("PUT"), "{allow}");
}

#[tokio::test]
async fn malformed_json_is_a_400_problem_with_the_position() {
    let app = TestApp::spawn().await;
    let res = app
        .send(Method::PUT, "/admin/log-level", &[("content-type", "application/json")], "{\"filter\": ")
        .await;
    let problem = res.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["type"], "https://freshplan.io/problems/malformed-request");
    assert!(problem["detail"].as_str().unwrap().contains("line 1 column"), "{problem}");
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_a_415_problem() {
    let app = TestApp::spawn().await;
    for headers in [&[("content-type", "text/plain")][..], &[]] {
        let res = app.send(Method::PUT, "/admin/log-level", headers, r#"{"filter": "info"}"#).await;
        let problem = res.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(problem["detail"].as_str().unwrap().contains("application/json"), "{problem}");
    }
}

#[tokio::test]
async fn a_value_of_the_wrong_shape_is_a_422_problem_naming_its_pointer() {
    let app = TestApp::spawn().await;
    let problem = app
        .send_json(Method::PUT, "/admin/log-level", &json!({"filter": 5}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["type"], "https://freshplan.io/problems/validation-failed");
    assert_eq!(problem["errors"][0]["pointer"], "/filter", "{problem}");

    let problem =
        app.send_json(Method::PUT, "/admin/log-level", &json!({"filter": "info", "extra": 1})).await;
    let problem = problem.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem["errors"][0]["detail"].as_str().unwrap().contains("extra"), "{problem}");
}

#[tokio::test]
async fn an_invalid_log_filter_is_refused_and_the_old_one_kept() {
    let app = TestApp::spawn().await;
    let before = app.get("/admin/log-level").await.json();
    let res = app.send_json(Method::PUT, "/admin/log-level", &json!({"filter": "crm_server=loudest"})).await;
    let problem = res.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/filter", "{problem}");
    assert_eq!(app.get("/admin/log-level").await.json(), before);
}

#[tokio::test]
async fn a_valid_log_filter_is_installed() {
    let app = TestApp::spawn().await;
    let res =
        app.send_json(Method::PUT, "/admin/log-level", &json!({"filter": "warn,crm_server=debug"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let filter = app.get("/admin/log-level").await.json()["filter"].as_str().unwrap().to_owned();
    assert!(filter.contains("crm_server=debug") && filter.contains("warn"), "{filter}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem() {
    let http = HttpArgs { body_limit: 64, ..HttpArgs::default() };
    let app = TestApp::spawn_with(http, Router::new()).await;
    let big = json!({"filter": "x".repeat(200)});
    let problem =
        app.send_json(Method::PUT, "/admin/log-level", &big).await.problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(problem["detail"].as_str().unwrap().contains("larger"), "{problem}");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_that_does_not_leak_the_message() {
    async fn boom() -> &'static str {
        panic!("secret detail {}", 4711)
    }
    let routes = Router::new().route("/boom", get(boom));
    let app = TestApp::spawn_with(HttpArgs::default(), routes).await;
    let res = app.get("/boom").await;
    let problem = res.problem(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!res.text().contains("4711"), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("correlation id"), "{problem}");
    // The server lives on.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_database_error_is_a_500_problem_that_does_not_leak_the_sql() {
    async fn broken(State(state): State<AppState>) -> Result<(), Error> {
        sqlx::query("SELECT no_such_column_4711 FROM event_outbox").execute(&state.db).await?;
        Ok(())
    }
    let app = TestApp::spawn_with(HttpArgs::default(), Router::new().route("/broken", get(broken))).await;
    let res = app.get("/broken").await;
    res.problem(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!res.text().contains("4711"), "{}", res.text());
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_a_503_problem() {
    let http = HttpArgs { request_timeout: Duration::from_millis(100), ..HttpArgs::default() };
    let routes = Router::new().route("/slow", get(|| tokio::time::sleep(Duration::from_secs(5))));
    let app = TestApp::spawn_with(http, routes).await;
    app.get("/slow").await.problem(StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_then_refuses_connections() {
    let routes = Router::new().route(
        "/work",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        }),
    );
    let app = TestApp::spawn_with(HttpArgs::default(), routes).await;
    let (work, health) = (app.url("/work"), app.url("/healthz"));
    let in_flight = tokio::spawn(async move { get_url(&work).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (response, served) = tokio::join!(in_flight, app.shutdown());
    let response = response.unwrap().unwrap();
    assert_eq!((response.status, response.text().as_str()), (StatusCode::OK, "done"));
    served.unwrap();
    assert!(get_url(&health).await.is_err(), "the server still accepts connections");
}
