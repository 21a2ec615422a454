//! Benchmark of the outbox: writers, relay and consumer, and graphile-worker on the same
//! PostgreSQL for comparison (a program, not a test: it prints figures).
//!
//! `cargo bench -p crm-server --bench outbox`
//!
//! On a private PostgreSQL with production settings (fsync on), everything in this process: the
//! producers are tasks that each run write transactions (under a user's scope, as the API's
//! writes do) of one event through [`outbox::enqueue`] as fast as they can, each on its own
//! connection of the app login; the relay is [`relay::run`] with the server's defaults
//! ([`RelayArgs`]: batch 1000, poll 20 ms), the listener [`listen::run`] (as every server process
//! runs it), and one consumer [`consumer::run`] with its default options (batch 500) and a handler
//! that does nothing in the database but note when it saw each event (BENCH_HANDLER_INSERT=1: plus
//! a one-row insert in the step's transaction; one run with the insert is always made at 8
//! producers).
//!
//! 1. End to end, with 1, 8 and 32 producers for BENCH_SECONDS each: producer commits/s, events
//!    handled/s while the producers ran, events/s end to end (all events over first write to
//!    last handled), and the latency from commit to the handler. Commit -> handled is measured
//!    in this process: each producer notes the monotonic clock when its COMMIT returned, the
//!    handler when it is called, joined by the event's seq. (`occurred_at`, the writing
//!    transaction's start, to the handler's wall clock is shown beside it, and the relay's share
//!    as `occurred_at` -> the log's `published_at`, the start of the relay's publishing
//!    transaction.) Then ours as graphile-worker's own performance test measures: as many events
//!    as graphile-worker gets in part 4, queued first in one statement, then relay, listener and
//!    consumer started, timed to the last event handled.
//! 2. The same with 8 producers throttled to half the commits/s of run 1 at 8 producers: the
//!    latency at 50% load; and, when the pipeline sustained less than that (handled/s while
//!    producing), throttled to half of that too.
//! 3. The write path alone, 8 clients, BENCH_WRITE_SECONDS each, BENCH_WRITE_ROUNDS rounds in
//!    turn, against the event insert alone (the queue trigger disabled: nothing to wake anyone):
//!    enqueue as the server does (the insert queues its seq for the relay: our whole wake-up cost
//!    on the write path); the insert plus `SELECT 1` (the cost of one more statement); plus
//!    `SELECT pg_notify('crm_outbox', '')` without and with a LISTENing connection; and enqueue
//!    while relay, listener and consumer run (their work competing for the same CPUs); with the WAL
//!    written per transaction, a figure the machine's load does not move.
//! 4. graphile-worker (`bench/graphile`, installed with `npm ci` when `node_modules` is missing;
//!    skipped with a message without node and npm) in databases of its own: as many no-op jobs
//!    as run 1 wrote at 8 producers (at most BENCH_GRAPHILE_MAX_JOBS), added from 8 connections
//!    (one `addJob` each) while one worker (24 concurrent jobs) runs them, without and with its
//!    batching; each paced at half its own rate; and the same number queued first, then run by
//!    the worker alone (how graphile-worker's own performance test measures). add->start is
//!    measured as ours is: from `addJob` resolving to the task starting, on the monotonic clock.
//!
//! Every measurement starts from an empty outbox (truncated, positions and the checkpoint reset)
//! right after a checkpoint; after the producers stop, the consumer gets BENCH_DRAIN_SECONDS to
//! catch up. Environment: BENCH_SECONDS (5), BENCH_WRITE_SECONDS (4), BENCH_WRITE_ROUNDS (3),
//! BENCH_DRAIN_SECONDS (20), BENCH_GRAPHILE_MAX_JOBS (60000), BENCH_HANDLER_INSERT (0),
//! BENCH_PARTS (1234: which parts to run; 2 needs 1). Diagnosis: BENCH_DIAG=1 samples
//! pg_stat_activity every 10 ms during each end-to-end run and prints what the backends were
//! doing; BENCH_DIAG=2 also logs the plans of statements slower than 300 ms (auto_explain), and
//! BENCH_PG_LOG=<file> keeps the server log.

#[allow(dead_code)] // This bench uses a few of the shared helpers only.
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crm_server::config::RelayArgs;
use crm_server::db;
use crm_server::db::scope::{self, Scope};
use crm_server::embedded_pg::{Cluster, Options};
use crm_server::metrics::Metrics;
use crm_server::outbox::consumer::{self, ConsumerOptions, Handler};
use crm_server::outbox::relay::{self, RelayOptions};
use crm_server::outbox::{self, Actor, ActorKind, EventType, NewEvent, Origin, StoredEvent, listen};

use support::{checkpoint, env_or};

/// The channel of the NOTIFY variants of the write path (the relay's own is `relay::CHANNEL`).
const BENCH_CHANNEL: &str = "crm_outbox";
const DATABASE: &str = "outbox";

/// The URLs of the bench database.
struct Db {
    /// Superuser, `postgres` database.
    admin: String,
    /// Superuser (the owner), the bench database.
    owner: String,
    /// The app login, under row-level security, as the server connects.
    app: String,
}

// ---------------------------------------------------------------------------------------------
// Producers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    None,
    Select1,
    Notify,
}

#[derive(Default)]
struct Produced {
    /// Each committed event's seq and when its COMMIT returned.
    commits: Vec<(i64, Instant)>,
    errors: u64,
    first_error: Option<String>,
}

