//! Benchmark of the idempotent creates (a program, not a test: it prints figures).
//!
//! `cargo bench -p crm-server --bench crm_writes`
//!
//! On a private PostgreSQL with production settings (fsync on), over loopback HTTP against the
//! release binary, for `POST /samples` (the default kit), `POST /activities` of kind
//! ROI_CONSULTATION (which also writes the customer's `roi_potential` and its projection) and of
//! kind MENU_INTEGRATION, each with an `Idempotency-Key`:
//! - a fresh key per request: requests/s and p50/p95/p99, saturating the machine (BENCH_CLIENTS)
//!   and at a moderate load (BENCH_LATENCY_CLIENTS);
//! - every request retried once with the same key right after its answer: the first request and
//!   the replay of its stored answer, each timed on its own.
//!
//! Each request goes to a customer picked at random, with the token of a team lead of the
//! customer's territory. Anything but a 201 (and, for a retry, anything but the first answer
//! replayed with `Idempotent-Replayed: true`) is an error, counted and listed after the table.
//!
//! Environment: BENCH_CUSTOMERS (10000), BENCH_SECONDS (5; each measurement runs twice that, as
//! the writes of crm_fields do), BENCH_CLIENTS (8), BENCH_LATENCY_CLIENTS (2).

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::Full;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crm_server::auth::UserRole;
use crm_server::embedded_pg::{Cluster, Options};

use support::{HttpClient, Server, Stats, Timed, checkpoint, env_or, load, load_steps, pick, send};

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Sample,
    RoiConsultation,
    MenuIntegration,
}

impl Endpoint {
    const ALL: [Endpoint; 3] = [Endpoint::Sample, Endpoint::RoiConsultation, Endpoint::MenuIntegration];

    fn name(self) -> &'static str {
        match self {
            Endpoint::Sample => "POST /samples (default kit)",
            Endpoint::RoiConsultation => "POST /activities ROI_CONSULTATION",
            Endpoint::MenuIntegration => "POST /activities MENU_INTEGRATION",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Endpoint::Sample => "/samples",
            Endpoint::RoiConsultation | Endpoint::MenuIntegration => "/activities",
        }
    }

    /// The body of request number `n` for `customer`.
    fn body(self, customer: Uuid, n: usize) -> String {
        match self {
            Endpoint::Sample => format!(r#"{{"customerId": "{customer}", "deliveryDate": "2099-01-15"}}"#),
            // Savings over all three ROI buckets.
            Endpoint::RoiConsultation => format!(
                r#"{{"kind": "ROI_CONSULTATION", "customerId": "{customer}", "roiScenarioId": "{}",
                    "savingsPerMonth": {}.5, "outcome": "QUALIFIED", "note": "Einsparung bei Saucen"}}"#,
                Uuid::new_v4(),
                n % 5000
            ),
            Endpoint::MenuIntegration => format!(
                r#"{{"kind": "MENU_INTEGRATION", "customerId": "{customer}", "season": "Q4/Xmas",
                    "plannedDishes": ["Gänsebraten"], "outcome": "DRAFT"}}"#
            ),
        }
    }

    /// How many of what it creates the database holds.
    fn count_sql(self) -> &'static str {
        match self {
            Endpoint::Sample => "SELECT count(*) FROM sample_request",
            Endpoint::RoiConsultation => "SELECT count(*) FROM activity WHERE kind = 'ROI_CONSULTATION'",
            Endpoint::MenuIntegration => "SELECT count(*) FROM activity WHERE kind = 'MENU_INTEGRATION'",
        }
    }
}

/// What went wrong in one measurement: per reason, how often and the first answer's body.
#[derive(Default)]
struct Errors(Mutex<BTreeMap<String, (u64, String)>>);

impl Errors {
    fn record(&self, reason: String, body: &[u8]) {
        let mut errors = self.0.lock().expect("the error list");
        let entry = errors.entry(reason).or_insert_with(|| {
            let body = String::from_utf8_lossy(body);
            (0, body.chars().take(300).collect())
        });
        entry.0 += 1;
    }

    fn take(&self) -> BTreeMap<String, (u64, String)> {
        std::mem::take(&mut *self.0.lock().expect("the error list"))
    }
}

