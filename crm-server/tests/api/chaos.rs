//! The outbox under failure: the relay killed, database connections terminated, and PostgreSQL
//! restarted, each while eight producers write a few thousand events and in-process consumers
//! read them. Afterwards the log is dense, every committed event was handled exactly once by each
//! consumer (its effect commits with the checkpoint), no rolled-back event at all, and the events
//! of each aggregate in the order they were written.
//!
//! The producers write `customer.fields.changed` events about twenty aggregates (`chaos-01` ..):
//! `customerId` is the event's own unique id, `fieldsVersion` a per-aggregate counter taken under
//! the aggregate's row lock (`chaos_aggregate`), and the one change names the aggregate. The
//! consumers record each event they handle in `chaos_seen`, in the step's transaction. The relay
//! is the real binary, `crm-server serve --role relay`, as a child process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crm_server::db::scope::{self, Scope};
use crm_server::db::{self, APP_LOGIN};
use crm_server::embedded_pg::{Cluster, Options};
use crm_server::outbox::consumer::{self, ConsumerOptions, Handler};
use crm_server::outbox::{self, Actor, ActorKind, EventType, NewEvent, Origin, StoredEvent, listen};
use crm_server::testing::TestDb;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Committed events the producers write, together.
const EVENTS: usize = 3000;
const PRODUCERS: usize = 8;
const AGGREGATES: usize = 20;
/// Pause between a producer's transactions, so that the burst lasts a few seconds and the chaos
/// happens while it runs.
const PACE: Duration = Duration::from_millis(25);
/// The consumers; `chaos.a` runs as two instances, which take turns on its checkpoint.
const CONSUMERS: [&str; 2] = ["chaos.a", "chaos.b"];
/// `application_name` of the connections, to find them in `pg_stat_activity`; the relay's pool
/// (`crm_server::db::connect`) calls itself `crm-server`.
const RELAY_APP: &str = "crm-server";
const PRODUCER_APP: &str = "chaos-producer";
const CONSUMER_APP: &str = "chaos-consumer";
/// Longest wait for any one stage; only reached when something is wrong.
const STAGE_TIMEOUT: Duration = Duration::from_secs(45);

/// The tables of the test, created by the database's owner; the app login writes them.
const SCHEMA: &str = "
    CREATE TABLE chaos_aggregate (id text PRIMARY KEY, counter bigint NOT NULL DEFAULT 0);
    INSERT INTO chaos_aggregate (id) SELECT 'chaos-' || lpad(n::text, 2, '0') FROM generate_series(1, 20) n;
    CREATE TABLE chaos_seen (
        seen      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        consumer  text   NOT NULL,
        event_id  uuid   NOT NULL,
        aggregate text   NOT NULL,
        counter   bigint NOT NULL,
        position  bigint NOT NULL
    );
    GRANT SELECT, UPDATE ON chaos_aggregate TO crm_app;
    GRANT SELECT, INSERT ON chaos_seen TO crm_app;
";

fn aggregate(n: usize) -> String {
    format!("chaos-{:02}", n + 1)
}

/// What the producers know about their transactions. An error on COMMIT leaves the outcome
/// unknown (the server may have committed before the connection broke); an error before it, or a
/// rollback, means the events were never committed.
#[derive(Debug, Default)]
struct Ledger {
    committed: HashSet<Uuid>,
    rolled_back: HashSet<Uuid>,
    uncertain: HashSet<Uuid>,
    /// Transactions that failed on an error (not the deliberate rollbacks).
    errors: usize,
}

impl Ledger {
    fn summary(&self) -> String {
        format!(
            "{} events committed, {} rolled back or failed, {} uncertain, {} failed transactions",
            self.committed.len(),
            self.rolled_back.len(),
            self.uncertain.len(),
            self.errors
        )
    }
}

/// xorshift64: enough randomness for the shape of the workload, without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

enum Outcome {
    Committed,
    RolledBack,
    Failed,
    Unknown,
}

fn origin() -> Origin {
    Origin { actor: Actor { kind: ActorKind::System, id: "chaos".into() }, correlation_id: None }
}

fn event(aggregate: &str, id: Uuid, counter: i64) -> NewEvent {
    NewEvent {
        event_type: EventType::CustomerFieldsChanged,
        subject: aggregate.to_owned(),
        territory: None,
        customer: None,
        data: json!({
            "customerId": id,
            "fieldsVersion": counter,
            "changes": [{"key": "chaos_aggregate", "oldValue": null, "newValue": aggregate}],
        }),
    }
}