/// One write transaction: the event, and `extra`; its seq.
async fn write(pool: &PgPool, scope: &Scope, origin: &Origin, extra: Extra) -> Result<i64, String> {
    let mut tx = scope::begin(pool, scope).await.map_err(|e| e.to_string())?;
    let customer = Uuid::new_v4();
    let event = NewEvent {
        event_type: EventType::CustomerContactabilityChanged,
        subject: customer.to_string(),
        territory: None,
        customer: None,
        data: json!({"customerId": customer, "status": "SOFT_BOUNCE"}),
    };
    let enqueued = outbox::enqueue(&mut tx, origin, event).await.map_err(|e| e.to_string())?;
    match extra {
        Extra::None => {}
        Extra::Select1 => {
            sqlx::query("SELECT 1").execute(&mut *tx).await.map_err(|e| e.to_string())?;
        }
        Extra::Notify => {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(BENCH_CHANNEL)
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(enqueued.seq)
}

/// `clients` producers writing until `duration` is over, as fast as they can or, with `rate`,
/// paced to `rate` transactions/s in all (each its share, staggered).
async fn produce(
    pool: &PgPool,
    clients: usize,
    duration: Duration,
    rate: Option<f64>,
    extra: Extra,
) -> Produced {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for n in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let scope = Scope { user: Some(format!("bench:producer-{n}")), ..Scope::default() };
            let origin = Origin {
                actor: Actor { kind: ActorKind::User, id: format!("bench-producer-{n}") },
                correlation_id: None,
            };
            let period = rate.map(|rate| Duration::from_secs_f64(clients as f64 / rate));
            let mut produced = Produced::default();
            let mut k = 0u32;
            loop {
                if let Some(period) = period {
                    let due = started + period.mul_f64(k as f64 + n as f64 / clients as f64);
                    if due >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    k += 1;
                }
                if Instant::now() >= deadline {
                    break;
                }
                match write(&pool, &scope, &origin, extra).await {
                    Ok(seq) => produced.commits.push((seq, Instant::now())),
                    Err(error) => {
                        produced.errors += 1;
                        produced.first_error.get_or_insert(error);
                    }
                }
            }
            produced
        }));
    }
    let mut all = Produced::default();
    for task in tasks {
        let produced = task.await.expect("a producer");
        all.commits.extend(produced.commits);
        all.errors += produced.errors;
        if all.first_error.is_none() {
            all.first_error = produced.first_error;
        }
    }
    all
}

/// A pool of the app login with `size` connections, all opened.
async fn pool_of(url: &str, size: usize) -> PgPool {
    let pool = db::connect(url, size as u32).await.expect("a pool");
    let mut held = Vec::new();
    for _ in 0..size {
        held.push(pool.acquire().await.expect("a connection"));
    }
    drop(held);
    pool
}

// ---------------------------------------------------------------------------------------------
// The consumer's handler, relay and listener

/// When the handler saw an event.
#[derive(Clone, Copy)]
struct Seen {
    at: Instant,
    wall: OffsetDateTime,
    occurred_at: OffsetDateTime,
}

#[derive(Clone)]
struct Recorder {
    /// By seq; a redelivered event keeps its first sighting.
    seen: Arc<Mutex<HashMap<i64, Seen>>>,
    insert: bool,
}

impl Handler for Recorder {
    fn name(&self) -> &'static str {
        "bench.recorder"
    }

    fn wants(&self, _event: &StoredEvent) -> bool {
        true
    }

    async fn handle(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        event: &StoredEvent,
    ) -> Result<(), String> {
        let seen =
            Seen { at: Instant::now(), wall: OffsetDateTime::now_utc(), occurred_at: event.occurred_at };
        if self.insert {
            sqlx::query("INSERT INTO bench_handled (seq) VALUES ($1)")
                .bind(event.seq)
                .execute(&mut **tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.seen.lock().expect("the sightings").entry(event.seq).or_insert(seen);
        Ok(())
    }
}

/// Relay, listener and one consumer, as the server's `all` role runs them (with its defaults).
struct Pipeline {
    tasks: Vec<JoinHandle<()>>,
    pools: Vec<PgPool>,
}

impl Pipeline {
    async fn start(url: &str, recorder: Recorder) -> Pipeline {
        let defaults = RelayArgs::default();
        let relay_options = RelayOptions {
            batch: defaults.relay_batch,
            poll_interval: Duration::from_millis(defaults.relay_poll_ms),
        };
        let consumer_options =
            ConsumerOptions { max_attempts: defaults.consumer_max_attempts, ..ConsumerOptions::default() };
        let relay_pool = pool_of(url, 2).await;
        let consumer_pool = pool_of(url, 2).await;
        let listen_pool = pool_of(url, 1).await;
        let published = Arc::new(watch::Sender::new(0));
        let tasks = vec![
            tokio::spawn(listen::run(listen_pool.clone(), published.clone())),
            tokio::spawn(relay::run(
                relay_pool.clone(),
                relay_options,
                published.clone(),
                Arc::new(Metrics::new()),
            )),
            tokio::spawn(consumer::run(
                consumer_pool.clone(),
                recorder,
                consumer_options,
                published.subscribe(),
            )),
        ];
        Pipeline { tasks, pools: vec![relay_pool, consumer_pool, listen_pool] }
    }

    async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        for pool in self.pools {
            pool.close().await;
        }
    }
}

