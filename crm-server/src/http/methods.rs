//! 405 for a method a path does not serve, decided before anything reads the request.
//!
//! axum answers such a request with 405 from inside the route, so every layer on the routes (the
//! idempotency fingerprint, the body limit) would see it first and could answer about a header or
//! a body instead. This layer runs first on every matched route and answers 405, with `Allow`,
//! from the methods the role's OpenAPI paths declare for the route's template.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Route template -> the methods it serves.
#[derive(Debug, Clone, Default)]
pub struct Served(Arc<HashMap<String, Vec<Method>>>);

impl Served {
    pub fn of(doc: &utoipa::openapi::OpenApi) -> Served {
        let served = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (Method::GET, item.get.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                ];
                (path.clone(), methods.into_iter().filter(|(_, has)| *has).map(|(m, _)| m).collect())
            })
            .collect();
        Served(Arc::new(served))
    }
}

pub async fn refuse_unserved(State(served): State<Served>, req: Request, next: Next) -> Response {
    let allowed = req.extensions().get::<MatchedPath>().and_then(|path| served.0.get(path.as_str()));
    let Some(allowed) = allowed else {
        // A route the document does not describe (tests add some): axum decides.
        return next.run(req).await;
    };
    let method = if req.method() == Method::HEAD { &Method::GET } else { req.method() };
    if allowed.contains(method) {
        return next.run(req).await;
    }
    let mut names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    if allowed.contains(&Method::GET) {
        names.push("HEAD");
    }
    let allow = HeaderValue::from_str(&names.join(",")).unwrap_or(HeaderValue::from_static(""));
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)]).into_response()
}
