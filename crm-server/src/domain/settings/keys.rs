//! The catalog of setting keys: each key has a JSON Schema (draft 2020-12) in
//! `crm-server/schemas/settings/<key>.json`, compiled into the binary, and, where a rule cannot be
//! said in JSON Schema, a check of its own after the schema's.
//!
//! The keys are the gateway policy the operator overlays onto a tenant's TenantPolicy; their
//! names and value shapes are a contract with it. A new key is a new line in the table below and
//! a new schema file (a test checks that neither lacks the other).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::FieldError;

/// Where the schemas are published; each schema's `$id` is below it.
pub const SCHEMA_BASE_URI: &str = "https://freshplan.io/schemas/settings/";

macro_rules! setting_keys {
    ($($variant:ident => $name:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum SettingKey { $($variant),* }

        impl SettingKey {
            pub const ALL: &'static [SettingKey] = &[$(SettingKey::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(SettingKey::$variant => $name),* }
            }

            pub fn schema_source(self) -> &'static str {
                match self {
                    $(SettingKey::$variant => include_str!(concat!("../../../schemas/settings/", $name, ".json"))),*
                }
            }
        }
    };
}

setting_keys! {
    GatewayRateLimit => "gateway.rateLimit";
    GatewayCorsOrigins => "gateway.cors.origins";
    GatewayRequestSizeLimit => "gateway.requestSizeLimit";
    GatewayIpAllowlist => "gateway.ipAllowlist";
}

