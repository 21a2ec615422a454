//! Bad input gets a clear problem+json answer, never a bare text body, never a panic.

use std::sync::Arc;
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
use tokio::sync::Notify;

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
async fn a_method_a_path_does_not_serve_is_405_whatever_its_headers_and_body() {
    let app = TestApp::spawn().await;
    for (path, headers) in [
        ("/samples", vec![("idempotency-key", "a key with spaces"), ("content-type", "application/json")]),
        ("/activities", vec![("idempotency-key", "")]),
        ("/settings/sync-reports", vec![("content-type", "text/plain")]),
    ] {
        let res = app.send(Method::PATCH, path, &headers, "not json").await;
        res.problem(StatusCode::METHOD_NOT_ALLOWED);
        let allow = res.header("allow").unwrap_or_default();
        assert!(allow.contains("POST") && !allow.contains("PATCH"), "{path}: {allow}");
    }
    let res = app.send(Method::DELETE, "/customers/00000000-0000-0000-0000-000000000000", &[], "").await;
    res.problem(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.header("allow"), Some("GET,PATCH,HEAD"));
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
    // The handler says when it has started, and finishes only when the test lets it.
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let routes = Router::new().route(
        "/work",
        get({
            let (started, release) = (started.clone(), release.clone());
            move || async move {
                started.notify_one();
                release.notified().await;
                "done"
            }
        }),
    );
    let app = TestApp::spawn_with(HttpArgs::default(), routes).await;
    let (work, health) = (app.url("/work"), app.url("/healthz"));
    let in_flight = tokio::spawn(async move { get_url(&work).await });
    started.notified().await;

    let served = tokio::spawn(app.shutdown());
    // Shutting down: new connections are refused while the request is still in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get_url(&health).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the server still accepts connections");
        tokio::task::yield_now().await;
    }
    assert!(!in_flight.is_finished() && !served.is_finished(), "the shutdown waits for the request");
    release.notify_one();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!((response.status, response.text().as_str()), (StatusCode::OK, "done"));
    served.await.unwrap().unwrap();
    assert!(get_url(&health).await.is_err(), "the server still accepts connections");
}

/// Strings a client might send: words the API knows (statuses, kinds, ids, dates), hostile ones
/// (NUL, direction overrides, SQL), long ones and arbitrary characters.
fn any_string() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let words = prop::sample::select(vec![
        "DELIVERED",
        "CANCELED",
        "ROI_CONSULTATION",
        "MENU_INTEGRATION",
        "SUCCESS",
        "2026-13-45",
        "2099-01-15",
        "2026-11-30T10:00:00Z",
        "00000000-0000-0000-0000-000000000000",
        "CF-1001",
        "",
        "\u{0}",
        "a\u{0}b",
        "ü🦀",
        "'; SELECT 1; --",
        "\u{FEFF}\u{202E}",
    ])
    .prop_map(|s| json!(s));
    let long = (1usize..3).prop_map(|n| json!("x".repeat(n * 4096)));
    prop_oneof![
        2 => prop::collection::vec(any::<char>(), 0..12).prop_map(|c| json!(String::from_iter(c))),
        1 => long,
        5 => words,
    ]
}

/// Any JSON value, nested up to three levels.
fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        1 => Just(serde_json::Value::Null),
        1 => any::<bool>().prop_map(|b| json!(b)),
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        4 => any_string(),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid body with members replaced (by any value, or by a string), removed or added at random.
fn mutated(template: serde_json::Value) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let keys: Vec<String> = template.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let value = prop_oneof![any_json(), any_string()];
    let edit = (prop::sample::select(keys), value, 0..3u8);
    prop::collection::vec(edit, 0..4).prop_map(move |edits| {
        let mut body = template.clone();
        for (key, value, how) in edits {
            let object = body.as_object_mut().expect("an object template");
            match how {
                0 => {
                    object.insert(key, value);
                }
                1 => {
                    object.remove(&key);
                }
                _ => {
                    object.insert(format!("{key}X"), value);
                }
            }
        }
        body
    })
}

