//! Retention (DSGVO): what each policy erases, what it leaves, dry runs, batches, idempotence and
//! the audit trail; and the command line.

use axum::http::{Method, StatusCode};
use crm_server::retention::{self, Policies};
use crm_server::testing::TestApp;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

async fn customer(app: &TestApp, name: &str) -> Uuid {
    let res = app
        .send_json(
            Method::POST,
            "/customers",
            &json!({"name": name, "segment": "RESTAURANT", "territory": "BY"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id: Uuid = res.json()["id"].as_str().unwrap().parse().unwrap();
    let fields = json!({"menu_notes": "Chef mag keine Fertigsoßen", "price_agreement": {"tier": "GOLD"}});
    let res = app
        .send_json_with(Method::PATCH, &format!("/customers/{id}/fields"), &[("if-match", "*")], &fields)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    id
}

async fn contact(app: &TestApp, customer: Uuid, name: &str) -> Uuid {
    let body = json!({"firstName": name, "lastName": "Huber", "email": format!("{name}@example.de"), "roles": ["HEAD_CHEF"]});
    let res = app.send_json(Method::POST, &format!("/customers/{customer}/contacts"), &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["id"].as_str().unwrap().parse().unwrap()
}

async fn sql(app: &TestApp, statement: &'static str, id: Uuid) {
    sqlx::query(statement).bind(id).execute(&app.db.pool).await.unwrap();
}

/// Makes a customer (and its contacts) look untouched for three years.
async fn age(app: &TestApp, customer: Uuid) {
    sql(app, "UPDATE customer SET updated_at = now() - interval '3 years' WHERE id = $1", customer).await;
    sql(app, "UPDATE cm_customer_hot_proj SET fields_changed_at = now() - interval '3 years' WHERE customer_id = $1", customer)
        .await;
    sql(
        app,
        "UPDATE contact SET updated_at = now() - interval '3 years'
          WHERE id IN (SELECT contact_id FROM contact_roles WHERE account_id = $1)",
        customer,
    )
    .await;
}

fn by_policy(reports: &[retention::PolicyReport]) -> Vec<(&'static str, u64)> {
    reports.iter().map(|r| (r.policy, r.affected)).collect()
}

async fn contact_row(app: &TestApp, id: Uuid) -> (String, Option<String>, bool) {
    sqlx::query_as("SELECT first_name, email, anonymised_at IS NOT NULL FROM contact WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn field_keys(app: &TestApp, customer: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT field_key FROM field_values WHERE customer_id = $1 ORDER BY field_key")
        .bind(customer)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn inactive_customers_lose_personal_data_in_batches_and_a_second_run_finds_nothing() {
    let app = TestApp::spawn().await;
    let old = customer(&app, "Zur alten Post").await;
    let recent = customer(&app, "Neuer Wirt").await;
    let (anna, bert) = (contact(&app, old, "anna").await, contact(&app, old, "bert").await);
    let cara = contact(&app, recent, "cara").await;
    // Dora works at both: one active account keeps her.
    let dora = contact(&app, old, "dora").await;
    let res = app
        .send_json(
            Method::PUT,
            &format!("/customers/{recent}/contacts/{dora}/roles"),
            &json!({"roles": ["BUYER"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    age(&app, old).await;
    let etag_before = app.get(&format!("/customers/{old}/fields")).await.header("etag").unwrap().to_owned();
    // Six-year-old history of the recent customer, and events older than the outbox keeps.
    sql(
        &app,
        "UPDATE field_value_history SET changed_at = now() - interval '6 years' WHERE customer_id = $1",
        recent,
    )
    .await;
    sqlx::query("UPDATE event_outbox SET occurred_at = now() - interval '100 days' WHERE event_type = 'customer.created'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    // Both are published; one consumer has passed only the first.
    app.relay_all().await;
    sqlx::query("UPDATE consumer_checkpoint SET position = 1 WHERE consumer = 'automation.email-bounce'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    // A six-year-old activity (deleted) and a recent one (kept).
    for occurred in ["2020-01-01T10:00:00Z", "2026-11-01T10:00:00Z"] {
        let body = json!({"kind": "MENU_INTEGRATION", "customerId": recent, "season": "Q4", "outcome": "DRAFT", "occurredAt": occurred});
        let res =
            app.send_json_with(Method::POST, "/activities", &[("idempotency-key", occurred)], &body).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    }
    let events_before = app.events().await.len();

    let policies = Policies { batch_size: 1, ..Policies::default() };
    let now = OffsetDateTime::now_utc();
    let expected = vec![
        ("anonymise-contacts-of-inactive-customers", 2),
        ("remove-personal-fields-of-inactive-customers", 1),
        ("delete-old-field-history", 2),
        ("delete-old-activities", 1),
        ("delete-old-outbox-events", 1),
    ];

    let dry = retention::run(&app.db.pool, &policies, true, now).await.unwrap();
    assert_eq!(by_policy(&dry), expected);
    let mut listed = dry[0].sample.clone();
    listed.sort();
    let mut old_contacts = vec![anna.to_string(), bert.to_string()];
    old_contacts.sort();
    assert_eq!(listed, old_contacts, "the dry run lists the contacts it would anonymise");
    assert_eq!(dry[1].sample, vec![old.to_string()]);
    assert_eq!(contact_row(&app, anna).await.0, "anna", "a dry run changes nothing");
    assert_eq!(field_keys(&app, old).await, ["menu_notes", "price_agreement"]);
    assert_eq!(app.events().await.len(), events_before);

    let done = retention::run(&app.db.pool, &policies, false, now).await.unwrap();
    assert_eq!(by_policy(&done), expected);
    for id in [anna, bert] {
        assert_eq!(contact_row(&app, id).await, ("Anonymisiert".to_owned(), None, true));
    }
    for (id, name) in [(cara, "cara"), (dora, "dora")] {
        assert_eq!(contact_row(&app, id).await, (name.to_owned(), Some(format!("{name}@example.de")), false));
    }
    assert_eq!(field_keys(&app, old).await, ["price_agreement"], "only the personal field goes");
    assert_eq!(field_keys(&app, recent).await, ["menu_notes", "price_agreement"]);
    let old_history: Vec<String> =
        sqlx::query_scalar("SELECT field_key FROM field_value_history WHERE customer_id = $1")
            .bind(old)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(old_history, ["price_agreement"], "the personal field's history goes with it");
    let fields = app.get(&format!("/customers/{old}/fields")).await;
    assert_ne!(fields.header("etag").unwrap(), etag_before, "the fields' ETag moves");
    let still_inactive: bool = sqlx::query_scalar(
        "SELECT fields_changed_at < now() - interval '2 years' FROM cm_customer_hot_proj WHERE customer_id = $1",
    )
    .bind(old)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(still_inactive, "removing personal data does not make a customer look active");

    let events = app.events().await;
    let erased: Vec<(&str, &Value)> = events
        .iter()
        .filter(|e| e.actor_id == "retention")
        .map(|e| (e.event_type.as_str(), &e.data))
        .collect();
    assert_eq!(erased.len(), 3, "{erased:?}");
    assert!(erased.iter().any(|(t, d)| *t == "customer.personal_data.removed"
        && d["customerId"] == old.to_string()
        && d["fields"] == json!(["menu_notes"])));
    assert_eq!(erased.iter().filter(|(t, _)| *t == "contact.anonymised").count(), 2);
    let created: Vec<Option<i64>> =
        events.iter().filter(|e| e.event_type == "customer.created").map(|e| e.position).collect();
    assert_eq!(created, [Some(3)], "old events go once every consumer has passed them, and not before");
    let activities: Vec<String> = sqlx::query_scalar("SELECT occurred_at::date::text FROM activity")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(activities, ["2026-11-01"]);

    let again = retention::run(&app.db.pool, &policies, false, now).await.unwrap();
    assert!(again.iter().all(|r| r.affected == 0), "{again:?}");

    let audit: Vec<(String, bool, i64)> =
        sqlx::query_as("SELECT policy, dry_run, affected FROM retention_run ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(audit.len(), 15);
    assert_eq!(audit[0], ("anonymise-contacts-of-inactive-customers".to_owned(), true, 2));
    assert_eq!(audit[5], ("anonymise-contacts-of-inactive-customers".to_owned(), false, 2));
    assert_eq!(audit[10], ("anonymise-contacts-of-inactive-customers".to_owned(), false, 0));
}

#[tokio::test]
async fn a_contact_edited_recently_is_kept_even_at_an_inactive_customer() {
    let app = TestApp::spawn().await;
    let old = customer(&app, "Zur alten Post").await;
    let anna = contact(&app, old, "anna").await;
    age(&app, old).await;
    sql(&app, "UPDATE contact SET updated_at = now() - interval '1 day' WHERE id = $1", anna).await;
    let reports =
        retention::run(&app.db.pool, &Policies::default(), false, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(reports[0].affected, 0);
    assert_eq!(contact_row(&app, anna).await.0, "anna");
}

#[tokio::test]
async fn the_cli_runs_dry_and_refuses_a_hot_personal_field() {
    let app = TestApp::spawn().await;
    let old = customer(&app, "Zur alten Post").await;
    age(&app, old).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_crm-server"))
            .args(["retention", "run"])
            .args(args)
            .env("DATABASE_URL", &app.db.url)
            .env("CRM_LOG", "warn")
            .output()
            .unwrap()
    };
    let output = run(&["--dry-run"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report[1]["policy"], "remove-personal-fields-of-inactive-customers");
    assert_eq!(report[1]["affected"], 1);
    assert_eq!(report[1]["dryRun"], true);
    assert_eq!(field_keys(&app, old).await, ["menu_notes", "price_agreement"]);

    let output = run(&["--personal-field", "roi_potential"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`roi_potential` is hot"), "{stderr}");
    let output = run(&["--personal-field", "shoe_size"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("`shoe_size` is not in the field catalog"));
}
