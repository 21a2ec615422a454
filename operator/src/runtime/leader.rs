//! Leader election over a `coordination.k8s.io/v1` Lease, with client-go's semantics, so that of
//! the operator's replicas exactly one reconciles while the others stand by.
//!
//! ```text
//!            +--> GET lease --> decide(lease, me, now) --> Create   --> POST          --+
//!  every     |                                         --> Renew    --> PUT (its rv)  --+--> 2xx: leading
//!  retry     |                                         --> TakeOver --> PUT (its rv)  --+    409: someone else won
//!  period ---+                                         --> Wait                      -----> not leading
//! ```
//!
//! A candidate takes the lease only when it is absent, released (no holder) or expired
//! (`renewTime + leaseDurationSeconds < now`). Every write carries the `resourceVersion` it read,
//! so of two candidates racing for one lease the API server lets one win and answers the other
//! 409 Conflict. The leader stops leading once it has failed to renew for `renew_deadline`, which
//! is shorter than the lease, so it has stopped before anyone else may take over. On shutdown it
//! releases the lease, and a standby takes over at its next try instead of after the lease runs
//! out.
//!
//! [`decide`] and the lease builders are pure: the time is an argument. [`LeaderElector`] does the
//! I/O and reads the clock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// Which Lease, who this replica is, and how often it tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's `holderIdentity`: its pod name, unique among the replicas.
    pub identity: String,
    pub timing: Timing,
}

/// client-go's three durations, with its defaults but a retry period of 5 s: a lease held by a
/// replica that died is taken over after 15 to 20 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a lease stays valid after its last renewal (`leaseDurationSeconds`; whole seconds).
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal. Shorter than the lease, so
    /// a leader that cannot reach the API server has stopped before a standby may take over.
    pub renew_deadline: Duration,
    /// How often every replica tries to acquire or renew.
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(5),
        }
    }
}

impl LeaseConfig {
    /// The lease `namespace/name` for the replica `identity`, with the default timing.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            timing: Timing::default(),
        }
    }
}

/// Why leader election cannot start, or why one try failed (logged, then retried).
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election needs a non-empty holder identity (the pod name)")]
    NoIdentity,
    #[error(
        "leader election needs whole seconds of lease duration > renew deadline > retry period > 0, \
         not {lease_duration:?} > {renew_deadline:?} > {retry_period:?}"
    )]
    Timing { lease_duration: Duration, renew_deadline: Duration, retry_period: Duration },
    #[error("cannot read or write Lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("no answer from the API server within {0:?}")]
    TimedOut(Duration),
}

/// What a candidate does with the lease it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// There is no lease: create it, held by me.
    Create,
    /// I hold it: write a new `renewTime`.
    Renew,
    /// It is released or expired: make me the holder, one more transition.
    TakeOver,
    /// Someone else holds it and it has not expired.
    Wait,
}

/// What `me` does at `now` with `lease` (`None`: there is none).
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp, timing: &Timing) -> Action {
    let Some(lease) = lease else { return Action::Create };
    let spec = lease.spec.as_ref();
    let holder = spec.and_then(|s| s.holder_identity.as_deref()).unwrap_or_default();
    if holder == me {
        return Action::Renew;
    }
    if holder.is_empty() {
        return Action::TakeOver;
    }
    let duration = spec
        .and_then(|s| s.lease_duration_seconds)
        .map_or(SignedDuration::try_from(timing.lease_duration).unwrap_or(SignedDuration::MAX), |s| {
            SignedDuration::from_secs(i64::from(s))
        });
    let Some(MicroTime(renewed)) = spec.and_then(|s| s.renew_time.as_ref()) else {
        // Held but never renewed: nothing says it is alive.
        return Action::TakeOver;
    };
    match renewed.checked_add(duration) {
        Ok(expiry) if expiry < now => Action::TakeOver,
        _ => Action::Wait,
    }
}

