//! The hot projection stays equal to a full recompute after every write, drift is reported, and a
//! rebuild repairs it without waiting for writers.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use crm_server::db::samples::{self, NewSampleRow, SampleRequest, SampleRow, StatusChange};
use crm_server::db::{customers, fields, projection};
use crm_server::domain::customer::CustomerInput;
use crm_server::domain::fields::FieldWrite;
use crm_server::domain::sample::SampleItem;
use crm_server::testing::{TestApp, TestDb};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::customers::{create, loewen};

#[derive(Debug, Clone)]
enum Op {
    /// Field writes (None removes), applied in one patch.
    Fields(BTreeMap<&'static str, Option<Value>>),
    Rename(String),
    MoveTo(&'static str),
    /// A sample request (REQUESTED, now).
    NewSample,
    /// The n-th sample (modulo their number) takes its first allowed transition, this many
    /// minutes after its previous change.
    Advance(usize, i64),
}

fn date() -> impl Strategy<Value = String> {
    (2025i32..2029, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
}

fn value_of(field: &'static str) -> BoxedStrategy<Value> {
    match field {
        "roi_potential" => (prop::sample::select(vec!["LOW", "MID", "HIGH"]), 0u32..1_000_000)
            .prop_map(|(bucket, cents)| json!({"bucket": bucket, "value": f64::from(cents) / 100.0}))
            .boxed(),
        "decision_makers" => (0u32..20, any::<bool>())
            .prop_map(|(count, aligned)| json!({"count": count, "has_exec_alignment": aligned}))
            .boxed(),
        "seasonal_menu_cycle" => (date(), date())
            .prop_map(|(a, b)| {
                let (start, end) = if a <= b { (a, b) } else { (b, a) };
                json!({"season_start": start, "season_end": end})
            })
            .boxed(),
        "current_supplier_contracts" => (date(), any::<bool>())
            .prop_map(|(renewal, exclusive)| json!({"renewal_date": renewal, "exclusivity": exclusive}))
            .boxed(),
        _ => "[a-z ]{0,20}".prop_map(Value::from).boxed(),
    }
}

const FIELDS: [&str; 5] =
    ["roi_potential", "decision_makers", "seasonal_menu_cycle", "current_supplier_contracts", "menu_notes"];

fn op() -> impl Strategy<Value = Op> {
    let write = prop::sample::subsequence(FIELDS.to_vec(), 1..=FIELDS.len())
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|key| proptest::option::weighted(0.75, value_of(key)).prop_map(move |v| (key, v)))
                .collect::<Vec<_>>()
        })
        .prop_map(|pairs| Op::Fields(pairs.into_iter().collect()));
    prop_oneof![
        6 => write,
        1 => "[A-Z][a-z]{1,12}( [A-Z][a-z]{1,12})?".prop_map(Op::Rename),
        1 => prop::sample::select(vec!["BY", "NRW", "BER", "HH"]).prop_map(Op::MoveTo),
        2 => Just(Op::NewSample),
        3 => (0usize..8, 0i64..600).prop_map(|(n, minutes)| Op::Advance(n, minutes)),
    ]
}

/// What the projection must hold, computed independently of the server's mapping.
fn expected_columns(
    values: &BTreeMap<&'static str, Value>,
    samples: &[SampleRow],
    name: &str,
    territory: &str,
) -> Value {
    let get = |field: &str, member: &str| values.get(field).map(|v| v[member].clone()).unwrap_or(Value::Null);
    let newest = samples.iter().max_by_key(|s| (s.last_event_at, s.id));
    json!({
        "sample_status": newest.map(|s| s.status.clone()),
        "territory": territory,
        "name_key": name.to_lowercase(),
        "roi_bucket": get("roi_potential", "bucket"),
        "roi_value": get("roi_potential", "value"),
        "decision_maker_count": get("decision_makers", "count"),
        "has_exec_alignment": get("decision_makers", "has_exec_alignment"),
        "season_start": get("seasonal_menu_cycle", "season_start"),
        "season_end": get("seasonal_menu_cycle", "season_end"),
        "renewal_date": get("current_supplier_contracts", "renewal_date"),
        "exclusivity": get("current_supplier_contracts", "exclusivity"),
    })
}

/// JSON numbers as floats, so that 2996 and 2996.0 compare equal.
fn numbers_as_f64(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect()),
        other => other,
    }
}

