//! Checks written events against the contracts consumers rely on: the CloudEvents 1.0 JSON
//! schema (from `../shared/upstream/cloudevents/`, read, never copied) and the event type's own
//! data schema. The test harness runs this over every test's outbox.

use std::path::PathBuf;
use std::sync::LazyLock;

use crate::outbox::{EventType, StoredEvent};

/// `../shared/upstream` beside the repository, or `FRESHPLAN_UPSTREAM_DIR`.
pub fn upstream_dir() -> PathBuf {
    match std::env::var_os("FRESHPLAN_UPSTREAM_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/upstream"),
    }
}

static CLOUDEVENTS: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(|| {
    let path = upstream_dir().join("cloudevents/cloudevents.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("reading {} (is ../shared beside the repository?): {e}", path.display()))?;
    let schema: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    jsonschema::options().should_validate_formats(true).build(&schema).map_err(|e| e.to_string())
});

/// One message per problem, naming the event's seq and type; empty when all are valid.
pub fn check(events: &[StoredEvent]) -> Vec<String> {
    let mut problems = Vec::new();
    let cloudevents = match &*CLOUDEVENTS {
        Ok(validator) => validator,
        Err(e) => return vec![format!("the CloudEvents schema is unusable: {e}")],
    };
    for event in events {
        let name = format!("event seq {} ({}.v{})", event.seq, event.event_type, event.type_version);
        let envelope = event.to_cloudevent();
        // The upstream schema does not pin the version; consumers rely on it.
        if envelope["specversion"] != "1.0" {
            problems.push(format!("{name}: specversion is not 1.0"));
        }
        for error in cloudevents.iter_errors(&envelope) {
            problems.push(format!("{name}: CloudEvents envelope {}: {error}", error.instance_path()));
        }
        let version = u32::try_from(event.type_version).unwrap_or(0);
        match EventType::parse(&event.event_type, version) {
            None => problems.push(format!("{name}: no schema for this type and version")),
            Some(event_type) => {
                if event_type.aggregate_type() != event.aggregate_type {
                    problems.push(format!(
                        "{name}: aggregate type {} is not {}",
                        event.aggregate_type,
                        event_type.aggregate_type()
                    ));
                }
                if let Err(errors) = event_type.validate(&event.data) {
                    problems.extend(errors.into_iter().map(|e| format!("{name}: data {e}")));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::OffsetDateTime;

    fn event(event_type: &str, data: serde_json::Value) -> StoredEvent {
        StoredEvent {
            seq: 1,
            id: uuid::Uuid::now_v7(),
            event_type: event_type.into(),
            type_version: 1,
            source: crate::outbox::SOURCE.into(),
            aggregate_type: "customer".into(),
            aggregate_id: "6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60".into(),
            occurred_at: OffsetDateTime::now_utc(),
            correlation_id: Some("c-1".into()),
            actor_type: "system".into(),
            actor_id: "retention".into(),
            data,
            territory: Some("BY".into()),
            position: None,
        }
    }

    #[test]
    fn a_valid_event_passes() {
        let ok = event(
            "customer.contactability.changed",
            json!({"customerId": "6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60", "status": "HARD_BOUNCE"}),
        );
        assert_eq!(check(&[ok]), Vec::<String>::new());
    }

    #[test]
    fn bad_data_an_unknown_type_and_a_broken_envelope_are_all_reported() {
        let bad_data = event("customer.contactability.changed", json!({"customerId": "x", "status": "GONE"}));
        let unknown = event("customer.vanished", json!({}));
        let mut broken = event("customer.contactability.changed", json!({"customerId": "x"}));
        broken.source = String::new();
        let problems = check(&[bad_data, unknown, broken]).join("\n");
        assert!(problems.contains("data /status"), "{problems}");
        assert!(problems.contains("no schema for this type"), "{problems}");
        assert!(problems.contains("CloudEvents envelope /source"), "{problems}");
    }
}