impl SettingKey {
    pub fn parse(name: &str) -> Option<SettingKey> {
        SettingKey::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for SettingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One key, as `GET /settings/keys` describes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyDefinition {
    pub key: String,
    /// What the key overrides in the TenantPolicy (the schema's `description`).
    pub description: String,
    /// JSON Schema (draft 2020-12) of the value.
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// The catalog with every schema compiled, once at start (a schema that does not compile stops
/// the server from starting rather than failing writes later; a test compiles them all).
#[derive(Debug)]
pub struct SettingCatalog {
    keys: BTreeMap<SettingKey, (KeyDefinition, jsonschema::Validator)>,
}

impl SettingCatalog {
    pub fn new() -> Result<SettingCatalog, String> {
        let mut keys = BTreeMap::new();
        for &key in SettingKey::ALL {
            let schema: Value = serde_json::from_str(key.schema_source())
                .map_err(|e| format!("the schema of setting {key} is not JSON: {e}"))?;
            // Formats are asserted, not only annotations, as for the event schemas.
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| format!("the schema of setting {key} does not compile: {e}"))?;
            let description = schema["description"].as_str().unwrap_or_default().to_owned();
            keys.insert(key, (KeyDefinition { key: key.name().to_owned(), description, schema }, validator));
        }
        Ok(SettingCatalog { keys })
    }

    /// Every key, in name order.
    pub fn definitions(&self) -> Vec<&KeyDefinition> {
        let mut all: Vec<&KeyDefinition> = self.keys.values().map(|(d, _)| d).collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// Checks `value` for `key`: every violation of the key's schema, then (for a value the
    /// schema accepts) the key's own rules; each problem named by the JSON pointer of the
    /// offending value in the request body, under `/value`.
    pub fn validate(&self, key: SettingKey, value: &Value) -> Result<(), Vec<FieldError>> {
        let Some((definition, validator)) = self.keys.get(&key) else {
            return Err(vec![FieldError::new("/value", format!("no schema for {key}"))]);
        };
        let mut errors: Vec<FieldError> = validator
            .iter_errors(value)
            .map(|e| {
                FieldError::new(format!("/value{}", e.instance_path()), describe(&definition.schema, &e))
            })
            .collect();
        if errors.is_empty() && key == SettingKey::GatewayRateLimit {
            errors = rate_limit_rules(value);
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// The text of a schema violation. For an `anyOf`, the bare "not valid under any of the schemas"
/// says nothing useful, so it lists what the branches accept (their descriptions) instead.
fn describe(schema: &Value, error: &jsonschema::ValidationError<'_>) -> String {
    if error.kind().keyword() == "anyOf"
        && let Some(branches) = schema.pointer(&error.schema_path().to_string()).and_then(Value::as_array)
    {
        let accepted: Vec<&str> = branches.iter().filter_map(|b| b["description"].as_str()).collect();
        if accepted.len() == branches.len() {
            return format!("{} is not one of: {}", error.instance(), accepted.join("; "));
        }
    }
    error.to_string()
}

/// The periods of `gateway.rateLimit`, shortest first.
const PERIODS: [&str; 4] = ["second", "minute", "hour", "day"];

/// What JSON Schema cannot say about a rate limit: Kong refuses limits that decrease from a
/// shorter period to a longer one (100 a minute but 50 an hour), so each limit must be at least
/// every limit of a shorter period given. And a limit is written as a plain integer: JSON Schema
/// counts `600.0` as an integer, but the operator reads the value into integer fields.
fn rate_limit_rules(value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // The largest limit of the shorter periods so far, and its period.
    let mut largest: Option<(&str, u64)> = None;
    for period in PERIODS {
        let Some(limit) = value.get(period) else {
            continue;
        };
        let pointer = format!("/value/{period}");
        let Some(limit) = limit.as_u64() else {
            errors.push(FieldError::new(pointer, "an integer without a fraction or exponent"));
            continue;
        };
        if let Some((shorter, max)) = largest
            && limit < max
        {
            errors.push(FieldError::new(
                pointer,
                format!(
                    "{limit} per {period} is less than the limit of {max} per {shorter}: a longer period must allow \
                     at least as many requests as a shorter one"
                ),
            ));
        } else {
            largest = Some((period, limit));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::net::{Ipv4Addr, Ipv6Addr};

    static CATALOG: std::sync::LazyLock<SettingCatalog> =
        std::sync::LazyLock::new(|| SettingCatalog::new().unwrap());

    fn catalog() -> &'static SettingCatalog {
        &CATALOG
    }

    /// The pointers of the problems with `value`, sorted.
    fn pointers(key: SettingKey, value: Value) -> Vec<String> {
        let mut found: Vec<String> = match catalog().validate(key, &value) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.pointer.unwrap_or_default()).collect(),
        };
        found.sort();
        found
    }

    #[test]
    fn every_schema_compiles_names_its_key_and_says_what_it_overrides() {
        let catalog = catalog();
        assert_eq!(catalog.definitions().len(), SettingKey::ALL.len());
        for definition in catalog.definitions() {
            assert_eq!(definition.schema["$id"], format!("{SCHEMA_BASE_URI}{}.json", definition.key));
            assert_eq!(definition.schema["title"], definition.key);
            assert!(definition.description.contains("TenantPolicy"), "{}", definition.key);
            for example in definition.schema["examples"].as_array().unwrap() {
                let key = SettingKey::parse(&definition.key).unwrap();
                assert_eq!(catalog.validate(key, example), Ok(()), "{} example {example}", definition.key);
            }
        }
    }

    #[test]
    fn every_schema_file_has_a_key() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/settings");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            let name = file.strip_suffix(".json").unwrap_or(&file);
            assert!(SettingKey::parse(name).is_some(), "{file} has no entry in the setting_keys! table");
        }
    }

    #[test]
    fn rate_limits_are_positive_integers_of_known_periods() {
        let key = SettingKey::GatewayRateLimit;
        assert!(pointers(key, json!({"minute": 600})).is_empty());
        assert!(pointers(key, json!({"second": 1, "minute": 1, "hour": 1, "day": 1_000_000_000})).is_empty());
        assert_eq!(pointers(key, json!({})), ["/value"]);
        assert_eq!(pointers(key, json!({"week": 5})), ["/value"]);
        assert_eq!(pointers(key, json!({"minute": 0, "hour": "600"})), ["/value/hour", "/value/minute"]);
        assert_eq!(pointers(key, json!({"day": 1_000_000_001_u64})), ["/value/day"]);
        assert_eq!(pointers(key, json!({"minute": 600.0})), ["/value/minute"]);
        assert_eq!(pointers(key, json!([600])), ["/value"]);
    }

    #[test]
    fn rate_limits_must_not_decrease_towards_longer_periods() {
        let key = SettingKey::GatewayRateLimit;
        assert!(pointers(key, json!({"second": 10, "day": 10})).is_empty(), "equal limits are fine");
        assert_eq!(pointers(key, json!({"minute": 600, "hour": 100})), ["/value/hour"]);
        // Each offending limit once, against the largest shorter one.
        assert_eq!(
            pointers(key, json!({"second": 100, "minute": 50, "hour": 80, "day": 1000})),
            ["/value/hour", "/value/minute"]
        );
        let errors = catalog().validate(key, &json!({"second": 20, "day": 5})).unwrap_err();
        assert!(errors[0].detail.contains("20 per second"), "{}", errors[0].detail);
    }

    #[test]
    fn cors_origins_are_star_or_http_origins() {
        let key = SettingKey::GatewayCorsOrigins;
        assert!(pointers(key, json!(["*"])).is_empty());
        assert!(pointers(key, json!(["https://a.example", "http://localhost:8080"])).is_empty());
        assert_eq!(pointers(key, json!([])), ["/value"]);
        assert_eq!(pointers(key, json!(["https://a.example", "https://a.example"])), ["/value"]);
        assert_eq!(
            pointers(
                key,
                json!(["ftp://a.example", "https://a.example/path", "https://a.example:123456", "*.example"])
            ),
            ["/value/0", "/value/1", "/value/2", "/value/3"]
        );
        let long = format!("https://{}.example", "a".repeat(250));
        assert_eq!(pointers(key, json!([long])), ["/value/0"]);
        let many: Vec<String> = (0..51).map(|n| format!("https://h{n}.example")).collect();
        assert_eq!(pointers(key, json!(many)), ["/value"]);
    }

    #[test]
    fn request_size_limits_are_bytes_kibibytes_or_mebibytes() {
        let key = SettingKey::GatewayRequestSizeLimit;
        for good in ["8Mi", "512Ki", "1048576", "1", "999999999Mi"] {
            assert!(pointers(key, json!(good)).is_empty(), "{good}");
        }
        for bad in [
            json!("0"),
            json!("08Mi"),
            json!("8MB"),
            json!("8 Mi"),
            json!("1Gi"),
            json!("1234567890"),
            json!(8),
        ] {
            assert_eq!(pointers(key, bad.clone()), ["/value"], "{bad}");
        }
    }

    #[test]
    fn the_allowlist_takes_addresses_and_cidr_blocks_of_both_families() {
        let key = SettingKey::GatewayIpAllowlist;
        let good = json!([
            "10.0.0.0/8",
            "192.0.2.7",
            "0.0.0.0/0",
            "2001:db8::/32",
            "::1",
            "::",
            "::ffff:192.0.2.1",
            "fe80::1:2:3:4/64",
            "1:2:3:4:5:6:7:8/128",
            "1::2:3:4:5:6:7"
        ]);
        assert!(pointers(key, good).is_empty());
        let bad = json!([
            "10.0.0.0/33",
            "256.1.1.1",
            "2001:db8::/129",
            "::g",
            "10.0.0.1/08",
            "01.2.3.4",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "example.org",
            "10.0.0.0/",
            "",
            "10.0.0.1"
        ]);
        let mut expected: Vec<String> = (0..11).map(|i| format!("/value/{i}")).collect();
        expected.sort();
        assert_eq!(pointers(key, bad), expected);
        assert_eq!(pointers(key, json!([])), ["/value"]);
        assert_eq!(pointers(key, json!(["10.0.0.1", "10.0.0.1"])), ["/value"]);
        let errors = catalog().validate(key, &json!(["10.0.0.0/33"])).unwrap_err();
        assert!(
            errors[0].detail.starts_with("\"10.0.0.0/33\" is not one of: IPv4 address"),
            "{}",
            errors[0].detail
        );
    }

    /// The standard library's reading of an address or CIDR block: the address parses as IPv4 or
    /// IPv6, and the prefix, if any, is a decimal without leading zeros within the family's bits.
    fn oracle(text: &str) -> bool {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let bits = if address.parse::<Ipv4Addr>().is_ok() {
            32
        } else if address.parse::<Ipv6Addr>().is_ok() {
            128
        } else {
            return false;
        };
        prefix.is_none_or(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'))
                && p.parse::<u32>().is_ok_and(|n| n <= bits)
        })
    }

    /// Text forms of addresses: IPv4, IPv6 in full, compressed at a random run of zero groups, or
    /// with an IPv4 tail; then a prefix, and perhaps one character inserted, removed or replaced.
    fn address() -> impl Strategy<Value = String> {
        let group = prop_oneof![Just(0u16), Just(0xffff), any::<u16>()];
        let v4 = any::<u32>().prop_map(|n| Ipv4Addr::from(n).to_string());
        let v6 = (
            prop::collection::vec(group, 8),
            any::<bool>(),
            any::<bool>(),
            0usize..8,
            0usize..9,
            any::<u32>(),
        )
            .prop_map(|(groups, upper, tail, start, len, v4)| {
                let hex: Vec<String> =
                    groups.iter().map(|g| if upper { format!("{g:X}") } else { format!("{g:x}") }).collect();
                let mut parts = if tail { hex[..6].to_vec() } else { hex };
                if tail {
                    parts.push(Ipv4Addr::from(v4).to_string());
                }
                // Compress `len` groups from `start` into `::` (any groups, as a mutation may).
                let end = (start + len).min(parts.len());
                if len == 0 || start >= end {
                    return parts.join(":");
                }
                format!("{}::{}", parts[..start].join(":"), parts[end..].join(":"))
            });
        let prefix = prop_oneof![
            Just(String::new()),
            (0u32..140).prop_map(|n| format!("/{n}")),
            Just("/08".to_owned())
        ];
        let edit =
            (0usize..64, prop::sample::select(vec!['0', '9', 'a', 'f', 'g', ':', '.', '/', 'F']), 0u8..4);
        (prop_oneof![v4, v6, Just("::".to_owned())], prefix, edit).prop_map(
            |(address, prefix, (at, c, how))| {
                let mut text: Vec<char> = format!("{address}{prefix}").chars().collect();
                let at = at % (text.len() + 1);
                match how {
                    1 => text.insert(at, c),
                    2 if at < text.len() => {
                        text.remove(at);
                    }
                    3 if at < text.len() => text[at] = c,
                    _ => {}
                }
                text.into_iter().collect()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// The schema's patterns accept exactly what the standard library reads as an IPv4 or
        /// IPv6 address or CIDR block.
        #[test]
        fn the_allowlist_schema_agrees_with_the_standard_library(text in address()) {
            let accepted = catalog().validate(SettingKey::GatewayIpAllowlist, &json!([text])).is_ok();
            prop_assert_eq!(accepted, oracle(&text), "{:?}", text);
        }
    }
}
