//! "Something new was stored": a counter bumped after every commit that stored anything, and
//! (with PostgreSQL) on every NOTIFY from any replica sharing the database. Live-stream
//! clients wait on it, then re-query by `seq`, so a lost wake-up costs latency, never data.

use tokio::sync::watch;

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
