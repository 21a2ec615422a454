//! `GET /customers`: every filter and sort against an independent model of the data, keyset
//! pages that add up to the whole list, bad parameters, and index use at 100,000 customers.

use std::cmp::Ordering;

use axum::http::{Method, StatusCode};
use crm_server::db::search::{self, CustomerFilter, Sort};
use crm_server::testing::TestApp;
use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use uuid::Uuid;

/// One seeded customer as the test expects the server to see it.
#[derive(Debug, Clone)]
struct Model {
    id: Uuid,
    name: String,
    territory: &'static str,
    parent: Option<Uuid>,
    roi: Option<(&'static str, f64)>,
    decision_makers: Option<i64>,
    season: Option<(Date, Date)>,
    renewal: Option<(Date, bool)>,
}

/// A small deterministic generator (xorshift), so the data set is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn date(&mut self) -> Date {
        date!(2026 - 01 - 01) + time::Duration::days(self.next(730) as i64)
    }
}

async fn seed(app: &TestApp, count: usize) -> Vec<Model> {
    let mut rng = Rng(0x5eed_f00d);
    let territories = ["BY", "NRW", "BER"];
    let words = ["alpen", "Brau", "dorf", "Eck", "Löwen", "post", "Rose", "stern", "Ulme", "zum"];
    let chain = crate::customers::create(
        app,
        json!({"name": "Kette", "segment": "HOTEL", "territory": "BY", "isChain": true}),
    )
    .await;
    let chain_id: Uuid = chain["id"].as_str().unwrap().parse().unwrap();
    let mut models = vec![Model {
        id: chain_id,
        name: "Kette".into(),
        territory: "BY",
        parent: None,
        roi: None,
        decision_makers: None,
        season: None,
        renewal: None,
    }];
    for n in 0..count {
        let name = format!("{} {} {n}", words[rng.next(10) as usize], words[rng.next(10) as usize]);
        let territory = territories[rng.next(3) as usize];
        let parent = (rng.next(5) == 0).then_some(chain_id);
        let mut body = json!({"name": name, "segment": "RESTAURANT", "territory": territory});
        if let Some(parent) = parent {
            body["parentAccountId"] = json!(parent);
        }
        let created = crate::customers::create(app, body).await;
        let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
        let mut model = Model {
            id,
            name,
            territory,
            parent,
            roi: None,
            decision_makers: None,
            season: None,
            renewal: None,
        };
        let mut fields = serde_json::Map::new();
        if rng.next(4) > 0 {
            let bucket = ["LOW", "MID", "HIGH"][rng.next(3) as usize];
            // Repeated values exercise the id tie-breaker.
            let value = (rng.next(8) * 250) as f64;
            model.roi = Some((bucket, value));
            fields.insert("roi_potential".into(), json!({"bucket": bucket, "value": value}));
        }
        if rng.next(3) > 0 {
            let count = rng.next(6) as i64;
            model.decision_makers = Some(count);
            fields.insert("decision_makers".into(), json!({"count": count, "has_exec_alignment": count > 2}));
        }
        if rng.next(2) > 0 {
            let (a, b) = (rng.date(), rng.date());
            let season = (a.min(b), a.max(b));
            model.season = Some(season);
            fields.insert(
                "seasonal_menu_cycle".into(),
                json!({"season_start": season.0.to_string(), "season_end": season.1.to_string()}),
            );
        }
        if rng.next(3) > 0 {
            let renewal = (rng.date(), rng.next(2) == 0);
            model.renewal = Some(renewal);
            fields.insert(
                "current_supplier_contracts".into(),
                json!({"renewal_date": renewal.0.to_string(), "exclusivity": renewal.1}),
            );
        }
        if !fields.is_empty() {
            let res = app
                .send_json_with(
                    Method::PATCH,
                    &format!("/customers/{id}/fields"),
                    &[("if-match", "*")],
                    &Value::Object(fields),
                )
                .await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        }
        models.push(model);
    }
    models
}

/// Every item of every page of `query`, following `nextCursor`.
async fn all_pages(app: &TestApp, query: &str) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut path = format!("/customers?{query}");
    for _ in 0..1000 {
        let res = app.get(&path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
        let page = res.json();
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().parse::<Uuid>().unwrap()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/customers?{query}&cursor={cursor}"),
            None => return ids,
        }
    }
    panic!("{query} never ended");
}

fn by_name(a: &Model, b: &Model) -> Ordering {
    (a.name.to_lowercase(), a.id).cmp(&(b.name.to_lowercase(), b.id))
}

/// Sorted by `key` (ascending or descending, ties by id in the same direction), rows without a
/// key last by id in that direction.
fn nulls_last<K: PartialOrd + Copy>(
    models: &[&Model],
    key: impl Fn(&Model) -> Option<K>,
    descending: bool,
) -> Vec<Uuid> {
    let (mut with, mut without): (Vec<&Model>, Vec<&Model>) = models.iter().partition(|m| key(m).is_some());
    with.sort_by(|a, b| {
        let order = key(a).partial_cmp(&key(b)).unwrap().then(a.id.cmp(&b.id));
        if descending { order.reverse() } else { order }
    });
    without.sort_by(|a, b| if descending { b.id.cmp(&a.id) } else { a.id.cmp(&b.id) });
    with.into_iter().chain(without).map(|m| m.id).collect()
}

