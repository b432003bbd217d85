//! The `healthcheck` subcommand: a tiny HTTP client for Docker's HEALTHCHECK, so the
//! runtime image needs no curl.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The URL checked when none is given: `/healthz` (or `/readyz` when `ready`) on
/// `server.listen`, reached through 127.0.0.1 when the service listens on every address.
pub fn default_url(listen: SocketAddr, ready: bool) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let path = if ready { "readyz" } else { "healthz" };
    format!("http://{}/{path}", SocketAddr::new(host, listen.port()))
}

/// Whether `url` can be checked: an absolute `http://` or `https://` URL with a host. The
/// error is the usage message.
pub fn usable_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "{url:?} is not an http:// or https:// URL with a host (scheme {:?}); \
             e.g. http://127.0.0.1:8080/healthz",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "{url:?} is not a URL ({e}); e.g. http://127.0.0.1:8080/healthz"
        )),
    }
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
