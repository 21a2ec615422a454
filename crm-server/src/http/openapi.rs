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
//!   client (or a stateful fuzzer) can chain them.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::config::Role;
use crate::domain::activity::{
    ActivityBase, ActivityKind, DecisionMakerAlignment, MenuIntegration, ProducttestFeedback, RoiConsultation,
};
use crate::domain::customer::ContactInput;
use crate::domain::settings::keys::SettingKey;
use crate::error::{FieldError, Problem};
use crate::outbox::EventType;

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
pub const OPEN: [(&str, &str); 4] =
    [("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/openapi.json")];

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// A link from an operation's response to an operation it makes callable.
struct Link {
    /// Method, path and status of the response the link leaves from.
    from: (&'static str, &'static str, &'static str),
    name: &'static str,
    /// Method and path of the operation it leads to.
    to: (&'static str, &'static str),
    /// Parameters of the target, as runtime expressions.
    parameters: &'static [(&'static str, &'static str)],
    /// Members of the target's body, as runtime expressions.
    body: &'static [(&'static str, &'static str)],
}

const fn link(
    from: (&'static str, &'static str, &'static str),
    name: &'static str,
    to: (&'static str, &'static str),
    parameters: &'static [(&'static str, &'static str)],
) -> Link {
    Link { from, name, to, parameters, body: &[] }
}

const CUSTOMER_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
const TAGGED_ID: &[(&str, &str)] = &[("id", "$response.body#/id"), ("If-Match", "$response.header.ETag")];
const SETTING: &[(&str, &str)] = &[("scope", "$request.path.scope"), ("key", "$request.path.key")];
const TAGGED_SETTING: &[(&str, &str)] =
    &[("scope", "$request.path.scope"), ("key", "$request.path.key"), ("If-Match", "$response.header.ETag")];

/// Create -> read -> change: each resource's id (and ETag, for conditional writes) from the
/// response that made or read it.
const LINKS: &[Link] = &[
    link(("post", "/customers", "201"), "GetCustomer", ("get", "/customers/{id}"), CUSTOMER_ID),
    link(("post", "/customers", "201"), "PatchCustomer", ("patch", "/customers/{id}"), TAGGED_ID),
    link(("post", "/customers", "201"), "GetFields", ("get", "/customers/{id}/fields"), CUSTOMER_ID),
    link(("post", "/customers", "201"), "PatchFields", ("patch", "/customers/{id}/fields"), CUSTOMER_ID),
    link(
        ("post", "/customers", "201"),
        "FieldHistory",
        ("get", "/customers/{id}/fields/history"),
        CUSTOMER_ID,
    ),
    link(("post", "/customers", "201"), "ListLocations", ("get", "/customers/{id}/locations"), CUSTOMER_ID),
    link(("post", "/customers", "201"), "ListContacts", ("get", "/customers/{id}/contacts"), CUSTOMER_ID),
    link(("post", "/customers", "201"), "CreateContact", ("post", "/customers/{id}/contacts"), CUSTOMER_ID),
    link(("post", "/customers", "201"), "ListActivities", ("get", "/customers/{id}/activities"), CUSTOMER_ID),
    Link {
        from: ("post", "/customers", "201"),
        name: "RequestSample",
        to: ("post", "/samples"),
        parameters: &[],
        body: &[("customerId", "$response.body#/id")],
    },
    Link {
        from: ("post", "/customers", "201"),
        name: "RecordActivity",
        to: ("post", "/activities"),
        parameters: &[],
        body: &[("customerId", "$response.body#/id")],
    },
    Link {
        from: ("post", "/customers", "201"),
        name: "AddLocation",
        to: ("post", "/customers"),
        parameters: &[],
        body: &[("parentAccountId", "$response.body#/id")],
    },
    link(("get", "/customers/{id}", "200"), "PatchCustomer", ("patch", "/customers/{id}"), TAGGED_ID),
    link(
        ("get", "/customers/{id}/fields", "200"),
        "PatchFields",
        ("patch", "/customers/{id}/fields"),
        &[("id", "$response.body#/customerId"), ("If-Match", "$response.header.ETag")],
    ),
    link(("post", "/customers/{id}/contacts", "201"), "GetContact", ("get", "/contacts/{id}"), CUSTOMER_ID),
    link(("post", "/customers/{id}/contacts", "201"), "PatchContact", ("patch", "/contacts/{id}"), TAGGED_ID),
    link(
        ("post", "/customers/{id}/contacts", "201"),
        "SetRoles",
        ("put", "/customers/{id}/contacts/{contact_id}/roles"),
        &[("id", "$request.path.id"), ("contact_id", "$response.body#/id")],
    ),
    link(
        ("post", "/customers/{id}/contacts", "201"),
        "Unlink",
        ("delete", "/customers/{id}/contacts/{contact_id}/roles"),
        &[("id", "$request.path.id"), ("contact_id", "$response.body#/id")],
    ),
    link(("get", "/contacts/{id}", "200"), "PatchContact", ("patch", "/contacts/{id}"), TAGGED_ID),
    link(("post", "/samples", "201"), "GetSample", ("get", "/samples/{id}"), CUSTOMER_ID),
    link(("post", "/samples", "201"), "ChangeStatus", ("patch", "/samples/{id}/status"), TAGGED_ID),
    link(("get", "/samples/{id}", "200"), "ChangeStatus", ("patch", "/samples/{id}/status"), TAGGED_ID),
    link(("patch", "/samples/{id}/status", "200"), "GetSample", ("get", "/samples/{id}"), CUSTOMER_ID),
    link(
        ("patch", "/samples/{id}/status", "200"),
        "ChangeStatus",
        ("patch", "/samples/{id}/status"),
        TAGGED_ID,
    ),
    Link {
        from: ("patch", "/samples/{id}/status", "200"),
        name: "RecordFeedback",
        to: ("post", "/activities"),
        parameters: &[],
        body: &[
            ("kind", "PRODUCTTEST_FEEDBACK"),
            ("customerId", "$response.body#/customerId"),
            ("sampleId", "$response.body#/id"),
        ],
    },
    link(("post", "/activities", "201"), "GetActivity", ("get", "/activities/{id}"), CUSTOMER_ID),
    link(
        ("post", "/activities", "201"),
        "ListActivities",
        ("get", "/customers/{id}/activities"),
        &[("id", "$response.body#/customerId")],
    ),
    link(
        ("put", "/settings/{scope}/{key}", "201"),
        "GetSetting",
        ("get", "/settings/{scope}/{key}"),
        SETTING,
    ),
    link(
        ("put", "/settings/{scope}/{key}", "201"),
        "SettingHistory",
        ("get", "/settings/{scope}/{key}/history"),
        SETTING,
    ),
    link(
        ("put", "/settings/{scope}/{key}", "201"),
        "PutSetting",
        ("put", "/settings/{scope}/{key}"),
        TAGGED_SETTING,
    ),
    link(
        ("put", "/settings/{scope}/{key}", "201"),
        "DeleteSetting",
        ("delete", "/settings/{scope}/{key}"),
        TAGGED_SETTING,
    ),
    link(
        ("put", "/settings/{scope}/{key}", "200"),
        "GetSetting",
        ("get", "/settings/{scope}/{key}"),
        SETTING,
    ),
    link(
        ("get", "/settings/{scope}/{key}", "200"),
        "PutSetting",
        ("put", "/settings/{scope}/{key}"),
        TAGGED_SETTING,
    ),
];

/// Array members whose items must differ (utoipa's attributes have no `uniqueItems`).
const UNIQUE_ITEMS: &[(&str, &str)] = &[
    ("NewContact", "roles"),
    ("Roles", "roles"),
    ("DecisionMakerAlignment", "roles"),
    ("SyncReportInput", "applied"),
];

/// Array members whose items have bounds (utoipa's attributes bound the array, not its items).
const ITEM_BOUNDS: &[(&str, &str, &str)] = &[
    (
        "SyncReportInput",
        "applied",
        r#"{"type": "string", "maxLength": 128, "pattern": "^[a-z][A-Za-z0-9]*(\\.[a-z][A-Za-z0-9]*)*$"}"#,
    ),
    (
        "SyncReportInput",
        "changes",
        r#"{"type": "string", "minLength": 1, "maxLength": 10000, "pattern": "^[^\\u0000]*[^\\u0000\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"}"#,
    ),
    (
        "MenuIntegration",
        "plannedDishes",
        r#"{"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*[^\\u0000\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"}"#,
    ),
];

/// The document of every route of every role.
pub fn document() -> Value {
    let generated = super::api_router(Role::All).into_openapi();
    let mut doc = serde_json::to_value(&generated).unwrap_or_else(|e| json!({"error": e.to_string()}));
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc["components"]["securitySchemes"] = json!({BEARER: {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An OIDC access token (or, on the embedded default, `crm-server dev-token`)",
    }});
    doc["components"]["schemas"]["CloudEvent"] = cloud_event();
    doc["security"] = json!([{BEARER: []}]);
    for (schema, member) in UNIQUE_ITEMS {
        let at = format!("/components/schemas/{schema}/properties/{member}");
        if let Some(array) = doc.pointer_mut(&at).and_then(Value::as_object_mut) {
            array.insert("uniqueItems".into(), json!(true));
        }
    }
    for (schema, member, items) in ITEM_BOUNDS {
        let at = format!("/components/schemas/{schema}/properties/{member}");
        if let (Some(array), Ok(items)) =
            (doc.pointer_mut(&at).and_then(Value::as_object_mut), serde_json::from_str::<Value>(items))
        {
            array.insert("items".into(), items);
        }
    }
    // A policy's namespace and name are each at most 253 characters, which the pattern of their
    // labels cannot say.
    let lengths = json!([{"pattern": "^[^/]{1,253}/[^/]{1,253}$"}]);
    if let Some(policy) = doc.pointer_mut("/components/schemas/SyncReportInput/properties/policy") {
        policy["allOf"] = lengths.clone();
    }
    let reports = "/paths/~1settings~1sync-reports/get/parameters";
    for parameter in doc.pointer_mut(reports).and_then(Value::as_array_mut).into_iter().flatten() {
        if parameter["name"] == "policy" {
            parameter["schema"]["allOf"] = lengths.clone();
        }
    }
    new_activity(&mut doc);
    inbound_data(&mut doc);
    merge_patch(
        &mut doc,
        "/customers/{id}",
        "CustomerInput",
        &["isChain", "address", "contactability", "coveragePolicy"],
    );
    merge_patch(&mut doc, "/contacts/{id}", "ContactInput", &[]);
    bound_dates(&mut doc);
    for (name, schema) in doc["components"]["schemas"].as_object_mut().into_iter().flatten() {
        // A problem may quote what the client sent, NUL characters included.
        if name != "Problem" && name != "FieldError" {
            no_nul(schema);
        }
    }
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut()) {
        no_nul(item);
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
    for link in LINKS {
        let (from_method, from_path, status) = link.from;
        let Some(operation_id) = ids.get(&format!("{} {}", link.to.0, link.to.1)) else { continue };
        let members = |pairs: &[(&str, &str)]| -> Map<String, Value> {
            pairs.iter().map(|(name, value)| ((*name).to_owned(), json!(value))).collect()
        };
        let mut target = json!({"operationId": operation_id, "parameters": members(link.parameters)});
        if !link.body.is_empty() {
            target["requestBody"] = Value::Object(members(link.body));
        }
        let at = format!("/paths/{}/{from_method}/responses/{status}", from_path.replace('/', "~1"));
        if let Some(response) = doc.pointer_mut(&at).and_then(Value::as_object_mut) {
            let links = response.entry("links").or_insert_with(|| json!({}));
            links[link.name] = target;
        }
    }
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
        stream_events(operation);
    }
    if let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) {
        for parameter in parameters {
            // An absent parameter is its "no value"; the text `null` is never one.
            if let Some(types) = parameter["schema"]["type"].as_array() {
                let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                parameter["schema"]["type"] = if types.len() == 1 { types[0].clone() } else { json!(types) };
            }
            match (parameter["in"].as_str(), parameter["name"].as_str()) {
                (Some("query"), Some("types")) => parameter["schema"]["pattern"] = json!(types_pattern()),
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

/// The live stream's 200: each Server-Sent Event has the event's position as `id`, its type as
/// `event`, and the CloudEvent as JSON in `data` (OpenAPI 3.1 describes one event per schema).
fn stream_events(operation: &mut Map<String, Value>) {
    let types: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
    let event = json!({
        "type": "object",
        "description": "One Server-Sent Event. Comments (`: keep-alive`) are sent every 15 s and carry no event.",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's position; send it as `Last-Event-ID` to resume"},
            "event": {"type": "string", "enum": types},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/CloudEvent"},
            },
            "retry": {"type": "integer", "minimum": 0},
        },
    });
    let content = json!({"text/event-stream": {"schema": event}});
    if let Some(ok) = operation.get_mut("responses").and_then(|r| r.get_mut("200")) {
        ok["content"] = content;
    }
}

/// A published event as replay and the live stream show it: CloudEvents 1.0 with the log's
/// extension attributes.
fn cloud_event() -> Value {
    let types: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
    json!({
        "type": "object",
        "description": "A published event: CloudEvents 1.0 JSON; `data` matches the schema named by `dataschema`.",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
                     "sequence", "aggregatetype", "actortype", "actorid", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "format": "uuid"},
            "source": {"type": "string", "minLength": 1},
            "type": {"type": "string", "enum": types},
            "subject": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"type": "string", "format": "uri"},
            "sequence": {"type": "string", "pattern": "^[0-9]{19}$", "description": "The outbox sequence, zero-padded so that it sorts as text"},
            "aggregatetype": {"type": "string"},
            "actortype": {"type": "string"},
            "actorid": {"type": "string"},
            "correlationid": {"type": "string"},
            "territory": {"type": "string"},
            "position": {"type": "integer", "minimum": 1, "description": "The event's place in the published log"},
            "data": {"type": "object"},
        },
    })
}

