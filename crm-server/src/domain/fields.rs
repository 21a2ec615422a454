//! The field bridge's rules: the catalog of dynamic fields and what a `PATCH` of field values may
//! contain. The catalog lives in the `field_catalog` table (seeded by migration) and is loaded and
//! compiled once at start.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::FieldError;

/// Largest stored value, serialised. Field values are facts about a customer, not documents.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// One dynamic field, as `GET /fields` describes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldDefinition {
    pub key: String,
    pub label: String,
    pub description: String,
    /// JSON Schema (draft 2020-12) of the value.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// Mirrored into the hot projection and searchable with `GET /customers`.
    pub hot: bool,
    /// Roles that may write it; empty for derived fields.
    pub writable_by: Vec<String>,
}

/// The catalog with every schema compiled.
#[derive(Debug)]
pub struct FieldCatalog {
    fields: BTreeMap<String, (FieldDefinition, jsonschema::Validator)>,
}

/// One requested change: a new value, or `None` to remove the field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldWrite {
    pub key: String,
    pub value: Option<Value>,
}

impl FieldCatalog {
    pub fn new(definitions: Vec<FieldDefinition>) -> Result<FieldCatalog, String> {
        let mut fields = BTreeMap::new();
        for definition in definitions {
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&definition.schema)
                .map_err(|e| format!("the schema of field {} does not compile: {e}", definition.key))?;
            fields.insert(definition.key.clone(), (definition, validator));
        }
        Ok(FieldCatalog { fields })
    }

    pub fn get(&self, key: &str) -> Option<&FieldDefinition> {
        self.fields.get(key).map(|(definition, _)| definition)
    }

    pub fn definitions(&self) -> impl Iterator<Item = &FieldDefinition> {
        self.fields.values().map(|(definition, _)| definition)
    }

    /// Whether a caller with `roles` may write the field `key`.
    pub fn may_write(&self, key: &str, roles: &std::collections::BTreeSet<crate::auth::UserRole>) -> bool {
        self.get(key).is_some_and(|d| roles.iter().any(|r| d.writable_by.iter().any(|w| w == r.as_str())))
    }

    /// Checks a `PATCH /customers/{id}/fields` body: an object of field keys to new values, `null`
    /// removing a field. Returns the writes in key order, or every problem, each named by the
    /// JSON pointer of the offending value.
    pub fn validate_patch(&self, patch: &Value) -> Result<Vec<FieldWrite>, Vec<FieldError>> {
        let Value::Object(members) = patch else {
            return Err(vec![FieldError::new("", "the body must be an object of field keys and values")]);
        };
        let mut errors = Vec::new();
        let mut writes = Vec::with_capacity(members.len());
        for (key, value) in members {
            let pointer = format!("/{}", escape(key));
            let Some((definition, validator)) = self.fields.get(key) else {
                errors.push(FieldError::new(pointer, "unknown field; GET /fields lists the catalog"));
                continue;
            };
            if definition.writable_by.is_empty() {
                errors.push(FieldError::new(pointer, "derived field, read-only here"));
                continue;
            }
            if value.is_null() {
                writes.push(FieldWrite { key: key.clone(), value: None });
                continue;
            }
            let mut problems: Vec<FieldError> = validator
                .iter_errors(value)
                .map(|e| FieldError::new(format!("{pointer}{}", e.instance_path()), e.to_string()))
                .collect();
            if problems.is_empty() {
                problems.extend(cross_member_rules(key, value, &pointer));
                insane_dates(&definition.schema, value, &pointer, &mut problems);
            }
            if !problems.is_empty() {
                errors.extend(problems);
            } else if value.to_string().len() > MAX_VALUE_BYTES {
                errors.push(FieldError::new(pointer, format!("larger than {MAX_VALUE_BYTES} bytes")));
            } else {
                writes.push(FieldWrite { key: key.clone(), value: Some(value.clone()) });
            }
        }
        if errors.is_empty() { Ok(writes) } else { Err(errors) }
    }
}

/// Rules a JSON Schema cannot state.
fn cross_member_rules(key: &str, value: &Value, pointer: &str) -> Option<FieldError> {
    match key {
        // Dates in ISO form compare correctly as strings.
        "seasonal_menu_cycle" => {
            let (start, end) = (value["season_start"].as_str()?, value["season_end"].as_str()?);
            (end < start)
                .then(|| FieldError::new(format!("{pointer}/season_end"), "the season ends before it starts"))
        }
        _ => None,
    }
}

