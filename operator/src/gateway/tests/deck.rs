//! decK files: the same model as Kong Ingress Controller's, every entity tagged for the tenant.

use proptest::prelude::*;
use serde_json::Value;

use super::strategies::{resource, spec};
use super::{config_violations, example};
use crate::gateway::deck;
use crate::gateway::plugins::gateway;
use crate::gateway::policy::Policy;

fn deck_of(policy: &Policy) -> Value {
    deck::render(policy, &gateway(policy))
}

/// Every entity of a decK file (consumers, their credentials, plugins) with where it is.
fn entities(file: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    for (i, consumer) in file["consumers"].as_array().into_iter().flatten().enumerate() {
        found.push((format!("consumers[{i}]"), consumer));
        for (j, secret) in consumer["jwt_secrets"].as_array().into_iter().flatten().enumerate() {
            found.push((format!("consumers[{i}].jwt_secrets[{j}]"), secret));
        }
    }
    for (i, plugin) in file["plugins"].as_array().into_iter().flatten().enumerate() {
        found.push((format!("plugins[{i}]"), plugin));
    }
    found
}

/// What must hold of any decK file the operator writes for `policy`.
fn check(policy: &Policy, file: &Value) -> Result<(), String> {
    let tag = policy.select_tag();
    if file["_format_version"] != "3.0" || file["_info"]["select_tags"] != serde_json::json!([tag]) {
        return Err(format!("header: {file:#}"));
    }
    for (at, entity) in entities(file) {
        if entity["tags"] != serde_json::json!([tag]) {
            return Err(format!("{at} is not tagged {tag}: {entity:#}"));
        }
    }
    let model = gateway(policy);
    let mut expected: Vec<(String, String)> = Vec::new();
    for plugin in &model.plugins {
        for target in &plugin.targets {
            expected.push((plugin.plugin.to_owned(), target.name.clone()));
        }
    }
    let mut found = Vec::new();
    for plugin in file["plugins"].as_array().unwrap() {
        let scopes = ["route", "service", "consumer"].iter().filter(|s| plugin.get(**s).is_some()).count();
        if scopes != 1 {
            return Err(format!("a plugin on {scopes} entities: {plugin:#}"));
        }
        let target = plugin["route"].as_str().or(plugin["service"].as_str()).unwrap_or_default();
        found.push((plugin["name"].as_str().unwrap_or_default().to_owned(), target.to_owned()));
        let name = plugin["name"].as_str().unwrap_or_default();
        let config = plugin["config"].clone();
        // decK fills in environment references at sync time; a string is what Kong will see.
        if let Some(password) = config.pointer("/redis/password")
            && !password.as_str().is_some_and(|p| p.starts_with("${{ env \"DECK_") && p.ends_with("\" }}"))
        {
            return Err(format!("the Redis password is not an environment reference: {password}"));
        }
        let violations = config_violations(name, &config);
        if !violations.is_empty() {
            return Err(format!("{name}: {violations:?}"));
        }
    }
    if found != expected {
        return Err(format!("plugins {found:?}, expected {expected:?}"));
    }
    Ok(())
}

#[test]
fn acme_as_a_deck_file_holds_its_consumer_keys_and_one_plugin_per_target() {
    let policy = Policy::admit(&example("acme")).unwrap();
    let file = deck_of(&policy);
    check(&policy, &file).unwrap();
    assert_eq!(policy.select_tag(), "freshplan-tenant-acme");
    let consumer = &file["consumers"][0];
    assert_eq!(consumer["username"], "acme");
    let kids: Vec<&str> =
        consumer["jwt_secrets"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(kids, ["acme-2026", "acme-2027"]);
    let limits: Vec<&Value> =
        file["plugins"].as_array().unwrap().iter().filter(|p| p["name"] == "rate-limiting").collect();
    assert_eq!(limits.len(), 2);
    assert_eq!(
        (limits[0]["route"].as_str(), limits[0]["config"]["minute"].as_i64()),
        (Some("crm-acme"), Some(600))
    );
    assert_eq!(
        (limits[1]["route"].as_str(), limits[1]["config"]["minute"].as_i64()),
        (Some("crm-acme-samples"), Some(30))
    );
    assert_eq!(limits[0]["config"]["redis"]["password"], "${{ env \"DECK_KONG_REDIS_PASSWORD\" }}");
    assert_eq!(limits[0]["instance_name"], "acme-rate-limiting-crm-acme");
}

#[test]
fn service_targets_become_services_and_orgs_get_their_own_tag() {
    let policy = Policy::admit(&example("bergblick")).unwrap();
    let file = deck_of(&policy);
    check(&policy, &file).unwrap();
    let services: Vec<&str> =
        file["plugins"].as_array().unwrap().iter().filter_map(|p| p["service"].as_str()).collect();
    assert!(!services.is_empty() && services.iter().all(|s| *s == "crm-bergblick-query"), "{services:?}");
    assert!(file["consumers"][0].get("jwt_secrets").is_none());

    let policy = Policy::admit(&example("kaiserhof-munich")).unwrap();
    assert_eq!(policy.select_tag(), "freshplan-tenant-kaiserhof-org-munich");
    check(&policy, &deck_of(&policy)).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_admitted_policy_renders_a_deck_file_of_its_tenant_alone(spec in spec()) {
        let policy = Policy::admit(&resource(spec)).map_err(|found| TestCaseError::fail(format!("{found:?}")))?;
        let file = deck_of(&policy);
        prop_assert_eq!(check(&policy, &file), Ok(()));
    }
}
