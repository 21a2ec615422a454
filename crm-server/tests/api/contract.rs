//! Every documented operation, called as a client would in one scenario, answers with a body
//! that is strict JSON (no repeated member name; the test client refuses one) and matches the
//! schema the document declares for its status and content type.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use crm_server::testing::{TestApp, TestResponse};
use serde_json::{Value, json};
use uuid::Uuid;

/// The document, and the operations whose answers were checked against it.
struct Contract {
    doc: Value,
    walked: BTreeSet<String>,
}

impl Contract {
    /// Checks `res`, the answer to `method template`, against the document; returns its body.
    fn check(&mut self, method: &str, template: &str, res: &TestResponse) -> Value {
        let status = res.status.as_u16().to_string();
        let pointer = format!("/paths/{}/{method}/responses/{status}", template.replace('/', "~1"));
        let response = self.doc.pointer(&pointer).unwrap_or_else(|| {
            panic!("{method} {template} answered {status}, which it does not document: {}", res.text())
        });
        self.walked.insert(format!("{method} {template}"));
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            assert!(res.body.is_empty(), "{method} {template} {status} documents no body: {}", res.text());
            return Value::Null;
        };
        let media_type = res.header("content-type").unwrap_or_default().split(';').next().unwrap_or_default();
        let declared = content
            .get(media_type)
            .unwrap_or_else(|| panic!("{method} {template} {status}: {media_type} is not documented"));
        if !media_type.ends_with("json") {
            return Value::Null;
        }
        let body = res.json();
        let schema_pointer = format!("#{pointer}/content/{}/schema", media_type.replace('/', "~1"))
            .replace('{', "%7B")
            .replace('}', "%7D");
        assert!(declared.get("schema").is_some(), "{method} {template} {status}: no schema");
        // The document is the root, so that the schema's `#/components/...` references resolve.
        let mut root = self.doc.clone();
        root["$ref"] = json!(schema_pointer);
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{method} {template} {status}: the schema does not compile: {e}"));
        let errors: Vec<String> =
            validator.iter_errors(&body).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{method} {template} {status}: {errors:#?}\n{body}");
        body
    }

    async fn call(
        &mut self,
        app: &TestApp,
        method: Method,
        template: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (TestResponse, Value) {
        let res = match &body {
            Some(body) => app.send_json_with(method.clone(), path, headers, body).await,
            None => app.send(method.clone(), path, headers, "").await,
        };
        assert!(res.status.is_success(), "{method} {path}: {} {}", res.status, res.text());
        let checked = self.check(&method.as_str().to_lowercase(), template, &res);
        (res, checked)
    }
}

fn key() -> String {
    Uuid::now_v7().to_string()
}

#[tokio::test]
async fn every_operation_answers_strict_json_that_matches_its_documented_schema() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json").await.json();
    let mut c = Contract { doc, walked: BTreeSet::new() };
    let get = Method::GET;

    for path in
        ["/healthz", "/readyz", "/metrics", "/openapi.json", "/admin/log-level", "/projection/staleness"]
    {
        c.call(&app, get.clone(), path, path, &[], None).await;
    }
    c.call(&app, Method::PUT, "/admin/log-level", "/admin/log-level", &[], Some(json!({"filter": "info"})))
        .await;

    // Customers: a chain, a location of it, a change.
    let chain_body = json!({"name": "Kette", "segment": "HOTEL", "territory": "BY", "isChain": true});
    let (_, chain) = c.call(&app, Method::POST, "/customers", "/customers", &[], Some(chain_body)).await;
    let chain = chain["id"].as_str().unwrap().to_owned();
    let location = json!({"name": "Haus am See", "segment": "HOTEL", "territory": "BY", "parentAccountId": chain,
                          "address": {"postalCode": "80331", "region": "DE-BY"}});
    let (res, customer) = c
        .call(&app, Method::POST, "/customers", "/customers", &[("idempotency-key", &key())], Some(location))
        .await;
    let id = customer["id"].as_str().unwrap().to_owned();
    let at = format!("/customers/{id}");
    let etag = res.header("etag").unwrap().to_owned();
    c.call(&app, get.clone(), "/customers/{id}", &at, &[], None).await;
    let patch = json!({"address": {"city": "München"}});
    let res = app
        .send(
            Method::PATCH,
            &at,
            &[("if-match", &etag), ("content-type", "application/merge-patch+json")],
            patch.to_string(),
        )
        .await;
    c.check("patch", "/customers/{id}", &res);
    c.call(&app, get.clone(), "/customers", "/customers?territory=BY&limit=1", &[], None).await;
    c.call(
        &app,
        get.clone(),
        "/customers/{id}/locations",
        &format!("/customers/{chain}/locations"),
        &[],
        None,
    )
    .await;

