//! Benchmark of the field bridge at 100,000 customers (a program, not a test: it prints figures).
//!
//! `cargo bench -p crm-server --bench crm_fields`
//!
//! In one run, on a private PostgreSQL with production settings (fsync on):
//! - `GET /customers` for each hot filter over loopback HTTP: requests/s and p50/p95/p99;
//! - `PATCH /customers/{id}/fields` (projection and outbox written in the same transaction), with
//!   clients that keep each customer's ETag as a real client would;
//! - pgbench running the very same SQL transaction as the PATCH, and the ratio server/pgbench;
//! - the seeds' design (a trigger recomputing the whole projection row from five queries on every
//!   field write) under the same pgbench load, with pages touched and WAL written per write.
//!
//! Environment: BENCH_CUSTOMERS (100000), BENCH_SECONDS per measurement (5), BENCH_CLIENTS (8),
//! BENCH_READ_CLIENTS for the read latencies (2).

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::Full;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crm_server::auth::UserRole;
use crm_server::db;
use crm_server::embedded_pg::{Cluster, Options, find_bin_dir};

use support::{HttpClient, Server, checkpoint, env_or, load, pick, send};

/// What pgbench measured: transactions per second, and the mean latency of the write statement
/// (the one starting with `marker`), which is its CPU and lock time as the server sees it.
struct Bench {
    tps: f64,
    statement_ms: f64,
}

/// Runs `script` under pgbench (prepared statements, `clients` connections, `seconds` long).
fn pgbench(bin: &Path, url: &str, script: &Path, clients: usize, seconds: u64, marker: &str) -> Bench {
    // Next to initdb, or on PATH (Debian puts a wrapper in /usr/bin).
    let program = if bin.join("pgbench").is_file() { bin.join("pgbench") } else { "pgbench".into() };
    let output = Command::new(program)
        .args(["-n", "-r", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &seconds.to_string(), "-f"])
        .arg(script)
        .arg(url)
        .output()
        .expect("running pgbench");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench failed:\n{text}\n{}\nscript:\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(script).unwrap_or_default()
    );
    let tps = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = ")?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{text}"));
    // `-r` lines: latency, failures, the command's first line.
    let statement_ms = text
        .lines()
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            let latency = parts.next()?.parse().ok()?;
            parts.next()?;
            l.contains(marker).then_some(latency)
        })
        .unwrap_or(f64::NAN);
    Bench { tps, statement_ms }
}

/// A write measured by pgbench, with what each transaction cost the database.
struct WriteCost {
    bench: Bench,
    pages: f64,
    wal_bytes: f64,
    rows_written: f64,
    rows_read: f64,
}

/// Pages touched (shared buffer hits + reads), WAL bytes, rows written and rows read per
/// transaction while `run` runs, starting from a checkpoint.
async fn costs(pool: &PgPool, database: &str, run: impl FnOnce() -> Bench) -> WriteCost {
    let sample = |pool: PgPool, database: String| async move {
        sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(
            "SELECT blks_hit + blks_read, xact_commit, (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8,
                    tup_inserted + tup_updated + tup_deleted, tup_fetched
               FROM pg_stat_database, (SELECT pg_stat_clear_snapshot()) s WHERE datname = $1",
        )
        .bind(database)
        .fetch_one(&pool)
        .await
        .expect("database statistics")
    };
    sqlx::query("CHECKPOINT").execute(pool).await.expect("checkpoint");
    let before = sample(pool.clone(), database.to_owned()).await;
    let bench = run();
    // Statistics are flushed by backends at most every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = sample(pool.clone(), database.to_owned()).await;
    let transactions = (after.1 - before.1).max(1) as f64;
    let per = |a: i64, b: i64| (a - b) as f64 / transactions;
    WriteCost {
        bench,
        pages: per(after.0, before.0),
        wal_bytes: per(after.2, before.2),
        rows_written: per(after.3, before.3),
        rows_read: per(after.4, before.4),
    }
}

impl WriteCost {
    fn row(&self, name: &str, design: &str) -> String {
        format!(
            "| {name} | {design} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} |",
            self.bench.tps,
            self.bench.statement_ms,
            self.rows_written,
            self.rows_read,
            self.pages,
            self.wal_bytes
        )
    }
}

/// The seeds' design: every field write recomputes the whole projection row from five queries
/// (reproduced from the seed contract's `recompute_customer_hot`, adapted to this schema).
const SEEDS_TRIGGER: &str = r#"
CREATE FUNCTION recompute_customer_hot(p_customer_id uuid) RETURNS void AS $$
DECLARE
  v_roi_bucket text; v_roi_value numeric(12,2); v_dm_count int; v_has_exec bool;
  v_season_start date; v_season_end date; v_renewal date; v_excl bool;
