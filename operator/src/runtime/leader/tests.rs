//! `decide` on its own, and the elector against a mocked API server: every request it makes is
//! asserted (method, path, holder, resourceVersion) and answered by the test. Time is tokio's
//! paused clock, and the elector's wall clock follows it from `T0`.

use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_test::mock::{self, Handle, SendResponse};

use super::*;

const T0: &str = "2026-09-19T10:00:00Z";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/freshplan/leases";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/freshplan/leases/freshplan-operator";

/// `seconds` after `T0`.
fn at(seconds: i64) -> Timestamp {
    T0.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(seconds)
}

/// The lease as the API server would hold it.
fn lease(holder: Option<&str>, renewed: Timestamp, transitions: i32, version: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some("freshplan-operator".into()),
            namespace: Some("freshplan".into()),
            resource_version: Some(version.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime(renewed)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

// === decide ===

#[test]
fn decide_creates_an_absent_lease_and_renews_its_own_even_when_expired() {
    let timing = Timing::default();
    assert_eq!(decide(None, "a", at(0), &timing), Action::Create);
    let mine = lease(Some("a"), at(-100), 0, "1");
    assert_eq!(decide(Some(&mine), "a", at(0), &timing), Action::Renew);
}

#[test]
fn decide_waits_until_renew_time_plus_duration_is_past_then_takes_over() {
    let timing = Timing::default();
    let theirs = lease(Some("b"), at(0), 0, "1");
    assert_eq!(decide(Some(&theirs), "a", at(15), &timing), Action::Wait, "valid up to and including");
    let just_after = at(15) + SignedDuration::from_micros(1);
    assert_eq!(decide(Some(&theirs), "a", just_after, &timing), Action::TakeOver);

    let mut longer = theirs.clone();
    longer.spec.as_mut().unwrap().lease_duration_seconds = Some(60);
    assert_eq!(decide(Some(&longer), "a", at(59), &timing), Action::Wait, "the lease's duration counts");
    longer.spec.as_mut().unwrap().lease_duration_seconds = None;
    assert_eq!(decide(Some(&longer), "a", at(16), &timing), Action::TakeOver, "else the configured one");
}

#[test]
fn decide_takes_over_a_released_lease_or_one_never_renewed() {
    let timing = Timing::default();
    let released = lease(None, at(0), 2, "1");
    assert_eq!(decide(Some(&released), "a", at(0), &timing), Action::TakeOver);
    let mut empty = lease(Some(""), at(0), 2, "1");
    assert_eq!(decide(Some(&empty), "a", at(0), &timing), Action::TakeOver);
    empty.spec.as_mut().unwrap().holder_identity = Some("b".into());
    empty.spec.as_mut().unwrap().renew_time = None;
    assert_eq!(decide(Some(&empty), "a", at(0), &timing), Action::TakeOver);
    let no_spec = Lease { spec: None, ..released };
    assert_eq!(decide(Some(&no_spec), "a", at(0), &timing), Action::TakeOver);
}

#[test]
fn a_standby_backs_off_after_failures_and_a_leader_does_not() {
    let timing = Timing::default();
    let delays: Vec<u64> = (0..6).map(|f| delay_after(f, false, &timing).as_secs()).collect();
    assert_eq!(delays, [5, 5, 10, 20, 30, 30]);
    assert_eq!(delay_after(3, true, &timing), Duration::from_secs(5));
}

#[tokio::test]
async fn an_elector_needs_an_identity_and_durations_in_client_gos_order() {
    let (client, _api) = mock_client();
    let mut config = LeaseConfig::new("freshplan", "freshplan-operator", "");
    assert!(matches!(LeaderElector::new(client.clone(), config.clone()), Err(LeaderError::NoIdentity)));
    config.identity = "a".into();
    config.timing.renew_deadline = config.timing.lease_duration;
    let err = LeaderElector::new(client.clone(), config.clone()).err().unwrap();
    assert!(err.to_string().contains("not 15s > 15s > 5s"), "{err}");
    config.timing = Timing { lease_duration: Duration::from_millis(15_500), ..Timing::default() };
    assert!(LeaderElector::new(client, config).is_err(), "leaseDurationSeconds is whole seconds");
}

// === the elector against a mocked API server ===

/// One request the elector made.
struct Call {
    method: Method,
    path: String,
    body: Value,
    respond: SendResponse<Response<Body>>,
}

impl Call {
    fn ok(self, lease: &Lease) {
        let body = Body::from(serde_json::to_vec(lease).unwrap());
        self.respond.send_response(Response::builder().status(200).body(body).unwrap());
    }

    /// Answers as the API server does when it stores the written lease as `version`.
    fn store(self, version: &str) -> Lease {
        let mut lease: Lease = serde_json::from_value(self.body.clone()).unwrap();
        lease.metadata.resource_version = Some(version.into());
        self.ok(&lease);
        lease
    }

    fn fail(self, code: u16, reason: &str) {
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{reason} (from the test)"), "reason": reason, "code": code,
        });
        let body = Body::from(serde_json::to_vec(&status).unwrap());
        self.respond.send_response(Response::builder().status(code).body(body).unwrap());
    }

    fn spec(&self, field: &str) -> &Value {
        &self.body["spec"][field]
    }
}