/// Every date and date-time of the document gets the pattern of the years the server accepts
/// (the server's own dates lie within them too).
fn bound_dates(value: &mut Value) {
    match value {
        Value::Object(members) => {
            let dated = members
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| f == "date" || f == "date-time");
            if dated && !members.contains_key("pattern") {
                members.insert("pattern".into(), json!(crate::domain::dates::YEAR_PATTERN));
            }
            members.values_mut().for_each(bound_dates);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_dates),
        _ => {}
    }
}

/// `POST /activities` takes the shared members and those of one kind side by side in one object:
/// one alternative per kind, each closed (a member of another kind is refused).
fn new_activity(doc: &mut Value) {
    let schemas = &doc["components"]["schemas"];
    let base = &schemas["ActivityBase"];
    let kinds: Vec<Value> = ActivityKind::ALL
        .iter()
        .map(|kind| {
            let name = match kind {
                ActivityKind::ProducttestFeedback => "ProducttestFeedback",
                ActivityKind::RoiConsultation => "RoiConsultation",
                ActivityKind::MenuIntegration => "MenuIntegration",
                ActivityKind::DecisionMakerAlignment => "DecisionMakerAlignment",
            };
            let own = &schemas[name];
            let mut properties = base["properties"].as_object().cloned().unwrap_or_default();
            properties.extend(own["properties"].as_object().cloned().unwrap_or_default());
            properties.insert("kind".into(), json!({"const": kind.as_str()}));
            let mut required = vec![json!("kind")];
            required.extend(base["required"].as_array().cloned().unwrap_or_default());
            required.extend(own["required"].as_array().cloned().unwrap_or_default());
            json!({
                "title": kind.as_str(),
                "description": own["description"].as_str().unwrap_or(kind.as_str()),
                "type": "object",
                "additionalProperties": false,
                "required": required,
                "properties": properties,
            })
        })
        .collect();
    doc["components"]["schemas"]["NewActivity"] = json!({
        "description": "An activity to record: `kind`, the shared members (ActivityBase) and the members of the kind.",
        "oneOf": kinds,
    });
    let at = "/paths/~1activities/post/requestBody/content/application~1json/schema";
    if let Some(schema) = doc.pointer_mut(at) {
        *schema = json!({"$ref": "#/components/schemas/NewActivity"});
    }
}

