//! What the benchmarks share: a private PostgreSQL seeded with customers, the release binary
//! serving it as the app login, and a loopback HTTP load generator with latency percentiles.
//!
//! Included with `mod support;` by each bench; cargo only builds `benches/*.rs` and
//! `benches/*/main.rs` as targets, so this folder is no bench of its own.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crm_server::auth::UserRole;
use crm_server::auth::dev::DevKey;
use crm_server::db;
use crm_server::embedded_pg::Cluster;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Stats {
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }

    /// `| {name} | req/s | p50 | p95 | p99 | errors |`.
    pub fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50),
            self.percentile(0.95),
            self.percentile(0.99),
            self.errors
        )
    }
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One request's latency and whether it succeeded.
pub struct Timed {
    pub latency: Duration,
    pub ok: bool,
}

/// Times `request`.
pub async fn timed(request: impl std::future::Future<Output = bool>) -> Timed {
    let sent = Instant::now();
    let ok = request.await;
    Timed { latency: sent.elapsed(), ok }
}

/// Runs `clients` loops of `request` for `duration`; each returns whether it succeeded.
pub async fn load<F, Fut>(clients: usize, duration: Duration, request: F) -> Stats
where
    F: Fn(HttpClient, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let [stats] = load_steps(clients, duration, move |client, n| {
        let request = request(client, n);
        async move { [Some(timed(request).await)] }
    })
    .await;
    stats
}

/// Runs `clients` loops of `request` for `duration`, where each iteration sends up to `N` requests
/// one after the other (a request and its retry, say) and times each itself: one [`Stats`] per
/// step. A step that was not sent (`None`) is not counted.
pub async fn load_steps<const N: usize, F, Fut>(clients: usize, duration: Duration, request: F) -> [Stats; N]
where
    F: Fn(HttpClient, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = [Option<Timed>; N]> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for worker in 0..clients {
        let request = request.clone();
        workers.push(tokio::spawn(async move {
            let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
            let mut steps: [(Vec<Duration>, u64); N] = std::array::from_fn(|_| (Vec::new(), 0));
            let mut n = 0usize;
            while Instant::now() < deadline {
                let results = request(client.clone(), worker * 1_000_003 + n).await;
                for ((latencies, errors), result) in steps.iter_mut().zip(results) {
                    let Some(result) = result else { continue };
                    latencies.push(result.latency);
                    *errors += u64::from(!result.ok);
                }
                n += 1;
            }
            steps
        }));
    }
    let mut stats: [Stats; N] = std::array::from_fn(|_| Stats {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    });
    for worker in workers {
        let steps = worker.await.expect("a load worker");
        for (stats, (latencies, errors)) in stats.iter_mut().zip(steps) {
            stats.requests += latencies.len() as u64;
            stats.errors += errors;
            stats.latencies.extend(latencies);
        }
    }
    let elapsed = started.elapsed();
    for stats in &mut stats {
        stats.elapsed = elapsed;
        stats.latencies.sort();
    }
    stats
}

pub async fn send(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
) -> Option<(http::StatusCode, http::HeaderMap, Bytes)> {
    let response = client.request(request).await.ok()?;
    let (parts, body) = response.into_parts();
    Some((parts.status, parts.headers, body.collect().await.ok()?.to_bytes()))
}

/// A deterministic, well-spread choice of customer for request number `n` (splitmix64).
pub fn pick(n: usize, len: usize) -> usize {
    let mut z = (n as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % len as u64) as usize
}

/// Creates `database` on `cluster`, migrates it and seeds `customers` customers
/// (`bench/seed-customers.sql`), with `bench_ids (n, id)` numbering them from 1 for pgbench;
/// vacuums and analyzes, and turns autovacuum off for the measurements. Returns each customer's
/// id and territory, in the order of `bench_ids`.
pub async fn seed(cluster: &Cluster, database: &str, customers: usize) -> Vec<(Uuid, String)> {
    db::create_database_if_missing(&cluster.url("postgres"), database).await.expect("database");
    let pool = db::connect(&cluster.url(database), 4).await.expect("pool");
    db::migrate(&pool).await.expect("migrations");
    let seed = include_str!("../../bench/seed-customers.sql").replace(":customers", &customers.to_string());
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed)).execute(&pool).await.expect("seed");
    sqlx::raw_sql(
        "CREATE TABLE bench_ids AS SELECT row_number() OVER (ORDER BY id)::int AS n, id FROM customer;
                   ALTER TABLE bench_ids ADD PRIMARY KEY (n);",
    )
    .execute(&pool)
    .await
    .expect("bench ids");
    sqlx::query("VACUUM ANALYZE").execute(&pool).await.expect("vacuum");
    // Autovacuum waking up in the middle of one measurement and not another is the largest source
    // of noise between measurements; the data is freshly vacuumed, so it stays off while measuring.
    sqlx::query("ALTER SYSTEM SET autovacuum = off").execute(&pool).await.expect("autovacuum");
    sqlx::query("SELECT pg_reload_conf()").execute(&pool).await.expect("reload");
    let customers =
        sqlx::query_as("SELECT b.id, c.territory FROM bench_ids b JOIN customer c USING (id) ORDER BY b.n")
            .fetch_all(&pool)
            .await
            .expect("ids");
    pool.close().await;
    customers
}

/// The release binary serving a database, and the key its tokens are signed with.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    key: DevKey,
}

impl Server {
    /// Serves `database` of `cluster` as in production: as the app login under row-level
    /// security, trusting one key (its files go into `dir`).
    pub async fn start(cluster: &Cluster, database: &str, dir: &Path) -> Server {
        let admin_url = cluster.url("postgres");
        db::ensure_app_login(&admin_url, "benchapp").await.expect("the app login");
        let app_url = db::with_login(&cluster.url(database), db::APP_LOGIN, "benchapp").expect("the app URL");
        let key = DevKey::load_or_create(dir).expect("a signing key");
        let public_key = dir.join("bench.pub.pem");
        std::fs::write(&public_key, key.public_pem().expect("a PEM")).expect("the public key");
        let (child, address) = start_server(&app_url, &public_key);
        Server { child, base: format!("http://{address}"), key }
    }

    /// An `authorization` header value for `subject` with `roles` in `territories`, valid an hour.
    pub fn bearer(&self, subject: &str, roles: &[UserRole], territories: &[String]) -> String {
        let token =
            self.key.mint(subject, roles, territories, &[], Duration::from_secs(3600)).expect("a token");
        format!("Bearer {token}")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the release binary on `url` (the app login), trusting `public_key`, and returns it with
/// its address.
pub fn start_server(url: &str, public_key: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crm-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--oidc-issuer",
            crm_server::auth::dev::ISSUER,
            "--jwt-public-key",
        ])
        .arg(public_key)
        .env("DATABASE_URL", url)
        .env("CRM_LOG", "warn,crm_server=info")
        .env("CRM_LOG_FORMAT", "json")
        .env("CRM_DB_MAX_CONNECTIONS", "16")
        .env("CRM_PROJECTION_CHECK_INTERVAL", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting crm-server");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().expect("crm-server exited before serving").expect("a log line");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if json["message"] == "serving the CRM API" {
            break json["address"].as_str().expect("an address").to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

pub async fn checkpoint(admin_url: &str) {
    let mut conn = PgConnection::connect(admin_url).await.expect("admin connection");
    sqlx::query("CHECKPOINT").execute(&mut conn).await.expect("checkpoint");
}
