//! The database breaker: after the database fails in a way that says it is unavailable
//! (no connection, refused, shutting down, locked, no answer in time), deliveries are answered
//! 503 at once for a moment instead of each waiting for its own timeout. Then one delivery
//! is let through as a probe: its success closes the breaker, its failure opens it again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the breaker stays open before a probe is let through.
pub const OPEN_FOR: Duration = Duration::from_secs(1);

/// Shared by the handlers (asking) and the writers (reporting).
#[derive(Debug)]
pub struct Breaker {
    // Read without the lock on every delivery: false while the database is healthy.
    tripped: AtomicBool,
    state: Mutex<State>,
    probe_window: Duration,
}

#[derive(Debug)]
struct State {
    open_until: Instant,
    probing_until: Option<Instant>,
}

impl Breaker {
    /// A closed breaker whose probe may take `probe_window` before another is let through.
    pub fn new(probe_window: Duration) -> Self {
        Breaker {
            tripped: AtomicBool::new(false),
            state: Mutex::new(State {
                open_until: Instant::now(),
                probing_until: None,
            }),
            probe_window,
        }
    }

    /// Whether a new delivery may go to the database: always while closed; while open, none;
    /// after [`OPEN_FOR`], one at a time as the probe.
    pub fn admit(&self) -> bool {
        if !self.tripped.load(Ordering::Relaxed) {
            return true;
        }
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        let now = Instant::now();
        if now < state.open_until {
            return false;
        }
        match state.probing_until {
            Some(until) if now < until => false,
            _ => {
                state.probing_until = Some(now + self.probe_window);
                true
            }
        }
    }

    /// Whether the breaker is open now (not yet time for a probe).
    pub fn is_open(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
            && self
                .state
                .lock()
                .map(|s| Instant::now() < s.open_until)
                .unwrap_or(false)
    }

    /// The database answered.
    pub fn succeeded(&self) {
        if !self.tripped.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.probing_until = None;
            if self.tripped.swap(false, Ordering::Relaxed) {
                metrics::gauge!("kenar_database_breaker_open").set(0.0);
                tracing::info!("the database answers again; deliveries are stored again");
            }
        }
    }

    /// The database is unavailable: open (again) for [`OPEN_FOR`].
    pub fn failed(&self, why: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.open_until = Instant::now() + OPEN_FOR;
            state.probing_until = None;
            if !self.tripped.swap(true, Ordering::Relaxed) {
                metrics::counter!("kenar_database_breaker_trips_total").increment(1);
                metrics::gauge!("kenar_database_breaker_open").set(1.0);
                tracing::warn!(
                    reason = why,
                    "the database is unavailable; deliveries are answered 503 until a probe succeeds"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_admits_everything() {
        let b = Breaker::new(Duration::from_secs(1));
        assert!(b.admit() && b.admit());
        assert!(!b.is_open());
    }

    #[test]
    fn open_refuses_then_lets_one_probe_through() {
        let b = Breaker::new(Duration::from_secs(60));
        b.failed("test");
        assert!(b.is_open());
        assert!(!b.admit());
        // Time for a probe: pretend OPEN_FOR has passed.
        b.state.lock().unwrap().open_until = Instant::now();
        assert!(b.admit(), "the probe");
        assert!(!b.admit(), "only one probe at a time");
        b.succeeded();
        assert!(b.admit() && b.admit());
    }

    #[test]
    fn a_lost_probe_is_replaced_after_its_window() {
        let b = Breaker::new(Duration::ZERO);
        b.failed("test");
        b.state.lock().unwrap().open_until = Instant::now();
        assert!(b.admit());
        assert!(b.admit(), "the first probe's window has passed");
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let b = Breaker::new(Duration::from_secs(60));
        b.failed("test");
        b.state.lock().unwrap().open_until = Instant::now();
        assert!(b.admit());
        b.failed("test");
        assert!(b.is_open());
        assert!(!b.admit());
    }
}
