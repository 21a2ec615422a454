//! Backwards-compatibility check for the event data schemas under `schemas/events/`.
//!
//! Events are published through the transactional outbox and may sit there, or be replayed from it,
//! long after the code that wrote them has been replaced. Consumers are also upgraded on their own
//! schedule. So a schema may only evolve *additively*: every event that was valid under the old
//! version must still be valid under the new one, and a consumer built against the old version must
//! still understand events written under the new one. Anything else needs a new schema version
//! (`….v2.json`), not an edit.
//!
//! [`breaking_changes`] walks an old and a new version of a schema side by side, through
//! `properties`, `items`, `prefixItems`, `$defs`/`definitions`, `additionalProperties`, and
//! `allOf`/`anyOf`/`oneOf` (by index), and reports at each node present in both:
//!
//! - a property (or `$defs` entry, or `anyOf`/`oneOf` branch) that was removed;
//! - a `type` that no longer accepts every JSON type it accepted before (`type` is a set; widening
//!   `"string"` to `["string", "null"]` or `"integer"` to `"number"` is fine);
//! - a name newly listed in `required` (a newly added nested object may require whatever it likes,
//!   because the property holding it is itself new and therefore optional);
//! - a sub-schema that became `false`, e.g. `additionalProperties` tightened to `false`;
//! - `enum` values removed, or an `enum` introduced where there was none;
//! - `const` changed or introduced;
//! - `format` added or changed;
//! - an `allOf` entry added, or `anyOf`/`oneOf` introduced on a node that had none (both are new
//!   constraints on data that used to be valid).
//!
//! A sub-schema that is absent is treated like `true` (it accepts anything), which is what JSON
//! Schema does; so adding `items` or `additionalProperties` with a `type` where there was none is
//! reported as a narrowed type. Adding optional properties, adding `enum` values and editing
//! annotations (`description`, `title`, `examples`, …) are additive. Other validation keywords
//! (`pattern`, `minimum`, `maxLength`, …) and `$ref` targets are not compared: review those by hand.

use std::fmt;

use serde_json::{Map, Value};

/// One change that can make data valid under the old schema invalid under the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakingChange {
    /// JSON pointer (RFC 6901) of the schema node, relative to the schema root; `""` is the root.
    pub location: String,
    pub kind: ChangeKind,
}

/// What changed at [`BreakingChange::location`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    PropertyRemoved,
    DefinitionRemoved,
    /// An `anyOf`/`oneOf` branch is gone, so data that only matched it is rejected.
    BranchRemoved,
    /// The node accepts fewer JSON types. An empty `old` means it accepted any type.
    TypeNarrowed {
        old: Vec<String>,
        new: Vec<String>,
    },
    NewlyRequired {
        property: String,
    },
    /// The node accepted values and is now the `false` schema.
    Closed,
    EnumValuesRemoved {
        removed: Vec<Value>,
    },
    EnumIntroduced,
    ConstChanged {
        old: Option<Value>,
        new: Value,
    },
    FormatChanged {
        old: Option<String>,
        new: String,
    },
    /// A new `allOf` entry, or an `anyOf`/`oneOf` on a node that had none.
    ConstraintAdded {
        keyword: String,
    },
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PropertyRemoved => write!(f, "property removed"),
            Self::DefinitionRemoved => write!(f, "definition removed"),
            Self::BranchRemoved => write!(f, "branch removed"),
            Self::TypeNarrowed { old, new } => {
                let old = if old.is_empty() { "any type".to_owned() } else { old.join(", ") };
                write!(f, "type narrowed from [{old}] to [{}]", new.join(", "))
            }
            Self::NewlyRequired { property } => write!(f, "property `{property}` is newly required"),
            Self::Closed => write!(f, "schema became `false`: values accepted before are now rejected"),
            Self::EnumValuesRemoved { removed } => {
                let removed: Vec<String> = removed.iter().map(Value::to_string).collect();
                write!(f, "enum values removed: {}", removed.join(", "))
            }
            Self::EnumIntroduced => write!(f, "enum introduced on a node that accepted any value"),
            Self::ConstChanged { old: Some(old), new } => write!(f, "const changed from {old} to {new}"),
            Self::ConstChanged { old: None, new } => write!(f, "const {new} introduced"),
            Self::FormatChanged { old: Some(old), new } => {
                write!(f, "format changed from `{old}` to `{new}`")
            }
            Self::FormatChanged { old: None, new } => write!(f, "format `{new}` added"),
            Self::ConstraintAdded { keyword } => write!(f, "new `{keyword}` constraint"),
        }
    }
}

