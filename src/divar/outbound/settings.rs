//! Settings of the Divar HTTP client (config section `divar`).

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// How the client reaches Divar: hosts, credentials, timeouts and retries. Every field has a
/// default, so a partial section deserializes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DivarClientSettings {
    /// The app's API key, sent as `x-api-key` on every call. Without it no call is made
    /// ([`super::DivarError::NotConfigured`]).
    pub api_key: Option<SecretString>,
    /// Host of the legacy APIs (legacy send-message and legacy webhook registration).
    pub base_url: String,
    /// Host of the current APIs (send message v2, chatbot, events subscription).
    pub open_api_base_url: String,
    /// Path of the legacy webhook registration. One of Divar's documents prints the
    /// send-message URL here by mistake; the corrected ones and Divar's SDK use this one
    /// (docs/divar-protocol.md §2.1, §3.26).
    pub legacy_register_path: String,
    /// Longest wait for a TCP + TLS connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest wait for one whole request and its response, in milliseconds.
    pub request_timeout_ms: u64,
    /// Most attempts per call, the first included. Only rate limits and transient failures
    /// are tried again, and a request that is not safe to repeat only when the failure
    /// provably left no effect at Divar.
    pub retry_max_attempts: u32,
    /// Base of the exponential backoff, in milliseconds: attempt `n` waits a random time up
    /// to `base * 2^n`.
    pub retry_base_delay_ms: u64,
    /// Longest single wait between attempts, in milliseconds; also the clamp of a
    /// `Retry-After` sent by Divar.
    pub retry_max_delay_ms: u64,
    /// No attempt starts, and no attempt runs, past this many milliseconds after the first.
    pub retry_deadline_ms: u64,
}

impl Default for DivarClientSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: "https://api.divar.ir".to_owned(),
            open_api_base_url: "https://open-api.divar.ir".to_owned(),
            legacy_register_path: "/v1/open-platform/notify/chat/post-conversations".to_owned(),
            connect_timeout_ms: 3_000,
            request_timeout_ms: 10_000,
            retry_max_attempts: 4,
            retry_base_delay_ms: 200,
            retry_max_delay_ms: 5_000,
            retry_deadline_ms: 30_000,
        }
    }
}

impl DivarClientSettings {
    /// [`Self::connect_timeout_ms`] as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// [`Self::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_section_takes_the_defaults() {
        let s: DivarClientSettings =
            serde_json::from_value(serde_json::json!({"api_key": "k", "retry_max_attempts": 2}))
                .unwrap();
        assert!(s.api_key.is_some());
        assert_eq!(s.retry_max_attempts, 2);
        assert_eq!(s.base_url, "https://api.divar.ir");
        assert_eq!(s.open_api_base_url, "https://open-api.divar.ir");
        assert_eq!(
            s.legacy_register_path,
            "/v1/open-platform/notify/chat/post-conversations"
        );
        assert_eq!(
            (
                s.connect_timeout_ms,
                s.request_timeout_ms,
                s.retry_deadline_ms
            ),
            (3_000, 10_000, 30_000)
        );
        assert_eq!((s.retry_base_delay_ms, s.retry_max_delay_ms), (200, 5_000));
    }

    #[test]
    fn debug_output_hides_the_api_key() {
        let s = DivarClientSettings {
            api_key: Some("super-secret-key".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("super-secret-key"));
    }
}