/// The server, the customers with the token allowed to write each, and the errors seen.
struct Target {
    base: String,
    /// Each customer's id and the index of its territory's token.
    customers: Vec<(Uuid, usize)>,
    tokens: Vec<String>,
    errors: Errors,
}

/// The answer to a create: its `Location`, and whether it was replayed.
struct Created {
    location: String,
    replayed: bool,
}

impl Target {
    /// Sends `body` to `endpoint` under `key`; a 201 or the error recorded.
    async fn post(
        &self,
        client: &HttpClient,
        endpoint: Endpoint,
        token: usize,
        key: &str,
        body: &str,
    ) -> Option<Created> {
        let request = http::Request::post(format!("{}{}", self.base, endpoint.path()))
            .header("authorization", self.tokens[token].as_str())
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        let Some((status, headers, body)) = send(client, request).await else {
            self.errors.record("no answer (connection error)".into(), b"");
            return None;
        };
        if status != http::StatusCode::CREATED {
            self.errors.record(format!("status {status}"), &body);
            return None;
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Some(Created {
            location: header("location").unwrap_or_default(),
            replayed: header("idempotent-replayed").as_deref() == Some("true"),
        })
    }

    /// Request number `n` with a fresh key: a 201 that is no replay.
    async fn create(&self, client: &HttpClient, endpoint: Endpoint, n: usize) -> (bool, Option<Retry>) {
        let (customer, token) = self.customers[pick(n, self.customers.len())];
        let key = Uuid::new_v4().to_string();
        let body = endpoint.body(customer, n);
        match self.post(client, endpoint, token, &key, &body).await {
            Some(created) if created.replayed => {
                self.errors.record("a fresh key answered as a replay".into(), b"");
                (false, None)
            }
            Some(created) => (true, Some(Retry { token, key, body, location: created.location })),
            None => (false, None),
        }
    }

    /// The retry of a created request: the first answer again, marked as replayed.
    async fn retry(&self, client: &HttpClient, endpoint: Endpoint, first: &Retry) -> bool {
        match self.post(client, endpoint, first.token, &first.key, &first.body).await {
            Some(again) if !again.replayed => {
                self.errors.record("retry not marked Idempotent-Replayed (created twice?)".into(), b"");
                false
            }
            Some(again) if again.location != first.location => {
                self.errors.record("retry replayed another Location".into(), b"");
                false
            }
            Some(_) => true,
            None => false,
        }
    }
}

/// A created request, to send again.
struct Retry {
    token: usize,
    key: String,
    body: String,
    location: String,
}

/// Fresh keys: one create per iteration.
async fn fresh(target: &Arc<Target>, endpoint: Endpoint, clients: usize, duration: Duration) -> Stats {
    let target = target.clone();
    load(clients, duration, move |client: HttpClient, n| {
        let target = target.clone();
        async move { target.create(&client, endpoint, n).await.0 }
    })
    .await
}

/// A create and, once answered, its retry with the same key and body: each timed on its own.
async fn retried(target: &Arc<Target>, endpoint: Endpoint, clients: usize, duration: Duration) -> [Stats; 2] {
    let target = target.clone();
    load_steps(clients, duration, move |client: HttpClient, n| {
        let target = target.clone();
        async move {
            let sent = Instant::now();
            let (ok, first) = target.create(&client, endpoint, n).await;
            let first_timed = Timed { latency: sent.elapsed(), ok };
            // A failed create has nothing to replay (and counts in the first step only).
            let replay = match &first {
                Some(first) => Some(support::timed(target.retry(&client, endpoint, first)).await),
                None => None,
            };
            [Some(first_timed), replay]
        }
    })
    .await
}

async fn count(url: &str, sql: &'static str) -> i64 {
    let mut conn = PgConnection::connect(url).await.expect("a connection");
    sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("a count")
}

#[tokio::main]
async fn main() {
    let customers: usize = env_or("BENCH_CUSTOMERS", 10_000);
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let clients: usize = env_or("BENCH_CLIENTS", 8);
    let latency_clients: usize = env_or("BENCH_LATENCY_CLIENTS", 2);
    let duration = Duration::from_secs(2 * seconds);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cluster =
        Cluster::start(&Options { root: dir.path().join("pg"), ephemeral: false }).expect("PostgreSQL");

    eprintln!("seeding {customers} customers ...");
    let seeded = Instant::now();
    let seeded_customers = support::seed(&cluster, "bench", customers).await;
    eprintln!("seeded in {:.1}s", seeded.elapsed().as_secs_f64());
    let admin_url = cluster.url("postgres");
    let bench_url = cluster.url("bench");
    let server = Server::start(&cluster, "bench", dir.path()).await;

    // A team lead per territory: the token allowed to write the customer, as the policies decide.
    let mut territories: Vec<String> = seeded_customers.iter().map(|(_, t)| t.clone()).collect();
    territories.sort();
    territories.dedup();
    let tokens = territories
        .iter()
        .map(|t| server.bearer(&format!("bench-lead-{t}"), &[UserRole::TeamLead], std::slice::from_ref(t)))
        .collect();
    let customers_with_tokens = seeded_customers
        .iter()
        .map(|(id, t)| (*id, territories.binary_search(t).expect("a territory")))
        .collect();
    let target = Arc::new(Target {
        base: server.base.clone(),
        customers: customers_with_tokens,
        tokens,
        errors: Errors::default(),
    });

    let mut table = vec![
        "| endpoint | clients | req/s | p50 ms | p95 ms | p99 ms | errors |".to_owned(),
        "|---|---:|---:|---:|---:|---:|---:|".to_owned(),
    ];
    let mut details = Vec::new();
    let mut checks = Vec::new();
    for endpoint in Endpoint::ALL {
        let before = count(&bench_url, endpoint.count_sql()).await;
        let mut created = 0u64;
        // A short warm-up fills the server's pool and caches; every measurement starts right
        // after a checkpoint, so each pays the same full-page writes.
        let warm_up = fresh(&target, endpoint, clients, Duration::from_secs(1)).await;
        created += warm_up.requests - warm_up.errors;
        for (reason, (count, body)) in target.errors.take() {
            details.push(format!("{}, warm-up: {count} x {reason} {body}", endpoint.name()));
        }
        let mut runs: Vec<(String, usize, Stats)> = Vec::new();
        for n in [clients, latency_clients] {
            checkpoint(&admin_url).await;
            let stats = fresh(&target, endpoint, n, duration).await;
            created += stats.requests - stats.errors;
            runs.push((format!("{}, fresh key", endpoint.name()), n, stats));
            for (reason, (count, body)) in target.errors.take() {
                details
                    .push(format!("{}, fresh key, {n} clients: {count} x {reason} {body}", endpoint.name()));
            }
        }
        for n in [clients, latency_clients] {
            checkpoint(&admin_url).await;
            let [first, replay] = retried(&target, endpoint, n, duration).await;
            created += first.requests - first.errors;
            runs.push((format!("{}, retried: first", endpoint.name()), n, first));
            runs.push((format!("{}, retried: replay", endpoint.name()), n, replay));
            for (reason, (count, body)) in target.errors.take() {
                details.push(format!("{}, retried, {n} clients: {count} x {reason} {body}", endpoint.name()));
            }
        }
        for (name, n, stats) in &runs {
            table.push(stats.row(&format!("{name} | {n}")));
            eprintln!("{}", table.last().map(String::as_str).unwrap_or_default());
        }
        // Applied at most once per key: the rows created are the 201s of first requests.
        let rows = count(&bench_url, endpoint.count_sql()).await - before;
        checks.push(format!(
            "{}: {rows} created, {created} first requests answered 201{}",
            endpoint.name(),
            if rows == created as i64 { "" } else { "  <-- MISMATCH" }
        ));
    }
    let keys = count(&bench_url, "SELECT count(*) FROM idempotency_key").await;
    drop(server);
    cluster.stop().expect("stopping PostgreSQL");

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\n{customers} customers, {} s per measurement, {cpus} CPUs, PostgreSQL with fsync on; \
         team-lead tokens of the customer's territory\n",
        duration.as_secs()
    );
    for row in &table {
        println!("{row}");
    }
    println!(
        "\nretried: every request is sent again with the same key and body once answered; `first` \
         and `replay` each count and time their own step (requests/s of each is the pairs' rate)."
    );
    println!("\nrows created vs. 201s (warm-ups included):");
    for check in &checks {
        println!("  {check}");
    }
    println!("  idempotency keys stored: {keys}");
    if details.is_empty() {
        println!("\nerrors: none");
    } else {
        println!("\nerrors:");
        for line in &details {
            println!("  {line}");
        }
    }
}