async fn stored_columns(db: &TestDb, id: Uuid) -> Value {
    sqlx::query_scalar(
        "SELECT jsonb_build_object('sample_status', sample_status, 'territory', territory, 'name_key', name_key,
                'roi_bucket', roi_bucket,
                'roi_value', roi_value::float8, 'decision_maker_count', decision_maker_count,
                'has_exec_alignment', has_exec_alignment, 'season_start', season_start, 'season_end', season_end,
                'renewal_date', renewal_date, 'exclusivity', exclusivity)
           FROM cm_customer_hot_proj WHERE customer_id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

/// Random sequences of field writes, removals, renames, territory moves, sample requests and
/// sample status changes (at times that reorder the samples): after every step
/// the incremental projection equals a full recompute, and both equal an independent model.
#[test]
fn the_incremental_projection_equals_a_full_recompute_after_every_step() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db = runtime.block_on(TestDb::new());
    let config = ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..12))| {
        runtime.block_on(async {
            let mut conn = db.pool.acquire().await.unwrap();
            let input: CustomerInput = serde_json::from_value(loewen()).unwrap();
            let mut draft = input.validate().unwrap();
            let id = Uuid::now_v7();
            customers::insert(&mut conn, id, &draft).await.unwrap();
            let mut model: BTreeMap<&'static str, Value> = BTreeMap::new();
            let mut samples_model: Vec<SampleRow> = Vec::new();
            for op in &ops {
                match op {
                    Op::Fields(writes) => {
                        let writes_list: Vec<FieldWrite> =
                            writes.iter().map(|(k, v)| FieldWrite { key: (*k).to_owned(), value: v.clone() }).collect();
                        let version = fields::version(&mut conn, id).await.unwrap().unwrap();
                        let outcome = fields::patch(&mut conn, id, &[version], &writes_list, "test:proptest", None).await.unwrap();
                        assert!(matches!(outcome, fields::PatchOutcome::Applied { .. }), "{outcome:?}");
                        for (key, value) in writes {
                            match value {
                                Some(v) => model.insert(key, v.clone()),
                                None => model.remove(key),
                            };
                        }
                    }
                    Op::Rename(name) => {
                        draft.name = name.clone();
                        customers::update(&mut conn, id, &draft).await.unwrap();
                    }
                    Op::MoveTo(territory) => {
                        draft.territory = (*territory).to_owned();
                        customers::update(&mut conn, id, &draft).await.unwrap();
                    }
                    Op::NewSample => {
                        let items = [SampleItem { sku: "CF-1001".into(), quantity: 1 }];
                        let request = SampleRequest {
                            kit_id: None, items: &items, delivery_date: time::macros::date!(2027 - 01 - 15),
                            delivery_address: None, contact_email: None, notes: None, origin_event_id: None,
                        };
                        let new = NewSampleRow {
                            id: Uuid::now_v7(), customer_id: id, request: &request, actor: "test:proptest", correlation_id: None,
                        };
                        let row = samples::insert(&mut conn, &new).await.unwrap();
                        samples::project(&mut conn, &row).await.unwrap();
                        samples_model.push(row);
                    }
                    Op::Advance(n, minutes) => {
                        if samples_model.is_empty() {
                            continue;
                        }
                        let i = n % samples_model.len();
                        let Some(to) = samples_model[i].status().unwrap().next().first().copied() else {
                            continue;
                        };
                        let change = StatusChange {
                            to,
                            event_at: samples_model[i].last_event_at + time::Duration::minutes(*minutes),
                            followup_due: None,
                            actor: "test:proptest",
                            correlation_id: None,
                        };
                        let row = samples::change_status(&mut conn, samples_model[i].id, &change).await.unwrap();
                        samples::project(&mut conn, &row).await.unwrap();
                        samples_model[i] = row;
                    }
                }
                let report = projection::check_customers(&mut conn, &[id]).await.unwrap();
                assert_eq!(report.drifted_rows, 0, "after {op:?}: the projection differs from a recompute");
                let (stored, expected) = (stored_columns(&db, id).await, expected_columns(&model, &samples_model, &draft.name, &draft.territory));
                assert_eq!(numbers_as_f64(stored), numbers_as_f64(expected), "after {op:?}");
            }
        });
    });
    drop(db);
}

