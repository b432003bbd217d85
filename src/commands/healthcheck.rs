//! The `healthcheck` subcommand: a tiny HTTP client for Docker's HEALTHCHECK, so the
//! runtime image needs no curl.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{ConfigError, Settings};

/// The URL checked when none is given: `/healthz` (or `/readyz` when `ready`) on
/// `server.listen`, reached through 127.0.0.1 when the service listens on every address.
pub(crate) fn default_url(listen: SocketAddr, ready: bool) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let path = if ready { "readyz" } else { "healthz" };
    format!("http://{}/{path}", SocketAddr::new(host, listen.port()))
}

/// Whether `url` can be checked: an absolute `http://` or `https://` URL with a host. The
/// error is the usage message.
pub(crate) fn usable_url(url: &str) -> Result<(), String> {
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
pub(crate) async fn check(url: &str) -> Result<(), String> {
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

/// `healthcheck [--ready] [URL]`: 0 healthy, 1 unhealthy (what Docker reads), 2 for a URL
/// that cannot be checked at all.
pub async fn healthcheck(
    settings: Result<Settings, ConfigError>,
    ready: bool,
    url: Option<String>,
) -> ExitCode {
    let url = match (url, &settings) {
        (Some(url), _) => match usable_url(&url) {
            Ok(()) => url,
            Err(why) => {
                eprintln!("kenar-hook: healthcheck: {why}");
                return ExitCode::from(2);
            }
        },
        (None, Ok(s)) => default_url(s.server.listen, ready),
        // Docker reads any exit code but 0 and 1 as "reserved": a settings problem is
        // simply "unhealthy" here.
        (None, Err(e)) => {
            eprintln!("kenar-hook: {e}");
            return ExitCode::FAILURE;
        }
    };
    match check(&url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kenar-hook: unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
