//! The CRM settings registry and the operator agree on the `gateway.*` keys: a value the
//! registry accepts (its key's JSON Schema in crm-server/schemas/settings/, and for rate limits
//! the order of the periods) is one the operator applies to a policy that leaves it room, and
//! the operator applies nothing the registry would refuse.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::example;
use super::strategies::value;
use crate::crd::tenant_policy::Limits;
use crate::gateway::policy::Policy;
use crate::gateway::settings::{self, EffectiveSettings, Setting, overlay};

fn registry_schema(key: &str) -> jsonschema::Validator {
    let path = format!("{}/../crm-server/schemas/settings/{key}.json", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Whether the registry stores `value` under `key`.
fn registry_accepts(key: &str, value: &Value) -> bool {
    registry_schema(key).is_valid(value)
        && (key != settings::RATE_LIMIT
            || serde_json::from_value::<Limits>(value.clone()).is_ok_and(|limits| {
                let periods: Vec<i64> = limits.periods().map(|(_, limit)| limit).collect();
                periods.windows(2).all(|pair| pair[0] <= pair[1])
            }))
}

/// A policy every valid value of every key fits: with auth, without CORS credentials.
fn roomy() -> Policy {
    let mut resource = example("acme");
    resource.spec.cors.as_mut().unwrap().credentials = false;
    Policy::admit(&resource).unwrap()
}

fn applies(key: &'static str, value: &Value) -> bool {
    let settings = EffectiveSettings {
        tenant: "acme".into(),
        org: None,
        version: 1,
        settings: [(key.to_owned(), Setting { value: value.clone(), scope: "global".into(), version: 1 })]
            .into(),
    };
    overlay(&roomy(), &settings).applied == [key]
}

#[test]
fn the_registry_has_a_schema_for_every_key_the_operator_reads() {
    let dir = format!("{}/../crm-server/schemas/settings", env!("CARGO_MANIFEST_DIR"));
    for key in settings::KEYS {
        let path = format!("{dir}/{key}.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(schema["title"], key, "{path} is the schema of another key");
        let validator = registry_schema(key);
        // A schema that accepted anything would make the property test below prove nothing.
        assert!(!validator.is_valid(&json!({"surely": ["not", "a", key]})), "{path} accepts anything");
        assert!(!validator.is_valid(&Value::Null), "{path} accepts null");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_value_the_registry_accepts_is_applied_and_no_other(
        (key, value) in prop::sample::select(settings::KEYS.to_vec()).prop_flat_map(|key| (Just(key), value(key)))
    ) {
        prop_assert_eq!(registry_accepts(key, &value), applies(key, &value), "{} = {}", key, value);
    }
}
