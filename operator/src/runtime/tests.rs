//! The runtime against the in-memory API server: two replicas, one lease; only the leader
//! reconciles, a replica that loses the lease stops writing, and a released lease is taken over.

use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::leader::{LeaseConfig, Timing};
use super::*;
use crate::testing::examples;
use crate::testing::fake_api::{FakeApi, Recorded, full_cluster};

#[tokio::test]
async fn the_leader_gauge_follows_the_election_and_drops_to_zero_when_it_ends() {
    let metrics = Metrics::new();
    let (tx, rx) = watch::channel(true);
    let task = tokio::spawn(report_leadership(rx, metrics.clone()));
    tokio::task::yield_now().await;
    assert!(metrics.encode().contains("freshplan_operator_leader 1\n"));
    tx.send(false).unwrap();
    tx.send(true).unwrap();
    drop(tx);
    task.await.unwrap();
    assert!(metrics.encode().contains("freshplan_operator_leader 0\n"));
}

/// One replica: `runtime::run` with its own metrics, on a short lease.
struct Replica {
    metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), RunError>>,
}

impl Replica {
    async fn start(api: &FakeApi, identity: &str) -> Replica {
        let metrics = Metrics::new();
        let mut lease = LeaseConfig::new("crm", "freshplan-operator", identity);
        lease.timing = Timing {
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_secs(1),
        };
        let options = Options { instance: Some(identity.into()), ..Options::new(metrics.clone()) };
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(api.client(), lease, admin, options, async {
            let _ = stopped.await;
        }));
        Replica { metrics, stop: Some(stop), task }
    }

    fn leads(&self) -> bool {
        self.metrics.encode().contains("freshplan_operator_leader 1\n")
    }

    async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("a graceful stop")
            .expect("no panic")
            .expect("no error");
    }
}

async fn until(what: &str, api: &FakeApi, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; requests:\n{}",
            api.requests().iter().map(Recorded::line).collect::<Vec<_>>().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn minute_limit(api: &FakeApi) -> Option<i64> {
    api.get("KongPlugin", "crm", "acme-rate-limiting")?["config"]["minute"].as_i64()
}

fn holder(api: &FakeApi) -> Option<String> {
    api.get("Lease", "crm", "freshplan-operator")?["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

fn set_minute_limit(api: &FakeApi, minute: i64) {
    let limits = json!({"second": 20, "minute": minute, "hour": 20000});
    api.edit("TenantPolicy", "crm", "acme", json!({"spec": {"rateLimit": {"limits": limits}}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_a_lost_lease_stops_it_and_a_released_one_is_taken_over() {
    let api = FakeApi::start(full_cluster()).await;
    for object in [examples::policy("acme"), examples::ingress("crm-acme", None)] {
        api.insert(object);
    }
    let a = Replica::start(&api, "operator-a").await;
    until("a leads and applies", &api, || a.leads() && minute_limit(&api) == Some(600)).await;
    let b = Replica::start(&api, "operator-b").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!((a.leads(), b.leads(), holder(&api).as_deref()), (true, false, Some("operator-a")));

    // Someone else holds the lease now (as after a network partition): a sees it at its next
    // renewal and stops its controllers. A change to the policy is then left alone: nobody leads.
    let renewed = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let intruder =
        json!({"spec": {"holderIdentity": "elsewhere", "renewTime": renewed, "leaseDurationSeconds": 3600}});
    api.edit("Lease", "crm", "freshplan-operator", intruder);
    until("a steps down", &api, || !a.leads()).await;
    api.clear_requests();
    set_minute_limit(&api, 700);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let writes: Vec<String> = api.requests().iter().filter(|r| r.is_write()).map(Recorded::line).collect();
    assert_eq!(writes, Vec::<String>::new(), "no replica writes while another holds the lease");
    assert_eq!((a.leads(), b.leads(), minute_limit(&api)), (false, false, Some(600)));

    // The lease is released: one of the two takes it over and applies what changed meanwhile,
    // and only that: what it finds in force (read once, its caches hold metadata) is not written.
    api.edit("Lease", "crm", "freshplan-operator", json!({"spec": {"holderIdentity": null}}));
    until("a new leader applies the change", &api, || minute_limit(&api) == Some(700)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let generated =
        |r: &Recorded| ["/kongplugins/", "/kongconsumers/", "/secrets/"].iter().any(|k| r.path.contains(k));
    let writes: Vec<String> =
        api.requests().iter().filter(|r| r.is_write() && generated(r)).map(Recorded::line).collect();
    assert_eq!(
        writes,
        [
            "PATCH /apis/configuration.konghq.com/v1/namespaces/crm/kongplugins/acme-rate-limiting?fieldManager=freshplan-operator"
        ]
    );
    assert!(a.leads() != b.leads(), "exactly one replica leads");
    let (leader, standby) = if a.leads() { (a, b) } else { (b, a) };

    // The leader shuts down and gives the lease up; the standby takes over at its next try.
    leader.stop().await;
    assert_eq!(holder(&api), None, "released on shutdown");
    set_minute_limit(&api, 800);
    until("the standby takes over", &api, || standby.leads() && minute_limit(&api) == Some(800)).await;
    standby.stop().await;
}
