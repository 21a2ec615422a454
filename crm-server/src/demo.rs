//! Demo data for `crm-server serve --demo`: customers in three territories with contacts, fields,
//! samples and activities, written through the server's own router (the same validation, row-level
//! security, projection and outbox as any client's request), once per database.

use std::fmt::Write as _;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::{Date, Duration};
use tower::ServiceExt;

/// One demo account: a chain with locations, or a single business.
struct Account {
    name: &'static str,
    segment: &'static str,
    territory: &'static str,
    region: &'static str,
    city: &'static str,
    postal_code: &'static str,
    chef: (&'static str, &'static str),
    /// Monthly savings of the ROI consultation (the bucket follows from it).
    savings: u32,
    locations: &'static [&'static str],
}

const ACCOUNTS: &[Account] = &[
    Account {
        name: "Alpenhof Hotels",
        segment: "HOTEL",
        territory: "BY",
        region: "DE-BY",
        city: "München",
        postal_code: "80331",
        chef: ("Anna", "Huber"),
        savings: 1800,
        locations: &["Alpenhof Garmisch", "Alpenhof Tegernsee"],
    },
    Account {
        name: "Wirtshaus zum Löwen",
        segment: "RESTAURANT",
        territory: "BY",
        region: "DE-BY",
        city: "Augsburg",
        postal_code: "86150",
        chef: ("Josef", "Maier"),
        savings: 650,
        locations: &[],
    },
    Account {
        name: "Rheinblick Catering",
        segment: "CATERER",
        territory: "NW",
        region: "DE-NW",
        city: "Köln",
        postal_code: "50667",
        chef: ("Lena", "Schmitz"),
        savings: 2400,
        locations: &[],
    },
    Account {
        name: "Brauhaus am Dom",
        segment: "RESTAURANT",
        territory: "NW",
        region: "DE-NW",
        city: "Düsseldorf",
        postal_code: "40213",
        chef: ("Tim", "Becker"),
        savings: 300,
        locations: &[],
    },
    Account {
        name: "Spree Hotels",
        segment: "HOTEL",
        territory: "BE",
        region: "DE-BE",
        city: "Berlin",
        postal_code: "10117",
        chef: ("Mia", "Wagner"),
        savings: 1200,
        locations: &["Spree Hotel Mitte"],
    },
];

/// The territories the demo data spans.
pub const TERRITORIES: [&str; 3] = ["BY", "NW", "BE"];

/// What was seeded, for the example calls printed after it.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Name, id and territory of every customer written.
    pub customers: Vec<(String, String, String)>,
    pub samples: usize,
    pub activities: usize,
    /// Samples whose feedback is in (FEEDBACK_SUCCESS).
    pub feedback: usize,
    /// A delivered sample whose feedback is still due.
    pub open_sample: String,
}

/// Why the demo data could not be written: the request and what the server answered.
#[derive(Debug, thiserror::Error)]
#[error("demo data: {method} {path} answered {status}: {body}")]
pub struct SeedError {
    method: Method,
    path: String,
    status: StatusCode,
    body: String,
}

/// Requests to the router as one caller (the admin token).
struct Caller {
    app: Router,
    authorization: String,
    keys: u32,
}

