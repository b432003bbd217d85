//! When a failed delivery is tried again: waits growing threefold from
//! `forward.retry_base_delay_ms` up to `forward.retry_max_delay_ms`, with ±20% jitter so
//! that records failing together do not come back together; or what the receiver asked for
//! in `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The wait after the `failures`-th failed attempt (1 for the first), before jitter.
pub fn delay(base_ms: u64, max_ms: u64, failures: u32) -> Duration {
    let factor = 3u64.saturating_pow(failures.saturating_sub(1));
    Duration::from_millis(base_ms.saturating_mul(factor).min(max_ms))
}

/// [`delay`] moved by up to 20% either way, never beyond the maximum.
pub fn jittered(base_ms: u64, max_ms: u64, failures: u32) -> Duration {
    let d = delay(base_ms, max_ms, failures).as_secs_f64();
    let spread = rand::random_range(-0.2..=0.2);
    Duration::from_secs_f64((d * (1.0 + spread)).min(max_ms as f64 / 1000.0))
}

/// The wait a `Retry-After` value asks for: whole seconds or an HTTP date.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_a_day() {
        let (base, max) = (5_000, 21_600_000);
        let waits: Vec<u64> = (1..=11).map(|n| delay(base, max, n).as_secs()).collect();
        assert_eq!(
            waits,
            [5, 15, 45, 135, 405, 1215, 3645, 10935, 21600, 21600, 21600]
        );
        let total: u64 = waits.iter().sum();
        assert!((20 * 3600..26 * 3600).contains(&total), "{total} s");
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let d = jittered(1_000, 60_000, 2).as_millis();
            assert!((2_400..=3_600).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