/// One transaction of `ids.len()` events on `aggregates` (sorted, so that producers lock in one
/// order and never deadlock), committed or rolled back.
async fn write(pool: &PgPool, aggregates: &[usize], ids: &[Uuid], roll_back: bool) -> Outcome {
    let written = async {
        let mut tx = scope::begin(pool, &Scope::system()).await.map_err(|e| e.to_string())?;
        for (&n, &id) in aggregates.iter().zip(ids) {
            let aggregate = aggregate(n);
            let counter: i64 = sqlx::query_scalar(
                "UPDATE chaos_aggregate SET counter = counter + 1 WHERE id = $1 RETURNING counter",
            )
            .bind(&aggregate)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
            outbox::enqueue(&mut tx, &origin(), event(&aggregate, id, counter))
                .await
                .map_err(|e| format!("{e:?}"))?;
        }
        Ok::<_, String>(tx)
    }
    .await;
    match written {
        Err(_) => Outcome::Failed,
        Ok(tx) if roll_back => {
            // Whether or not the ROLLBACK arrives, nothing of it commits.
            let _ = tx.rollback().await;
            Outcome::RolledBack
        }
        Ok(tx) => match tx.commit().await {
            Ok(()) => Outcome::Committed,
            Err(_) => Outcome::Unknown,
        },
    }
}

/// Writes transactions of 1-5 events, one in ten rolled back on purpose, until `quota` events
/// are known to be committed; errors are recorded and the producer carries on.
async fn produce(pool: PgPool, producer: usize, quota: usize, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = Rng::new(producer as u64 + 1);
    let mut committed = 0;
    while committed < quota {
        let count = 1 + rng.below(5);
        let mut aggregates: Vec<usize> = (0..count).map(|_| rng.below(AGGREGATES)).collect();
        aggregates.sort_unstable();
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
        let roll_back = rng.below(10) == 0;
        let outcome = write(&pool, &aggregates, &ids, roll_back).await;
        let failed = {
            let mut ledger = ledger.lock().unwrap();
            match outcome {
                Outcome::Committed => {
                    committed += count;
                    ledger.committed.extend(ids);
                    false
                }
                Outcome::RolledBack => {
                    ledger.rolled_back.extend(ids);
                    false
                }
                Outcome::Failed => {
                    ledger.errors += 1;
                    ledger.rolled_back.extend(ids);
                    true
                }
                Outcome::Unknown => {
                    ledger.errors += 1;
                    ledger.uncertain.extend(ids);
                    true
                }
            }
        };
        tokio::time::sleep(if failed { PACE * 4 } else { PACE }).await;
    }
}

/// Records every chaos event it handles, in the consumer's transaction.
struct Recorder {
    name: &'static str,
}