/// The API server's side of one replica's client.
struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    start: Instant,
}

impl ApiServer {
    /// The next request, `seconds` after the test started.
    async fn next(&mut self, seconds: u64) -> Call {
        let (request, respond) = tokio::time::timeout(Duration::from_secs(600), self.handle.next_request())
            .await
            .expect("no request within 600 s")
            .expect("the elector has stopped");
        assert_eq!(
            self.start.elapsed(),
            Duration::from_secs(seconds),
            "{} {}",
            request.method(),
            request.uri()
        );
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Call { method: parts.method, path: parts.uri.path().to_owned(), body, respond }
    }

    /// Expects the elector's read of the lease.
    async fn get(&mut self, seconds: u64) -> Call {
        let call = self.next(seconds).await;
        assert_eq!((&call.method, call.path.as_str()), (&Method::GET, LEASE));
        call
    }

    /// Expects a write of the lease, held by `holder` and renewed now, based on `version`.
    async fn write(&mut self, seconds: u64, holder: Option<&str>, version: Option<&str>) -> Call {
        let call = self.next(seconds).await;
        match version {
            None => assert_eq!((&call.method, call.path.as_str()), (&Method::POST, LEASES)),
            Some(_) => assert_eq!((&call.method, call.path.as_str()), (&Method::PUT, LEASE)),
        }
        assert_eq!(call.body["metadata"]["resourceVersion"].as_str(), version, "{}", call.body);
        assert_eq!(call.spec("holderIdentity").as_str(), holder, "{}", call.body);
        let renewed: Timestamp = call.spec("renewTime").as_str().unwrap().parse().unwrap();
        assert_eq!(renewed, at(seconds as i64), "{}", call.body);
        call
    }

    /// Expects no more requests: the elector has stopped and dropped its client.
    async fn finished(mut self) {
        if let Some((request, _)) = self.handle.next_request().await {
            panic!("unexpected {} {}", request.method(), request.uri());
        }
    }
}