impl fmt::Display for BreakingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = if self.location.is_empty() { "(root)" } else { &self.location };
        write!(f, "{location}: {}", self.kind)
    }
}

/// Every breaking change from `old` to `new`, in schema walk order. Empty means additive only.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<BreakingChange> {
    let mut found = Vec::new();
    compare(old, new, "", &mut found);
    found
}

/// An absent sub-schema accepts anything, exactly like `true`.
static ANYTHING: Value = Value::Bool(true);

/// The three kinds of schema value that matter for compatibility.
enum Shape<'a> {
    Anything,
    Nothing,
    Node(&'a Map<String, Value>),
}

impl<'a> Shape<'a> {
    fn of(schema: &'a Value) -> Self {
        match schema {
            Value::Bool(false) => Self::Nothing,
            Value::Object(node) => Self::Node(node),
            // `true`, and anything malformed that we cannot reason about.
            _ => Self::Anything,
        }
    }
}

fn compare(old: &Value, new: &Value, at: &str, found: &mut Vec<BreakingChange>) {
    match (Shape::of(old), Shape::of(new)) {
        // Nothing was valid before, so nothing valid can be invalidated.
        (Shape::Nothing, _) => {}
        (_, Shape::Nothing) => push(found, at, ChangeKind::Closed),
        (_, Shape::Anything) => {}
        (Shape::Anything, Shape::Node(new)) => compare_nodes(&Map::new(), new, at, found),
        (Shape::Node(old), Shape::Node(new)) => compare_nodes(old, new, at, found),
    }
}

fn compare_nodes(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    at: &str,
    found: &mut Vec<BreakingChange>,
) {
    check_type(old, new, at, found);
    check_enum(old, new, at, found);
    check_const(old, new, at, found);
    check_format(old, new, at, found);
    check_required(old, new, at, found);

    compare_named(old, new, "properties", at, ChangeKind::PropertyRemoved, found);
    compare_named(old, new, "$defs", at, ChangeKind::DefinitionRemoved, found);
    compare_named(old, new, "definitions", at, ChangeKind::DefinitionRemoved, found);
    compare_sub_schema(old, new, "additionalProperties", at, found);
    compare_sub_schema(old, new, "items", at, found);
    compare_prefix_items(old, new, at, found);
    compare_all_of(old, new, at, found);
    compare_branches(old, new, "anyOf", at, found);
    compare_branches(old, new, "oneOf", at, found);
}

fn push(found: &mut Vec<BreakingChange>, at: &str, kind: ChangeKind) {
    found.push(BreakingChange { location: at.to_owned(), kind });
}

/// Appends one JSON pointer segment, escaping `~` and `/` as RFC 6901 requires.
fn child(at: &str, segment: &str) -> String {
    format!("{at}/{}", segment.replace('~', "~0").replace('/', "~1"))
}

fn check_type(old: &Map<String, Value>, new: &Map<String, Value>, at: &str, found: &mut Vec<BreakingChange>) {
    let Some(new_types) = declared_types(new) else {
        return; // no `type` accepts every type: never narrower
    };
    let old_types = declared_types(old).or_else(|| implied_types(old));
    let still_accepted = match &old_types {
        None => false,
        Some(old_types) => old_types.iter().all(|t| type_covered(t, &new_types)),
    };
    if !still_accepted {
        let old = old_types.unwrap_or_default();
        push(found, at, ChangeKind::TypeNarrowed { old, new: new_types });
    }
}