impl Handler for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn wants(&self, event: &StoredEvent) -> bool {
        event.event_type == "customer.fields.changed" && event.aggregate_id.starts_with("chaos-")
    }

    async fn handle(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        event: &StoredEvent,
    ) -> Result<(), String> {
        let id: Uuid = event.data["customerId"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no id in {}", event.data))?;
        let aggregate = event.data["changes"][0]["newValue"]
            .as_str()
            .ok_or_else(|| format!("no aggregate in {}", event.data))?;
        let counter =
            event.data["fieldsVersion"].as_i64().ok_or_else(|| format!("no counter in {}", event.data))?;
        sqlx::query(
            "INSERT INTO chaos_seen (consumer, event_id, aggregate, counter, position) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.name)
        .bind(id)
        .bind(aggregate)
        .bind(counter)
        .bind(event.position)
        .execute(&mut **tx)
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// A pool of the app login on `url` whose connections carry `application_name`.
async fn app_pool(url: &str, application_name: &str, max: u32) -> PgPool {
    let options: PgConnectOptions = url.parse().expect("a database URL");
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options.application_name(application_name))
        .await
        .expect("connecting to the test database")
}

/// Tasks aborted when dropped, so that a failing test leaves none behind.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A `crm-server serve --role relay` child process, killed when dropped.
struct Relay {
    child: Child,
    log: PathBuf,
}

impl Relay {
    fn start(app_url: &str, dir: &Path, n: usize) -> Relay {
        let log = dir.join(format!("relay-{n}.log"));
        let out = std::fs::File::create(&log).expect("the relay's log file");
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/ed.pub.pem");
        let child = Command::new(env!("CARGO_BIN_EXE_crm-server"))
            .args(["serve", "--role", "relay", "--listen", "127.0.0.1:0"])
            .args(["--oidc-issuer", "https://test", "--jwt-public-key"])
            .arg(key)
            .env("DATABASE_URL", app_url)
            .env("CRM_LOG", "info,sqlx=warn")
            .env("CRM_LOG_FORMAT", "text")
            .env("CRM_RELAY_BATCH", "50")
            .env("CRM_PROJECTION_CHECK_INTERVAL", "0")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("the log file"))
            .stderr(out)
            .spawn()
            .expect("starting crm-server serve --role relay");
        Relay { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it has started its jobs: its listener logs once it listens. ("serving the CRM API"
    /// comes earlier, before the field catalog is loaded, and an error while loading it still
    /// ends the process.)
    fn is_ready(&self) -> bool {
        self.log_text().contains("listening for published outbox events")
    }

    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the relay {} exited ({status}):\n{}", self.log.display(), tail(&self.log_text()));
        }
    }

    /// SIGKILL: no chance to finish a batch or close its connections.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(3000);
    let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
    &text[start..]
}

/// Where the log and the consumers stand.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    last_position: i64,
    unpublished: i64,
    /// The lowest checkpoint of the chaos consumers (0 until both have one).
    checkpoint: i64,
    producers_done: bool,
}

impl State {
    fn caught_up(&self) -> bool {
        self.producers_done && self.unpublished == 0 && self.checkpoint == self.last_position
    }
}

/// One test's database with its producers, consumers and relays.
struct Scene {
    /// The owner (superuser) of the database: setup, observation, and the chaos.
    owner: PgPool,
    app_url: String,
    dir: tempfile::TempDir,
    relays: Vec<Relay>,
    started_relays: usize,
    producers: Vec<JoinHandle<()>>,
    consumers: Tasks,
    ledger: Arc<Mutex<Ledger>>,
    started: Instant,
}

impl Scene {
    /// Creates the tables and starts the consumers (and their listener) in this process.
    async fn new(owner: PgPool, app_url: &str) -> Scene {
        sqlx::raw_sql(SCHEMA).execute(&owner).await.expect("the chaos tables");
        let pool = app_pool(app_url, CONSUMER_APP, 6).await;
        let (published, _) = watch::channel(0);
        let published = Arc::new(published);
        let mut consumers = vec![tokio::spawn(listen::run(pool.clone(), published.clone()))];
        let options =
            ConsumerOptions { batch: 100, max_attempts: 1000, poll_interval: Duration::from_millis(200) };
        for name in [CONSUMERS[0], CONSUMERS[0], CONSUMERS[1]] {
            consumers.push(tokio::spawn(consumer::run(
                pool.clone(),
                Recorder { name },
                options,
                published.subscribe(),
            )));
        }
        Scene {
            owner,
            app_url: app_url.to_owned(),
            dir: tempfile::tempdir().expect("a folder for the relays' logs"),
            relays: Vec::new(),
            started_relays: 0,
            producers: Vec::new(),
            consumers: Tasks(consumers),
            ledger: Arc::default(),
            started: Instant::now(),
        }
    }

    async fn start_producers(&mut self) {
        let pool = app_pool(&self.app_url, PRODUCER_APP, PRODUCERS as u32 + 2).await;
        self.producers = (0..PRODUCERS)
            .map(|n| tokio::spawn(produce(pool.clone(), n, EVENTS.div_ceil(PRODUCERS), self.ledger.clone())))
            .collect();
    }

    fn start_relay(&mut self) {
        self.started_relays += 1;
        self.relays.push(Relay::start(&self.app_url, self.dir.path(), self.started_relays));
    }

    /// SIGKILLs the oldest running relay.
    fn kill_relay(&mut self) {
        self.relays.remove(0).kill();
    }

    async fn state(&self) -> Option<State> {
        let (last_position, unpublished, checkpoint): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT last_position FROM outbox_relay),
                    (SELECT count(*) FROM outbox_pending WHERE seq > 0),
                    (SELECT CASE WHEN count(*) = $2 THEN min(position) ELSE 0 END
                       FROM consumer_checkpoint WHERE consumer = ANY($1))",
        )
        .bind(&CONSUMERS[..])
        .bind(CONSUMERS.len() as i64)
        .fetch_one(&self.owner)
        .await
        .ok()?;
        let producers_done = !self.producers.is_empty() && self.producers.iter().all(|p| p.is_finished());
        Some(State { last_position, unpublished, checkpoint, producers_done })
    }

    /// Polls until `done` holds, checking that the relays are alive; fails after
    /// [`STAGE_TIMEOUT`] with the last state seen and the relays' logs.
    async fn wait(&mut self, what: &str, done: impl Fn(&State) -> bool) -> State {
        let deadline = Instant::now() + STAGE_TIMEOUT;
        let mut last = None;
        loop {
            for relay in &mut self.relays {
                relay.assert_alive();
            }
            if let Some(state) = self.state().await {
                if done(&state) {
                    return state;
                }
                last = Some(state);
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .relays
                    .iter()
                    .map(|r| format!("--- {}\n{}", r.log.display(), tail(&r.log_text())))
                    .collect();
                panic!(
                    "timed out after {}s waiting for {what}; last state {last:?}; producers: {}\n{}",
                    STAGE_TIMEOUT.as_secs(),
                    self.ledger_summary(),
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_relay_to_start(&mut self) {
        let deadline = Instant::now() + STAGE_TIMEOUT;
        while !self.relays.last().is_some_and(Relay::is_ready) {
            self.relays.last_mut().expect("a relay").assert_alive();
            assert!(Instant::now() < deadline, "the new relay did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn ledger_summary(&self) -> String {
        self.ledger.lock().unwrap().summary()
    }

    /// Waits for the producers, the relay and the consumers to finish, stops them all, and checks
    /// the log and what each consumer saw.
    async fn finish(mut self, name: &str) {
        self.wait("the producers, the relay and the consumers to finish", State::caught_up).await;
        for producer in std::mem::take(&mut self.producers) {
            producer.await.expect("a producer panicked");
        }
        for relay in std::mem::take(&mut self.relays) {
            relay.kill();
        }
        drop(std::mem::replace(&mut self.consumers, Tasks(Vec::new())));
        let ledger = std::mem::take(&mut *self.ledger.lock().unwrap());
        verify(&self.owner, &ledger).await;
        println!("{name}: {}, in {:?}", ledger.summary(), self.started.elapsed());
    }
}

/// Up to ten items of `items`, for a failure message.
fn some<T: std::fmt::Debug>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<T> = items.into_iter().take(10).collect();
    format!("{items:?}")
}

/// The guarantees: a dense log of exactly the committed events, each aggregate's counters
/// 1, 2, .. in position order, and each consumer having handled every committed event once, in
/// position order, and nothing else.
async fn verify(pool: &PgPool, ledger: &Ledger) {
    let (total, unpublished, distinct, max, last): (i64, i64, i64, Option<i64>, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE l.position IS NULL), count(DISTINCT l.position), max(l.position),
                (SELECT last_position FROM outbox_relay)
           FROM event_outbox e LEFT JOIN outbox_log l ON l.seq = e.seq",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(unpublished, 0, "every committed event is published");
    assert_eq!((distinct, max, last), (total, Some(total), total), "positions are 1..={total}, each once");

    // What committed: the outbox is the truth; the producers' ledger must agree with it.
    let rows: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
        "SELECT (e.data->>'customerId')::uuid, e.aggregate_id, (e.data->>'fieldsVersion')::bigint, l.position
           FROM event_outbox e JOIN outbox_log l ON l.seq = e.seq WHERE e.aggregate_id LIKE 'chaos-%' ORDER BY l.position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(rows.len() as i64, total, "the outbox holds only the chaos events");
    let position_of: HashMap<Uuid, i64> = rows.iter().map(|(id, _, _, p)| (*id, *p)).collect();
    assert_eq!(position_of.len(), rows.len(), "each event id is in the outbox once");
    let committed: HashSet<Uuid> = position_of.keys().copied().collect();
    let lost: Vec<&Uuid> = ledger.committed.difference(&committed).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events are missing from the outbox: {}",
        lost.len(),
        some(lost)
    );
    let resurrected: Vec<&Uuid> = ledger.rolled_back.intersection(&committed).collect();
    assert!(
        resurrected.is_empty(),
        "{} rolled-back events are in the outbox: {}",
        resurrected.len(),
        some(resurrected)
    );
    let unknown: Vec<&Uuid> = committed
        .iter()
        .filter(|id| !ledger.committed.contains(id) && !ledger.uncertain.contains(id))
        .collect();
    assert!(unknown.is_empty(), "events nobody wrote: {}", some(unknown));

    // Per aggregate, in position order: 1, 2, .., up to the aggregate's final counter.
    let finals: BTreeMap<String, i64> = sqlx::query_as("SELECT id, counter FROM chaos_aggregate")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let mut counters: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (_, aggregate, counter, _) in &rows {
        counters.entry(aggregate.as_str()).or_default().push(*counter);
    }
    for (aggregate, last) in &finals {
        let got = counters.get(aggregate.as_str()).cloned().unwrap_or_default();
        assert_eq!(got, (1..=*last).collect::<Vec<_>>(), "the counters of {aggregate} in position order");
    }

    for consumer in CONSUMERS {
        let seen: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
            "SELECT event_id, aggregate, counter, position FROM chaos_seen WHERE consumer = $1 ORDER BY seen",
        )
        .bind(consumer)
        .fetch_all(pool)
        .await
        .unwrap();
        let mut times: HashMap<Uuid, usize> = HashMap::new();
        for (id, ..) in &seen {
            *times.entry(*id).or_default() += 1;
        }
        let twice: Vec<(&Uuid, &usize)> = times.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{consumer} handled {} events more than once: {}",
            twice.len(),
            some(twice)
        );
        let missed: Vec<&Uuid> = committed.iter().filter(|id| !times.contains_key(id)).collect();
        assert!(missed.is_empty(), "{consumer} missed {} committed events: {}", missed.len(), some(missed));
        let extra: Vec<&Uuid> = times.keys().filter(|id| !committed.contains(id)).collect();
        assert!(extra.is_empty(), "{consumer} handled {} uncommitted events: {}", extra.len(), some(extra));
        let misplaced: Vec<&(Uuid, String, i64, i64)> =
            seen.iter().filter(|(id, _, _, p)| position_of.get(id) != Some(p)).collect();
        assert!(misplaced.is_empty(), "{consumer} saw events at other positions: {}", some(misplaced));
        let out_of_order: Vec<_> =
            seen.windows(2).filter(|w| w[0].3 >= w[1].3).map(|w| (w[0].3, w[1].3)).collect();
        assert!(out_of_order.is_empty(), "{consumer} handled positions out of order: {}", some(out_of_order));
        let mut per_aggregate: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for (_, aggregate, counter, _) in &seen {
            per_aggregate.entry(aggregate.as_str()).or_default().push(*counter);
        }
        assert_eq!(per_aggregate, counters, "{consumer} saw each aggregate's counters in order");
    }

    let (checkpoints, dead_letters): (Vec<i64>, i64) = sqlx::query_as(
        "SELECT (SELECT array_agg(position ORDER BY consumer) FROM consumer_checkpoint WHERE consumer = ANY($1)),
                (SELECT count(*) FROM consumer_dead_letter WHERE consumer = ANY($1))",
    )
    .bind(&CONSUMERS[..])
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(checkpoints, vec![total; CONSUMERS.len()], "every checkpoint is at the end of the log");
    assert_eq!(dead_letters, 0);
}

/// Terminates, every 60 ms until `stop`, up to two backends of the app login in this database,
/// busy ones first, taking the relay's, the consumers' (with their listener) and the producers'
/// in turn. Returns how many of each it terminated.
async fn terminate_backends(owner: PgPool, stop: Arc<AtomicBool>) -> HashMap<&'static str, i64> {
    let mut terminated = HashMap::new();
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        let victims = [RELAY_APP, CONSUMER_APP, PRODUCER_APP][round % 3];
        round += 1;
        // The LIMIT keeps pg_terminate_backend from being evaluated before the filters.
        let killed: Result<i64, _> = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (
                SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND usename = $1 AND application_name = $2
                   AND pid <> pg_backend_pid()
                 ORDER BY state = 'idle', random() LIMIT 2) victims",
        )
        .bind(APP_LOGIN)
        .bind(victims)
        .fetch_one(&owner)
        .await;
        *terminated.entry(victims).or_default() += killed.unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    terminated
}

