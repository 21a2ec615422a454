//! Kong Ingress Controller objects: what the examples become, and that any admitted policy
//! becomes objects Kong and the API server accept.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::Value;

use super::strategies::{resource, spec};
use super::{example, examples, kic_violations};
use crate::gateway::kic::{self, Objects};
use crate::gateway::plugins::gateway;
use crate::gateway::policy::{POLICY_LABEL, Policy};

fn objects(policy: &Policy) -> Objects {
    kic::render(policy, &gateway(policy))
}

fn plugin<'a>(documents: &'a [Value], name: &str) -> &'a Value {
    documents.iter().find(|d| d["metadata"]["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn every_example_renders_objects_kong_and_the_api_server_accept() {
    for resource in examples() {
        let policy = Policy::admit(&resource).unwrap();
        for document in objects(&policy).documents().unwrap() {
            assert_eq!(kic_violations(&document), Vec::<String>::new(), "{document:#}");
            assert_eq!(document["metadata"]["namespace"], "crm");
            assert_eq!(document["metadata"]["labels"][POLICY_LABEL], policy.name);
            let owner = &document["metadata"]["ownerReferences"][0];
            assert_eq!(
                (owner["kind"].as_str(), owner["name"].as_str()),
                (Some("TenantPolicy"), Some(policy.name.as_str()))
            );
            assert_eq!(owner["controller"], true);
        }
    }
}

#[test]
fn acme_gets_a_consumer_with_its_keys_and_a_plugin_per_part_of_its_policy() {
    let policy = Policy::admit(&example("acme")).unwrap();
    let objects = objects(&policy);
    let documents = objects.documents().unwrap();

    // One credential Secret per key, found by Kong Ingress Controller by its label.
    assert_eq!(objects.secrets.len(), 2);
    let decode = |v: &Value| {
        let bytes: k8s_openapi::ByteString = serde_json::from_value(v.clone()).unwrap();
        String::from_utf8(bytes.0).unwrap()
    };
    let secret = &documents[0];
    assert_eq!(secret["metadata"]["labels"][kic::CREDENTIAL_LABEL], "jwt");
    assert_eq!(decode(&secret["data"]["key"]), "acme-2026");
    assert_eq!(decode(&secret["data"]["algorithm"]), "RS256");
    assert!(decode(&secret["data"]["rsa_public_key"]).starts_with("-----BEGIN PUBLIC KEY-----\nMIIBIjAN"));
    assert_eq!(decode(&documents[1]["data"]["algorithm"]), "ES256");

    let consumer = &documents[2];
    assert_eq!(consumer["kind"], "KongConsumer");
    assert_eq!((consumer["username"].as_str(), consumer["custom_id"].as_str()), (Some("acme"), Some("acme")));
    assert_eq!(consumer["metadata"]["annotations"][kic::INGRESS_CLASS_ANNOTATION], "kong");
    let credentials: Vec<&Value> = consumer["credentials"].as_array().unwrap().iter().collect();
    assert_eq!(credentials, [&documents[0]["metadata"]["name"], &documents[1]["metadata"]["name"]]);

    let jwt = plugin(&documents, "acme-jwt");
    assert_eq!(jwt["config"]["key_claim_name"], "kid");
    assert_eq!(jwt["config"]["uri_param_names"], serde_json::json!([]));
    assert_eq!(jwt["config"]["run_on_preflight"], false);

    let limit = plugin(&documents, "acme-rate-limiting");
    assert_eq!(
        (
            limit["config"]["second"].as_i64(),
            limit["config"]["minute"].as_i64(),
            limit["config"]["hour"].as_i64()
        ),
        (Some(20), Some(600), Some(20000))
    );
    assert_eq!(limit["config"]["limit_by"], "consumer");
    assert_eq!(limit["config"]["policy"], "redis");
    assert_eq!(limit["config"]["redis"]["host"], "redis.crm.svc.cluster.local");
    // The Redis password comes from its Secret, never into the KongPlugin.
    assert!(limit["config"]["redis"].get("password").is_none());
    assert_eq!(limit["configPatches"][0]["path"], "/redis/password");
    assert_eq!(limit["configPatches"][0]["valueFrom"]["secretKeyRef"]["name"], "kong-redis");
    let samples = plugin(&documents, "acme-rate-limiting-sample-requests");
    assert_eq!((samples["config"]["minute"].as_i64(), samples["config"].get("second")), (Some(30), None));

    let size = plugin(&documents, "acme-request-size-limiting");
    assert_eq!(
        (size["config"]["allowed_payload_size"].as_i64(), size["config"]["size_unit"].as_str()),
        (Some(8), Some("megabytes"))
    );

    // The sample Ingress, named only by the route limit, gets every plugin but with its own limit.
    let names = |target: &str| -> Vec<String> {
        objects.targets.iter().find(|(t, _)| t.name == target).map(|(_, names)| names.clone()).unwrap()
    };
    let common =
        ["acme-pre-function", "acme-cors", "acme-correlation-id", "acme-request-size-limiting", "acme-jwt"];
    assert_eq!(names("crm-acme"), [&common[..], &["acme-rate-limiting"]].concat());
    assert_eq!(names("crm-acme-samples"), [&common[..], &["acme-rate-limiting-sample-requests"]].concat());
}

#[test]
fn limits_by_header_refuse_requests_without_it_before_counting() {
    let policy = Policy::admit(&example("bergblick")).unwrap();
    let documents = objects(&policy).documents().unwrap();
    let limit = plugin(&documents, "bergblick-rate-limiting");
    assert_eq!(
        (limit["config"]["limit_by"].as_str(), limit["config"]["header_name"].as_str()),
        (Some("header"), Some("X-Tenant-ID"))
    );
    let lua = plugin(&documents, "bergblick-pre-function")["config"]["access"][0].as_str().unwrap();
    assert!(lua.contains("method ~= \"OPTIONS\" and missing([=[X-Tenant-ID]=])"), "{lua}");
    let allow = &plugin(&documents, "bergblick-ip-restriction")["config"]["allow"];
    assert_eq!(allow, &serde_json::json!(["203.0.113.0/24", "198.51.100.17"]));
    // No auth: no credentials, but the consumer is there for the tenant.
    assert!(objects(&policy).secrets.is_empty());
}

#[test]
fn openid_connect_is_rendered_only_when_asked_for_and_marked_enterprise() {
    let policy = Policy::admit(&example("kaiserhof-munich")).unwrap();
    let documents = objects(&policy).documents().unwrap();
    let oidc = plugin(&documents, "kaiserhof-munich-openid-connect");
    assert_eq!(oidc["metadata"]["annotations"][kic::EDITION_ANNOTATION], "enterprise");
    assert_eq!(oidc["config"]["consumer_claim"], serde_json::json!(["tenant"]));
    assert_eq!(oidc["config"]["consumer_by"], serde_json::json!(["custom_id"]));
    assert_eq!(oidc["config"]["audience_required"], serde_json::json!(["crm-api"]));
    assert_eq!(
        documents.iter().find(|d| d["kind"] == "KongConsumer").unwrap()["username"],
        "kaiserhof:munich"
    );
    for other in examples().iter().filter(|p| p.metadata.name.as_deref() != Some("kaiserhof-munich")) {
        let documents = objects(&Policy::admit(other).unwrap()).documents().unwrap();
        assert!(documents.iter().all(|d| d["plugin"] != "openid-connect"
            && d["metadata"].get("annotations").is_none_or(|a| a.get(kic::EDITION_ANNOTATION).is_none())));
    }
}

#[test]
fn a_policy_the_api_server_would_refuse_is_not_rendered() {
    let mut resource = example("acme");
    resource.spec.rate_limit.as_mut().unwrap().limits.hour = Some(10);
    resource.spec.ip_allowlist = Some(vec!["10.0.0.0/8".into(), "10.0.0.256".into()]);
    let found = Policy::admit(&resource).unwrap_err();
    let found: BTreeSet<String> = found.iter().map(ToString::to_string).collect();
    let expected = [
        "spec.ipAllowlist: ipAllowlist entries must be IP addresses or CIDR blocks",
        "spec.rateLimit.limits: limits must not decrease with the period: second <= minute <= hour <= day",
    ];
    assert_eq!(found, expected.map(String::from).into());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever an admitted policy holds, Kong and the API server accept every object, and each
    /// target runs each kind of plugin at most once (Kong keeps one per route or service).
    #[test]
    fn any_admitted_policy_renders_objects_kong_accepts(spec in spec()) {
        let policy = Policy::admit(&resource(spec)).map_err(|found| TestCaseError::fail(format!("{found:?}")))?;
        let objects = objects(&policy);
        let documents = objects.documents().unwrap();
        for document in &documents {
            prop_assert_eq!(kic_violations(document), Vec::<String>::new(), "{:#}", document);
        }
        let plugins: Vec<(&str, &str)> = documents
            .iter()
            .filter(|d| d["kind"] == "KongPlugin")
            .map(|d| (d["metadata"]["name"].as_str().unwrap(), d["plugin"].as_str().unwrap()))
            .collect();
        prop_assert_eq!(objects.targets.len(), policy.targets().len());
        for (target, names) in &objects.targets {
            let mut kinds: Vec<&str> = names
                .iter()
                .map(|name| plugins.iter().find(|(n, _)| n == name).map(|(_, p)| *p).expect("an annotation names a rendered plugin"))
                .collect();
            let count = kinds.len();
            kinds.sort_unstable();
            kinds.dedup();
            prop_assert_eq!(kinds.len(), count, "{} runs a plugin twice: {:?}", target, names);
        }
        // Every plugin runs somewhere.
        for (name, _) in &plugins {
            prop_assert!(objects.targets.iter().any(|(_, names)| names.iter().any(|n| n == name)), "{} runs nowhere", name);
        }
    }
}
