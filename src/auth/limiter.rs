//! Failed authentications, limited per client IP on every authenticated route.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::error::AppError;

/// The 429 for a limiter's refusal, with `Retry-After` rounded up to whole seconds.
pub fn rate_limited(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> AppError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    AppError::RateLimited {
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

/// Failed authentications per client IP, on every authenticated route. A good key is never
/// limited: only failures are counted, so a flood of wrong keys from behind the same proxy
/// as Divar never delays Divar's own deliveries.
#[derive(Debug)]
pub struct Failures {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trust_forwarded_for: bool,
}

impl Failures {
    /// `per_minute` failures allowed per client IP; with `trust_forwarded_for`, the client IP
    /// is the one the nearest proxy added to `X-Forwarded-For`.
    pub fn new(per_minute: u32, trust_forwarded_for: bool) -> Arc<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Arc::new(Failures {
            limiter: RateLimiter::keyed(quota),
            trust_forwarded_for,
        })
    }

    /// The client's address. Behind a trusted proxy it is the last `X-Forwarded-For` entry
    /// of the last such header line: the one the proxy itself added. Entries before it were
    /// written by the client and prove nothing.
    pub fn client_ip(&self, headers: &HeaderMap, extensions: &Extensions) -> IpAddr {
        if self.trust_forwarded_for {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok());
            if let Some(ip) = forwarded {
                return ip;
            }
        }
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// Counts one failed authentication of `route`: the error to answer is 401 (`refusal`),
    /// or 429 with `Retry-After` once this client has failed too often.
    pub fn fail(
        &self,
        route: &'static str,
        headers: &HeaderMap,
        extensions: &Extensions,
        refusal: AppError,
    ) -> AppError {
        self.fail_from(route, self.client_ip(headers, extensions), refusal)
    }

    /// [`Failures::fail`] for a client address already known.
    pub fn fail_from(&self, route: &'static str, ip: IpAddr, refusal: AppError) -> AppError {
        match self.limiter.check_key(&ip) {
            Ok(()) => {
                metrics::counter!("kenar_auth_failures_total", "route" => route, "answer" => "401")
                    .increment(1);
                refusal
            }
            Err(not_until) => {
                metrics::counter!("kenar_auth_failures_total", "route" => route, "answer" => "429")
                    .increment(1);
                rate_limited(not_until)
            }
        }
    }

    /// Forgets clients that have not failed lately, every minute until `stop`, so the table
    /// does not grow with every address ever seen.
    pub fn spawn_cleanup(self: &Arc<Self>, stop: CancellationToken) {
        let failures = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
                failures.limiter.retain_recent();
                failures.limiter.shrink_to_fit();
            }
        });
    }
}

/// Requests per client IP on routes that need no credential (sign-in): each costs a
/// database write, so nobody may send them without limit.
#[derive(Debug)]
pub struct PerClient(DefaultKeyedRateLimiter<IpAddr>);

impl PerClient {
    /// `per_minute` requests per client IP, all of them at once at most.
    pub fn per_minute(per_minute: u32) -> Arc<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Arc::new(PerClient(RateLimiter::keyed(quota)))
    }

    /// One more request from `ip`: 429 with `Retry-After` beyond the limit.
    pub fn admit(&self, ip: IpAddr) -> Result<(), AppError> {
        self.0.check_key(&ip).map_err(rate_limited)
    }

    /// Forgets quiet clients every minute until `stop`, as [`Failures::spawn_cleanup`].
    pub fn spawn_cleanup(self: &Arc<Self>, stop: CancellationToken) {
        let limiter = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
                limiter.0.retain_recent();
                limiter.0.shrink_to_fit();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_the_one_the_trusted_proxy_added() {
        use axum::http::HeaderValue;
        let mut headers = HeaderMap::new();
        // The client wrote the first line; the proxy appended its own line.
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 7.7.7.7"),
        );
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("10.0.0.1, 203.0.113.9"),
        );
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000))));
        let trusted = Failures::new(10, true);
        assert_eq!(
            trusted.client_ip(&headers, &extensions).to_string(),
            "203.0.113.9"
        );
        let direct = Failures::new(10, false);
        assert_eq!(
            direct.client_ip(&headers, &extensions).to_string(),
            "127.0.0.1"
        );
        // Nothing readable from the proxy: the peer address.
        let mut junk = HeaderMap::new();
        junk.append("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(
            trusted.client_ip(&junk, &extensions).to_string(),
            "127.0.0.1"
        );
    }
}
