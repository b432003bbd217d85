//! Forgetting a user whose access was revoked. A `USER_ACCESS_REVOCATION` event is stored
//! by the batch writer like any event; this task wakes on commits (and every 500 ms, for
//! commits of other replicas), at most every 100 ms, reads the revocations stored since it
//! last looked, and deletes the user's tokens and subscription records in one transaction.
//!
//! At start it reads every stored revocation again: each deletes only what was stored at or
//! before the event arrived, so a user who signed in again after revoking keeps the new
//! tokens, and reading an event twice changes nothing.
//!
//! With `privacy.on_revocation = "erase"` the user's messages, conversations, clicks and
//! events stored at or before the revocation are erased too, the revocation event itself
//! excepted: it is the record of the request, and it still reaches the app's endpoints.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{OnRevocation, Settings};
use crate::store::Store;
use crate::store::lifecycle::{Erasure, Identity};

const POLL: Duration = Duration::from_millis(500);
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Whether a revocation erases the user's records too, and how many rows per transaction.
#[derive(Debug, Clone, Copy)]
pub struct Erase(Option<u32>);

impl Erase {
    /// As `privacy.on_revocation` says.
    pub fn of(settings: &Settings) -> Self {
        Erase(
            (settings.privacy.on_revocation == OnRevocation::Erase)
                .then_some(settings.retention.batch_size),
        )
    }
}

/// Applies the revocations stored after `seq`; returns the last seq read.
pub async fn apply_revocations(
    store: &Store,
    erase: Erase,
    mut seq: i64,
) -> Result<i64, crate::store::Error> {
    for (event_seq, user_id, received_at) in store.revocations_after(seq).await? {
        if let Some(user_id) = user_id.filter(|u| !u.is_empty()) {
            if let Erase(Some(batch)) = erase {
                let erasure = Erasure {
                    identity: Identity::User(user_id.clone()),
                    up_to: Some(received_at),
                    keep_revocations: true,
                };
                let erased = store.erase(&erasure, i64::from(batch)).await?;
                if erased != Default::default() {
                    tracing::info!(
                        user_id = %user_id,
                        event = event_seq,
                        messages = erased.messages,
                        conversations = erased.conversations,
                        events = erased.events,
                        clicks = erased.clicks,
                        rejected = erased.rejected,
                        "access revoked by the user; the user's records erased"
                    );
                }
            }
            let (tokens, subscriptions) = store.forget_user(&user_id, Some(received_at)).await?;
            if tokens + subscriptions > 0 {
                tracing::info!(
                    user_id = %user_id,
                    event = event_seq,
                    tokens,
                    subscriptions,
                    "access revoked by the user; tokens and subscription records deleted"
                );
            }
        }
        seq = event_seq;
    }
    Ok(seq)
}

/// Watches for revocations until `stop`.
pub fn spawn_revocation_watch(
    store: Store,
    erase: Erase,
    mut changes: watch::Receiver<u64>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut seq = 0;
        loop {
            match apply_revocations(&store, erase, seq).await {
                Ok(last) => seq = last,
                // At shutdown the pool closes under a look in progress: nothing to retry.
                Err(_) if stop.is_cancelled() => return,
                Err(e) => tracing::warn!(error = %e, "reading revocations failed; retrying"),
            }
            // Stopping wins over a change, which is always ready once its sender is gone.
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(POLL) => {}
            }
            // Under load every commit wakes the watch; one look per DEBOUNCE covers them all
            // and still deletes within a second.
            tokio::time::sleep(DEBOUNCE).await;
        }
    });
}
