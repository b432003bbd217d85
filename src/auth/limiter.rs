//! Failed authentications, limited per client IP on every authenticated route.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
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
    trusted_proxies: Vec<IpNet>,
}

impl Failures {
    /// `per_minute` failures allowed per client IP; the client IP as
    /// [`Failures::client_ip`] finds it behind `trusted_proxies`.
    pub fn new(per_minute: u32, trusted_proxies: Vec<IpNet>) -> Arc<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Arc::new(Failures {
            limiter: RateLimiter::keyed(quota),
            trusted_proxies,
        })
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// rightmost address of `X-Forwarded-For` (all its lines, in order) that is not a trusted
    /// proxy. Entries left of it were written by the client, or by proxies it chose, and
    /// prove nothing; so does the header of a peer that is not trusted.
    pub fn client_ip(&self, headers: &HeaderMap, extensions: &Extensions) -> IpAddr {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let lines: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut client = peer;
        for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !trusted(&ip) {
                        break;
                    }
                }
                // Not an address: nothing left of it can be believed.
                Err(_) => break,
            }
        }
        client
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
        forget_quiet(self.clone(), |f| &f.limiter, stop);
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
        forget_quiet(self.clone(), |p| &p.0, stop);
    }
}

/// Every minute until `stop`, forgets the clients of `owner`'s limiter that have not been
/// seen lately.
fn forget_quiet<T: Send + Sync + 'static>(
    owner: Arc<T>,
    limiter: fn(&T) -> &DefaultKeyedRateLimiter<IpAddr>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            limiter(&owner).retain_recent();
            limiter(&owner).shrink_to_fit();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy() {
        use axum::http::HeaderValue;
        let at = |lines: &[&'static str], peer: [u8; 4]| {
            let mut headers = HeaderMap::new();
            for line in lines {
                headers.append("x-forwarded-for", HeaderValue::from_static(line));
            }
            let mut extensions = Extensions::new();
            extensions.insert(ConnectInfo(SocketAddr::from((peer, 5000))));
            (headers, extensions)
        };
        let proxies = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let failures = Failures::new(10, proxies);
        let client = |lines: &[&'static str], peer: [u8; 4]| {
            let (headers, extensions) = at(lines, peer);
            failures.client_ip(&headers, &extensions).to_string()
        };
        // The client wrote the first line; the proxies appended theirs.
        let lines = ["6.6.6.6, 7.7.7.7", "203.0.113.9, 10.0.0.1"];
        assert_eq!(client(&lines, [127, 0, 0, 1]), "203.0.113.9");
        assert_eq!(
            client(&["6.6.6.6, 203.0.113.9"], [10, 1, 2, 3]),
            "203.0.113.9"
        );
        // A peer that is not a proxy: its header proves nothing.
        assert_eq!(client(&lines, [192, 0, 2, 1]), "192.0.2.1");
        // Nothing readable from the proxy: the proxy itself.
        assert_eq!(client(&["not-an-ip"], [127, 0, 0, 1]), "127.0.0.1");
        assert_eq!(
            client(&["6.6.6.6, junk, 10.0.0.2"], [127, 0, 0, 1]),
            "10.0.0.2"
        );
        // No proxies trusted: always the peer.
        let direct = Failures::new(10, Vec::new());
        let (headers, extensions) = at(&lines, [127, 0, 0, 1]);
        assert_eq!(
            direct.client_ip(&headers, &extensions).to_string(),
            "127.0.0.1"
        );
    }
}
