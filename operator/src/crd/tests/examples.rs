//! The hand-written examples in `examples/` parse into the Rust types without losing a field, and
//! pass the generated CRDs' OpenAPI schemas and CEL rules: what an SRE copies from them applies.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{cel_failures, open_api_schema, schema_violations};
use crate::crd::{ScalingProfile, SeasonalWindow, TenantPolicy};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Every document of every `*.yaml` of `examples/`, with the name of its file.
fn examples() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(examples_dir())
        .expect("examples/ beside operator/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .flat_map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let values: Vec<Value> =
                serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            values.into_iter().map(move |value| (name.clone(), value))
        })
        .collect()
}

/// Parses `value` as `T` and back; any field the types do not know is lost on the way, so a
/// difference names it. Compared with the object as the API server stores it, its schema
/// defaults filled in, since the types fill in the same ones.
fn round_trip<T: DeserializeOwned + Serialize>(kind: &str, name: &str, value: &Value) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let stored = kube_cel::apply_defaults(&open_api_schema(kind), value);
    assert_eq!(serde_json::to_value(&typed).unwrap(), stored, "{name}: fields lost in parsing");
    typed
}

#[test]
fn every_example_parses_strictly_and_passes_its_crd() {
    let examples = examples();
    assert!(examples.len() >= 6, "{examples:?}");
    for (name, value) in &examples {
        let kind = value["kind"].as_str().unwrap_or_default();
        match kind {
            "SeasonalWindow" => {
                round_trip::<SeasonalWindow>(kind, name, value);
            }
            "ScalingProfile" => {
                round_trip::<ScalingProfile>(kind, name, value);
            }
            "TenantPolicy" => {
                round_trip::<TenantPolicy>(kind, name, value);
            }
            // The workloads the profile selects, for `render -f examples/`.
            "Deployment" => {
                let schema = crate::upstream::openapi_component(
                    "kubernetes/apis__apps__v1_openapi.json",
                    "io.k8s.api.apps.v1.Deployment",
                );
                assert_eq!(crate::upstream::violations(&schema, value), Vec::<String>::new(), "{name}");
                continue;
            }
            other => panic!("{name}: unexpected kind {other:?}"),
        }
        assert_eq!(value["apiVersion"], "freshplan.io/v1alpha1", "{name}");
        assert_eq!(schema_violations(kind, value), Vec::<String>::new(), "{name}");
        assert_eq!(cel_failures(kind, value), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn the_examples_show_every_kind_of_rule() {
    let calendars: Vec<SeasonalWindow> = examples()
        .into_iter()
        .filter(|(_, value)| value["kind"] == "SeasonalWindow")
        .map(|(name, value)| serde_json::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    let windows = || calendars.iter().flat_map(|c| &c.spec.windows);
    let darks = || calendars.iter().flat_map(|c| &c.spec.dark_periods);
    assert!(windows().any(|w| w.yearly.is_some()), "a yearly window");
    assert!(windows().any(|w| w.dates.is_some()), "a one-off window");
    assert!(windows().any(|w| w.easter.is_some()), "an Easter window");
    assert!(
        windows().any(|w| w.yearly.as_ref().is_some_and(|y| y.to < y.from)),
        "a window across the year end"
    );
    assert!(windows().any(|w| w.pre_warm.is_some() && w.hours.is_some()), "pre-warm and hours");
    assert!(windows().any(|w| w.territories.is_none()), "a window for every territory");
    assert!(darks().any(|d| d.date_rules().is_empty() && d.hours.is_some()), "nightly dark hours");
    assert!(darks().any(|d| d.holidays.as_ref().is_some_and(|h| h.state.is_some())), "holidays of a state");
}

#[test]
fn the_readme_explains_every_example() {
    let readme = std::fs::read_to_string(examples_dir().join("README.md")).expect("examples/README.md");
    for (name, _) in examples() {
        assert!(readme.contains(&format!("`{name}`")), "examples/README.md does not mention `{name}`");
    }
}

#[test]
fn a_misspelt_field_is_refused_by_the_types_with_its_name() {
    let (name, mut value) = examples().into_iter().find(|(name, _)| name == "oktoberfest.yaml").unwrap();
    value["spec"]["windows"][0]["prewarm"] = Value::from("2h");
    let err = serde_json::from_value::<SeasonalWindow>(value).unwrap_err().to_string();
    assert!(err.contains("unknown field `prewarm`") && err.contains("preWarm"), "{name}: {err}");
}

#[test]
fn a_profile_without_mode_is_stored_and_parsed_as_auto() {
    let (_, mut value) = examples().into_iter().find(|(name, _)| name == "scaling-profile.yaml").unwrap();
    value["spec"].as_object_mut().unwrap().remove("mode");
    let profile: ScalingProfile = round_trip("ScalingProfile", "without mode", &value);
    assert_eq!(profile.spec.mode, crate::crd::ScalingMode::Auto);
}
