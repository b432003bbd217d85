//! One reader of new rows for every live stream of this process. After each wake-up (at most
//! every [`MIN_INTERVAL`]) it reads what was stored since its position, serialises each row
//! once and broadcasts the batch; a stream that is caught up takes what its filters match
//! from the batch and never queries the database itself. A stream that is behind (it
//! resumed from an old `Last-Event-ID`, or fell more than [`CAPACITY`] batches behind)
//! reads the database on its own until it has caught up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::items::{Item, read_log};
use crate::store::query::StreamQuery;
use crate::store::{Positions, RecordKind, RecordRef, Store};

/// Rows read per query (fewer when they hold more than the byte budget).
pub(super) const BATCH: i64 = 200;
/// Read at least this often even without a wake-up.
pub(super) const POLL: Duration = Duration::from_secs(5);
/// Read at most this often: under a steady flow of commits every stream would otherwise
/// be woken after each one.
pub(super) const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// Batches a stream may fall behind before it reads the database on its own.
const CAPACITY: usize = 16;
/// The most bytes of rows one read of a stream takes, whatever `api.page_max_bytes` allows:
/// a stream holds what it read until its reader takes it, and a reader may be slow.
pub const STREAM_READ_MAX_BYTES: usize = 64 * 1024;

/// The byte budget of one read for the live stream.
pub fn stream_budget(page_max_bytes: usize) -> usize {
    page_max_bytes.min(STREAM_READ_MAX_BYTES)
}

/// A stored row, serialised once for every stream.
#[derive(Debug)]
pub struct Live {
    /// The record.
    pub record: RecordRef,
    /// For the stream's `post_token` filter.
    pub post_token: Option<String>,
    /// For the stream's `conversation_id` filter.
    pub conversation_id: Option<String>,
    /// The item as JSON.
    pub json: String,
    /// The item as JSON with its personal data masked, when that differs.
    pub masked: Option<String>,
}

impl Live {
    /// A record's item as JSON, and masked when masking changes it.
    fn new(record: RecordRef, item: Item<'_>) -> Live {
        let post_token = item.post_token().map(str::to_owned);
        let conversation_id = item.conversation_id().map(str::to_owned);
        let json = serde_json::to_string(&item).expect("items serialise");
        let masked = crate::pii::may_hold_phone(&json)
            .then(|| serde_json::to_string(&item.without_pii()).expect("items serialise"))
            .filter(|masked| *masked != json);
        Live {
            record,
            post_token,
            conversation_id,
            json,
            masked,
        }
    }
}

/// What the hub read in one go: every row after `from` up to `to`.
#[derive(Debug)]
pub struct Batch {
    /// The hub's position before the batch.
    pub from: Positions,
    /// In `seq` order per kind.
    pub rows: Vec<Live>,
}

/// The broadcasting side; cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    sender: broadcast::Sender<Arc<Batch>>,
}

impl Hub {
    /// Starts the reader at the current end of the tables.
    pub async fn spawn(
        store: Store,
        changes: watch::Receiver<u64>,
        budget: usize,
        stop: CancellationToken,
    ) -> Result<Hub, crate::store::Error> {
        let position = store.high_water_marks().await?;
        let (sender, _) = broadcast::channel(CAPACITY);
        let hub = Hub {
            sender: sender.clone(),
        };
        let reader = Reader {
            store,
            position,
            budget,
            sender,
        };
        tokio::spawn(reader.run(changes, stop));
        Ok(hub)
    }

    /// Batches read from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Batch>> {
        self.sender.subscribe()
    }
}

struct Reader {
    store: Store,
    position: Positions,
    budget: usize,
    sender: broadcast::Sender<Arc<Batch>>,
}

impl Reader {
    async fn run(mut self, mut changes: watch::Receiver<u64>, stop: CancellationToken) {
        let mut last = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(POLL) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(last + MIN_INTERVAL) => {}
            }
            // Seen before reading: a commit that lands during the read wakes the next round.
            changes.borrow_and_update();
            last = Instant::now();
            if self.sender.receiver_count() == 0 {
                // No stream is open: nothing is read or serialised, only the position moves
                // on (a stream that opens later reads what it needs itself first).
                match self.store.high_water_marks().await {
                    Ok(high) => self.position = high,
                    Err(e) => tracing::warn!(error = %e, "live stream read failed"),
                }
                continue;
            }
            loop {
                match self.read().await {
                    Ok(Some(batch)) => {
                        let _ = self.sender.send(Arc::new(batch));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "live stream read failed");
                        break;
                    }
                }
            }
        }
    }

    /// One round of reads after the position; `None` when nothing was new.
    async fn read(&mut self) -> Result<Option<Batch>, crate::store::Error> {
        let from = self.position;
        let mut rows = Vec::new();
        for kind in RecordKind::ALL {
            let q = StreamQuery {
                after_seq: from.get(kind),
                limit: BATCH,
                ..Default::default()
            };
            let position = &mut self.position;
            read_log(&self.store, kind, &q, self.budget, |record, _, item| {
                position.set(kind, record.seq);
                rows.push(Live::new(record, item));
            })
            .await?;
        }
        Ok((!rows.is_empty()).then_some(Batch { from, rows }))
    }
}
