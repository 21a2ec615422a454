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

#[tokio::test]
async fn the_document_is_open_and_says_which_operations_need_a_token() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::GET, "/openapi.json", &[("authorization", "")], "").await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.json();
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let open = ["/healthz", "/readyz", "/metrics", "/openapi.json"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if open.contains(&path.as_str()) {
                assert_eq!(operation["security"], serde_json::json!([]), "{method} {path}");
                let res = app
                    .send(method.to_uppercase().parse().unwrap(), path, &[("authorization", "")], "")
                    .await;
                assert_eq!(res.status, StatusCode::OK, "{method} {path} is open");
            } else {
                assert!(operation.get("security").is_none(), "{method} {path} needs the bearer token");
                assert!(operation["responses"].get("401").is_some(), "{method} {path} documents 401");
            }
        }
    }
}

#[tokio::test]
async fn every_operation_with_a_uuid_in_its_path_documents_the_400_and_ids_are_unique() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json").await.json();
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "{method} {path}: operationId {id} twice");
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            if parameters.iter().any(|p| p["in"] == "path" && p["schema"]["format"] == "uuid") {
                assert!(operation["responses"].get("400").is_some(), "{method} {path}");
                let res = app
                    .send(method.to_uppercase().parse().unwrap(), &path.replace("{id}", "nope"), &[], "")
                    .await;
                res.problem(StatusCode::BAD_REQUEST);
            }
        }
    }
}

#[tokio::test]
async fn links_name_operations_and_parameters_that_exist() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json").await.json();
    let mut operations = std::collections::BTreeMap::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            operations.insert(operation["operationId"].as_str().unwrap().to_owned(), operation.clone());
        }
    }
    let mut links = 0;
    for operation in operations.values() {
        for response in operation["responses"].as_object().unwrap().values() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = &operations[link["operationId"].as_str().unwrap()];
                for parameter in link["parameters"].as_object().unwrap().keys() {
                    let declared = target["parameters"].as_array().into_iter().flatten();
                    assert!(declared.clone().any(|p| p["name"] == *parameter), "{name}: {parameter}");
                }
            }
        }
    }
    assert!(links >= 20, "{links} links");
    let created = &doc["paths"]["/customers"]["post"]["responses"]["201"]["links"]["GetCustomer"];
    assert_eq!(created["parameters"]["id"], "$response.body#/id");
}
