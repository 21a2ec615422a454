//! Why a reconcile failed, mapped once to a metric label, an Event reason and a requeue.
//!
//! Problems in the user's object (a spec the CRD should have refused, a calendar that does not
//! compile, a missing target) are not errors: they become status conditions and the reconcile
//! succeeds. What is here is transient: the API server or the CRM answering badly.

use std::time::Duration;

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot write a generated object as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{kind} {namespace}/{name} kept changing under us: gave up after {attempts} conflicts")]
    Conflicts { kind: &'static str, namespace: String, name: String, attempts: u32 },
}

impl Error {
    /// A stable name for metrics, Events and the runbook section.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(status)) if status.code == 403 => "forbidden",
            Error::Kube(_) => "kubernetes-api",
            Error::Json(_) => "serialization",
            Error::Conflicts { .. } => "conflict",
        }
    }
}

/// The requeue delay after the `failures`-th consecutive failure of one object: exponential from
/// 1 s, capped at 5 minutes, so a broken object never spins and a recovered API is used soon.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(9)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_five_minutes() {
        let delays: Vec<u64> = (0..12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
