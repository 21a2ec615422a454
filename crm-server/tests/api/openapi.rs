//! The OpenAPI document describes what the server really serves.

use axum::http::{Method, StatusCode};
use crm_server::testing::TestApp;

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_problem_schema() {
    let app = TestApp::spawn().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let problem = &doc["components"]["schemas"]["Problem"];
    for member in ["type", "title", "status", "detail", "instance", "errors"] {
        assert!(problem["properties"].get(member).is_some(), "Problem lacks {member}: {problem}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_and_every_error_response_is_a_problem() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json").await.json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 5, "{paths:?}");
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            // A live stream never ends: only its response head is read.
            let streams = operation["responses"]["200"]["content"].get("text/event-stream").is_some();
            let status = if streams {
                app.head_status(method.clone(), path).await
            } else {
                app.send(method.clone(), path, &[], "").await.status
            };
            assert_ne!(status, StatusCode::NOT_FOUND, "{method} {path} is documented but not served");
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not served"
            );
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = response["content"].as_object().unwrap();
                    assert!(
                        content.contains_key("application/problem+json"),
                        "{method} {path} {status}: {response}"
                    );
                }
            }
        }
    }
}