BEGIN
  SELECT (value->>'bucket')::text, (value->>'value')::numeric INTO v_roi_bucket, v_roi_value
    FROM field_values WHERE customer_id = p_customer_id AND field_key = 'roi_potential';
  SELECT (value->>'count')::int, coalesce((value->>'has_exec_alignment')::boolean, false) INTO v_dm_count, v_has_exec
    FROM field_values WHERE customer_id = p_customer_id AND field_key = 'decision_makers';
  SELECT (value->>'season_start')::date, (value->>'season_end')::date INTO v_season_start, v_season_end
    FROM field_values WHERE customer_id = p_customer_id AND field_key = 'seasonal_menu_cycle';
  SELECT (value->>'renewal_date')::date, (value->>'exclusivity')::boolean INTO v_renewal, v_excl
    FROM field_values WHERE customer_id = p_customer_id AND field_key = 'current_supplier_contracts';
  UPDATE cm_customer_hot_proj SET roi_bucket = v_roi_bucket, roi_value = v_roi_value,
         decision_maker_count = v_dm_count, has_exec_alignment = v_has_exec, season_start = v_season_start,
         season_end = v_season_end, renewal_date = v_renewal, exclusivity = v_excl, updated_at = now()
   WHERE customer_id = p_customer_id;
END $$ LANGUAGE plpgsql;
CREATE FUNCTION trg_recompute_hot_on_field() RETURNS trigger AS $$
BEGIN PERFORM recompute_customer_hot(NEW.customer_id); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER t_field_values_recompute AFTER INSERT OR UPDATE ON field_values
  FOR EACH ROW EXECUTE FUNCTION trg_recompute_hot_on_field();
"#;

/// The customer of a pgbench transaction.
const CUSTOMER: &str = "(SELECT id FROM bench_ids WHERE n = :n)";
const ROI: &str = "jsonb_build_object('bucket', 'HIGH', 'value', :v::numeric / 100)";
const DECISION_MAKERS: &str =
    "jsonb_build_object('count', :v::int % 10, 'has_exec_alignment', :v::int % 2 = 0)";
const CONTRACT: &str =
    "jsonb_build_object('renewal_date', date '2026-01-01' + :v::int % 900, 'exclusivity', :v::int % 3 = 0)";
const NOTES: &str = "to_jsonb('Saisonkarte ' || :v::int)";

fn script(customers: usize, transaction: &str) -> String {
    format!(
        "\\set n random(1, {customers})\n\\set v random(0, 9999999)\nBEGIN;\n{transaction}\n{OUTBOX_INSERT}\nCOMMIT;\n"
    )
}

/// The server's write statement for `fields`, with pgbench variables for its parameters.
fn ours_transaction(fields: &[(&str, &str)]) -> String {
    let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
    let input: Vec<String> = fields.iter().map(|(key, value)| format!("'{key}', {value}")).collect();
    let statement = db::fields::patch_sql(&keys)
        .replace("$1", CUSTOMER)
        .replace(
            "$2",
            &format!(
                "ARRAY[(SELECT fields_version FROM cm_customer_hot_proj WHERE customer_id = {CUSTOMER})]"
            ),
        )
        .replace("$3", &format!("jsonb_build_object({})", input.join(", ")))
        // pgbench takes `:name` for a variable even inside a string literal.
        .replace("$4", "('service:' || 'bench')")
        .replace("$5", "'bench'");
    format!("{statement};")
}

/// The seeds' write: upsert the values (the trigger recomputes the row once per value) and
/// audit them.
fn seeds_transaction(fields: &[(&str, &str)]) -> String {
    let rows: Vec<String> =
        fields.iter().map(|(key, value)| format!("({CUSTOMER}, '{key}', {value}, 'bench')")).collect();
    let history: Vec<String> =
        fields.iter().map(|(key, value)| format!("({CUSTOMER}, '{key}', {value}, 'bench')")).collect();
    format!(
        "INSERT INTO field_values (customer_id, field_key, value, updated_by) VALUES {} \
         ON CONFLICT (customer_id, field_key) DO UPDATE SET value = EXCLUDED.value, updated_at = now();\n\
         INSERT INTO field_value_history (customer_id, field_key, new_value, actor) VALUES {};",
        rows.join(", "),
        history.join(", ")
    )
}

const OUTBOX_INSERT: &str = "INSERT INTO event_outbox (id, event_type, type_version, source, aggregate_type, \
    aggregate_id, correlation_id, actor_type, actor_id, data) VALUES (gen_random_uuid(), 'customer.fields.changed', 1, \
    'crm.customer-management', 'customer', (SELECT id FROM bench_ids WHERE n = :n)::text, 'bench', 'service', 'bench', \
    jsonb_build_object('value', :v::int));";

