//! When to try a call again: which failures, and for a request that is not safe to repeat
//! only those that provably had no effect at Divar; exponential backoff with full jitter,
//! `Retry-After` honoured, a cap on attempts and a deadline.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::{DivarClientSettings, DivarError};

impl DivarError {
    /// Whether trying again may succeed: rate limits, connection failures and transient
    /// failures. A request that is not safe to repeat is tried again only when the failure
    /// [is safe to repeat](Self::is_safe_to_repeat) as well.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Unreachable { .. } | Self::Transient { .. }
        )
    }

    /// Whether the failed request provably had no effect at Divar, so that sending it again
    /// cannot do anything twice: the connection failed before it was sent, or Divar turned it
    /// away unprocessed (429, 408, 503 with `Retry-After`).
    pub fn is_safe_to_repeat(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::RateLimited { .. }
                | Self::Transient {
                    status: Some(408),
                    ..
                }
                | Self::Transient {
                    status: Some(503),
                    retry_after: Some(_),
                    ..
                }
        )
    }

    /// The failure of a request that is not safe to repeat: a transient failure after which
    /// the request may have reached Divar becomes [`Self::OutcomeUnknown`].
    pub(super) fn for_unrepeatable(self) -> Self {
        if self.is_safe_to_repeat() {
            return self;
        }
        match self {
            Self::Transient { status, reason, .. } => Self::OutcomeUnknown { status, reason },
            other => other,
        }
    }
}

/// The retry settings, as durations.
#[derive(Debug, Clone, Copy)]
pub(super) struct RetryPolicy {
    /// Attempts in total, at least 1.
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
    /// Measured from the start of the first attempt.
    pub deadline: Duration,
}

impl RetryPolicy {
    pub fn new(s: &DivarClientSettings) -> Self {
        Self {
            max_attempts: s.retry_max_attempts.max(1),
            base: Duration::from_millis(s.retry_base_delay_ms),
            max_delay: Duration::from_millis(s.retry_max_delay_ms),
            deadline: Duration::from_millis(s.retry_deadline_ms),
        }
    }

    /// The wait after failed attempt `failed` (0 for the first): `Retry-After` clamped to the
    /// longest wait when Divar sent one, otherwise a uniform draw from
    /// `0..=min(base * 2^failed, max_delay)`.
    pub fn delay<R: Rng + ?Sized>(
        &self,
        failed: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(failed))
            .min(self.max_delay);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.random_range(0..=micros))
    }
}

/// `Retry-After` as seconds or as an HTTP date; `None` when absent or unreadable.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(at);
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use reqwest::StatusCode;
    use reqwest::header::HeaderValue;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(&DivarClientSettings {
            retry_base_delay_ms: 100,
            retry_max_delay_ms: 1_000,
            ..Default::default()
        })
    }

    #[test]
    fn delays_stay_under_the_doubling_ceiling_and_the_cap() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        for failed in 0..12 {
            let ceiling = Duration::from_millis(100 << failed.min(10)).min(p.max_delay);
            for _ in 0..200 {
                assert!(p.delay(failed, None, &mut rng) <= ceiling);
            }
        }
    }

    #[test]
    fn delays_are_jittered() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let draws: Vec<_> = (0..20).map(|_| p.delay(3, None, &mut rng)).collect();
        assert!(draws.iter().any(|d| *d != draws[0]));
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let half = Duration::from_millis(500);
        assert_eq!(p.delay(0, Some(half), &mut rng), half);
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(60)), &mut rng),
            p.max_delay
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn zero_attempts_means_one() {
        let p = RetryPolicy::new(&DivarClientSettings {
            retry_max_attempts: 0,
            ..Default::default()
        });
        assert_eq!(p.max_attempts, 1);
    }

    #[test]
    fn only_failures_that_left_no_trace_at_divar_are_safe_to_repeat() {
        let second = Some(Duration::from_secs(1));
        let answered = |status: StatusCode, retry_after| {
            DivarError::from_response(status, retry_after, b"").is_safe_to_repeat()
        };
        assert!(answered(StatusCode::TOO_MANY_REQUESTS, None));
        assert!(answered(StatusCode::REQUEST_TIMEOUT, None));
        assert!(answered(StatusCode::SERVICE_UNAVAILABLE, second));
        assert!(!answered(StatusCode::SERVICE_UNAVAILABLE, None));
        assert!(!answered(StatusCode::INTERNAL_SERVER_ERROR, second));
        assert!(!answered(StatusCode::BAD_GATEWAY, None));
        let timeout = DivarError::Transient {
            status: None,
            retry_after: None,
            reason: "timed out".to_owned(),
        };
        assert!(!timeout.is_safe_to_repeat());
        let unknown = timeout.for_unrepeatable();
        assert!(
            matches!(unknown, DivarError::OutcomeUnknown { status: None, ref reason } if reason == "timed out"),
            "{unknown:?}"
        );
        assert!(
            unknown.to_string().contains("look in the conversation"),
            "{unknown}"
        );
    }

    #[test]
    fn a_failure_safe_to_repeat_or_a_refusal_stays_what_it_is_for_an_unrepeatable_request() {
        let limited = DivarError::from_response(StatusCode::TOO_MANY_REQUESTS, None, b"");
        assert!(matches!(
            limited.for_unrepeatable(),
            DivarError::RateLimited { .. }
        ));
        let busy =
            DivarError::from_response(StatusCode::SERVICE_UNAVAILABLE, Some(Duration::ZERO), b"");
        assert!(matches!(
            busy.for_unrepeatable(),
            DivarError::Transient {
                status: Some(503),
                ..
            }
        ));
        let refused = DivarError::from_response(StatusCode::FORBIDDEN, None, b"");
        assert!(matches!(
            refused.for_unrepeatable(),
            DivarError::Forbidden { .. }
        ));
    }
}
