//! Section `inbox`: the web inbox served at `/inbox` (docs/inbox.md).

use serde::Deserialize;

/// Section `inbox`.
#[derive(Debug, Clone, Deserialize)]
pub struct InboxSettings {
    /// Serve `/inbox`; off by default.
    pub enabled: bool,
    /// How long a signed-in browser session lasts.
    pub session_minutes: u32,
}

impl InboxSettings {
    pub(super) fn validate(&self, has_clients: bool) -> Result<(), (&'static str, String)> {
        if !(1..=43_200).contains(&self.session_minutes) {
            return Err((
                "inbox.session_minutes",
                format!(
                    "got {}; expected 1 to 43200 (30 days)",
                    self.session_minutes
                ),
            ));
        }
        if self.enabled && !has_clients {
            return Err((
                "inbox.enabled",
                "the inbox signs in with an API client token: set api.tokens or api.clients too"
                    .into(),
            ));
        }
        Ok(())
    }
}