fn mock_client() -> (Client, Handle<Request<Body>, Response<Body>>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// A replica running for `identity`: its API server, leadership watch and shutdown switch.
struct Replica {
    api: ApiServer,
    leading: watch::Receiver<bool>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Replica {
    fn start(identity: &str) -> Replica {
        let (client, handle) = mock_client();
        let start = Instant::now();
        let clock = move || at(0) + SignedDuration::try_from(start.elapsed()).unwrap();
        let config = LeaseConfig::new("freshplan", "freshplan-operator", identity);
        let elector = LeaderElector::new(client, config).unwrap().with_clock(clock);
        let leading = elector.leading();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(elector.run(async move {
            let _ = stop.await;
        }));
        Replica { api: ApiServer { handle, start }, leading, shutdown: Some(shutdown), task }
    }

    /// Whether it leads now; marks the value seen, so `leading.changed()` waits for the next.
    fn leads(&mut self) -> bool {
        *self.leading.borrow_and_update()
    }

    /// Signals shutdown; the elector may still release the lease before `stopped`.
    fn shut_down(&mut self) {
        let _ = self.shutdown.take().unwrap().send(());
    }

    async fn stopped(self) {
        self.task.await.unwrap();
        assert!(!*self.leading.borrow(), "a stopped elector does not lead");
        self.api.finished().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_candidate_creates_the_lease_when_there_is_none_and_leads() {
    let mut a = Replica::start("a");
    a.api.get(0).await.fail(404, "NotFound");
    let create = a.api.write(0, Some("a"), None).await;
    assert_eq!(create.spec("leaseDurationSeconds"), 15);
    assert_eq!(create.spec("leaseTransitions"), 0);
    assert_eq!(create.spec("acquireTime"), create.spec("renewTime"));
    assert_eq!(create.body["metadata"]["name"], "freshplan-operator");
    create.store("1");

    let get = a.api.get(5).await;
    assert!(a.leads());
    a.shut_down();
    get.fail(404, "NotFound"); // deleted meanwhile: created again, then released
    a.api.write(5, Some("a"), None).await.store("2");
    let release = a.api.write(5, None, Some("2")).await;
    release.store("3");
    a.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn the_leader_renews_its_lease_every_retry_period_with_the_resource_version_it_read() {
    let mut a = Replica::start("a");
    let mut current = lease(Some("a"), at(-3), 2, "40");
    for (seconds, version) in [(0, "41"), (5, "42"), (10, "43")] {
        a.api.get(seconds).await.ok(&current);
        let renew = a.api.write(seconds, Some("a"), current.metadata.resource_version.as_deref()).await;
        assert_eq!(renew.spec("leaseTransitions"), 2, "renewing is no transition");
        assert_eq!(renew.spec("acquireTime").as_str(), Some("2026-09-19T09:59:57.000000Z"));
        current = renew.store(version);
    }
    assert!(a.leads());
    a.api.get(15).await.ok(&current);
    a.api.write(15, Some("a"), Some("43")).await.store("44");
    a.shut_down();
    a.api.write(15, None, Some("44")).await.store("45");
    a.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn a_candidate_waits_while_another_holders_lease_is_fresh() {
    let mut a = Replica::start("a");
    // Renewed 10 s before: valid for 5 s more. Then renewed by its holder, as it should be.
    a.api.get(0).await.ok(&lease(Some("b"), at(-10), 0, "7"));
    a.api.get(5).await.ok(&lease(Some("b"), at(4), 0, "8"));
    a.api.get(10).await.ok(&lease(Some("b"), at(9), 0, "9"));
    assert!(!a.leading.has_changed().unwrap(), "never led, not even for a moment");
    assert!(!a.leads());
    a.shut_down();
    a.stopped().await; // a standby has nothing to release
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_taken_over_with_one_more_transition() {
    let mut a = Replica::start("a");
    a.api.get(0).await.ok(&lease(Some("b"), at(-16), 3, "7"));
    let take = a.api.write(0, Some("a"), Some("7")).await;
    assert_eq!(take.spec("leaseTransitions"), 4);
    assert_eq!(take.spec("acquireTime"), take.spec("renewTime"));
    assert_eq!(take.spec("leaseDurationSeconds"), 15);
    take.store("8");
    let get = a.api.get(5).await;
    assert!(a.leads());
    a.shut_down();
    get.ok(&lease(Some("a"), at(0), 4, "8"));
    a.api.write(5, Some("a"), Some("8")).await.store("9");
    a.api.write(5, None, Some("9")).await.store("10");
    a.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn a_candidate_that_loses_the_race_for_the_lease_is_not_leader() {
    let mut a = Replica::start("a");
    // Created by another replica between the read and the write.
    a.api.get(0).await.fail(404, "NotFound");
    a.api.write(0, Some("a"), None).await.fail(409, "AlreadyExists");
    // Taken over by another replica between the read and the write.
    a.api.get(5).await.ok(&lease(Some("b"), at(-11), 0, "7"));
    a.api.write(5, Some("a"), Some("7")).await.fail(409, "Conflict");
    a.api.get(10).await.ok(&lease(Some("c"), at(5), 1, "8"));
    assert!(!a.leading.has_changed().unwrap(), "never led, not even for a moment");
    assert!(!a.leads());
    a.shut_down();
    a.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn the_leader_steps_down_on_shutdown_and_a_standby_takes_over_at_its_next_try() {
    let mut a = Replica::start("a");
    a.api.get(0).await.fail(404, "NotFound");
    let held = a.api.write(0, Some("a"), None).await.store("1");

    let mut b = Replica::start("b");
    b.api.get(0).await.ok(&held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(a.leads() && !b.leads());

    a.shut_down();
    let release = a.api.write(1, None, Some("1")).await;
    assert_eq!(release.spec("leaseDurationSeconds"), 1);
    assert_eq!(release.spec("leaseTransitions"), 0);
    let released = release.store("2");
    a.stopped().await;

    // b's next try, 5 s after its first: no need to wait for the 15 s lease to run out.
    b.api.get(5).await.ok(&released);
    let take = b.api.write(5, Some("b"), Some("2")).await;
    assert_eq!(take.spec("leaseTransitions"), 1);
    assert_eq!(take.spec("leaseDurationSeconds"), 15);
    take.store("3");
    let get = b.api.get(10).await;
    assert!(b.leads());
    b.shut_down();
    get.fail(500, "InternalError");
    b.api.write(10, None, Some("3")).await.store("4");
    b.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_stops_leading_before_its_lease_expires() {
    let mut a = Replica::start("a");
    a.api.get(0).await.fail(404, "NotFound");
    a.api.write(0, Some("a"), None).await.store("1");
    a.api.get(5).await.fail(500, "InternalError");
    // The renew deadline (10 s) has passed: a stops leading, then tries again as a candidate.
    let get = a.api.get(10).await;
    assert!(!a.leads());
    get.ok(&lease(Some("a"), at(0), 0, "1"));
    a.api.write(10, Some("a"), Some("1")).await.store("2");

    // An API server that stops answering: the try is cut off at the deadline, 10 s after the
    // last renewal, while the lease has 5 s left.
    let _unanswered = a.api.get(15).await;
    assert!(a.leads());
    a.leading.changed().await.unwrap();
    assert!(!a.leads());
    assert_eq!(a.api.start.elapsed(), Duration::from_secs(20));
    a.api.get(25).await.ok(&lease(Some("b"), at(24), 1, "3"));
    a.shut_down();
    a.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_backs_off_while_the_api_server_fails_then_acquires() {
    let mut a = Replica::start("a");
    for seconds in [0, 5, 15, 35, 65] {
        a.api.get(seconds).await.fail(503, "ServiceUnavailable");
    }
    a.api.get(95).await.fail(404, "NotFound");
    a.api.write(95, Some("a"), None).await.store("1");
    let get = a.api.get(100).await;
    assert!(a.leads());
    a.shut_down();
    get.ok(&lease(Some("a"), at(95), 0, "1"));
    a.api.write(100, Some("a"), Some("1")).await.store("2");
    a.api.write(100, None, Some("2")).await.store("3");
    a.stopped().await;
}