/// No malformed input reaches a 5xx: random mutations of valid bodies, arbitrary JSON and
/// arbitrary bytes against every write endpoint are all answered with a 2xx or a 4xx problem.
#[test]
fn no_malformed_input_causes_a_server_error() {
    use proptest::prelude::*;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let (customer, sample) = runtime.block_on(async {
        let customer = crate::customers::create(&app, crate::customers::loewen()).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let sample = crate::samples::new_sample(&app, &customer).await["id"].as_str().unwrap().to_owned();
        (customer, sample)
    });
    let targets: Vec<(Method, String, serde_json::Value)> = vec![
        (
            Method::POST,
            "/samples".into(),
            json!({"customerId": customer, "deliveryDate": "2099-01-15", "items": [{"sku": "CF-1001", "quantity": 1}]}),
        ),
        (
            Method::PATCH,
            format!("/samples/{sample}/status"),
            json!({"newStatus": "PACKED", "eventAt": "2099-01-01T00:00:00Z"}),
        ),
        (
            Method::POST,
            "/activities".into(),
            json!({"kind": "ROI_CONSULTATION", "customerId": customer, "roiScenarioId": customer, "savingsPerMonth": 10, "outcome": "QUALIFIED"}),
        ),
        (
            Method::POST,
            "/activities".into(),
            json!({"kind": "DECISION_MAKER_ALIGNMENT", "customerId": customer, "roles": ["BUYER"], "alignmentScore": 5, "outcome": "PARTIAL"}),
        ),
        (
            Method::POST,
            "/activities".into(),
            json!({"kind": "MENU_INTEGRATION", "customerId": customer, "season": "Q4", "plannedDishes": ["Gans"], "rolloutWindow": {"start": "2026-12-01", "end": "2026-12-31"}, "outcome": "DRAFT"}),
        ),
        (
            Method::POST,
            "/activities".into(),
            json!({"kind": "PRODUCTTEST_FEEDBACK", "customerId": customer, "sampleId": sample, "rating": 3, "outcome": "FAIL"}),
        ),
        (
            Method::POST,
            "/customers".into(),
            json!({"name": "Krone", "segment": "HOTEL", "territory": "BY", "isChain": false}),
        ),
        (
            Method::PATCH,
            format!("/customers/{customer}/fields"),
            json!({"roi_potential": {"bucket": "LOW", "value": 1}, "menu_notes": "x"}),
        ),
        (
            Method::POST,
            format!("/customers/{customer}/contacts"),
            json!({"firstName": "A", "lastName": "B", "roles": ["BUYER"]}),
        ),
    ];
    let config = ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() };
    let case = (0..targets.len()).prop_flat_map(|i| {
        let body = prop_oneof![
            6 => mutated(targets[i].2.clone()).prop_map(|v| v.to_string().into_bytes()),
            1 => any_json().prop_map(|v| v.to_string().into_bytes()),
            1 => prop::collection::vec(any::<u8>(), 0..64),
        ];
        (Just(i), body, prop_oneof![4 => "[A-Za-z0-9-]{1,20}", 1 => "[ -~]{1,20}"])
    });
    proptest!(config, |((i, body, key) in case)| {
        let (method, path, _) = &targets[i];
        let res = runtime.block_on(app.send(
            method.clone(),
            path,
            &[("content-type", "application/json"), ("idempotency-key", &key), ("if-match", "*")],
            body.clone(),
        ));
        prop_assert!(res.status.as_u16() < 500, "{method} {path} {}: {} {}", String::from_utf8_lossy(&body), res.status, res.text());
        if res.status.as_u16() >= 400 {
            prop_assert_eq!(res.header("content-type"), Some("application/problem+json"), "{}", res.text());
        }
    });
}

/// Sends `request` as raw bytes and reads the whole answer (the server closes the connection).
async fn raw(app: &TestApp, request: &[u8]) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {answer}"));
    (head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn requests_the_http_parser_refuses_get_problems_too() {
    let app = TestApp::spawn().await;
    let long_uri = format!("GET /healthz?{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let many_fields: String = (0..120).map(|i| format!("x-field-{i}: v\r\n")).collect();
    let many_fields = format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many_fields}\r\n");
    let big_field = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(500_000));
    for (request, status) in
        [(long_uri, 414), (many_fields, 431), (big_field, 431), ("NOT HTTP AT ALL\r\n\r\n".to_owned(), 400)]
    {
        let (head, body) = raw(&app, request.as_bytes()).await;
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.to_lowercase().contains("content-type: application/problem+json"), "{head}");
        let problem = crm_server::testing::strict_json::parse(body.as_bytes()).unwrap();
        assert_eq!(problem["status"], status, "{problem}");
        assert_eq!(problem["type"], "about:blank");
    }
    // The server still serves.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}
