//! The wake-up signal of this process's readers (consumers, live streams): the last position
//! known to be published, from the relay's notifications (or the relay in this process).
//!
//! Notifications are hints, lost when the listening connection drops; readers wait on the signal
//! *or* their poll interval, whichever comes first, and read from the table either way.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::outbox::relay::CHANNEL;

/// Listens on the relay's channel until the process ends, reconnecting with a pause when the
/// connection is lost, and raises `published` to every position announced.
pub async fn run(pool: PgPool, published: Arc<watch::Sender<i64>>) {
    loop {
        match listen(&pool, &published).await {
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, "the outbox listener lost its connection; reconnecting"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn listen(pool: &PgPool, published: &watch::Sender<i64>) -> sqlx::Result<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    tracing::info!(channel = CHANNEL, "listening for published outbox events");
    loop {
        // `None`: the connection was lost (a lost connection loses its notifications; the
        // readers' polling covers them). Returning reconnects after a pause, and logs it.
        let Some(notification) = listener.try_recv().await? else {
            return Err(sqlx::Error::Protocol("the listening connection was closed".into()));
        };
        if let Ok(position) = notification.payload().parse::<i64>() {
            published.send_if_modified(|known| {
                let newer = position > *known;
                if newer {
                    *known = position;
                }
                newer
            });
        }
    }
}
