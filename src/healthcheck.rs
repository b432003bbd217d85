//! The `healthcheck` subcommand: a tiny HTTP client for Docker's HEALTHCHECK, so the
//! runtime image needs no curl.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The URL checked when none is given: `/healthz` on `server.listen`, reached through
/// 127.0.0.1 when the service listens on every address.
pub fn default_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(host, listen.port()))
}

/// Whether `url` answers 200 within three seconds.
pub async fn check(url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {}", response.status()))
    }
}
