//! The HTTP client for what we send to Divar: legacy and v2 send-message, chatbot messages,
//! legacy webhook registration and events subscription (docs/divar-protocol.md §2).
//!
//! Each operation has a `prepare_*` method, which validates and builds a
//! [`PreparedRequest`] without sending it (a CLI prints it for `--dry-run`), and a sending
//! method, which sends that same request through [`DivarClient::execute`]. Only rate limits
//! and transient failures are tried again, and a request that is not safe to repeat (every
//! operation here: Divar's POSTs take no idempotency key) only when it provably had no
//! effect; otherwise the call ends as [`DivarError::OutcomeUnknown`]. No API key or access
//! token ever reaches a log, a `Debug` output or an error.

mod buttons;
mod error;
mod messages;
mod operations;
mod prepared;
mod retry;
mod settings;

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

pub use buttons::{
    Action, ActionData, ButtonGrid, ButtonRow, ChatButton, LegacyButton, LegacyDirectLinkData,
    LegacyLinkData, MAX_BUTTONS_PER_ROW, MAX_ROWS, PostTarget,
};
pub use error::{DivarError, ValidationError};
pub use messages::{
    BotMessage, BotMessageResponse, EventSubscription, LegacyRegistration, LegacySendMessage,
    SendMessage, SendMessageResponse, UserInfo,
};
pub use prepared::{MASK, PreparedRequest};
pub use settings::DivarClientSettings;

use retry::RetryPolicy;

/// A client of Divar's open platform. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct DivarClient {
    http: reqwest::Client,
    settings: DivarClientSettings,
    base_url: Url,
    open_api_base_url: Url,
    policy: RetryPolicy,
}

impl fmt::Debug for DivarClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DivarClient")
            .field("base_url", &self.base_url.as_str())
            .field("open_api_base_url", &self.open_api_base_url.as_str())
            .field("api_key", &self.settings.api_key.as_ref().map(|_| MASK))
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DivarClient {
    /// A client with rustls, the configured timeouts, no redirects (a redirect could carry
    /// the API key to another host) and `User-Agent: kenar-hook/<version>`. Fails with
    /// [`DivarError::NotConfigured`] when a base URL is not an http(s) URL.
    pub fn new(settings: DivarClientSettings) -> Result<Self, DivarError> {
        let base_url = base("divar.base_url", &settings.base_url)?;
        let open_api_base_url = base("divar.open_api_base_url", &settings.open_api_base_url)?;
        let http = super::http_client()
            .connect_timeout(settings.connect_timeout())
            .timeout(settings.request_timeout())
            .build()
            .map_err(|e| DivarError::NotConfigured(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            policy: RetryPolicy::new(&settings),
            settings,
            base_url,
            open_api_base_url,
        })
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &DivarClientSettings {
        &self.settings
    }

    /// Sends a prepared request and returns the body of the 2xx answer. Rate limits and
    /// transient failures are tried again; for a request that is not
    /// [repeatable](PreparedRequest::is_repeatable), only those that
    /// [are safe to repeat](DivarError::is_safe_to_repeat), and any other transient failure
    /// ends the call as [`DivarError::OutcomeUnknown`] after that one attempt.
    pub async fn execute(&self, request: &PreparedRequest) -> Result<Vec<u8>, DivarError> {
        let headers = request.real_headers()?;
        let body = request.real_body()?;
        let deadline = Instant::now() + self.policy.deadline;
        let mut failed = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = self
                .settings
                .request_timeout()
                .min(remaining)
                .max(Duration::from_millis(1));
            let error = match self.attempt(request, &headers, &body, timeout).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            failed += 1;
            let error = if request.is_repeatable() {
                error
            } else {
                error.for_unrepeatable()
            };
            if let DivarError::OutcomeUnknown { .. } = &error {
                tracing::warn!(
                    url = %request.url,
                    error = %error,
                    "Divar call of unknown outcome; not sent again"
                );
            }
            if !error.is_retryable() || failed >= self.policy.max_attempts {
                return Err(error);
            }
            let delay = self
                .policy
                .delay(failed - 1, error.retry_after(), &mut rand::rng());
            if Instant::now() + delay >= deadline {
                tracing::warn!(url = %request.url, attempts = failed, "Divar call gives up at its deadline");
                return Err(error);
            }
            tracing::warn!(
                url = %request.url,
                attempt = failed,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "Divar call failed; trying again"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        request: &PreparedRequest,
        headers: &HeaderMap,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, DivarError> {
        tracing::debug!(method = %request.method, url = %request.url, "calling Divar");
        let response = self
            .http
            .request(request.method.clone(), request.url.clone())
            .headers(headers.clone())
            .body(body.to_vec())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| DivarError::from_transport(&e))?;
        let status = response.status();
        let retry_after = retry::retry_after(response.headers());
        let answer = response
            .bytes()
            .await
            .map_err(|e| DivarError::from_transport(&e))?;
        if status.is_success() {
            Ok(answer.to_vec())
        } else {
            Err(DivarError::from_response(status, retry_after, &answer))
        }
    }

    /// `base` joined with the segments of `path` and then `ids`, each id percent-encoded as
    /// one segment.
    fn url(&self, base: &Url, path: &str, ids: &[&str]) -> Result<Url, DivarError> {
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|_| DivarError::NotConfigured(format!("{base} cannot be a base URL")))?
            .pop_if_empty()
            .extend(path.split('/').filter(|s| !s.is_empty()))
            .extend(ids);
        Ok(url)
    }
}

impl DivarError {
    /// Divar's `Retry-After`, for a rate-limited call or a transient failure.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Transient { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

fn base(name: &str, value: &str) -> Result<Url, DivarError> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base() => Ok(url),
        _ => Err(DivarError::NotConfigured(format!(
            "{name} is not an http(s) URL: {value:?}"
        ))),
    }
}