    // Contacts and their roles.
    let contact =
        json!({"firstName": "Anna", "lastName": "Huber", "email": "anna@see.de", "roles": ["HEAD_CHEF"]});
    let (res, contact) = c
        .call(&app, Method::POST, "/customers/{id}/contacts", &format!("{at}/contacts"), &[], Some(contact))
        .await;
    let contact_id = contact["id"].as_str().unwrap().to_owned();
    let contact_etag = res.header("etag").unwrap().to_owned();
    c.call(&app, get.clone(), "/customers/{id}/contacts", &format!("{at}/contacts"), &[], None).await;
    c.call(&app, get.clone(), "/contacts/{id}", &format!("/contacts/{contact_id}"), &[], None).await;
    let res = app
        .send(
            Method::PATCH,
            &format!("/contacts/{contact_id}"),
            &[("if-match", &contact_etag), ("content-type", "application/merge-patch+json")],
            json!({"phone": "+49 89 1234"}).to_string(),
        )
        .await;
    c.check("patch", "/contacts/{id}", &res);
    let roles = "/customers/{id}/contacts/{contact_id}/roles";
    let roles_at = format!("/customers/{chain}/contacts/{contact_id}/roles");
    c.call(&app, Method::PUT, roles, &roles_at, &[], Some(json!({"roles": ["BUYER"]}))).await;
    c.call(&app, Method::DELETE, roles, &roles_at, &[], None).await;

    // Dynamic fields.
    c.call(&app, get.clone(), "/fields", "/fields", &[], None).await;
    let fields = json!({"roi_potential": {"bucket": "HIGH", "value": 1800},
                        "seasonal_menu_cycle": {"season_start": "2026-11-01", "season_end": "2027-01-15"}});
    c.call(
        &app,
        Method::PATCH,
        "/customers/{id}/fields",
        &format!("{at}/fields"),
        &[("if-match", "*")],
        Some(fields),
    )
    .await;
    c.call(
        &app,
        Method::PATCH,
        "/customers/{id}/fields",
        &format!("{at}/fields"),
        &[("if-match", "*")],
        Some(json!({"roi_potential": null})),
    )
    .await;
    c.call(&app, get.clone(), "/customers/{id}/fields", &format!("{at}/fields"), &[], None).await;
    c.call(&app, get.clone(), "/customers/{id}/fields/history", &format!("{at}/fields/history"), &[], None)
        .await;

    // A sample through delivery, and feedback on it.
    c.call(&app, get.clone(), "/products", "/products", &[], None).await;
    c.call(&app, get.clone(), "/sample-kits", "/sample-kits", &[], None).await;
    let sample = json!({"customerId": id, "deliveryDate": "2099-01-15", "notes": "ab 10 Uhr"});
    let (_, sample) = c
        .call(&app, Method::POST, "/samples", "/samples", &[("idempotency-key", &key())], Some(sample))
        .await;
    let sample_id = sample["id"].as_str().unwrap().to_owned();
    for status in ["PACKED", "SHIPPED", "DELIVERED"] {
        let path = format!("/samples/{sample_id}/status");
        c.call(&app, Method::PATCH, "/samples/{id}/status", &path, &[], Some(json!({"newStatus": status})))
            .await;
    }
    c.call(&app, get.clone(), "/samples/{id}", &format!("/samples/{sample_id}"), &[], None).await;
    c.call(&app, get.clone(), "/samples", &format!("/samples?customerId={id}"), &[], None).await;

