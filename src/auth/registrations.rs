//! The legacy registrations' keys, kept in memory and read again from the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::digest;
use crate::store::Store;

/// How often the registration keys are read again from the database.
pub const REGISTRATION_REFRESH: Duration = Duration::from_secs(2);

/// The digests of the legacy registrations' keys and the posts each is good for, read from
/// the database at start-up and every [`REGISTRATION_REFRESH`]. A request is never what
/// makes the service ask the database about a key: an unknown key costs a map lookup.
#[derive(Debug, Default)]
pub struct RegistrationKeys {
    posts: RwLock<Arc<HashMap<[u8; 32], Vec<String>>>>,
}

impl RegistrationKeys {
    /// The posts a key (as presented) is good for; `None` when it is no registration's key.
    pub fn posts(&self, presented: &[u8]) -> Option<Vec<String>> {
        let map = self.posts.read().map(|m| m.clone()).ok()?;
        map.get(&digest(presented)).cloned()
    }

    /// Reads the registrations again. On failure the keys known before stay in use.
    pub async fn refresh(&self, store: &Store) -> Result<(), crate::store::Error> {
        let mut map: HashMap<[u8; 32], Vec<String>> = HashMap::new();
        for registration in store.registrations().await? {
            let mut key = [0u8; 32];
            if hex::decode_to_slice(&registration.key_digest, &mut key).is_ok() {
                map.entry(key).or_default().push(registration.post_token);
            }
        }
        if let Ok(mut posts) = self.posts.write() {
            *posts = Arc::new(map);
        }
        Ok(())
    }

    /// Refreshes every [`REGISTRATION_REFRESH`] until `stop`.
    pub fn spawn_refresh(self: &Arc<Self>, store: Store, stop: CancellationToken) {
        let keys = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(REGISTRATION_REFRESH) => {}
                }
                match keys.refresh(&store).await {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "reading the registration keys failed; the keys read before stay in use");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}
