//! Kept rejected deliveries run through ingestion again: those this version can store are
//! stored (as received then) and leave the list; the others stay, with today's reason.

use serde::Serialize;

use super::record_of;
use crate::store::{Store, WriteOutcome};

/// What a run did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Stored now.
    pub stored: u64,
    /// Stored already (Divar delivered them again after a fix, say).
    pub duplicate: u64,
    /// Still refused, or their message id is held by another conversation.
    pub still_rejected: u64,
}

/// Runs every kept delivery through ingestion again.
pub async fn reprocess(store: &Store) -> Result<Summary, crate::store::Error> {
    let mut summary = Summary::default();
    let mut after = None;
    loop {
        let page = store.list_rejected(after, 100).await?;
        let Some(last) = page.last() else {
            return Ok(summary);
        };
        after = Some(last.id);
        for kept in page {
            let record = match record_of(&kept.raw_body, kept.received_at) {
                Ok(record) => record,
                Err(e) => {
                    store
                        .update_rejected_reason(kept.id, &e.public_message())
                        .await?;
                    summary.still_rejected += 1;
                    continue;
                }
            };
            let (outcomes, _) = store.write_batch(std::slice::from_ref(&record)).await?;
            match outcomes.first() {
                Some(WriteOutcome::Stored) => summary.stored += 1,
                Some(WriteOutcome::Duplicate) => summary.duplicate += 1,
                _ => {
                    let reason = "its message id is stored already for another conversation \
                                  or post";
                    store.update_rejected_reason(kept.id, reason).await?;
                    summary.still_rejected += 1;
                    continue;
                }
            }
            store.delete_rejected(kept.id).await?;
        }
    }
}
