//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! Most of it is generated from the handlers' annotations (utoipa). What holds for many operations
//! at once, and what utoipa's attributes cannot say, is added here to the generated document, so
//! that no annotation can forget it:
//! - bearer authentication on every operation but the open ones, which say `security: []`;
//! - the responses every operation of a kind can give: 401 when it needs a token, 400 when its
//!   path has a UUID, 400/413/415 when it reads a JSON body, 400/409/422 when it takes an
//!   `Idempotency-Key`;
//! - the events of the live stream (`text/event-stream`), whose `data` is a CloudEvent;
//! - links from the operations that create a resource to those that read and change it, so that a
//!   client (or a stateful fuzzer) can chain them ([`links`]);
//! - the bounds and shapes of [`schemas`] that the annotations cannot give.

mod links;
mod schemas;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::config::Role;
use crate::domain::activity::{
    ActivityBase, DecisionMakerAlignment, MenuIntegration, ProducttestFeedback, RoiConsultation,
};
use crate::domain::customer::ContactInput;
use crate::domain::settings::keys::SettingKey;
use crate::error::{FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FreshPlan CRM API",
        description = "Customers, samples, activities, cockpit KPIs and settings of the FreshPlan CRM. \
            Every error is an RFC 9457 problem (`application/problem+json`); every response carries \
            the request's `X-Correlation-ID`.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(
        Problem,
        FieldError,
        ContactInput,
        ActivityBase,
        ProducttestFeedback,
        RoiConsultation,
        MenuIntegration,
        DecisionMakerAlignment
    )),
    tags(
        (name = "customers", description = "Accounts: chains, their locations and single businesses; search over hot fields"),
        (name = "contacts", description = "People at customers and their roles there"),
        (name = "fields", description = "Dynamic fields (the field bridge), their catalog and audit trail"),
        (name = "activities", description = "Typed sales activities with their SLAs"),
        (name = "cockpit", description = "KPIs of the sales cockpit and overdue SLA items"),
        (name = "events", description = "The published event log: replay, live stream, and inbound events for the automations"),
        (name = "samples", description = "Cook&Fresh product samples, their lifecycle, the product catalog and kits"),
        (name = "settings", description = "The settings registry: tenant and org scoped gateway policy, versioned and audited; the operator's source of policy"),
        (name = "operations", description = "Health, readiness, metrics and run-time settings"),
    ),
)]
pub(super) struct ApiDoc;

/// The name of the bearer scheme in `components.securitySchemes`.
const BEARER: &str = "bearer";

/// Operations anyone may call: the platform's probes and the contract document itself, which
/// holds no data.
const OPEN: [(&str, &str); 4] =
    [("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/openapi.json")];

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// The document of every route of every role.
pub fn document() -> Value {
    let generated = super::api_router(Role::All).into_openapi();
    let mut doc = serde_json::to_value(&generated).unwrap_or_else(|e| json!({"error": e.to_string()}));
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc["components"]["securitySchemes"] = json!({BEARER: {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An OIDC access token (or, on the embedded default, `crm-server dev-token`)",
    }});
    doc["components"]["schemas"]["CloudEvent"] = schemas::cloud_event();
    doc["security"] = json!([{BEARER: []}]);
    schemas::bound_members(&mut doc);
    schemas::new_activity(&mut doc);
    schemas::inbound_data(&mut doc);
    schemas::merge_patch(
        &mut doc,
        "/customers/{id}",
        "CustomerInput",
        &["isChain", "address", "contactability", "coveragePolicy"],
    );
    schemas::merge_patch(&mut doc, "/contacts/{id}", "ContactInput", &[]);
    schemas::bound_dates(&mut doc);
    for (name, schema) in doc["components"]["schemas"].as_object_mut().into_iter().flatten() {
        // A problem may quote what the client sent, NUL characters included.
        if name != "Problem" && name != "FieldError" {
            schemas::no_nul(schema);
        }
    }
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut()) {
        schemas::no_nul(item);
    }
    let ids = operation_ids(&doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
                    complete(method, path, operation);
                }
            }
        }
    }
    links::add(&mut doc, &ids);
    doc
}

fn operation_ids(doc: &Value) -> std::collections::BTreeMap<String, Value> {
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(id) = item.get(method).and_then(|o| o.get("operationId")) {
                ids.insert(format!("{method} {path}"), id.clone());
            }
        }
    }
    ids
}

/// Adds what every operation of its kind has.
fn complete(method: &str, path: &str, operation: &mut Map<String, Value>) {
    let open = OPEN.contains(&(method, path));
    if open {
        operation.insert("security".into(), json!([]));
    } else {
        respond(operation, "401", "No valid bearer token (`WWW-Authenticate` says why)");
    }
    let parameters = operation.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    let in_path_uuid = parameters.iter().any(|p| p["in"] == "path" && p["schema"]["format"] == "uuid");
    if in_path_uuid {
        respond(operation, "400", "An id in the path is not a UUID");
    }
    if operation.contains_key("requestBody") {
        respond(operation, "400", "The body is not JSON (the detail gives line and column)");
        respond(operation, "413", "The body is larger than the server's limit");
        respond(operation, "415", "Not a JSON content type");
    }
    if parameters.iter().any(|p| p["name"] == "Idempotency-Key") {
        respond(operation, "400", "A malformed Idempotency-Key");
        respond(operation, "409", "A request with the same Idempotency-Key is still in flight");
        respond(operation, "422", "The Idempotency-Key was used before with another body");
    }
    if path.ends_with("/events/stream") {
        schemas::stream_events(operation);
    }
    if let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) {
        for parameter in parameters {
            // An absent parameter is its "no value"; the text `null` is never one.
            if let Some(types) = parameter["schema"]["type"].as_array() {
                let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                parameter["schema"]["type"] = if types.len() == 1 { types[0].clone() } else { json!(types) };
            }
            match (parameter["in"].as_str(), parameter["name"].as_str()) {
                (Some("query"), Some("types")) => {
                    parameter["schema"]["pattern"] = json!(schemas::types_pattern())
                }
                (Some("path"), Some("key")) if path.starts_with("/settings/") => {
                    let keys: Vec<&str> = SettingKey::ALL.iter().map(|k| k.name()).collect();
                    parameter["schema"]["enum"] = json!(keys);
                }
                _ => {}
            }
        }
    }
}

/// Documents `status` as a problem on `operation`; when it is documented already, `why` is added
/// to its description unless it says it already.
fn respond(operation: &mut Map<String, Value>, status: &str, why: &str) {
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    match responses.get_mut(status) {
        Some(response) => {
            let description = response["description"].as_str().unwrap_or("").to_owned();
            if !description.to_lowercase().contains(&why.to_lowercase()) {
                response["description"] = json!(if description.is_empty() {
                    why.to_owned()
                } else {
                    format!("{description}; or: {why}")
                });
            }
            if response.get("content").is_none() {
                response["content"] = problem_content();
            }
        }
        None => {
            responses[status] = json!({"description": why, "content": problem_content()});
        }
    }
}

fn problem_content() -> Value {
    json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
}