    // Activities of every kind.
    let kinds = [
        json!({"kind": "PRODUCTTEST_FEEDBACK", "sampleId": sample_id, "rating": 4, "outcome": "SUCCESS"}),
        json!({"kind": "ROI_CONSULTATION", "roiScenarioId": Uuid::nil(), "savingsPerMonth": 900.0, "outcome": "QUALIFIED"}),
        json!({"kind": "MENU_INTEGRATION", "season": "Spargelzeit", "plannedDishes": ["Spargel"], "outcome": "DRAFT",
               "rolloutWindow": {"start": "2027-04-01", "end": "2027-06-24"}}),
        json!({"kind": "DECISION_MAKER_ALIGNMENT", "roles": ["HEAD_CHEF", "MANAGING_DIRECTOR"], "alignmentScore": 80,
               "outcome": "ALIGNED"}),
    ];
    let mut activity = String::new();
    for mut body in kinds {
        body["customerId"] = json!(id);
        let (_, created) = c
            .call(
                &app,
                Method::POST,
                "/activities",
                "/activities",
                &[("idempotency-key", &key())],
                Some(body),
            )
            .await;
        activity = created["id"].as_str().unwrap().to_owned();
    }
    c.call(&app, get.clone(), "/activities/{id}", &format!("/activities/{activity}"), &[], None).await;
    c.call(&app, get.clone(), "/customers/{id}/activities", &format!("{at}/activities"), &[], None).await;
    c.call(&app, get.clone(), "/cockpit/summary", "/cockpit/summary", &[], None).await;
    c.call(&app, get.clone(), "/sla/overdue", "/sla/overdue", &[], None).await;

    // Settings: set, replace, read, delete (the history then has a null new value), reports.
    c.call(&app, get.clone(), "/settings/keys", "/settings/keys", &[], None).await;
    let setting = "/settings/{scope}/{key}";
    let setting_at = "/settings/tenant:acme/gateway.rateLimit";
    let (res, _) =
        c.call(&app, Method::PUT, setting, setting_at, &[], Some(json!({"value": {"minute": 600}}))).await;
    let tag = res.header("etag").unwrap().to_owned();
    let (res, _) = c
        .call(
            &app,
            Method::PUT,
            setting,
            setting_at,
            &[("if-match", &tag)],
            Some(json!({"value": {"minute": 900}})),
        )
        .await;
    let tag = res.header("etag").unwrap().to_owned();
    c.call(&app, get.clone(), setting, setting_at, &[], None).await;
    c.call(&app, get.clone(), "/settings/effective", "/settings/effective?tenant=acme", &[], None).await;
    c.call(&app, Method::DELETE, setting, setting_at, &[("if-match", &tag)], None).await;
    let (_, history) = c
        .call(
            &app,
            get.clone(),
            "/settings/{scope}/{key}/history",
            &format!("{setting_at}/history"),
            &[],
            None,
        )
        .await;
    assert_eq!(history["items"][0]["newValue"], Value::Null, "{history}");
    let report = json!({"policy": "crm/acme", "tenant": "acme", "version": 3, "outcome": "applied",
                        "applied": ["gateway.rateLimit"]});
    let reports = "/settings/sync-reports";
    c.call(&app, Method::POST, reports, reports, &[("idempotency-key", &key())], Some(report)).await;
    c.call(&app, get.clone(), reports, reports, &[], None).await;

    // Events: inbound, replay, and the live stream's head.
    let inbound = json!({"specversion": "1.0", "id": "b-1", "source": "mail", "type": "email.bounce",
                         "data": {"customerId": id, "bounceType": "SOFT"}});
    c.call(&app, Method::POST, "/events/inbound", "/events/inbound", &[], Some(inbound)).await;
    app.relay_all().await;
    c.call(&app, get.clone(), "/events/replay", "/events/replay", &[], None).await;
    assert_eq!(app.head_status(get.clone(), "/events/stream").await, StatusCode::OK);
    c.walked.insert("get /events/stream".into());

    let mut documented = BTreeSet::new();
    for (path, item) in c.doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert(format!("{method} {path}"));
        }
    }
    let missed: Vec<&String> = documented.difference(&c.walked).collect();
    assert!(missed.is_empty(), "operations the scenario did not call: {missed:?}");
}