#[tokio::test]
async fn every_filter_and_sort_returns_exactly_the_model_in_pages() {
    let app = TestApp::spawn().await;
    let models = seed(&app, 60).await;
    let d = |s: &str| Date::parse(s, &time::format_description::well_known::Iso8601::DATE).unwrap();

    type Filter = Box<dyn Fn(&Model) -> bool>;
    let cases: Vec<(&str, Filter)> = vec![
        ("", Box::new(|_| true)),
        ("roi_bucket=HIGH", Box::new(|m| m.roi.is_some_and(|r| r.0 == "HIGH"))),
        ("territory=NRW", Box::new(|m| m.territory == "NRW")),
        ("exclusivity=true", Box::new(|m| m.renewal.is_some_and(|r| r.1))),
        (
            "exclusivity=false&territory=BY",
            Box::new(|m| m.renewal.is_some_and(|r| !r.1) && m.territory == "BY"),
        ),
        ("decision_maker_count_min=3", Box::new(|m| m.decision_makers.is_some_and(|c| c >= 3))),
        ("renewal_before=2027-01-01", Box::new(move |m| m.renewal.is_some_and(|r| r.0 < d("2027-01-01")))),
        (
            "season_from=2026-12-01&season_to=2026-12-31",
            Box::new(move |m| m.season.is_some_and(|(s, e)| s <= d("2026-12-31") && e >= d("2026-12-01"))),
        ),
        ("season_from=2027-09-01", Box::new(move |m| m.season.is_some_and(|(_, e)| e >= d("2027-09-01")))),
        ("season_to=2026-02-01", Box::new(move |m| m.season.is_some_and(|(s, _)| s <= d("2026-02-01")))),
        ("name=Zum", Box::new(|m| m.name.to_lowercase().starts_with("zum"))),
        ("name=l%C3%B6wen", Box::new(|m| m.name.to_lowercase().starts_with("löwen"))),
        ("parent_account_id=CHAIN", Box::new(|m| m.parent.is_some())),
        (
            "roi_bucket=LOW&decision_maker_count_min=1&territory=BY",
            Box::new(|m| {
                m.roi.is_some_and(|r| r.0 == "LOW")
                    && m.decision_makers.is_some_and(|c| c >= 1)
                    && m.territory == "BY"
            }),
        ),
    ];
    let chain = models[0].id;
    for (query, keep) in &cases {
        let query = query.replace("CHAIN", &chain.to_string());
        let matching: Vec<&Model> = models.iter().filter(|m| keep(m)).collect();
        assert!(
            !matching.is_empty() || query.contains("season_to"),
            "{query} matches nothing in the seed: a useless case"
        );

        let mut expected: Vec<&Model> = matching.clone();
        expected.sort_by(|a, b| by_name(a, b));
        let expected: Vec<Uuid> = expected.iter().map(|m| m.id).collect();
        assert_eq!(all_pages(&app, &format!("{query}&limit=7")).await, expected, "sort=name, {query}");

        let renewal = nulls_last(&matching, |m| m.renewal.map(|r| r.0), false);
        assert_eq!(
            all_pages(&app, &format!("{query}&sort=renewal_date&limit=5")).await,
            renewal,
            "sort=renewal_date, {query}"
        );

        let roi = nulls_last(&matching, |m| m.roi.map(|r| r.1), true);
        assert_eq!(
            all_pages(&app, &format!("{query}&sort=-roi_value&limit=4")).await,
            roi,
            "sort=-roi_value, {query}"
        );

        let samples = nulls_last(&matching, |_| None::<i64>, true);
        assert_eq!(
            all_pages(&app, &format!("{query}&sort=-sample_last_event_at&limit=9")).await,
            samples,
            "{query}"
        );
    }
}

#[tokio::test]
async fn list_items_carry_their_hot_fields() {
    let app = TestApp::spawn().await;
    let models = seed(&app, 8).await;
    let page = app.get("/customers?limit=500").await.json();
    for item in page["items"].as_array().unwrap() {
        let model = models.iter().find(|m| m.id.to_string() == item["id"]).unwrap();
        assert_eq!(item["hot"]["roiBucket"].as_str(), model.roi.map(|r| r.0), "{item}");
        assert_eq!(
            item["hot"]["renewalDate"].as_str().map(str::to_owned),
            model.renewal.map(|r| r.0.to_string()),
            "{item}"
        );
    }
    assert!(page.get("nextCursor").is_none());
}