/// The `type` keyword as a set; `None` when absent (or malformed), meaning any type.
fn declared_types(node: &Map<String, Value>) -> Option<Vec<String>> {
    match node.get("type")? {
        Value::String(single) => Some(vec![single.clone()]),
        Value::Array(many) => Some(many.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        _ => None,
    }
}

/// Without `type`, an `enum` or `const` still limits the types a node accepts. Using them avoids
/// flagging the harmless addition of `"type": "string"` next to an existing string enum.
fn implied_types(node: &Map<String, Value>) -> Option<Vec<String>> {
    let values: Vec<&Value> = match (node.get("enum"), node.get("const")) {
        (_, Some(constant)) => vec![constant],
        (Some(Value::Array(values)), None) => values.iter().collect(),
        _ => return None,
    };
    Some(values.into_iter().map(|v| json_type(v).to_owned()).collect())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every integer is a number, so `integer` -> `number` widens.
fn type_covered(old_type: &str, new_types: &[String]) -> bool {
    new_types.iter().any(|t| t == old_type || (old_type == "integer" && t == "number"))
}

fn check_enum(old: &Map<String, Value>, new: &Map<String, Value>, at: &str, found: &mut Vec<BreakingChange>) {
    let Some(Value::Array(new_values)) = new.get("enum") else {
        return;
    };
    match old.get("enum") {
        Some(Value::Array(old_values)) => {
            let removed: Vec<Value> =
                old_values.iter().filter(|v| !new_values.contains(v)).cloned().collect();
            if !removed.is_empty() {
                push(found, at, ChangeKind::EnumValuesRemoved { removed });
            }
        }
        // A `const` that is one of the new values was already that narrow.
        _ if old.get("const").is_some_and(|c| new_values.contains(c)) => {}
        _ => push(found, at, ChangeKind::EnumIntroduced),
    }
}

fn check_const(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    at: &str,
    found: &mut Vec<BreakingChange>,
) {
    let Some(new_const) = new.get("const") else {
        return;
    };
    let old_const = old.get("const");
    if old_const != Some(new_const) {
        let kind = ChangeKind::ConstChanged { old: old_const.cloned(), new: new_const.clone() };
        push(found, at, kind);
    }
}

fn check_format(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    at: &str,
    found: &mut Vec<BreakingChange>,
) {
    let Some(new_format) = new.get("format").and_then(Value::as_str) else {
        return;
    };
    let old_format = old.get("format").and_then(Value::as_str);
    if old_format != Some(new_format) {
        let kind =
            ChangeKind::FormatChanged { old: old_format.map(str::to_owned), new: new_format.to_owned() };
        push(found, at, kind);
    }
}

fn check_required(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    at: &str,
    found: &mut Vec<BreakingChange>,
) {
    let old_required = string_list(old.get("required"));
    for name in string_list(new.get("required")) {
        if !old_required.contains(&name) {
            push(found, at, ChangeKind::NewlyRequired { property: name.to_owned() });
        }
    }
}

fn string_list(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Keywords whose value maps names to schemas. Names only in `new` are additions: always fine.
fn compare_named(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    keyword: &str,
    at: &str,
    removed: ChangeKind,
    found: &mut Vec<BreakingChange>,
) {
    let Some(Value::Object(old_entries)) = old.get(keyword) else {
        return;
    };
    let empty = Map::new();
    let new_entries = match new.get(keyword) {
        Some(Value::Object(entries)) => entries,
        _ => &empty,
    };
    let at = child(at, keyword);
    for (name, old_schema) in old_entries {
        let location = child(&at, name);
        match new_entries.get(name) {
            Some(new_schema) => compare(old_schema, new_schema, &location, found),
            None => push(found, &location, removed.clone()),
        }
    }
}

/// Keywords holding a single sub-schema, where absence means "anything".
fn compare_sub_schema(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    keyword: &str,
    at: &str,
    found: &mut Vec<BreakingChange>,
) {
    if old.get(keyword).is_none() && new.get(keyword).is_none() {
        return;
    }
    let old_schema = old.get(keyword).unwrap_or(&ANYTHING);
    let new_schema = new.get(keyword).unwrap_or(&ANYTHING);
    compare(old_schema, new_schema, &child(at, keyword), found);
}

/// Positions past the end of `prefixItems` are governed by `items`, so a position that exists on
/// one side only is compared with the other side's `items`.
fn compare_prefix_items(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    at: &str,
    found: &mut Vec<BreakingChange>,
) {
    let old_prefix = schema_list(old, "prefixItems");
    let new_prefix = schema_list(new, "prefixItems");
    let old_rest = old.get("items").unwrap_or(&ANYTHING);
    let new_rest = new.get("items").unwrap_or(&ANYTHING);
    let at = child(at, "prefixItems");
    for index in 0..old_prefix.len().max(new_prefix.len()) {
        let old_schema = old_prefix.get(index).unwrap_or(&old_rest);
        let new_schema = new_prefix.get(index).unwrap_or(&new_rest);
        compare(old_schema, new_schema, &child(&at, &index.to_string()), found);
    }
}

/// Every `allOf` entry must hold, so a new one is a new constraint and a removed one widens.
fn compare_all_of(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    at: &str,
    found: &mut Vec<BreakingChange>,
) {
    let old_entries = schema_list(old, "allOf");
    let at = child(at, "allOf");
    for (index, new_schema) in schema_list(new, "allOf").into_iter().enumerate() {
        let old_schema = old_entries.get(index).copied().unwrap_or(&ANYTHING);
        compare(old_schema, new_schema, &child(&at, &index.to_string()), found);
    }
}

/// One `anyOf`/`oneOf` branch must hold, so a removed branch narrows and a new one widens. The
/// keyword appearing on a node that had none is a new constraint.
fn compare_branches(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    keyword: &str,
    at: &str,
    found: &mut Vec<BreakingChange>,
) {
    let old_branches = schema_list(old, keyword);
    let new_branches = schema_list(new, keyword);
    if old_branches.is_empty() {
        if !new_branches.is_empty() {
            push(found, at, ChangeKind::ConstraintAdded { keyword: keyword.to_owned() });
        }
        return;
    }
    let at = child(at, keyword);
    for (index, old_schema) in old_branches.into_iter().enumerate() {
        let location = child(&at, &index.to_string());
        match new_branches.get(index) {
            Some(new_schema) => compare(old_schema, new_schema, &location, found),
            None => push(found, &location, ChangeKind::BranchRemoved),
        }
    }
}

fn schema_list<'a>(node: &'a Map<String, Value>, keyword: &str) -> Vec<&'a Value> {
    match node.get(keyword) {
        Some(Value::Array(schemas)) => schemas.iter().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The reasons found, rendered, for compact assertions.
    fn changes(old: Value, new: Value) -> Vec<String> {
        breaking_changes(&old, &new).iter().map(ToString::to_string).collect()
    }

    fn object(properties: Value) -> Value {
        json!({ "type": "object", "properties": properties })
    }

    // --- properties -----------------------------------------------------------------------------

    #[test]
    fn removing_a_property_is_breaking() {
        let old = object(json!({ "id": { "type": "string" }, "note": { "type": "string" } }));
        let new = object(json!({ "id": { "type": "string" } }));
        assert_eq!(changes(old, new), ["/properties/note: property removed"]);
    }

    #[test]
    fn removing_the_whole_properties_keyword_is_breaking() {
        let old = object(json!({ "id": { "type": "string" } }));
        let new = json!({ "type": "object" });
        assert_eq!(changes(old, new), ["/properties/id: property removed"]);
    }

    #[test]
    fn adding_an_optional_property_is_additive() {
        let old = object(json!({ "id": { "type": "string" } }));
        let new = object(json!({ "id": { "type": "string" }, "note": { "type": "string" } }));
        assert_eq!(changes(old, new), Vec::<String>::new());
    }

    #[test]
    fn adding_properties_to_a_schema_without_any_is_additive() {
        let old = json!({ "type": "object" });
        let new = object(json!({ "note": { "type": "string", "format": "uri", "enum": ["a"] } }));
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn an_identical_schema_has_no_breaking_changes() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["id", "status"],
            "additionalProperties": false,
            "properties": {
                "id": { "type": "string", "format": "uuid" },
                "status": { "enum": ["requested", "shipped"] },
                "items": { "type": "array", "items": { "$ref": "#/$defs/item" } }
            },
            "$defs": { "item": { "type": "object", "properties": { "sku": { "type": "string" } } } }
        });
        assert!(changes(schema.clone(), schema).is_empty());
    }

    // --- type -----------------------------------------------------------------------------------

    #[test]
    fn changing_a_type_is_breaking() {
        let old = object(json!({ "count": { "type": "string" } }));
        let new = object(json!({ "count": { "type": "integer" } }));
        assert_eq!(changes(old, new), ["/properties/count: type narrowed from [string] to [integer]"]);
    }

    #[test]
    fn narrowing_a_nullable_type_is_breaking() {
        let old = object(json!({ "note": { "type": ["string", "null"] } }));
        let new = object(json!({ "note": { "type": "string" } }));
        assert_eq!(changes(old, new), ["/properties/note: type narrowed from [string, null] to [string]"]);
    }

    #[test]
    fn widening_a_type_to_nullable_is_additive() {
        let old = object(json!({ "note": { "type": "string" } }));
        let new = object(json!({ "note": { "type": ["string", "null"] } }));
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn widening_integer_to_number_is_additive() {
        let old = object(json!({ "n": { "type": "integer" } }));
        let new = object(json!({ "n": { "type": "number" } }));
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn narrowing_number_to_integer_is_breaking() {
        let old = object(json!({ "n": { "type": "number" } }));
        let new = object(json!({ "n": { "type": "integer" } }));
        assert_eq!(changes(old, new).len(), 1);
    }

    #[test]
    fn dropping_a_type_is_additive() {
        let old = object(json!({ "n": { "type": "number" } }));
        let new = object(json!({ "n": {} }));
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn adding_a_type_where_any_was_accepted_is_breaking() {
        let old = object(json!({ "payload": { "description": "anything" } }));
        let new = object(json!({ "payload": { "type": "object" } }));
        assert_eq!(changes(old, new), ["/properties/payload: type narrowed from [any type] to [object]"]);
    }

    #[test]
    fn adding_a_type_that_matches_an_existing_enum_is_additive() {
        let old = object(json!({ "status": { "enum": ["open", "closed"] } }));
        let new = object(json!({ "status": { "type": "string", "enum": ["open", "closed"] } }));
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn changing_the_root_type_is_breaking() {
        assert_eq!(
            changes(json!({ "type": "object" }), json!({ "type": "array" })),
            ["(root): type narrowed from [object] to [array]"]
        );
    }

    // --- required -------------------------------------------------------------------------------

    #[test]
    fn requiring_an_existing_optional_property_is_breaking() {
        let old = object(json!({ "note": { "type": "string" } }));
        let mut new = old.clone();
        new["required"] = json!(["note"]);
        assert_eq!(changes(old, new), ["(root): property `note` is newly required"]);
    }

    #[test]
    fn adding_a_new_required_property_is_breaking() {
        let old = json!({ "type": "object", "required": ["id"], "properties": { "id": {} } });
        let new = json!({ "type": "object", "required": ["id", "tenant"], "properties": { "id": {}, "tenant": {} } });
        assert_eq!(changes(old, new), ["(root): property `tenant` is newly required"]);
    }

    #[test]
    fn no_longer_requiring_a_property_is_additive() {
        let old =
            json!({ "type": "object", "required": ["id", "note"], "properties": { "id": {}, "note": {} } });
        let new = json!({ "type": "object", "required": ["id"], "properties": { "id": {}, "note": {} } });
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn a_new_optional_nested_object_may_require_its_own_properties() {
        let old = object(json!({ "id": { "type": "string" } }));
        let new = object(json!({
            "id": { "type": "string" },
            "shipping": { "type": "object", "required": ["carrier"], "properties": { "carrier": { "type": "string" } } }
        }));
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn a_new_required_name_on_an_existing_nested_object_is_breaking() {
        let old = object(json!({ "address": object(json!({ "city": {}, "zip": {} })) }));
        let mut new = old.clone();
        new["properties"]["address"]["required"] = json!(["zip"]);
        assert_eq!(changes(old, new), ["/properties/address: property `zip` is newly required"]);
    }

    // --- additionalProperties -------------------------------------------------------------------

    #[test]
    fn closing_additional_properties_is_breaking() {
        let old = object(json!({ "id": {} }));
        let mut new = old.clone();
        new["additionalProperties"] = json!(false);
        assert_eq!(
            changes(old, new),
            ["/additionalProperties: schema became `false`: values accepted before are now rejected"]
        );
    }

    #[test]
    fn closing_explicitly_open_additional_properties_is_breaking() {
        let old = json!({ "type": "object", "additionalProperties": true });
        let new = json!({ "type": "object", "additionalProperties": false });
        assert_eq!(changes(old, new).len(), 1);
    }

    #[test]
    fn opening_additional_properties_is_additive() {
        let old = json!({ "type": "object", "additionalProperties": false });
        assert!(changes(old.clone(), json!({ "type": "object", "additionalProperties": true })).is_empty());
        assert!(changes(old, json!({ "type": "object" })).is_empty());
    }

    #[test]
    fn additional_properties_schemas_are_compared() {
        let old = json!({ "type": "object", "additionalProperties": { "type": "string" } });
        let new = json!({ "type": "object", "additionalProperties": { "type": "integer" } });
        assert_eq!(changes(old, new), ["/additionalProperties: type narrowed from [string] to [integer]"]);
    }

    #[test]
    fn adding_a_property_to_a_closed_object_is_additive() {
        let old = json!({ "type": "object", "additionalProperties": false, "properties": { "id": {} } });
        let new =
            json!({ "type": "object", "additionalProperties": false, "properties": { "id": {}, "n": {} } });
        assert!(changes(old, new).is_empty());
    }

    // --- enum -----------------------------------------------------------------------------------

    #[test]
    fn removing_an_enum_value_is_breaking() {
        let old = object(json!({ "status": { "enum": ["open", "closed", "lost"] } }));
        let new = object(json!({ "status": { "enum": ["open", "closed"] } }));
        assert_eq!(changes(old, new), [r#"/properties/status: enum values removed: "lost""#]);
    }

    #[test]
    fn adding_an_enum_value_is_additive() {
        let old = object(json!({ "status": { "enum": ["open"] } }));
        let new = object(json!({ "status": { "enum": ["open", "closed"] } }));
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn introducing_an_enum_is_breaking() {
        let old = object(json!({ "status": { "type": "string" } }));
        let new = object(json!({ "status": { "type": "string", "enum": ["open"] } }));
        assert_eq!(
            changes(old, new),
            ["/properties/status: enum introduced on a node that accepted any value"]
        );
    }

    #[test]
    fn dropping_an_enum_is_additive() {
        let old = object(json!({ "status": { "type": "string", "enum": ["open"] } }));
        let new = object(json!({ "status": { "type": "string" } }));
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn turning_a_const_into_an_enum_that_contains_it_is_additive() {
        let old = object(json!({ "kind": { "const": "sample" } }));
        let new = object(json!({ "kind": { "enum": ["sample", "order"] } }));
        assert!(changes(old, new).is_empty());
    }

    // --- const ----------------------------------------------------------------------------------

    #[test]
    fn changing_a_const_is_breaking() {
        let old = object(json!({ "kind": { "const": "sample" } }));
        let new = object(json!({ "kind": { "const": "specimen" } }));
        assert_eq!(changes(old, new), [r#"/properties/kind: const changed from "sample" to "specimen""#]);
    }

    #[test]
    fn introducing_a_const_is_breaking() {
        let old = object(json!({ "kind": { "type": "string" } }));
        let new = object(json!({ "kind": { "type": "string", "const": "sample" } }));
        assert_eq!(changes(old, new), [r#"/properties/kind: const "sample" introduced"#]);
    }

    #[test]
    fn keeping_or_dropping_a_const_is_additive() {
        let old = object(json!({ "kind": { "const": "sample" } }));
        assert!(changes(old.clone(), old.clone()).is_empty());
        assert!(changes(old, object(json!({ "kind": { "type": "string" } }))).is_empty());
    }

    // --- format ---------------------------------------------------------------------------------

    #[test]
    fn adding_a_format_to_an_existing_property_is_breaking() {
        let old = object(json!({ "at": { "type": "string" } }));
        let new = object(json!({ "at": { "type": "string", "format": "date-time" } }));
        assert_eq!(changes(old, new), ["/properties/at: format `date-time` added"]);
    }

    #[test]
    fn changing_a_format_is_breaking() {
        let old = object(json!({ "at": { "type": "string", "format": "date" } }));
        let new = object(json!({ "at": { "type": "string", "format": "date-time" } }));
        assert_eq!(changes(old, new), ["/properties/at: format changed from `date` to `date-time`"]);
    }

    #[test]
    fn removing_a_format_is_additive() {
        let old = object(json!({ "at": { "type": "string", "format": "date" } }));
        let new = object(json!({ "at": { "type": "string" } }));
        assert!(changes(old, new).is_empty());
    }

    // --- annotations ----------------------------------------------------------------------------

    #[test]
    fn changing_annotations_is_additive() {
        let old = json!({
            "title": "Old", "description": "old", "examples": [{ "id": "a" }],
            "type": "object", "properties": { "id": { "type": "string", "description": "id" } }
        });
        let new = json!({
            "title": "New", "description": "new", "examples": [],
            "type": "object", "properties": { "id": { "type": "string", "description": "the id", "title": "Id" } }
        });
        assert!(changes(old, new).is_empty());
    }

    // --- nesting --------------------------------------------------------------------------------

    #[test]
    fn changes_deep_inside_array_items_are_reported_with_their_location() {
        let item = |sku: Value| json!({ "type": "array", "items": object(json!({ "sku": sku })) });
        let old = object(json!({ "items": item(json!({ "type": "string" })) }));
        let new = object(json!({ "items": item(json!({ "type": "integer" })) }));
        assert_eq!(
            changes(old, new),
            ["/properties/items/items/properties/sku: type narrowed from [string] to [integer]"]
        );
    }

    #[test]
    fn removing_a_nested_property_is_breaking() {
        let old =
            object(json!({ "items": { "type": "array", "items": object(json!({ "sku": {}, "qty": {} })) } }));
        let new = object(json!({ "items": { "type": "array", "items": object(json!({ "sku": {} })) } }));
        assert_eq!(changes(old, new), ["/properties/items/items/properties/qty: property removed"]);
    }

    #[test]
    fn several_changes_are_all_reported() {
        let old = object(json!({ "a": { "type": "string" }, "b": { "enum": [1, 2] }, "c": {} }));
        let new = object(json!({ "a": { "type": "boolean" }, "b": { "enum": [1] } }));
        assert_eq!(changes(old, new).len(), 3);
    }

    #[test]
    fn changes_inside_defs_are_breaking() {
        let old = json!({ "$defs": { "money": object(json!({ "amount": { "type": "string" } })) } });
        let new = json!({ "$defs": { "money": object(json!({ "amount": { "type": "number" } })) } });
        assert_eq!(
            changes(old, new),
            ["/$defs/money/properties/amount: type narrowed from [string] to [number]"]
        );
    }

    #[test]
    fn removing_a_definition_is_breaking_but_adding_one_is_not() {
        let old = json!({ "definitions": { "a": {}, "b": {} } });
        let new = json!({ "definitions": { "a": {}, "c": {} } });
        assert_eq!(changes(old, new), ["/definitions/b: definition removed"]);
    }

    #[test]
    fn items_becoming_false_is_breaking() {
        let old = json!({ "type": "array", "items": { "type": "string" } });
        let new = json!({ "type": "array", "items": false });
        assert_eq!(changes(old, new).len(), 1);
    }

    #[test]
    fn constraining_items_that_were_unconstrained_is_breaking() {
        let old = json!({ "type": "array" });
        let new = json!({ "type": "array", "items": { "type": "string" } });
        assert_eq!(changes(old, new), ["/items: type narrowed from [any type] to [string]"]);
    }

    #[test]
    fn prefix_items_are_compared_by_position() {
        let old = json!({ "prefixItems": [{ "type": "string" }, { "type": "integer" }] });
        let new = json!({ "prefixItems": [{ "type": "string" }, { "type": "boolean" }] });
        assert_eq!(changes(old, new), ["/prefixItems/1: type narrowed from [integer] to [boolean]"]);
    }

    #[test]
    fn a_new_prefix_item_is_compared_with_the_old_items_schema() {
        let old = json!({ "prefixItems": [{ "type": "string" }], "items": { "type": ["integer", "null"] } });
        let widening = json!({ "prefixItems": [{ "type": "string" }, { "type": ["number", "null"] }] });
        let narrowing = json!({ "prefixItems": [{ "type": "string" }, { "type": "integer" }] });
        assert!(changes(old.clone(), widening).is_empty());
        assert_eq!(
            changes(old, narrowing),
            ["/prefixItems/1: type narrowed from [integer, null] to [integer]"]
        );
    }

    #[test]
    fn all_of_entries_are_compared_by_index() {
        let old = json!({ "allOf": [{ "properties": { "a": {} } }] });
        let new = json!({ "allOf": [{ "properties": {} }] });
        assert_eq!(changes(old, new), ["/allOf/0/properties/a: property removed"]);
    }

    #[test]
    fn a_new_all_of_entry_is_a_new_constraint() {
        let old = json!({ "allOf": [{ "type": "object" }] });
        let narrowing = json!({ "allOf": [{ "type": "object" }, { "required": ["id"] }] });
        let harmless = json!({ "allOf": [{ "type": "object" }, { "description": "noted" }] });
        assert_eq!(changes(old.clone(), narrowing), ["/allOf/1: property `id` is newly required"]);
        assert!(changes(old, harmless).is_empty());
    }

    #[test]
    fn removing_an_any_of_branch_is_breaking() {
        let old = json!({ "anyOf": [{ "type": "string" }, { "type": "null" }] });
        let new = json!({ "anyOf": [{ "type": "string" }] });
        assert_eq!(changes(old, new), ["/anyOf/1: branch removed"]);
    }

    #[test]
    fn adding_a_one_of_branch_is_additive() {
        let old = json!({ "oneOf": [{ "type": "string" }] });
        let new = json!({ "oneOf": [{ "type": "string" }, { "type": "null" }] });
        assert!(changes(old, new).is_empty());
    }

    #[test]
    fn changes_inside_one_of_branches_are_reported() {
        let old =
            json!({ "oneOf": [object(json!({ "a": {} })), object(json!({ "b": { "format": "uuid" } }))] });
        let new =
            json!({ "oneOf": [object(json!({ "a": {} })), object(json!({ "b": { "format": "uri" } }))] });
        assert_eq!(changes(old, new), ["/oneOf/1/properties/b: format changed from `uuid` to `uri`"]);
    }

    #[test]
    fn introducing_any_of_on_an_existing_node_is_breaking() {
        let old = object(json!({ "v": {} }));
        let new = object(json!({ "v": { "anyOf": [{ "type": "string" }, { "type": "null" }] } }));
        assert_eq!(changes(old, new), ["/properties/v: new `anyOf` constraint"]);
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let old = object(json!({ "a/b~c": {} }));
        let new = object(json!({}));
        assert_eq!(breaking_changes(&old, &new)[0].location, "/properties/a~1b~0c");
    }

    #[test]
    fn a_false_schema_may_be_opened_up() {
        assert!(changes(json!(false), json!({ "type": "string" })).is_empty());
        assert_eq!(changes(json!(true), json!(false)).len(), 1);
    }

    // --- properties of the check as a whole -----------------------------------------------------

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,5}".prop_map(Value::from),
        ]
    }

    fn arb_type() -> impl Strategy<Value = Value> {
        let name =
            prop::sample::select(vec!["string", "integer", "number", "boolean", "null", "object", "array"]);
        prop_oneof![
            name.clone().prop_map(Value::from),
            prop::collection::vec(name, 1..3).prop_map(Value::from),
        ]
    }

    fn arb_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::from),
            Just(json!({})),
            arb_type().prop_map(|t| json!({ "type": t })),
            prop::collection::vec(arb_scalar(), 1..4).prop_map(|values| json!({ "enum": values })),
            arb_scalar().prop_map(|value| json!({ "const": value })),
            prop::sample::select(vec!["uuid", "date-time", "email"])
                .prop_map(|format| json!({ "type": "string", "format": format })),
        ]
    }

    /// An object schema with random properties, some of them required.
    fn arb_object(inner: impl Strategy<Value = Value> + Clone) -> impl Strategy<Value = Value> {
        let properties = prop::collection::btree_map("[a-z]{1,6}", (inner.clone(), any::<bool>()), 0..4);
        let additional =
            prop_oneof![Just(None), any::<bool>().prop_map(|b| Some(Value::from(b))), inner.prop_map(Some)];
        (properties, additional).prop_map(|(properties, additional)| {
            let required: Vec<&String> =
                properties.iter().filter(|(_, (_, req))| *req).map(|(n, _)| n).collect();
            let mut schema = json!({ "type": "object", "required": required });
            schema["properties"] = properties.iter().map(|(n, (s, _))| (n.clone(), s.clone())).collect();
            if let Some(additional) = additional {
                schema["additionalProperties"] = additional;
            }
            schema
        })
    }

    fn arb_schema() -> BoxedStrategy<Value> {
        arb_leaf()
            .prop_recursive(3, 32, 4, |inner| {
                prop_oneof![
                    arb_object(inner.clone()),
                    inner.clone().prop_map(|items| json!({ "type": "array", "items": items })),
                    prop::collection::vec(inner.clone(), 1..3)
                        .prop_map(|prefix| json!({ "prefixItems": prefix })),
                    prop::collection::vec(inner.clone(), 1..3).prop_map(|all| json!({ "allOf": all })),
                    prop::collection::vec(inner.clone(), 1..3).prop_map(|any| json!({ "anyOf": any })),
                    prop::collection::vec(inner.clone(), 1..3).prop_map(|one| json!({ "oneOf": one })),
                    prop::collection::btree_map("[a-z]{1,4}", inner, 1..3)
                        .prop_map(|defs| json!({ "$defs": defs, "$ref": "#/$defs/a" })),
                ]
            })
            .boxed()
    }

    proptest! {
        #[test]
        fn any_schema_compared_with_itself_has_no_breaking_changes(schema in arb_schema()) {
            prop_assert_eq!(breaking_changes(&schema, &schema), Vec::new());
        }

        #[test]
        fn adding_a_random_optional_property_to_a_random_object_schema_is_never_breaking(
            old in arb_object(arb_schema()),
            // Generated names have no underscore, so this one is always new.
            name in "new_[a-z]{1,6}",
            property in arb_schema(),
        ) {
            let mut new = old.clone();
            new["properties"][name.as_str()] = property;
            prop_assert_eq!(breaking_changes(&old, &new), Vec::new());
        }
    }
}