/// The lease to write for `action` (not `Wait`): `current` as read, with `me` holding it as of
/// `now`. It keeps the `resourceVersion` read, which is what makes the write fail when someone
/// else wrote in between.
fn claim(current: Option<&Lease>, action: Action, config: &LeaseConfig, now: Timestamp) -> Lease {
    let mut lease = current.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(config.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let seconds = i32::try_from(config.timing.lease_duration.as_secs()).unwrap_or(i32::MAX);
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(MicroTime(now));
    match action {
        Action::Create => {
            spec.holder_identity = Some(config.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(0);
        }
        Action::TakeOver => {
            spec.holder_identity = Some(config.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        Action::Renew | Action::Wait => {}
    }
    lease
}

/// `held` given up at `now`: no holder, and a lease of one second for candidates that only look at
/// its expiry (client-go's release).
fn release(held: &Lease, now: Timestamp) -> Lease {
    let mut lease = held.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(now));
    lease
}

/// How long to wait after a try: the retry period, but after `failures` failed tries in a row
/// as a standby twice as long for each, up to twice the lease. A leader does not back off: its
/// renew deadline is running.
fn delay_after(failures: u32, leading: bool, timing: &Timing) -> Duration {
    if failures == 0 || leading {
        return timing.retry_period;
    }
    let factor = 2u32.saturating_pow(failures - 1);
    timing.retry_period.saturating_mul(factor).min(timing.lease_duration.saturating_mul(2))
}

/// Where the elector reads the time it writes into the lease and compares expiries against.
type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Runs the election for one replica; see the module doc.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    clock: Clock,
    leading: watch::Sender<bool>,
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Result<Self, LeaderError> {
        let Timing { lease_duration, renew_deadline, retry_period } = config.timing;
        if config.identity.is_empty() {
            return Err(LeaderError::NoIdentity);
        }
        let whole = lease_duration.subsec_nanos() == 0 && lease_duration.as_secs() <= i32::MAX as u64;
        if !whole
            || lease_duration <= renew_deadline
            || renew_deadline <= retry_period
            || retry_period.is_zero()
        {
            return Err(LeaderError::Timing { lease_duration, renew_deadline, retry_period });
        }
        Ok(LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            clock: Arc::new(Timestamp::now),
            leading: watch::Sender::new(false),
        })
    }

    /// Replaces the wall clock (tests tie it to tokio's paused time).
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// True while this replica leads. Controllers reconcile only while it is.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Takes part in the election until `shutdown` completes, then gives the lease up if it held
    /// it. Never fails: API errors are logged and retried, and make this replica stop leading
    /// once its renew deadline has passed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Timing { renew_deadline, retry_period, .. } = self.config.timing;
        tokio::pin!(shutdown);
        // While leading: the lease as last written (its resourceVersion is needed to release it),
        // and when leading ends unless renewed.
        let mut held: Option<(Lease, Instant)> = None;
        let mut failures = 0u32;
        let mut delay = Duration::ZERO;
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(delay) => {}
            }
            let started = Instant::now();
            self.step_down_if_late(&mut held, started);
            // A try is not cut short by shutdown: a renewal the API server applied but this replica
            // never saw would leave it releasing with a stale resourceVersion. The budget bounds it.
            let budget = held
                .as_ref()
                .map_or(retry_period, |(_, deadline)| deadline.saturating_duration_since(started));
            let result = tokio::time::timeout(budget, self.try_acquire_or_renew())
                .await
                .unwrap_or(Err(LeaderError::TimedOut(budget)));
            match result {
                Ok(Some(lease)) => {
                    failures = 0;
                    held = Some((lease, started + renew_deadline));
                    self.set_leading(true);
                }
                Ok(None) => {
                    failures = 0;
                    held = None;
                    self.set_leading(false);
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %err, failures, "leader election try failed");
                }
            }
            let now = Instant::now();
            self.step_down_if_late(&mut held, now);
            delay = delay_after(failures, held.is_some(), &self.config.timing);
            if let Some((_, deadline)) = &held {
                // The next try must start while this replica still leads.
                delay = delay.min(deadline.saturating_duration_since(now));
            }
        }
        self.set_leading(false);
        if let Some((lease, _)) = held {
            self.release(&lease).await;
        }
    }

    /// One try: read the lease, decide, write. `Some(lease as written)` while leading.
    async fn try_acquire_or_renew(&self) -> Result<Option<Lease>, LeaderError> {
        let now = (self.clock)();
        let current = self.api.get_opt(&self.config.name).await.map_err(|e| self.api_error(e))?;
        let action = decide(current.as_ref(), &self.config.identity, now, &self.config.timing);
        let params = PostParams::default();
        let written = match action {
            Action::Wait => return Ok(None),
            Action::Create => self.api.create(&params, &claim(None, action, &self.config, now)).await,
            Action::Renew | Action::TakeOver => {
                let lease = claim(current.as_ref(), action, &self.config, now);
                self.api.replace(&self.config.name, &params, &lease).await
            }
        };
        match written {
            Ok(lease) => {
                if action != Action::Renew {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, ?action, "acquired the leader lease");
                }
                Ok(Some(lease))
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                tracing::debug!(lease = %self.config.name, ?action, "another replica wrote the lease first");
                Ok(None)
            }
            Err(err) => Err(self.api_error(err)),
        }
    }

    /// Gives `held` up, so that a standby takes over at its next try. Best effort: if it fails,
    /// the lease runs out as it would after a crash.
    async fn release(&self, held: &Lease) {
        let lease = release(held, (self.clock)());
        let params = PostParams::default();
        let write = self.api.replace(&self.config.name, &params, &lease);
        match tokio::time::timeout(self.config.timing.retry_period, write).await {
            Ok(Ok(_)) => tracing::info!(lease = %self.config.name, "released the leader lease"),
            Ok(Err(err)) => tracing::warn!(error = %self.api_error(err), "cannot release the leader lease"),
            Err(_) => tracing::warn!(lease = %self.config.name, "cannot release the leader lease: no answer"),
        }
    }

    /// Stops leading when the renew deadline of `held` has passed at `now`.
    fn step_down_if_late(&self, held: &mut Option<(Lease, Instant)>, now: Instant) {
        if held.as_ref().is_some_and(|(_, deadline)| now >= *deadline) {
            *held = None;
            let deadline = self.config.timing.renew_deadline;
            tracing::warn!(lease = %self.config.name, "not renewed within {deadline:?}: no longer leading");
            self.set_leading(false);
        }
    }

    fn set_leading(&self, leading: bool) {
        self.leading.send_if_modified(|current| std::mem::replace(current, leading) != leading);
    }

    fn api_error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api { namespace: self.config.namespace.clone(), name: self.config.name.clone(), source }
    }
}

#[cfg(test)]
mod tests;