/// Dates and date-times (by the schema's `format`) outside the years clients may give; see
/// [`crate::domain::dates`]. Follows `properties` and `items`, which is how the catalog and the
/// event schemas nest.
pub fn insane_dates(schema: &Value, value: &Value, pointer: &str, errors: &mut Vec<FieldError>) {
    let dated = matches!(schema["format"].as_str(), Some("date" | "date-time"));
    match value {
        Value::String(text) if dated && !crate::domain::dates::is_sane_text(text) => {
            errors.push(FieldError::new(pointer, "a year from 1900 to 9999"));
        }
        Value::Object(members) => {
            for (name, member) in members {
                if let Some(sub) = schema["properties"].get(name) {
                    insane_dates(sub, member, &format!("{pointer}/{}", escape(name)), errors);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                insane_dates(&schema["items"], item, &format!("{pointer}/{i}"), errors);
            }
        }
        _ => {}
    }
}

/// RFC 6901 escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A catalog with the shapes of the seeded fields the tests need (the seeded catalog itself is
    /// exercised through the API in the integration tests).
    fn test_catalog() -> FieldCatalog {
        let field = |key: &str, schema: Value, hot: bool, writable: &[&str]| FieldDefinition {
            key: key.into(),
            label: key.into(),
            description: String::new(),
            schema,
            hot,
            writable_by: writable.iter().map(|s| s.to_string()).collect(),
        };
        let date = json!({"type": "string", "format": "date"});
        FieldCatalog::new(vec![
            field("sample_status", json!({"type": "string"}), true, &[]),
            field(
                "roi_potential",
                json!({"type": "object", "additionalProperties": false, "required": ["bucket", "value"],
                       "properties": {"bucket": {"enum": ["LOW", "MID", "HIGH"]}, "value": {"type": "number", "minimum": 0}}}),
                true,
                &["sales-rep"],
            ),
            field(
                "seasonal_menu_cycle",
                json!({"type": "object", "required": ["season_start", "season_end"],
                       "properties": {"season_start": date, "season_end": date}}),
                true,
                &["sales-rep"],
            ),
            field("current_supplier_contracts", json!({"type": "object"}), true, &["team-lead"]),
            field("menu_notes", json!({"type": "string", "maxLength": 100000}), false, &["sales-rep"]),
            field(
                "preferred_delivery_days",
                json!({"type": "array", "uniqueItems": true, "items": {"enum": ["MON", "TUE"]}}),
                false,
                &["sales-rep"],
            ),
        ])
        .unwrap()
    }

    fn pointers(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(|e| e.pointer.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn valid_writes_and_removals_come_back_in_key_order() {
        let writes = test_catalog()
            .validate_patch(&json!({
                "roi_potential": {"bucket": "HIGH", "value": 1800},
                "current_supplier_contracts": null,
                "menu_notes": "Spargel im Mai"
            }))
            .unwrap();
        let keys: Vec<&str> = writes.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(keys, ["current_supplier_contracts", "menu_notes", "roi_potential"]);
        assert_eq!(writes[0].value, None);
    }

    #[test]
    fn each_bad_value_is_named_by_its_pointer() {
        let errors = test_catalog()
            .validate_patch(&json!({
                "roi_potential": {"bucket": "HUGE", "value": -1},
                "sample_status": "DELIVERED",
                "no_such_field": 1,
                "a/b": 2,
                "seasonal_menu_cycle": {"season_start": "2026-09-01", "season_end": "2026-02-30"},
                "preferred_delivery_days": ["MON", "MON"]
            }))
            .unwrap_err();
        let mut found = pointers(&errors);
        found.sort();
        assert_eq!(
            found,
            [
                "/a~1b",
                "/no_such_field",
                "/preferred_delivery_days",
                "/roi_potential/bucket",
                "/roi_potential/value",
                "/sample_status",
                "/seasonal_menu_cycle/season_end"
            ]
        );
    }

    #[test]
    fn a_season_that_ends_before_it_starts_is_refused() {
        let errors = test_catalog()
            .validate_patch(
                &json!({"seasonal_menu_cycle": {"season_start": "2026-09-01", "season_end": "2026-08-31"}}),
            )
            .unwrap_err();
        assert_eq!(pointers(&errors), ["/seasonal_menu_cycle/season_end"]);
        assert!(errors[0].detail.contains("ends before"));
    }

    #[test]
    fn dates_outside_the_sane_years_are_refused() {
        let errors = test_catalog()
            .validate_patch(
                &json!({"seasonal_menu_cycle": {"season_start": "0000-01-01", "season_end": "2026-08-31"}}),
            )
            .unwrap_err();
        assert_eq!(pointers(&errors), ["/seasonal_menu_cycle/season_start"]);
    }

    #[test]
    fn the_body_must_be_an_object() {
        let errors = test_catalog().validate_patch(&json!([1, 2])).unwrap_err();
        assert_eq!(pointers(&errors), [""]);
    }

    #[test]
    fn oversized_values_are_refused() {
        let errors = test_catalog()
            .validate_patch(&json!({"menu_notes": "x".repeat(MAX_VALUE_BYTES + 1)}))
            .unwrap_err();
        assert_eq!(pointers(&errors), ["/menu_notes"]);
    }
}
