//! The event types this server writes, each with its data schema compiled into the binary.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde_json::Value;

/// Where the schemas are published; `dataschema` of each event points below it.
pub const SCHEMA_BASE_URI: &str = "https://freshplan.io/schemas/events/";

/// One table of event types: name, version of the data schema, and the aggregate the subject
/// identifies. The schema file `schemas/events/<name>.v<version>.json` must exist (it is included
/// at compile time) and a test checks that no file lacks an entry.
macro_rules! event_types {
    ($($variant:ident => $name:literal v $version:literal about $aggregate:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($variant),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            pub fn version(self) -> u32 {
                match self { $(EventType::$variant => $version),* }
            }

            pub fn aggregate_type(self) -> &'static str {
                match self { $(EventType::$variant => $aggregate),* }
            }

            pub fn schema_source(self) -> &'static str {
                match self {
                    $(EventType::$variant => include_str!(
                        concat!("../../schemas/events/", $name, ".v", $version, ".json")
                    )),*
                }
            }
        }
    };
}

event_types! {
    SampleRequested => "sample.requested" v 1 about "sample";
    SampleStatusChanged => "sample.status.changed" v 1 about "sample";
    ActivityCreated => "activity.created" v 1 about "activity";
    CustomerContactabilityChanged => "customer.contactability.changed" v 1 about "customer";
    CustomerCreated => "customer.created" v 1 about "customer";
    CustomerUpdated => "customer.updated" v 1 about "customer";
    CustomerFieldsChanged => "customer.fields.changed" v 1 about "customer";
    ContactCreated => "contact.created" v 1 about "contact";
    ContactUpdated => "contact.updated" v 1 about "contact";
    ContactRolesChanged => "contact.roles.changed" v 1 about "contact";
    ContactAnonymised => "contact.anonymised" v 1 about "contact";
    CustomerPersonalDataRemoved => "customer.personal_data.removed" v 1 about "customer";
    LeadConverted => "lead.converted" v 1 about "lead";
    EmailBounce => "email.bounce" v 1 about "customer";
    SettingsChanged => "settings.changed" v 1 about "settings";
    SettingsSynced => "settings.synced" v 1 about "settings";
}

impl EventType {
    pub fn schema_file_name(self) -> String {
        format!("{}.v{}.json", self.name(), self.version())
    }

    pub fn parse(name: &str, version: u32) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.name() == name && t.version() == version)
    }

    /// Checks `data` against the type's schema; on failure, one message per violation, each
    /// naming the JSON pointer of the offending value.
    pub fn validate(self, data: &Value) -> Result<(), Vec<String>> {
        match VALIDATORS.get(&self) {
            Some(Ok(validator)) => {
                let problems: Vec<String> =
                    validator.iter_errors(data).map(|e| format!("{}: {e}", e.instance_path())).collect();
                if problems.is_empty() { Ok(()) } else { Err(problems) }
            }
            Some(Err(e)) => {
                Err(vec![format!("the schema {} does not compile: {e}", self.schema_file_name())])
            }
            None => Err(vec![format!("no schema for {self}")]),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.v{}", self.name(), self.version())
    }
}

/// Compiled once. A schema that fails to compile makes its event type unwritable (reported as
/// an internal error on use) rather than taking down the server; a test compiles them all.
static VALIDATORS: LazyLock<HashMap<EventType, Result<jsonschema::Validator, String>>> =
    LazyLock::new(|| EventType::ALL.iter().map(|&t| (t, compile(t.schema_source()))).collect());

/// Compiles a draft 2020-12 schema with format checking on (`uuid`, `date`, `date-time`), which
/// the draft otherwise treats as annotation only.
pub fn compile(source: &str) -> Result<jsonschema::Validator, String> {
    let schema: Value = serde_json::from_str(source).map_err(|e| e.to_string())?;
    jsonschema::options().should_validate_formats(true).build(&schema).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_compiles_and_names_its_type_and_version() {
        for &t in EventType::ALL {
            compile(t.schema_source()).unwrap_or_else(|e| panic!("{t}: {e}"));
            let schema: Value = serde_json::from_str(t.schema_source()).unwrap();
            assert_eq!(schema["$id"], format!("{SCHEMA_BASE_URI}{}", t.schema_file_name()));
            assert_eq!(schema["title"], t.name());
        }
    }

    #[test]
    fn every_schema_file_has_an_event_type() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/events");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                EventType::ALL.iter().any(|t| t.schema_file_name() == file),
                "{file} has no entry in the event_types! table"
            );
        }
    }

    #[test]
    fn data_that_breaks_the_schema_is_named_by_pointer() {
        let bad = json!({
            "sampleId": "not-a-uuid",
            "customerId": "6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60",
            "items": [{"sku": "CF-1", "quantity": 0}],
            "deliveryDate": "2026-02-30"
        });
        let problems = EventType::SampleRequested.validate(&bad).unwrap_err();
        let text = problems.join("\n");
        assert!(text.contains("/sampleId"), "{text}");
        assert!(text.contains("/items/0/quantity"), "{text}");
        assert!(text.contains("/deliveryDate"), "{text}");
    }

    #[test]
    fn valid_data_passes() {
        let good = json!({
            "sampleId": "6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60",
            "customerId": "6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f61",
            "oldStatus": "SHIPPED",
            "newStatus": "DELIVERED",
            "eventAt": "2026-10-01T08:00:00Z"
        });
        assert_eq!(EventType::SampleStatusChanged.validate(&good), Ok(()));
    }

    #[test]
    fn types_parse_from_their_stored_name_and_version() {
        for &t in EventType::ALL {
            assert_eq!(EventType::parse(t.name(), t.version()), Some(t));
        }
        assert_eq!(EventType::parse("sample.requested", 99), None);
    }
}
