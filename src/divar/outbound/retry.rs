//! When to try a call again: exponential backoff with full jitter, `Retry-After` honoured,
//! a cap on attempts and a deadline.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::DivarClientSettings;

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
}
