//! Schemas and bounds the handlers' annotations cannot give: uniqueness and bounds of array
//! items, the request body of each activity kind, an inbound event's data, merge patches, the
//! stream's events, the CloudEvent, and the bounds every date and every string share.

use serde_json::{Map, Value, json};

use crate::domain::activity::ActivityKind;
use crate::outbox::EventType;

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

/// Uniqueness and bounds of array items, and the lengths of a policy's parts.
pub(super) fn bound_members(doc: &mut Value) {
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
}

/// The live stream's 200: each Server-Sent Event has the event's position as `id`, its type as
/// `event`, and the CloudEvent as JSON in `data` (OpenAPI 3.1 describes one event per schema).
pub(super) fn stream_events(operation: &mut Map<String, Value>) {
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
pub(super) fn cloud_event() -> Value {
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
pub(super) fn bound_dates(value: &mut Value) {
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
pub(super) fn new_activity(doc: &mut Value) {
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
pub(super) fn types_pattern() -> String {
    let names: Vec<String> = EventType::ALL.iter().map(|t| t.name().replace('.', "\\.")).collect();
    let one = format!("(({})[\\t\\n\\f\\r ]*)?", names.join("|"));
    format!("^[\\t\\n\\f\\r ]*{one}(,[\\t\\n\\f\\r ]*{one})*$")
}

/// The `data` of an inbound event: the data schema of its type.
pub(super) fn inbound_data(doc: &mut Value) {
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
pub(super) fn merge_patch(doc: &mut Value, path: &str, input: &str, defaulted: &[&str]) {
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
pub(super) fn no_nul(value: &mut Value) {
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