/// The relay process is SIGKILLed mid-stream, twice: once with no relay running for a while
/// (the backlog grows, nothing is published), and once after a successor has started (two relays
/// at once for a moment). The log stays dense, and each consumer handles every committed event
/// exactly once, no rolled-back one, each aggregate's events in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_stream_neither_loses_nor_repeats_an_event() {
    let db = TestDb::new().await;
    let mut scene = Scene::new(db.pool.clone(), &db.app_url).await;
    scene.start_relay();
    scene.start_producers().await;

    scene.wait("a third of the events to be published", |s| s.last_position >= EVENTS as i64 / 3).await;
    scene.kill_relay();
    let stalled = scene.wait("a backlog while no relay runs", |s| s.unpublished >= 100).await;
    let later = scene.wait("a larger backlog", |s| s.unpublished >= 200).await;
    assert_eq!(later.last_position, stalled.last_position, "nothing is published while no relay runs");

    scene.start_relay();
    scene
        .wait("two thirds of the events to be published", |s| s.last_position >= 2 * EVENTS as i64 / 3)
        .await;
    scene.start_relay();
    scene.wait_for_relay_to_start().await;
    scene.kill_relay();

    scene.finish("relay killed").await;
}

/// While the events are written, the relay's, the listener's, the consumers' and the producers'
/// database connections are terminated again and again (`pg_terminate_backend`); the relay and
/// the consumers reconnect, and the same guarantees hold as after a relay crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_neither_lose_nor_repeat_an_event() {
    let db = TestDb::new().await;
    let mut scene = Scene::new(db.pool.clone(), &db.app_url).await;
    scene.start_relay();
    scene.wait_for_relay_to_start().await;
    let stop = Arc::new(AtomicBool::new(false));
    let terminator = tokio::spawn(terminate_backends(db.pool.clone(), stop.clone()));
    scene.start_producers().await;

    scene.wait("the producers to finish", |s| s.producers_done).await;
    stop.store(true, Ordering::Relaxed);
    let terminated = terminator.await.unwrap();
    println!("terminated backends: {terminated:?}");
    for app in [RELAY_APP, CONSUMER_APP] {
        assert!(
            terminated.get(app).copied().unwrap_or(0) > 0,
            "no {app} backend was terminated: {terminated:?}"
        );
    }

    scene.finish("connections terminated").await;
}