/// `types`: comma-separated event types; blank entries and ASCII whitespace around them are
/// ignored.
fn types_pattern() -> String {
    let names: Vec<String> = EventType::ALL.iter().map(|t| t.name().replace('.', "\\.")).collect();
    let one = format!("(({})[\\t\\n\\f\\r ]*)?", names.join("|"));
    format!("^[\\t\\n\\f\\r ]*{one}(,[\\t\\n\\f\\r ]*{one})*$")
}

/// The `data` of an inbound event: the data schema of its type.
fn inbound_data(doc: &mut Value) {
    let alternatives: Vec<Value> = [EventType::LeadConverted, EventType::EmailBounce]
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t.schema_source()).ok())
        .map(|mut schema| {
            if let Some(members) = schema.as_object_mut() {
                members.remove("$schema");
                members.remove("$id");
            }
            schema
        })
        .collect();
    let at = "/components/schemas/InboundEvent";
    let Some(event) = doc.pointer_mut(at) else { return };
    // The flattened extensions make the schema an allOf; `data` is in its object member.
    for part in event["allOf"].as_array_mut().into_iter().flatten() {
        if part["properties"].get("data").is_some() {
            part["properties"]["data"] = json!({
                "description": "The data of the event's type, as its schema (`dataschema`) says",
                "oneOf": alternatives,
            });
        }
    }
}

