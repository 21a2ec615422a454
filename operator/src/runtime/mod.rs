//! The runtime around the controllers: which replica reconciles, and what every replica serves.
//!
//! ```text
//! leader   leader election over a coordination.k8s.io Lease: a watch that is true while this replica leads
//! admin    the HTTP server of every replica: /healthz, /readyz, /metrics, POST /sync/{namespace}/{name}
//! ```
//!
//! `run` starts a [`leader::LeaderElector`], the admin server and the controllers with one
//! shutdown signal; the controllers reconcile while the elector's watch says this replica leads.

use tokio::sync::watch;

use crate::metrics::Metrics;

pub mod admin;
pub mod leader;

/// Keeps `freshplan_operator_leader` equal to `leading` until the elector has stopped, then 0.
pub async fn report_leadership(mut leading: watch::Receiver<bool>, metrics: Metrics) {
    loop {
        metrics.set_leader(*leading.borrow_and_update());
        if leading.changed().await.is_err() {
            break;
        }
    }
    metrics.set_leader(false);
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