/// Stops `cluster` (a fast shutdown, or an immediate one: a crash) and starts it again on the
/// same data folder and port.
async fn restart(cluster: Cluster, options: &Options, crash: bool) -> Cluster {
    let port = cluster.port();
    tokio::task::spawn_blocking(move || if crash { cluster.crash() } else { cluster.stop() })
        .await
        .unwrap()
        .expect("PostgreSQL stops");
    let options = options.clone();
    tokio::task::spawn_blocking(move || Cluster::start_on_port(&options, port))
        .await
        .unwrap()
        .expect("PostgreSQL starts again on its port")
}

async fn postmaster_started(pool: &PgPool) -> time::OffsetDateTime {
    let deadline = Instant::now() + STAGE_TIMEOUT;
    loop {
        match sqlx::query_scalar("SELECT pg_postmaster_start_time()").fetch_one(pool).await {
            Ok(at) => return at,
            Err(error) => assert!(Instant::now() < deadline, "PostgreSQL is unreachable: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PostgreSQL itself is stopped and started again on the same data folder and port, twice during
/// the burst: first a fast shutdown (every session is disconnected), then an immediate one, a
/// crash, after which recovery empties the unlogged queue of the relay. The relay process, the
/// consumers and the producers retry until it is back, and the same guarantees hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_neither_loses_nor_repeats_an_event() {
    // A cluster of its own: the shared one of the test process must stay up for the other tests.
    // Durable, as in production: the test harness's clusters acknowledge commits before their WAL
    // is written, which a crash would lose.
    let dir = tempfile::tempdir().unwrap();
    let options = Options { root: dir.path().join("pg"), ephemeral: false };
    let mut cluster = tokio::task::spawn_blocking({
        let options = options.clone();
        move || Cluster::start(&options)
    })
    .await
    .unwrap()
    .expect("PostgreSQL");
    db::create_database_if_missing(&cluster.url("postgres"), "chaos").await.unwrap();
    let owner_options: PgConnectOptions = cluster.url("chaos").parse().unwrap();
    let owner = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(owner_options.application_name("chaos-owner"))
        .await
        .unwrap();
    db::migrate(&owner).await.unwrap();
    db::ensure_app_login(&cluster.url("postgres"), "chaosapp").await.unwrap();
    let app_url = db::with_login(&cluster.url("chaos"), APP_LOGIN, "chaosapp").unwrap();

    let mut scene = Scene::new(owner.clone(), &app_url).await;
    scene.start_relay();
    scene.start_producers().await;
    let mut started = postmaster_started(&owner).await;
    for third in 1..=2 {
        scene
            .wait("the next third of the events to be published", |s| {
                s.last_position >= third * EVENTS as i64 / 3
            })
            .await;
        cluster = restart(cluster, &options, third == 2).await;
        let again = postmaster_started(&owner).await;
        assert!(again > started, "a new postmaster");
        started = again;
    }

    scene.finish("PostgreSQL restarted").await;
    owner.close().await;
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
}