/// The body of a JSON merge patch (RFC 7396) of `input`'s members at `path`: any of them, none
/// required; `null` removes an optional member (and resets one with a default, listed in
/// `defaulted`).
fn merge_patch(doc: &mut Value, path: &str, input: &str, defaulted: &[&str]) {
    let mut patch = doc["components"]["schemas"][input].clone();
    let Some(members) = patch.as_object_mut() else { return };
    members.remove("required");
    members.insert(
        "description".into(),
        json!(format!("Members of {input} to change; `null` removes an optional one")),
    );
    for name in defaulted {
        if let Some(schema) = patch["properties"].get_mut(*name) {
            *schema = json!({"anyOf": [schema.clone(), {"type": "null"}]});
        }
    }
    let name = format!("{}Patch", input.trim_end_matches("Input"));
    doc["components"]["schemas"][&name] = patch;
    let at = format!(
        "/paths/{}/patch/requestBody/content/application~1merge-patch+json/schema",
        path.replace('/', "~1")
    );
    if let Some(schema) = doc.pointer_mut(&at) {
        *schema = json!({"$ref": format!("#/components/schemas/{name}")});
    }
}

/// Free text anywhere in the document: the server refuses the NUL character in every string
/// (PostgreSQL stores it neither in text nor in jsonb), so a string with no pattern of its own
/// says so with one.
fn no_nul(value: &mut Value) {
    match value {
        Value::Object(members) => {
            let is_string = match members.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            let free = ["pattern", "enum", "const", "format"].iter().all(|k| !members.contains_key(*k));
            if is_string && free {
                members.insert("pattern".into(), json!("^[^\\u0000]*$"));
            }
            members.values_mut().for_each(no_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(no_nul),
        _ => {}
    }
}
