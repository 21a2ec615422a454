//! The CRM's settings through the TenantPolicy controller, against a real CRM server (its own
//! PostgreSQL) and the fake API server: applied, reported, re-read on request, and kept through
//! an outage.

use std::time::Duration;

use crm_server::auth::UserRole;
use crm_server::testing::TestApp;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};

use super::{Harness, acme_cluster, condition, full_cluster};
use crate::crd::tenant_policy::TenantPolicy;
use crate::crm::{CrmClient, CrmConfig, Token};
use crate::testing::fake_api::FakeApi;

/// The operator's client of `app`, with a `platform` token.
fn operator(app: &TestApp) -> CrmClient {
    let token = app.token("system:serviceaccount:freshplan:operator", &[UserRole::Platform], &[], &[]);
    CrmClient::new(CrmConfig {
        base_url: app.url(""),
        command_url: None,
        token: Token::Static(token),
        timeout: Duration::from_secs(2),
    })
    .unwrap()
}

fn minute_limit(api: &FakeApi) -> Option<i64> {
    api.get("KongPlugin", "crm", "acme-rate-limiting")?["config"]["minute"].as_i64()
}

fn synced(api: &FakeApi) -> Option<(String, String)> {
    let policy = api.get("TenantPolicy", "crm", "acme")?;
    let synced = condition(&policy, "SettingsSynced")?;
    Some((synced["status"].as_str()?.to_owned(), synced["reason"].as_str()?.to_owned()))
}

fn events(harness: &Harness, reason: &str) -> Vec<Value> {
    harness
        .writes()
        .into_iter()
        .filter(|w| w.path.contains("/events") && w.method == "POST")
        .filter_map(|w| w.body())
        .filter(|e| e["reason"] == reason)
        .collect()
}

#[tokio::test]
async fn the_crms_settings_are_applied_reported_and_kept_through_an_outage() {
    let app = TestApp::spawn().await;
    app.put_setting("tenant:acme", "gateway.rateLimit", json!({"minute": 900})).await;
    let harness = Harness::start_with(full_cluster(), acme_cluster(), Some(operator(&app))).await;
    harness
        .settle("the setting in force", |api| minute_limit(api) == Some(900) && synced(api).is_some())
        .await;

    let policy = harness.api.get("TenantPolicy", "crm", "acme").unwrap();
    assert_eq!(synced(&harness.api), Some(("True".into(), "Synced".into())));
    assert_eq!(policy["status"]["settingsApplied"], json!(["gateway.rateLimit"]));
    let version = policy["status"]["settingsVersion"].as_i64().unwrap();
    assert!(version > 0);
    // The route limit of the spec stays; the setting replaced the policy's own limits, whole.
    let plugin = harness.api.get("KongPlugin", "crm", "acme-rate-limiting").unwrap();
    assert_eq!((plugin["config"].get("second"), plugin["config"].get("hour")), (None, None));
    assert_eq!(
        harness.api.get("KongPlugin", "crm", "acme-rate-limiting-sample-requests").unwrap()["config"]["minute"],
        30
    );

    // What changed is an Event and an audit entry in the CRM.
    let applied = events(&harness, "SettingsApplied");
    assert_eq!(applied.len(), 1, "{applied:#?}");
    let note = applied[0]["note"].as_str().unwrap();
    assert!(
        note.contains(r#"gateway.rateLimit: {"hour":20000,"minute":600,"second":20} -> {"minute":900}"#),
        "{note}"
    );
    let reports = app.get("/settings/sync-reports?tenant=acme").await.json();
    let reports = reports["items"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(
        (reports[0]["policy"].as_str(), reports[0]["outcome"].as_str()),
        (Some("crm/acme"), Some("applied"))
    );
    assert_eq!(reports[0]["version"], version);

    // The CRM goes away; a read is asked for with the annotation. The condition says so, once,
    // and the policy in force keeps the setting: nothing is deleted or reverted.
    app.shutdown().await.unwrap();
    harness.api.clear_requests();
    harness.api.edit(
        "TenantPolicy",
        "crm",
        "acme",
        json!({"metadata": {"annotations": {"freshplan.io/sync-requested": "2026-12-03T10:00:00Z"}}}),
    );
    harness.settle("the outage seen", |api| synced(api).is_some_and(|(status, _)| status == "False")).await;
    assert_eq!(synced(&harness.api), Some(("False".into(), "CrmUnreachable".into())));
    assert_eq!(minute_limit(&harness.api), Some(900));
    assert!(harness.writes().iter().all(|w| w.method != "DELETE"), "{:#?}", harness.writes());
    assert!(harness.writes().iter().all(|w| !w.path.contains("/kongplugins/")), "no plugin rewritten");
    assert_eq!(events(&harness, "CrmUnreachable").len(), 1);
    harness.stop().await;
}

#[tokio::test]
async fn a_sync_request_reads_the_settings_at_once() {
    let app = TestApp::spawn().await;
    app.put_setting("global", "gateway.rateLimit", json!({"minute": 900})).await;
    let harness = Harness::start_with(full_cluster(), acme_cluster(), Some(operator(&app))).await;
    harness.settle("the first setting in force", |api| minute_limit(api) == Some(900)).await;

    // The registry changes; within the 5-minute interval only a request makes the operator look.
    app.put_setting("tenant:acme", "gateway.rateLimit", json!({"minute": 1200})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(minute_limit(&harness.api), Some(900));
    harness.sync.send(ObjectRef::<TenantPolicy>::new("acme").within("crm")).await.unwrap();
    harness.settle("the new setting in force", |api| minute_limit(api) == Some(1200)).await;
    let reports = app.get("/settings/sync-reports?tenant=acme").await.json();
    assert_eq!(reports["items"].as_array().unwrap().len(), 2);
    harness.stop().await;
}