impl Caller {
    async fn send(&mut self, method: Method, path: &str, body: Option<Value>) -> Result<Value, SeedError> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("authorization", &self.authorization)
            .header("content-type", "application/json");
        if method == Method::POST && matches!(path, "/samples" | "/activities") {
            self.keys += 1;
            request = request.header("idempotency-key", format!("demo-{}", self.keys));
        }
        if method == Method::PATCH {
            request = request.header("if-match", "*");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let request = request.body(body).expect("a well-formed request");
        let failed = |status: StatusCode, body: String| SeedError {
            method: method.clone(),
            path: path.to_owned(),
            status,
            body,
        };
        let response = self.app.clone().oneshot(request).await.expect("the router is infallible");
        let status = response.status();
        let bytes =
            response.into_body().collect().await.map_err(|e| failed(status, e.to_string()))?.to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            return Err(failed(status, text));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&mut self, path: &str, body: Value) -> Result<Value, SeedError> {
        self.send(Method::POST, path, Some(body)).await
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_default().to_owned()
}

/// Writes the demo data through `app` with `token` (an admin's), unless the database already
/// holds customers: then None, and nothing is written.
pub async fn seed(app: Router, token: &str, today: Date) -> Result<Option<Seeded>, SeedError> {
    let mut caller = Caller { app, authorization: format!("Bearer {token}"), keys: 0 };
    let existing = caller.send(Method::GET, "/customers?limit=1", None).await?;
    if existing["items"].as_array().is_some_and(|items| !items.is_empty()) {
        return Ok(None);
    }
    let mut seeded =
        Seeded { customers: Vec::new(), samples: 0, activities: 0, feedback: 0, open_sample: String::new() };
    let season_end = today + Duration::days(30);
    for (n, account) in ACCOUNTS.iter().enumerate() {
        let address = |city: &str| json!({"street": "Hauptstr. 1", "postalCode": account.postal_code, "city": city, "region": account.region});
        let head = caller
            .post(
                "/customers",
                json!({"name": account.name, "segment": account.segment, "territory": account.territory,
                       "isChain": !account.locations.is_empty(), "address": address(account.city)}),
            )
            .await?;
        let head_id = id(&head);
        seeded.customers.push((account.name.to_owned(), head_id.clone(), account.territory.to_owned()));
        for location in account.locations {
            let created = caller
                .post(
                    "/customers",
                    json!({"name": location, "segment": account.segment, "territory": account.territory,
                           "parentAccountId": head_id, "address": address(account.city)}),
                )
                .await?;
            seeded.customers.push(((*location).to_owned(), id(&created), account.territory.to_owned()));
        }
        let (first, last) = account.chef;
        caller
            .post(
                &format!("/customers/{head_id}/contacts"),
                json!({"firstName": first, "lastName": last, "roles": ["HEAD_CHEF", "BUYER"],
                       "email": format!("{}@example.com", first.to_lowercase())}),
            )
            .await?;
        caller
            .send(
                Method::PATCH,
                &format!("/customers/{head_id}/fields"),
                Some(json!({
                    "seasonal_menu_cycle": {"season_start": today.to_string(), "season_end": season_end.to_string()},
                    "current_supplier_contracts": {"renewal_date": (today + Duration::days(60 + 20 * n as i64)).to_string(),
                                                   "exclusivity": n % 2 == 0},
                })),
            )
            .await?;
        // The sales cycle so far: an ROI consultation, a sample, and (for every other account)
        // its feedback and a menu plan.
        caller
            .post(
                "/activities",
                json!({"kind": "ROI_CONSULTATION", "customerId": head_id, "roiScenarioId": uuid::Uuid::now_v7(),
                       "assumptionsVersion": "2026-11", "savingsPerMonth": account.savings, "outcome": "QUALIFIED",
                       "note": "Cook&Fresh Saucen und Beilagen statt Eigenproduktion"}),
            )
            .await?;
        let sample = caller
            .post(
                "/samples",
                json!({"customerId": head_id, "deliveryDate": today.to_string(), "notes": "Küche ab 10 Uhr"}),
            )
            .await?;
        let sample_id = id(&sample);
        for status in ["PACKED", "SHIPPED", "DELIVERED"] {
            caller
                .send(
                    Method::PATCH,
                    &format!("/samples/{sample_id}/status"),
                    Some(json!({"newStatus": status})),
                )
                .await?;
        }
        seeded.samples += 1;
        seeded.activities += 1;
        if n % 2 == 0 {
            caller
                .post(
                    "/activities",
                    json!({"kind": "PRODUCTTEST_FEEDBACK", "customerId": head_id, "sampleId": sample_id, "rating": 4,
                           "outcome": "SUCCESS", "sensoricNotes": "Sauce Hollandaise stabil im Warmhalten"}),
                )
                .await?;
            // The sample's own lifecycle ends with the feedback too (the cockpit counts these).
            caller
                .send(
                    Method::PATCH,
                    &format!("/samples/{sample_id}/status"),
                    Some(json!({"newStatus": "FEEDBACK_SUCCESS"})),
                )
                .await?;
            seeded.feedback += 1;
            caller
                .post(
                    "/activities",
                    json!({"kind": "MENU_INTEGRATION", "customerId": head_id, "season": "Winter",
                           "plannedDishes": ["Gänsebraten", "Rotkohl", "Kartoffelknödel"], "outcome": "DRAFT"}),
                )
                .await?;
            seeded.activities += 2;
        } else {
            seeded.open_sample = sample_id;
        }
    }
    Ok(Some(seeded))
}

/// The lines printed after the demo data: tokens and calls to try, with real ids.
pub fn guide(base: &str, admin_token: &str, rep_token: &str, seeded: Option<&Seeded>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "CRM server at {base}");
    let _ = writeln!(out, "\nAn admin token (8 h, the development key of this data folder):");
    let _ = writeln!(out, "  export AUTH=\"authorization: Bearer {admin_token}\"");
    let _ = writeln!(out, "A sales rep of territory BY (sees BY customers only):");
    let _ = writeln!(out, "  export REP=\"authorization: Bearer {rep_token}\"");
    let _ = writeln!(out, "\nTry:");
    let _ = writeln!(out, "  curl -s -H \"$AUTH\" '{base}/customers?sort=-roi_value'");
    let _ = writeln!(out, "  curl -s -H \"$REP\" '{base}/customers'                 # territory BY only");
    let _ = writeln!(out, "  curl -s -H \"$AUTH\" '{base}/cockpit/summary?territory=BY'");
    let _ = writeln!(out, "  curl -s -H \"$AUTH\" '{base}/sla/overdue'");
    if let Some(seeded) = seeded {
        if let Some((name, id, _)) = seeded.customers.first() {
            let _ = writeln!(out, "  curl -s -H \"$AUTH\" {base}/customers/{id}/fields           # {name}");
            let _ = writeln!(out, "  curl -s -H \"$AUTH\" {base}/customers/{id}/activities");
        }
        if !seeded.open_sample.is_empty() {
            let _ = writeln!(
                out,
                "  curl -s -H \"$AUTH\" {base}/samples/{}               # delivered, feedback due",
                seeded.open_sample
            );
        }
    }
    let _ = writeln!(
        out,
        "  curl -s -H \"$AUTH\" '{base}/events/replay?limit=5'     # the outbox, as CloudEvents"
    );
    let _ = writeln!(out, "  curl -s {base}/metrics | grep ^crm_outbox");
    out
}