#[tokio::test]
async fn bad_parameters_are_400_problems_naming_the_parameter() {
    let app = TestApp::spawn().await;
    crate::customers::create(&app, crate::customers::loewen()).await;
    crate::customers::create(&app, json!({"name": "B", "segment": "HOTEL", "territory": "BY"})).await;
    let first = app.get("/customers?limit=1&territory=BY").await.json();
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases = [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("roi_bucket=HUGE", "roi_bucket"),
        ("sample_status=EATEN", "sample_status"),
        ("territory=bavaria", "territory"),
        ("season_from=2027-01-01&season_to=2026-01-01", "season_to"),
        ("renewal_before=2027-02-30", "renewal_before"),
        ("exclusivity=maybe", "exclusivity"),
        ("decision_maker_count_min=-1", "decision_maker_count_min"),
        ("sort=shoe_size", "sort"),
        ("cursor=not-a-cursor", "cursor"),
        (&format!("cursor={tampered}&territory=BY&limit=1"), "cursor"),
        (&format!("cursor={cursor}&territory=NRW&limit=1"), "cursor"),
        (&format!("cursor={cursor}&territory=BY&limit=1&sort=renewal_date"), "cursor"),
    ];
    for (query, parameter) in cases {
        let problem = app.get(&format!("/customers?{query}")).await.problem(StatusCode::BAD_REQUEST);
        let named: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().filter_map(|e| e["parameter"].as_str()).collect();
        assert!(named.contains(&parameter), "{query}: {problem}");
    }
    let problem = app.get("/customers?colour=blue").await.problem(StatusCode::BAD_REQUEST);
    assert!(problem["detail"].as_str().unwrap().contains("colour"), "{problem}");
    let next = app.get(&format!("/customers?cursor={cursor}&territory=BY&limit=1")).await;
    assert_eq!(next.status, StatusCode::OK);
    assert_eq!(next.json()["items"].as_array().unwrap().len(), 1);
}

/// Node types of a JSON plan that scan `relation`.
fn scans_of(plan: &Value, relation: &str, found: &mut Vec<String>) {
    if plan["Relation Name"] == relation {
        found.push(plan["Node Type"].as_str().unwrap_or("?").to_owned());
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        scans_of(child, relation, found);
    }
}

/// At 100,000 customers every filter, alone and with its natural sort, is an index scan of the
/// projection: no sequential scan, whatever the data.
#[tokio::test]
async fn every_filter_is_served_by_an_index_at_100k_customers() {
    let app = TestApp::spawn().await;
    let seed = include_str!("../../bench/seed-customers.sql").replace(":customers", "100000");
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed)).execute(&app.db.pool).await.unwrap();
    sqlx::query("ANALYZE").execute(&app.db.pool).await.unwrap();
    let d = |y, m, d| Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
    let cases: Vec<(CustomerFilter, Sort)> = vec![
        (CustomerFilter::default(), Sort::Name),
        (CustomerFilter { sample_status: Some("DELIVERED".into()), ..Default::default() }, Sort::Name),
        (
            CustomerFilter { sample_status: Some("DELIVERED".into()), ..Default::default() },
            Sort::SampleEventDesc,
        ),
        (CustomerFilter { roi_bucket: Some("HIGH".into()), ..Default::default() }, Sort::Name),
        (CustomerFilter { roi_bucket: Some("HIGH".into()), ..Default::default() }, Sort::RoiValueDesc),
        (
            CustomerFilter {
                season: Some((Some(d(2026, 12, 1)), Some(d(2026, 12, 24)))),
                ..Default::default()
            },
            Sort::Name,
        ),
        (CustomerFilter { renewal_before: Some(d(2026, 3, 1)), ..Default::default() }, Sort::RenewalDate),
        (CustomerFilter { renewal_before: Some(d(2026, 3, 1)), ..Default::default() }, Sort::Name),
        (CustomerFilter { exclusivity: Some(true), ..Default::default() }, Sort::Name),
        (CustomerFilter { decision_maker_count_min: Some(8), ..Default::default() }, Sort::Name),
        (CustomerFilter { territory: Some("NRW".into()), ..Default::default() }, Sort::Name),
        (CustomerFilter { name_prefix: Some("zum".into()), ..Default::default() }, Sort::Name),
        (CustomerFilter { parent_account_id: Some(Uuid::nil()), ..Default::default() }, Sort::Name),
        (
            CustomerFilter {
                territory: Some("BY".into()),
                roi_bucket: Some("MID".into()),
                ..Default::default()
            },
            Sort::Name,
        ),
    ];
    let mut conn = app.db.pool.acquire().await.unwrap();
    for (filter, sort) in cases {
        let plan = search::explain(&mut conn, &filter, sort, 50).await.unwrap();
        let mut scans = Vec::new();
        scans_of(&plan[0]["Plan"], "cm_customer_hot_proj", &mut scans);
        scans_of(&plan[0]["Plan"], "customer", &mut scans);
        assert!(!scans.is_empty(), "{filter:?}: {plan}");
        assert!(
            scans.iter().all(|s| s.contains("Index") || s.contains("Bitmap")),
            "{filter:?} {sort:?}: {scans:?}\n{plan:#}"
        );
    }
}
