//! The forwarding metrics, labelled by endpoint name (a fixed set: the settings').

/// An attempt ended: `delivered`, `failed`, `dead` or `gone`.
pub fn attempt(endpoint: &str, outcome: &'static str) {
    metrics::counter!("forward_attempts_total", "endpoint" => endpoint.to_owned(), "outcome" => outcome)
        .increment(1);
    if outcome == "delivered" {
        metrics::counter!("forward_delivered_total", "endpoint" => endpoint.to_owned())
            .increment(1);
    }
}

/// A record became a dead letter.
pub fn dead(endpoint: &str) {
    metrics::counter!("forward_dead_letters_total", "endpoint" => endpoint.to_owned()).increment(1);
}

/// Seconds since the oldest undelivered record arrived (0 when none waits).
pub fn lag(endpoint: &str, seconds: f64) {
    metrics::gauge!("forward_lag_seconds", "endpoint" => endpoint.to_owned()).set(seconds);
}

/// Deliveries under way.
pub fn in_flight(endpoint: &str, n: usize) {
    metrics::gauge!("forward_in_flight", "endpoint" => endpoint.to_owned()).set(n as f64);
}

/// Records read and waiting for delivery.
pub fn pending(endpoint: &str, n: usize) {
    metrics::gauge!("forward_pending", "endpoint" => endpoint.to_owned()).set(n as f64);
}
