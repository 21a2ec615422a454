//! What `/healthz` answers: whether this process can still do its work, judged by what the
//! process itself owns and a restart of it would cure: the private PostgreSQL it supervises
//! (the embedded default) and its background jobs (the relay, the consumers, the listener).
//!
//! A database given by `DATABASE_URL` is not among them: its outage is `/readyz`'s business, and
//! restarting every pod would not cure it.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

use crate::embedded_pg::supervise::Status;

/// Shared by every clone of the state; parts register once, when they start.
#[derive(Clone, Debug, Default)]
pub struct Liveness(Arc<Mutex<Watched>>);

#[derive(Debug, Default)]
struct Watched {
    database: Option<watch::Receiver<Status>>,
    /// Jobs loop for as long as the process runs: one that has ended has panicked.
    jobs: Vec<(&'static str, AbortHandle)>,
}

impl Liveness {
    /// Follows the supervisor of the private PostgreSQL.
    pub fn watch_database(&self, status: watch::Receiver<Status>) {
        self.watched().database = Some(status);
    }

    /// Follows a background job that must run for as long as the process does.
    pub fn watch_job(&self, name: &'static str, job: &JoinHandle<()>) {
        self.watched().jobs.push((name, job.abort_handle()));
    }

    /// Why the process cannot do its work, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let watched = self.watched();
        if let Some(status) = &watched.database {
            match &*status.borrow() {
                Status::Running => {}
                Status::Restarting { restart, of } => {
                    return Some(format!(
                        "the private PostgreSQL died and is being restarted (restart {restart} of at most {of})"
                    ));
                }
                Status::Failed(reason) => return Some(reason.clone()),
            }
        }
        let ended: Vec<&str> =
            watched.jobs.iter().filter(|(_, job)| job.is_finished()).map(|(name, _)| *name).collect();
        (!ended.is_empty()).then(|| format!("background work has stopped: {}", ended.join(", ")))
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_that_ended_is_named() {
        let liveness = Liveness::default();
        let running = tokio::spawn(std::future::pending::<()>());
        liveness.watch_job("relay", &running);
        assert_eq!(liveness.problem(), None);
        let panicking = tokio::spawn(async { panic!("a bug") });
        liveness.watch_job("consumer", &panicking);
        assert!(panicking.await.is_err());
        assert_eq!(liveness.problem().as_deref(), Some("background work has stopped: consumer"));
        running.abort();
    }

    #[test]
    fn the_database_counts_only_while_it_is_not_running() {
        let liveness = Liveness::default();
        let (status, receiver) = watch::channel(Status::Running);
        liveness.watch_database(receiver);
        assert_eq!(liveness.problem(), None);
        status.send_replace(Status::Restarting { restart: 1, of: 3 });
        assert!(liveness.problem().unwrap().contains("restart 1 of at most 3"));
        status.send_replace(Status::Failed("it died too often".into()));
        assert_eq!(liveness.problem().as_deref(), Some("it died too often"));
        status.send_replace(Status::Running);
        assert_eq!(liveness.problem(), None);
    }
}