#[tokio::main]
async fn main() {
    let customers: usize = env_or("BENCH_CUSTOMERS", 100_000);
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let clients: usize = env_or("BENCH_CLIENTS", 8);
    let read_clients: usize = env_or("BENCH_READ_CLIENTS", 2);
    let duration = Duration::from_secs(seconds);
    let bin = find_bin_dir().expect("PostgreSQL server binaries");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cluster =
        Cluster::start(&Options { root: dir.path().join("pg"), ephemeral: false }).expect("PostgreSQL");
    let url = cluster.url("bench");
    let seeds_url = cluster.url("bench_seeds");

    eprintln!("seeding {customers} customers ...");
    let seeded = Instant::now();
    let ids: Vec<Uuid> =
        support::seed(&cluster, "bench", customers).await.into_iter().map(|(id, _)| id).collect();
    // The seeds' design gets its own copy of the same data.
    let mut admin = PgConnection::connect(&cluster.url("postgres")).await.expect("admin");
    sqlx::query("CREATE DATABASE bench_seeds TEMPLATE bench").execute(&mut admin).await.expect("copy");
    eprintln!("seeded in {:.1}s", seeded.elapsed().as_secs_f64());

    let admin_url = cluster.url("postgres");
    // The server runs as in production: as a login under row-level security, trusting one key.
    let server = Server::start(&cluster, "bench", dir.path()).await;
    let token = Arc::new(server.bearer("bench", &[UserRole::Admin], &[]));
    let ids = Arc::new(ids);
    let base = Arc::new(server.base.clone());

    // Reads: each hot filter with the sort that suits it, and the default order.
    let reads = [
        ("sample_status=DELIVERED&sort=-sample_last_event_at", "sample status, newest event first"),
        ("sample_status=FEEDBACK_SUCCESS", "sample status, by name"),
        ("roi_bucket=HIGH&sort=-roi_value", "ROI bucket, highest value first"),
        ("roi_bucket=MID", "ROI bucket, by name"),
        ("season_from=2026-12-01&season_to=2026-12-24", "season window overlap"),
        ("renewal_before=2026-06-30&sort=renewal_date", "renewal before, soonest first"),
        ("exclusivity=true", "exclusivity"),
        ("decision_maker_count_min=8", "decision makers >= 8"),
        ("territory=NRW&name=zum", "territory and name prefix"),
    ];
    // Each read twice: saturating the machine (`clients`) for its capacity, and at a moderate
    // load (`read_clients`) for the latency a user sees.
    let mut table = vec![
        format!(
            "| request | req/s at {clients} clients | p50 ms | p95 ms | p99 ms at {read_clients} clients | errors |"
        ),
        "|---|---:|---:|---:|---:|---:|".to_owned(),
    ];
    for (query, name) in reads {
        let url = Arc::new(format!("{base}/customers?{query}&limit=50"));
        let token = token.clone();
        let get = move |client: HttpClient, _| {
            let (url, token) = (url.clone(), token.clone());
            async move {
                let request = http::Request::get(url.as_str())
                    .header("authorization", token.as_str())
                    .body(Full::new(Bytes::new()))
                    .expect("request");
                matches!(send(&client, request).await, Some((status, ..)) if status == http::StatusCode::OK)
            }
        };
        let capacity = load(clients, duration, get.clone()).await;
        let latency = load(read_clients, duration, get).await;
        table.push(format!(
            "| GET /customers?{query} ({name}) | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            capacity.requests as f64 / capacity.elapsed.as_secs_f64(),
            latency.percentile(0.50),
            latency.percentile(0.95),
            latency.percentile(0.99),
            capacity.errors + latency.errors
        ));
        eprintln!("{}", table.last().map(String::as_str).unwrap_or_default());
    }
    table.push(format!("\n| write | tx/s at {clients} clients | p50 ms | p95 ms | p99 ms | errors |"));
    table.push("|---|---:|---:|---:|---:|---:|".to_owned());

    // Writes, with each customer's ETag tracked as a client would.
    let versions: Arc<Vec<AtomicI64>> = Arc::new((0..ids.len()).map(|_| AtomicI64::new(1)).collect());
    let conflicts = Arc::new(AtomicI64::new(0));
    let patch = {
        let (ids, base, versions, conflicts, token) =
            (ids.clone(), base.clone(), versions.clone(), conflicts.clone(), token.clone());
        move |client: HttpClient, n: usize| {
            let (ids, base, versions, conflicts, token) =
                (ids.clone(), base.clone(), versions.clone(), conflicts.clone(), token.clone());
            async move {
                let index = pick(n, ids.len());
                let body =
                    format!(r#"{{"roi_potential": {{"bucket": "HIGH", "value": {}.5}}}}"#, n % 100_000);
                let request = http::Request::patch(format!("{base}/customers/{}/fields", ids[index]))
                    .header("content-type", "application/json")
                    .header("authorization", token.as_str())
                    .header("if-match", format!("\"f{}\"", versions[index].load(Ordering::Relaxed)))
                    .body(Full::new(Bytes::from(body)))
                    .expect("request");
                let Some((status, headers, _)) = send(&client, request).await else { return false };
                let version = headers
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim_matches('"').trim_start_matches('f').parse().ok());
                if let Some(version) = version {
                    versions[index].store(version, Ordering::Relaxed);
                }
                if status == http::StatusCode::PRECONDITION_FAILED {
                    conflicts.fetch_add(1, Ordering::Relaxed);
                }
                status == http::StatusCode::OK
            }
        }
    };
    // A short warm-up fills the server's pool; every write measurement starts right after a
    // checkpoint, so each pays the same full-page writes, and runs twice as long as a read.
    load(clients, Duration::from_secs(1), patch.clone()).await;
    conflicts.store(0, Ordering::Relaxed);
    checkpoint(&admin_url).await;
    let write = load(clients, 2 * duration, patch).await;
    table.push(
        write.row(
            "PATCH /customers/{id}/fields (roi_potential; projection and outbox in the same transaction)",
        ),
    );
    let server_tps = (write.requests - write.errors) as f64 / write.elapsed.as_secs_f64();
    drop(server);

    // pgbench: the same transactions as PATCHes of one hot field, three hot fields and one cold
    // field (BEGIN, the write statement, the outbox insert, COMMIT), with the expected version
    // looked up in the statement instead of sent by a client; and the seeds' design doing the
    // same writes on its copy of the data.
    let seeds_pool = db::connect(&seeds_url, 2).await.expect("pool");
    sqlx::raw_sql(SEEDS_TRIGGER).execute(&seeds_pool).await.expect("the seeds' trigger");
    let pool = db::connect(&url, 2).await.expect("pool");
    let scenarios: [(&str, &[(&str, &str)]); 3] = [
        ("one hot field", &[("roi_potential", ROI)]),
        (
            "three hot fields",
            &[
                ("roi_potential", ROI),
                ("decision_makers", DECISION_MAKERS),
                ("current_supplier_contracts", CONTRACT),
            ],
        ),
        ("one cold field", &[("menu_notes", NOTES)]),
    ];
    let mut writes = vec![
        "| write (pgbench, same SQL as the server) | design | tx/s | write statement ms | rows written / tx | rows read / tx | pages touched / tx | WAL bytes / tx |".to_owned(),
        "|---|---|---:|---:|---:|---:|---:|---:|".to_owned(),
    ];
    let mut one_hot_tps = f64::NAN;
    let long = 2 * seconds;
    for (name, fields) in scenarios {
        let ours = dir.path().join(format!("ours-{}.sql", fields.len()));
        std::fs::write(&ours, script(customers, &ours_transaction(fields))).expect("pgbench script");
        let cost = costs(&pool, "bench", || pgbench(&bin, &url, &ours, clients, long, "WITH input AS")).await;
        if name == "one hot field" {
            one_hot_tps = cost.bench.tps;
        }
        writes.push(cost.row(name, "one statement, projection columns of the written hot fields"));
        let theirs = dir.path().join(format!("seeds-{}.sql", fields.len()));
        std::fs::write(&theirs, script(customers, &seeds_transaction(fields))).expect("pgbench script");
        let cost = costs(&seeds_pool, "bench_seeds", || {
            pgbench(&bin, &seeds_url, &theirs, clients, long, "INSERT INTO field_values")
        })
        .await;
        writes.push(cost.row(name, "the seeds' trigger: five-query recompute per written row"));
        eprintln!("{}", writes.last().map(String::as_str).unwrap_or_default());
    }
    pool.close().await;
    seeds_pool.close().await;
    cluster.stop().expect("stopping PostgreSQL");

    println!(
        "\n{customers} customers, {clients} clients, {seconds} s per measurement, PostgreSQL with fsync on\n"
    );
    for row in &table {
        println!("{row}");
    }
    println!(
        "\nPATCH conflicts answered 412 (client retried with the returned ETag): {}",
        conflicts.load(Ordering::Relaxed)
    );
    println!("\n{}", writes.join("\n"));
    println!(
        "\nserver PATCH {server_tps:.0} tx/s / pgbench same transaction {one_hot_tps:.0} tx/s = {:.0}%",
        100.0 * server_tps / one_hot_tps
    );
}
