//! "Something new was stored": a counter bumped after every commit that stored anything, and
//! (with PostgreSQL) on every NOTIFY from any replica sharing the database. Live-stream
//! clients wait on it, then re-query by `seq`, so a lost wake-up costs latency, never data.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::NOTIFY_CHANNEL;

/// The counter's sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct Changes {
    sender: watch::Sender<u64>,
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Changes {
    /// A new counter at zero.
    pub fn new() -> Self {
        Changes {
            sender: watch::Sender::new(0),
        }
    }

    /// Wakes every subscriber.
    pub fn notify(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later [`Changes::notify`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}

/// Listens on PostgreSQL's notification channel until `stop`, waking `changes` on every
/// notification and after every reconnect (notifications sent while disconnected are lost,
/// so subscribers must re-query).
pub async fn listen_postgres(pool: PgPool, changes: Changes, stop: CancellationToken) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN; retrying in 1 s");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(error = %e, "cannot LISTEN; retrying in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        changes.notify();
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(_)) => changes.notify(),
                // The connection dropped; the next try_recv reconnects. Re-query meanwhile.
                Ok(None) => changes.notify(),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    changes.notify();
                    break;
                }
            }
        }
    }
}