/// A connection LISTENing on the bench channel, counting what it receives into `received`.
fn bench_listener(url: String, received: Arc<AtomicU64>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let pool = pool_of(&url, 1).await;
        let mut listener = PgListener::connect_with(&pool).await.expect("a listener");
        listener.listen(BENCH_CHANNEL).await.expect("LISTEN");
        while let Ok(Some(_)) = listener.try_recv().await {
            received.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// With BENCH_DIAG=1: what the bench database's backends are doing, sampled every 10 ms until
/// `stop` is set: how often each (statement, state, wait event) was seen, printed to stderr.
fn sample_activity(url: String, label: String, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut conn = PgConnection::connect(&url).await.expect("a connection");
        let mut seen: HashMap<(String, String, String), u64> = HashMap::new();
        let mut samples = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 60), coalesce(state, ''),
                        coalesce(wait_event_type || ':' || wait_event, 'CPU')
                   FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND state <> 'idle'",
            )
            .bind(DATABASE)
            .fetch_all(&mut conn)
            .await
            .expect("pg_stat_activity");
            samples += 1;
            for row in rows {
                *seen.entry(row).or_default() += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut seen: Vec<_> = seen.into_iter().collect();
        seen.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        eprintln!(
            "activity during {label} ({samples} samples; backends per sample by statement, state, wait):"
        );
        for ((query, state, wait), count) in seen.into_iter().take(15) {
            eprintln!("  {:6.2}  {state:20} {wait:30} {query}", count as f64 / samples as f64);
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Database state

async fn execute(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url).await.expect("a connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.expect(sql);
    conn.close().await.expect("closing");
}

/// An empty outbox, positions from 1 again and no checkpoint; then a CHECKPOINT, so that every
/// measurement pays the same full-page writes.
async fn reset(db: &Db) {
    execute(
        &db.owner,
        "TRUNCATE consumer_dead_letter, consumer_checkpoint, event_outbox, outbox_pending, outbox_log, bench_handled;
         INSERT INTO outbox_pending (seq) VALUES (0);
         UPDATE outbox_relay SET last_position = 0, published_at = NULL;",
    )
    .await;
    checkpoint(&db.admin).await;
}

/// Each stored event's seq, `occurred_at` and `published_at`.
async fn stored_times(db: &Db) -> Vec<(i64, OffsetDateTime, Option<OffsetDateTime>)> {
    let mut conn = PgConnection::connect(&db.owner).await.expect("a connection");
    let rows = sqlx::query_as("SELECT e.seq, e.occurred_at, l.published_at FROM event_outbox e LEFT JOIN outbox_log l ON l.seq = e.seq")
        .fetch_all(&mut conn)
        .await
        .expect("the stored events");
    conn.close().await.expect("closing");
    rows
}

// ---------------------------------------------------------------------------------------------
// Figures

/// Milliseconds, sorted.
struct Dist(Vec<f64>);

impl Dist {
    fn new(mut values: Vec<f64>) -> Dist {
        values.sort_by(f64::total_cmp);
        Dist(values)
    }

    fn p(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0[((self.0.len() as f64 - 1.0) * p).round() as usize]
    }

    fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(f64::NAN)
    }
}

fn ms(d: time::Duration) -> f64 {
    d.as_seconds_f64() * 1000.0
}

struct EndToEnd {
    name: String,
    producers: usize,
    window: Duration,
    events: usize,
    handled: usize,
    handled_in_window: usize,
    /// First write to last event handled.
    total: Duration,
    /// Producers stopped to last event handled.
    drain: Duration,
    errors: u64,
    first_error: Option<String>,
    commit_to_handled: Dist,
    occurred_to_handled: Dist,
    occurred_to_published: Dist,
    published_to_handled: Dist,
    /// Handler calls that came before the producer saw its COMMIT return (counted as 0 ms).
    early: usize,
}

impl EndToEnd {
    fn commits_per_s(&self) -> f64 {
        self.events as f64 / self.window.as_secs_f64()
    }

    fn handled_per_s(&self) -> f64 {
        self.handled_in_window as f64 / self.window.as_secs_f64()
    }

    fn end_to_end_per_s(&self) -> f64 {
        self.handled as f64 / self.total.as_secs_f64()
    }

    /// What the pipeline sustained: the lower of what was written and what was handled.
    fn sustained_per_s(&self) -> f64 {
        self.commits_per_s().min(self.handled_per_s())
    }
}

async fn end_to_end(
    db: &Db,
    drain_limit: Duration,
    name: &str,
    producers: usize,
    duration: Duration,
    rate: Option<f64>,
    insert: bool,
) -> EndToEnd {
    reset(db).await;
    let recorder = Recorder { seen: Arc::default(), insert };
    let seen = recorder.seen.clone();
    let pipeline = Pipeline::start(&db.app, recorder).await;
    let pool = pool_of(&db.app, producers).await;
    // The consumer has registered and the relay found nothing: both idle, as in production.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = (env_or("BENCH_DIAG", 0) != 0)
        .then(|| sample_activity(db.admin.clone(), name.to_owned(), stop_sampling.clone()));
    let started = Instant::now();
    let produced = produce(&pool, producers, duration, rate, Extra::None).await;
    let stopped = Instant::now();
    let events = produced.commits.len();
    while seen.lock().expect("the sightings").len() < events && stopped.elapsed() < drain_limit {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop_sampling.store(true, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }
    pipeline.stop().await;
    pool.close().await;

    let seen = std::mem::take(&mut *seen.lock().expect("the sightings"));
    let stored: HashMap<i64, (OffsetDateTime, Option<OffsetDateTime>)> = stored_times(db)
        .await
        .into_iter()
        .map(|(seq, occurred, published)| (seq, (occurred, published)))
        .collect();
    let mut commit_to_handled = Vec::new();
    let mut early = 0;
    for (seq, committed) in &produced.commits {
        if let Some(seen) = seen.get(seq) {
            if seen.at < *committed {
                early += 1;
            }
            commit_to_handled.push(seen.at.saturating_duration_since(*committed).as_secs_f64() * 1000.0);
        }
    }
    let last = seen.values().map(|s| s.at).max().unwrap_or(stopped);
    EndToEnd {
        name: name.to_owned(),
        producers,
        window: stopped - started,
        events,
        handled: seen.len(),
        handled_in_window: seen.values().filter(|s| s.at <= stopped).count(),
        total: last.saturating_duration_since(started),
        drain: last.saturating_duration_since(stopped),
        errors: produced.errors,
        first_error: produced.first_error,
        commit_to_handled: Dist::new(commit_to_handled),
        occurred_to_handled: Dist::new(seen.values().map(|s| ms(s.wall - s.occurred_at)).collect()),
        occurred_to_published: Dist::new(
            stored
                .values()
                .filter_map(|(occurred, published)| published.map(|p| ms(p - *occurred)))
                .collect(),
        ),
        published_to_handled: Dist::new(
            seen.iter()
                .filter_map(|(seq, s)| stored.get(seq).and_then(|(_, p)| *p).map(|p| ms(s.wall - p)))
                .collect(),
        ),
        early,
    }
}

/// Ours as graphile-worker's own performance test measures it: `events` events queued first (one
/// statement, through the queue trigger like every write), then relay, listener and consumer
/// started; the time from their start to the last event handled.
async fn backlog(db: &Db, events: usize, drain_limit: Duration) -> (usize, Duration) {
    reset(db).await;
    let event_type = EventType::CustomerContactabilityChanged;
    execute(
        &db.owner,
        &format!(
            "INSERT INTO event_outbox (id, event_type, type_version, source, aggregate_type, aggregate_id, actor_type, actor_id, data)
             SELECT gen_random_uuid(), '{}', {}, '{}', '{}', c::text, 'user', 'bench-backlog',
                    jsonb_build_object('customerId', c, 'status', 'SOFT_BOUNCE')
               FROM (SELECT gen_random_uuid() AS c FROM generate_series(1, {events})) g",
            event_type.name(),
            event_type.version(),
            outbox::SOURCE,
            event_type.aggregate_type(),
        ),
    )
    .await;
    checkpoint(&db.admin).await;
    let recorder = Recorder { seen: Arc::default(), insert: false };
    let seen = recorder.seen.clone();
    let started = Instant::now();
    let pipeline = Pipeline::start(&db.app, recorder).await;
    while seen.lock().expect("the sightings").len() < events && started.elapsed() < drain_limit {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    pipeline.stop().await;
    let seen = std::mem::take(&mut *seen.lock().expect("the sightings"));
    let last = seen.values().map(|s| s.at).max().unwrap_or(started);
    (seen.len(), last.saturating_duration_since(started))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Bare,
    Plain,
    Select1,
    NotifyNoListener,
    NotifyListener,
    WithPipeline,
}

impl Variant {
    const ALL: [Variant; 6] = [
        Variant::Bare,
        Variant::Plain,
        Variant::Select1,
        Variant::NotifyNoListener,
        Variant::NotifyListener,
        Variant::WithPipeline,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Bare => "the event insert alone (queue trigger disabled: nothing wakes anyone)",
            Variant::Plain => "enqueue as the server does (insert + its seq queued for the relay)",
            Variant::Select1 => "insert alone + SELECT 1 (one more statement, control)",
            Variant::NotifyNoListener => "insert alone + pg_notify, no listener",
            Variant::NotifyListener => "insert alone + pg_notify, one LISTENing connection",
            Variant::WithPipeline => "enqueue, while relay + listener + consumer run",
        }
    }

    /// Whether the writes queue their seqs for the relay (the trigger of event_outbox), as the
    /// server's do; the variants that add a wake-up of their own instead run without it.
    fn queued(self) -> bool {
        matches!(self, Variant::Plain | Variant::WithPipeline)
    }

    fn extra(self) -> Extra {
        match self {
            Variant::Bare | Variant::Plain | Variant::WithPipeline => Extra::None,
            Variant::Select1 => Extra::Select1,
            Variant::NotifyNoListener | Variant::NotifyListener => Extra::Notify,
        }
    }
}

struct WriteRun {
    tx_per_s: f64,
    /// WAL written per committed transaction, by everything running (a measure that does not
    /// depend on how busy the machine is).
    wal_per_tx: f64,
    errors: u64,
    first_error: Option<String>,
    notifications: Option<u64>,
    handled: Option<usize>,
}

/// The server's WAL written so far, in bytes.
async fn wal_bytes(admin: &str) -> f64 {
    let mut conn = PgConnection::connect(admin).await.expect("a connection");
    let bytes: f64 = sqlx::query_scalar("SELECT wal_bytes::float8 FROM pg_stat_wal")
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_wal");
    conn.close().await.expect("closing");
    bytes
}

async fn write_path(db: &Db, variant: Variant, clients: usize, duration: Duration) -> WriteRun {
    reset(db).await;
    if !variant.queued() {
        execute(&db.owner, "ALTER TABLE event_outbox DISABLE TRIGGER event_outbox_queue").await;
    }
    let received = Arc::new(AtomicU64::new(0));
    let listener =
        (variant == Variant::NotifyListener).then(|| bench_listener(db.app.clone(), received.clone()));
    let recorder = Recorder { seen: Arc::default(), insert: false };
    let seen = recorder.seen.clone();
    let pipeline = match variant {
        Variant::WithPipeline => Some(Pipeline::start(&db.app, recorder).await),
        _ => None,
    };
    let pool = pool_of(&db.app, clients).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wal_before = wal_bytes(&db.admin).await;
    let started = Instant::now();
    let produced = produce(&pool, clients, duration, None, variant.extra()).await;
    let elapsed = started.elapsed();
    let wal = wal_bytes(&db.admin).await - wal_before;
    if let Some(pipeline) = pipeline {
        pipeline.stop().await;
    }
    // Let the listener take what is still queued for it.
    let notifications = match listener {
        Some(listener) => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            listener.abort();
            let _ = listener.await;
            Some(received.load(Ordering::Relaxed))
        }
        None => None,
    };
    pool.close().await;
    if !variant.queued() {
        execute(&db.owner, "ALTER TABLE event_outbox ENABLE TRIGGER event_outbox_queue").await;
    }
    let handled = (variant == Variant::WithPipeline).then(|| seen.lock().expect("the sightings").len());
    WriteRun {
        tx_per_s: produced.commits.len() as f64 / elapsed.as_secs_f64(),
        wal_per_tx: wal / produced.commits.len().max(1) as f64,
        errors: produced.errors,
        first_error: produced.first_error,
        notifications,
        handled,
    }
}

// ---------------------------------------------------------------------------------------------
// graphile-worker

fn tool_version(tool: &str) -> Option<String> {
    let output = Command::new(tool).arg("--version").stdin(Stdio::null()).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `bench/graphile` with its packages installed (`npm ci` if `node_modules` is missing), or why
/// not.
fn graphile_ready() -> Result<(PathBuf, String), String> {
    let node = tool_version("node").ok_or("node is not installed (or not on PATH)")?;
    let npm = tool_version("npm").ok_or("npm is not installed (or not on PATH)")?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench").join("graphile");
    if !dir.join("node_modules/graphile-worker/package.json").is_file() {
        eprintln!("installing graphile-worker: npm ci in {} ...", dir.display());
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .map_err(|e| format!("running npm ci: {e}"))?;
        if !status.success() {
            return Err(format!("npm ci in {} failed ({status})", dir.display()));
        }
    }
    Ok((dir, format!("node {node}, npm {npm}")))
}

/// How a graphile-worker run adds its jobs.
#[derive(Debug, Clone, Copy)]
enum Adding {
    /// This many, from 8 connections as fast as they can, while the worker runs.
    Concurrent(usize),
    /// At this rate for this many seconds.
    Paced(f64, u64),
    /// This many queued before the worker starts.
    Prefilled(usize),
}

/// One run of `bench.mjs` in a fresh database: its JSON line.
async fn graphile_run(
    cluster: &Cluster,
    dir: &Path,
    database: &str,
    mode: &str,
    adding: Adding,
) -> Result<Value, String> {
    db::create_database_if_missing(&cluster.url("postgres"), database).await.map_err(|e| e.to_string())?;
    checkpoint(&cluster.url("postgres")).await;
    let mut command = Command::new("node");
    command
        .arg("bench.mjs")
        .current_dir(dir)
        .env("DATABASE_URL", cluster.url(database))
        .env("GW_MODE", mode)
        .env("GW_ADDERS", "8")
        .env("GW_CONCURRENCY", "24")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    match adding {
        Adding::Concurrent(jobs) => {
            command.env("GW_JOBS", jobs.to_string());
        }
        Adding::Paced(rate, seconds) => {
            command.env("GW_RATE", format!("{rate:.0}")).env("GW_SECONDS", seconds.to_string());
        }
        Adding::Prefilled(jobs) => {
            command.env("GW_JOBS", jobs.to_string()).env("GW_PREFILL", "1");
        }
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("running node: {e}"))?;
    if !output.status.success() {
        return Err(format!("bench.mjs failed ({})", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).ok_or("bench.mjs printed no result")?;
    serde_json::from_str(line).map_err(|e| format!("bench.mjs printed {line}: {e}"))
}

fn f(value: &Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let write_seconds: u64 = env_or("BENCH_WRITE_SECONDS", 4);
    let drain_limit = Duration::from_secs(env_or("BENCH_DRAIN_SECONDS", 20));
    let write_rounds: usize = env_or("BENCH_WRITE_ROUNDS", 3);
    let graphile_max_jobs: usize = env_or("BENCH_GRAPHILE_MAX_JOBS", 60_000);
    let insert = env_or("BENCH_HANDLER_INSERT", 0) != 0;
    let parts: String = env_or("BENCH_PARTS", "1234".to_owned());
    let duration = Duration::from_secs(seconds);
    let bench_started = Instant::now();

    let dir = tempfile::tempdir().expect("a temporary folder");
    let cluster =
        Cluster::start(&Options { root: dir.path().join("pg"), ephemeral: false }).expect("PostgreSQL");
    let admin = cluster.url("postgres");
    db::create_database_if_missing(&admin, DATABASE).await.expect("the database");
    let owner = cluster.url(DATABASE);
    {
        let pool = db::connect(&owner, 2).await.expect("a pool");
        db::migrate(&pool).await.expect("migrations");
        pool.close().await;
    }
    db::ensure_app_login(&admin, "benchapp").await.expect("the app login");
    let app = db::with_login(&owner, db::APP_LOGIN, "benchapp").expect("the app URL");
    execute(
        &owner,
        "CREATE TABLE bench_handled (seq bigint PRIMARY KEY, handled_at timestamptz NOT NULL DEFAULT now());
         GRANT INSERT ON bench_handled TO crm_app;",
    )
    .await;
    // As the other benches: autovacuum waking up in one measurement and not another is noise.
    execute(&admin, "ALTER SYSTEM SET autovacuum = off").await;
    execute(&admin, "SELECT pg_reload_conf()").await;
    if env_or("BENCH_DIAG", 0) >= 2 {
        // Plans of slow statements into the server log (BENCH_PG_LOG: where to copy it).
        let mut conn = PgConnection::connect(&admin).await.expect("a connection");
        for setting in [
            "LOAD 'auto_explain'",
            "ALTER SYSTEM SET session_preload_libraries = 'auto_explain'",
            "ALTER SYSTEM SET auto_explain.log_min_duration = '300ms'",
            "ALTER SYSTEM SET auto_explain.log_analyze = on",
            "ALTER SYSTEM SET auto_explain.log_buffers = on",
            "ALTER SYSTEM SET auto_explain.log_nested_statements = on",
            "SELECT pg_reload_conf()",
        ] {
            sqlx::raw_sql(setting).execute(&mut conn).await.expect(setting);
        }
        conn.close().await.expect("closing");
    }
    let settings: (String, String, String, String) = {
        let mut conn = PgConnection::connect(&admin).await.expect("a connection");
        let row = sqlx::query_as(
            "SELECT current_setting('server_version'), current_setting('fsync'),
                    current_setting('synchronous_commit'), current_setting('shared_buffers')",
        )
        .fetch_one(&mut conn)
        .await
        .expect("settings");
        conn.close().await.expect("closing");
        row
    };
    let db = Db { admin, owner, app };

    // Warm-up (not reported): caches, the schema validators, the pipeline's statements.
    eprintln!("warming up ...");
    let _ = end_to_end(&db, drain_limit, "warm-up", 1, Duration::from_secs(2), None, false).await;

    // 1. and 2. End to end.
    let mut runs = Vec::new();
    let mut paced_latency = None;
    let mut ours = None;
    if parts.contains('1') {
        for producers in [1, 8, 32] {
            let name = format!("{producers} producers, as fast as they can");
            eprintln!("end to end: {name} ...");
            runs.push(end_to_end(&db, drain_limit, &name, producers, duration, None, insert).await);
        }
        let max8 = runs.iter().find(|r| r.producers == 8).expect("the 8-producer run");
        let (max_commits, max_sustained) = (max8.commits_per_s(), max8.sustained_per_s());
        ours = Some((max8.events, max8.end_to_end_per_s(), max8.sustained_per_s()));
        if !insert {
            eprintln!("end to end: 8 producers, handler with a one-row insert ...");
            let name = "8 producers, handler inserts a row";
            runs.push(end_to_end(&db, drain_limit, name, 8, duration, None, true).await);
        }
        if parts.contains('2') {
            // Half the producers' rate; and half what the pipeline sustained, when that was less.
            let mut rates = vec![(max_commits / 2.0, "50% of the commits/s")];
            if max_sustained < 0.9 * max_commits {
                rates.push((max_sustained / 2.0, "50% of the sustained rate"));
            }
            for (n, (rate, what)) in rates.into_iter().enumerate() {
                eprintln!("end to end: 8 producers at {rate:.0}/s ...");
                let name = format!("8 producers paced at {rate:.0}/s ({what})");
                let paced = end_to_end(&db, drain_limit, &name, 8, duration, Some(rate), insert).await;
                if n == 0 {
                    paced_latency = Some((paced.commit_to_handled.p(0.50), paced.commit_to_handled.p(0.99)));
                }
                runs.push(paced);
            }
        }
    }

    // The same number of events as graphile-worker gets, queued first.
    let graphile_jobs = ours.map_or(graphile_max_jobs, |(events, ..)| events.min(graphile_max_jobs));
    let mut queued_first = None;
    if parts.contains('1') {
        eprintln!("queued first: {graphile_jobs} events, then relay + consumer ...");
        queued_first = Some(backlog(&db, graphile_jobs, drain_limit).await);
    }

    // 3. The write path.
    let mut writes: Vec<(Variant, Vec<WriteRun>)> = Variant::ALL.iter().map(|&v| (v, Vec::new())).collect();
    if parts.contains('3') {
        for round in 1..=write_rounds {
            for (variant, results) in &mut writes {
                eprintln!("write path, round {round}: {} ...", variant.name());
                results.push(write_path(&db, *variant, 8, Duration::from_secs(write_seconds)).await);
            }
        }
    }

    // 4. graphile-worker.
    let mut graphile_rows = Vec::new();
    let mut graphile_notes = Vec::new();
    let mut graphile: HashMap<&str, Value> = HashMap::new();
    let mut graphile_paced: HashMap<&str, Value> = HashMap::new();
    let mut graphile_prefilled: HashMap<&str, Value> = HashMap::new();
    let mut tools = String::new();
    match if parts.contains('4') { graphile_ready() } else { Err("not asked for (BENCH_PARTS)".to_owned()) } {
        Err(why) => graphile_notes.push(format!("graphile-worker skipped: {why}")),
        Ok((gdir, versions)) => {
            tools = versions;
            let mut database = 0;
            let mut run = async |mode: &'static str, adding: Adding, into: &mut HashMap<&str, Value>| {
                database += 1;
                eprintln!("graphile-worker {mode}: {adding:?} ...");
                match graphile_run(&cluster, &gdir, &format!("graphile_{database}"), mode, adding).await {
                    Ok(result) => {
                        into.insert(mode, result);
                    }
                    Err(error) => graphile_notes.push(format!("graphile-worker {mode}, {adding:?}: {error}")),
                }
            };
            for mode in ["unbatched", "batched"] {
                run(mode, Adding::Concurrent(graphile_jobs), &mut graphile).await;
            }
            for mode in ["unbatched", "batched"] {
                if let Some(rate) = graphile.get(mode).map(|r| f(r, "jobs_per_s") / 2.0) {
                    run(mode, Adding::Paced(rate, seconds), &mut graphile_paced).await;
                }
            }
            for mode in ["unbatched", "batched"] {
                run(mode, Adding::Prefilled(graphile_jobs), &mut graphile_prefilled).await;
            }
            for mode in ["unbatched", "batched"] {
                for (what, results) in [
                    ("8 adders as fast as they can, worker running", &graphile),
                    ("paced at 50% of its own rate", &graphile_paced),
                    ("queued first, then the worker alone", &graphile_prefilled),
                ] {
                    if let Some(result) = results.get(mode) {
                        graphile_rows.push((format!("{mode}, {what}"), result.clone()));
                    }
                }
            }
        }
    }
    drop(db);
    cluster.stop().expect("stopping PostgreSQL");
    if let Ok(path) = std::env::var("BENCH_PG_LOG") {
        let _ = std::fs::copy(dir.path().join("pg").join("postgres.log"), &path);
    }

    // The report.
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (version, fsync, synchronous_commit, shared_buffers) = settings;
    println!(
        "\nPostgreSQL {version} (fsync={fsync}, synchronous_commit={synchronous_commit}, shared_buffers={shared_buffers}), \
         {cpus} CPUs; producers, relay (batch {}, poll {} ms), listener and one consumer (batch {}) in this process; \
         handler: {}; {seconds} s per end-to-end run\n",
        RelayArgs::default().relay_batch,
        RelayArgs::default().relay_poll_ms,
        ConsumerOptions::default().batch,
        if insert { "one-row insert" } else { "nothing in the database (one run with a one-row insert)" },
    );
    if !runs.is_empty() {
        println!("1./2. End to end: throughput\n");
        println!(
            "| run | events | producer commits/s | handled/s while producing | end-to-end events/s | drain after stop s | errors |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for r in &runs {
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {} |",
                r.name,
                r.events,
                r.commits_per_s(),
                r.handled_per_s(),
                r.end_to_end_per_s(),
                r.drain.as_secs_f64(),
                r.errors
            );
        }
        println!("\n1./2. End to end: latency, ms\n");
        println!(
            "| run | commit->handled p50 | p99 | max | occurred_at->handled p50 | p99 | occurred_at->published_at p50 | p99 | published_at->handled p50 | p99 |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &runs {
            println!(
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                r.name,
                r.commit_to_handled.p(0.5),
                r.commit_to_handled.p(0.99),
                r.commit_to_handled.max(),
                r.occurred_to_handled.p(0.5),
                r.occurred_to_handled.p(0.99),
                r.occurred_to_published.p(0.5),
                r.occurred_to_published.p(0.99),
                r.published_to_handled.p(0.5),
                r.published_to_handled.p(0.99),
            );
        }
        if let Some((handled, elapsed)) = queued_first {
            println!(
                "\nQueued first ({graphile_jobs} events in one statement), then relay + listener + consumer started: \
                 {handled} handled in {:.2} s = {:.0} events/s",
                elapsed.as_secs_f64(),
                handled as f64 / elapsed.as_secs_f64()
            );
        }
        for r in &runs {
            if r.handled < r.events {
                println!(
                    "  {}: only {} of {} events handled within {drain_limit:?} of the stop (latencies are of those handled)",
                    r.name, r.handled, r.events
                );
            }
            if r.early > 0 {
                println!(
                    "  {}: {} handler calls came before the producer saw its COMMIT return (counted as 0 ms)",
                    r.name, r.early
                );
            }
            if let Some(error) = &r.first_error {
                println!("  {}: {} errors, first: {error}", r.name, r.errors);
            }
        }
        if let Some((_, p99)) = paced_latency {
            println!(
                "  target at 50% load (of the 8 producers' commits/s): commit->handled p99 < 50 ms: {p99:.1} ms{}",
                verdict(p99 < 50.0)
            );
        }
    }

    if parts.contains('3') {
        println!(
            "\n3. Write path, 8 clients, {write_seconds} s x {write_rounds} rounds (rounds in turn, each from an empty outbox)\n"
        );
        println!("| write transaction | tx/s per round | mean tx/s | vs the insert alone | WAL bytes / tx |");
        println!("|---|---|---:|---:|---:|");
        let mean = |results: &[WriteRun]| {
            results.iter().map(|r| r.tx_per_s).sum::<f64>() / results.len().max(1) as f64
        };
        let bare = mean(&writes[0].1);
        let (mut queue_loss, mut pipeline_loss) = (f64::NAN, f64::NAN);
        for (variant, results) in &writes {
            let m = mean(results);
            let loss = (bare - m) / bare * 100.0;
            match variant {
                Variant::Plain => queue_loss = loss,
                Variant::WithPipeline => pipeline_loss = loss,
                _ => {}
            }
            let rounds: Vec<String> = results.iter().map(|r| format!("{:.0}", r.tx_per_s)).collect();
            let wal = results.iter().map(|r| r.wal_per_tx).sum::<f64>() / results.len().max(1) as f64;
            println!(
                "| {} | {} | {m:.0} | {} | {wal:.0} |",
                variant.name(),
                rounds.join(" / "),
                if *variant == Variant::Bare { "-".to_owned() } else { format!("{:+.1}%", -loss) }
            );
        }
        for (variant, results) in &writes {
            for (n, r) in results.iter().enumerate() {
                if let Some(error) = &r.first_error {
                    println!("  {}, round {}: {} errors, first: {error}", variant.name(), n + 1, r.errors);
                }
                if let Some(count) = r.notifications {
                    println!(
                        "  {}, round {}: the listener received {count} notifications",
                        variant.name(),
                        n + 1
                    );
                }
                if let Some(handled) = r.handled {
                    println!(
                        "  {}, round {}: the consumer handled {handled} events meanwhile",
                        variant.name(),
                        n + 1
                    );
                }
            }
        }
        println!(
            "  target: write throughput lost to the wake-up mechanism (the queued seq; the relay's NOTIFY \
             is not on the write path) < 5%: {queue_loss:.1}%{}",
            verdict(queue_loss < 5.0)
        );
        println!(
            "  with relay, listener and consumer running on the same {} CPUs (their work, not the wake-up): \
             {pipeline_loss:.1}% lost",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
    }

    println!(
        "\n4. graphile-worker {} ({tools}), database `graphile_*` on the same PostgreSQL; no-op task, 1 worker with \
         concurrentJobs 24 and maxPoolSize 25, 8 adders (one addJob = one autocommitted add_job per job); \
         batched = localQueue {{ size: 500 }}, completeJobBatchDelay 0, failJobBatchDelay 0\n",
        graphile.values().next().and_then(|v| v["version"].as_str()).unwrap_or("?"),
    );
    if !graphile_rows.is_empty() {
        println!(
            "| graphile-worker | jobs | jobs/s (first add, or first start, to last start) | add/s | add->start p50 ms | p99 ms | max ms |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (name, r) in &graphile_rows {
            let latency = |key: &str| r[key].as_f64().map_or("-".to_owned(), |v| format!("{v:.1}"));
            println!(
                "| {name} | {} | {:.0} | {:.0} | {} | {} | {} |",
                r["handled"],
                f(r, "jobs_per_s"),
                f(r, "add_per_s"),
                latency("p50_ms"),
                latency("p99_ms"),
                latency("max_ms"),
            );
        }
        let (ours_events, ours_e2e, ours_sustained) = ours.unwrap_or((0, f64::NAN, f64::NAN));
        println!(
            "\nours / graphile-worker (ours: the 8-producer end-to-end run, {ours_events} events: \
             {ours_e2e:.0}/s end to end, {ours_sustained:.0}/s sustained while producing):"
        );
        for mode in ["unbatched", "batched"] {
            if let Some(r) = graphile.get(mode) {
                let target = if mode == "unbatched" { 2.0 } else { 1.0 };
                let ratio = ours_e2e / f(r, "jobs_per_s");
                println!(
                    "  end-to-end throughput vs {mode}: {ours_e2e:.0} / {:.0} = {ratio:.2}x (target >= {target}x){}; \
                     sustained: {:.2}x",
                    f(r, "jobs_per_s"),
                    verdict(ratio >= target),
                    ours_sustained / f(r, "jobs_per_s"),
                );
            }
            if let (Some(r), Some((handled, elapsed))) = (graphile_prefilled.get(mode), queued_first) {
                let target = if mode == "unbatched" { 2.0 } else { 1.0 };
                let drained = handled as f64 / elapsed.as_secs_f64();
                let ratio = drained / f(r, "jobs_per_s");
                println!(
                    "  a queued backlog, {mode}: ours {drained:.0} / its worker alone {:.0} = {ratio:.2}x (target >= {target}x){}",
                    f(r, "jobs_per_s"),
                    verdict(ratio >= target),
                );
            }
        }
        for mode in ["unbatched", "batched"] {
            if let (Some(r), Some((paced_p50, paced_p99))) = (graphile_paced.get(mode), paced_latency) {
                println!(
                    "  latency at 50% load vs {mode}: p50 {paced_p50:.1} / {:.1} ms, p99 {paced_p99:.1} / {:.1} ms",
                    f(r, "p50_ms"),
                    f(r, "p99_ms")
                );
            }
        }
    }
    for note in &graphile_notes {
        println!("  {note}");
    }
    println!("\nwhole run: {:.0} s", bench_started.elapsed().as_secs_f64());
}

fn verdict(ok: bool) -> &'static str {
    if ok { "  (met)" } else { "  <-- MISSED" }
}
