//! The runtime around the controllers: which replica reconciles, and what every replica serves.
//!
//! ```text
//! leader   leader election over a coordination.k8s.io Lease: a watch that is true while this replica leads
//! admin    the HTTP server of every replica: /healthz, /readyz, /metrics, POST /sync/{namespace}/{name}
//! ```
//!
//! [`run`] starts a [`leader::LeaderElector`], the admin server and the controllers with one
//! shutdown signal; the controllers reconcile while the elector's watch says this replica leads.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::controller::{self, Options};
use crate::metrics::Metrics;

pub mod admin;
pub mod leader;

/// How many `POST /sync` requests may wait for the controller.
const SYNC_QUEUE: usize = 64;

/// Why the operator could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("leader election: {0}")]
    Leader(#[from] leader::LeaderError),
    #[error("admin server: {0}")]
    Admin(#[from] std::io::Error),
}

/// Runs the operator until `shutdown` completes: the leader election, the admin server on
/// `admin`, and the controllers while this replica leads. `options` are the controllers' (its
/// metrics are the admin server's too; its sync queue is made here).
///
/// Every replica serves health and metrics and is ready once the election runs (a standby is a
/// healthy replica). When leadership is lost the controllers stop; when it comes back they start
/// again. On shutdown the controllers finish their reconciles first, then the lease is released so
/// the other replica takes over at once, then the admin server stops.
pub async fn run(
    client: kube::Client,
    lease: leader::LeaseConfig,
    admin: TcpListener,
    mut options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let metrics = options.metrics.clone();
    let elector = leader::LeaderElector::new(client.clone(), lease)?;
    let leading = elector.leading();
    let (stopping, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopping.send(true);
    });
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };

    let (ready_tx, ready) = watch::channel(false);
    let (sync, requests) = mpsc::channel(SYNC_QUEUE);
    options.sync_requests = Some(Arc::new(tokio::sync::Mutex::new(requests)));
    let state = admin::AdminState { metrics: metrics.clone(), ready, leading: leading.clone(), sync };
    let (admin_done_tx, admin_done) = oneshot::channel::<()>();
    let server = tokio::spawn(admin::serve(admin, state, async {
        let _ = admin_done.await;
    }));
    tokio::spawn(report_leadership(leading.clone(), metrics));

    let (released_tx, released) = oneshot::channel::<()>();
    let terms = {
        let (mut leading, stop) = (leading.clone(), stop.clone());
        async move {
            let _ = ready_tx.send(true);
            loop {
                let mut waiting = stop.clone();
                tokio::select! {
                    lead = leading.wait_for(|l| *l) => if lead.is_err() { break },
                    _ = waiting.wait_for(|s| *s) => break,
                }
                if *stop.borrow() {
                    break;
                }
                tracing::info!("leading: the controllers start");
                let term = {
                    let (mut leading, mut stop) = (leading.clone(), stop.clone());
                    async move {
                        tokio::select! {
                            _ = leading.wait_for(|l| !*l) => {}
                            _ = stop.wait_for(|s| *s) => {}
                        }
                    }
                };
                controller::run(client.clone(), options.clone(), term).await;
                tracing::info!("the controllers stopped");
            }
            let _ = released_tx.send(());
        }
    };
    let election = elector.run(async {
        let _ = released.await;
    });
    tokio::join!(terms, election);
    stopped(stop).await;
    let _ = admin_done_tx.send(());
    server.await.map_err(|e| RunError::Admin(std::io::Error::other(e)))??;
    Ok(())
}

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
mod tests;