impl DivarClient {
    /// Sends a prepared request and reads the 2xx answer leniently (see [`Self::execute`]).
    pub async fn send<T: DeserializeOwned + Default>(
        &self,
        request: &PreparedRequest,
    ) -> Result<T, DivarError> {
        Ok(answer(&self.execute(request).await?))
    }
}

/// A 2xx body read leniently: an answer we cannot read does not undo a call that succeeded.
fn answer<T: DeserializeOwned + Default>(body: &[u8]) -> T {
    if body.iter().all(u8::is_ascii_whitespace) {
        return T::default();
    }
    serde_json::from_slice(body).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "unexpected answer from Divar; ignored");
        T::default()
    })
}

#[cfg(test)]
mod tests {
    use reqwest::Method;
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    /// A client with 100 ms timeouts and at most 3 quick attempts.
    fn client(server: &MockServer) -> DivarClient {
        DivarClient::new(DivarClientSettings {
            api_key: Some("key".into()),
            open_api_base_url: server.uri(),
            request_timeout_ms: 100,
            retry_max_attempts: 3,
            retry_base_delay_ms: 10,
            retry_max_delay_ms: 20,
            ..Default::default()
        })
        .unwrap()
    }

    fn put(server: &MockServer) -> PreparedRequest {
        let url = Url::parse(&server.uri()).unwrap();
        PreparedRequest::json(Method::PUT, url, serde_json::json!({}))
    }

    #[test]
    fn only_idempotent_methods_are_repeatable() {
        let url = Url::parse("https://example.test/").unwrap();
        let request = |method| PreparedRequest::json(method, url.clone(), serde_json::json!({}));
        assert!(request(Method::GET).is_repeatable());
        assert!(request(Method::PUT).is_repeatable());
        assert!(!request(Method::POST).is_repeatable());
    }

    #[tokio::test]
    async fn an_idempotent_request_is_tried_again_after_a_timeout() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(600)))
            .expect(3)
            .mount(&server)
            .await;
        let error = client(&server).execute(&put(&server)).await.unwrap_err();
        let DivarError::Transient {
            status: None,
            reason,
            ..
        } = &error
        else {
            panic!("{error:?}")
        };
        assert!(reason.starts_with("timed out"), "{reason}");
        assert_eq!(error.exit_code(), 4);
    }

    #[tokio::test]
    async fn an_idempotent_request_is_tried_again_after_a_500() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(client(&server).execute(&put(&server)).await.unwrap(), b"{}");
    }
}