#[tokio::test]
async fn drift_is_reported_with_its_age_and_a_rebuild_repairs_it() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut body = loewen();
        body["name"] = json!(format!("Wirtshaus {n}"));
        ids.push(create(&app, body).await["id"].as_str().unwrap().to_owned());
    }
    let clean = app.get("/projection/staleness").await.json();
    assert_eq!((clean["rowsChecked"].clone(), clean["driftedRows"].clone()), (json!(5), json!(0)));

    // A manual change in SQL that bypasses the server.
    sqlx::query("UPDATE cm_customer_hot_proj SET roi_bucket = 'HIGH' WHERE customer_id = $1::uuid")
        .bind(&ids[2])
        .execute(&app.db.pool)
        .await
        .unwrap();
    let drift = app.get("/projection/staleness").await.json();
    assert_eq!(drift["driftedRows"], 1);
    assert_eq!(drift["driftedSample"], json!([ids[2]]));
    assert!(drift["oldestUnrefreshedChange"].is_string(), "{drift}");
    let metrics = app.get("/metrics").await.text();
    assert!(metrics.contains("crm_projection_drifted_rows 1"), "{metrics}");

    let report = projection::rebuild(&app.db.pool, 2).await.unwrap();
    assert_eq!(report, projection::RebuildReport { rows_checked: 5, rows_rewritten: 1, rows_retried: 0 });
    assert_eq!(app.get("/projection/staleness").await.json()["driftedRows"], 0);
    assert!(app.get("/metrics").await.text().contains("crm_projection_drifted_rows 0"));
}

#[tokio::test]
async fn a_missing_projection_row_is_drift_and_is_recreated() {
    let app = TestApp::spawn().await;
    let id = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    sqlx::query("DELETE FROM cm_customer_hot_proj").execute(&app.db.pool).await.unwrap();
    assert_eq!(app.get("/projection/staleness").await.json()["driftedRows"], 1);
    let report = projection::rebuild(&app.db.pool, 100).await.unwrap();
    assert_eq!(report.rows_rewritten, 1);
    let names = app.get("/customers").await.json();
    assert_eq!(names["items"][0]["id"], id);
}

/// A rebuild skips a customer whose writer holds its row, finishes everything else, and then
/// waits for that one writer only.
#[tokio::test]
async fn a_rebuild_does_not_wait_for_writers_until_the_end() {
    let app = TestApp::spawn().await;
    let busy = create(&app, loewen()).await["id"].as_str().unwrap().to_owned();
    for n in 0..3 {
        let mut body = loewen();
        body["name"] = json!(format!("Stube {n}"));
        create(&app, body).await;
    }
    sqlx::query("UPDATE cm_customer_hot_proj SET roi_bucket = 'LOW'").execute(&app.db.pool).await.unwrap();

    let mut writer = app.db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM customer WHERE id = $1::uuid FOR UPDATE")
        .bind(&busy)
        .execute(&mut *writer)
        .await
        .unwrap();
    let pool = app.db.pool.clone();
    let rebuild = tokio::spawn(async move { projection::rebuild(&pool, 10).await.unwrap() });
    // The other three are repaired while the writer still holds its row.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let drifted: i64 =
            sqlx::query_scalar("SELECT count(*) FROM cm_customer_hot_proj WHERE roi_bucket = 'LOW'")
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        if drifted == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the rebuild waited for the writer");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!rebuild.is_finished());
    writer.commit().await.unwrap();
    let report = rebuild.await.unwrap();
    assert_eq!((report.rows_rewritten, report.rows_retried), (4, 1));
    assert_eq!(app.get("/projection/staleness").await.json()["driftedRows"], 0);
    assert_eq!(app.get("/customers?limit=1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_cli_checks_and_rebuilds_a_given_database() {
    let app = TestApp::spawn().await;
    create(&app, loewen()).await;
    sqlx::query("UPDATE cm_customer_hot_proj SET exclusivity = true").execute(&app.db.pool).await.unwrap();
    let run = |action: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_crm-server"))
            .args(["projection", action])
            .env("DATABASE_URL", &app.db.url)
            .env("CRM_LOG", "warn")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    assert_eq!(run("check")["driftedRows"], 1);
    assert_eq!(run("rebuild")["rowsRewritten"], 1);
    assert_eq!(run("check")["driftedRows"], 0);
}
