//! Links (OpenAPI 3.1, section 4.8.20): from each response that creates or reads a resource to the
//! operations it makes callable, with the id (and the ETag, for conditional writes) as runtime
//! expressions.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

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

/// Adds every link of [`LINKS`] whose target is in `ids` (operation ids by `method path`).
pub(super) fn add(doc: &mut Value, ids: &BTreeMap<String, Value>) {
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
}
