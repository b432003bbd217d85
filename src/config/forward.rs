//! Section `forward`: the app's own endpoints that stored records are pushed to, and how
//! deliveries are retried. Checked at start-up; a bad endpoint stops it, naming the key.

use std::net::IpAddr;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// Section `forward`.
#[derive(Debug, Clone, Deserialize)]
pub struct ForwardSettings {
    /// Allow `http://` endpoints on loopback and private addresses (never on public ones).
    pub allow_private_http: bool,
    /// The first retry waits about this long; each later one three times the one before.
    pub retry_base_delay_ms: u64,
    /// No wait between two attempts is longer than this.
    pub retry_max_delay_ms: u64,
    /// Records taken from the log but not yet delivered or dead, per endpoint; reading
    /// pauses while this many are waiting.
    pub max_pending: usize,
    /// The attempt log keeps this many days.
    pub attempts_retention_days: u32,
    /// The endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointSettings>,
}

/// One entry of `forward.endpoints`.
#[derive(Debug, Clone, Deserialize)]
pub struct EndpointSettings {
    /// Unique; shown in metrics, logs, the API and the CLI.
    pub name: String,
    /// Where records are POSTed.
    pub url: String,
    /// The Standard Webhooks secret, `whsec_` and base64.
    pub secret: SecretString,
    /// Older secrets still signed with while the receiver rotates.
    #[serde(default)]
    pub previous_secrets: Vec<SecretString>,
    /// Which records: `messages`, `events`, `clicks`.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Only records of these posts (all when empty).
    #[serde(default)]
    pub post_tokens: Vec<String>,
    /// Only these message types or event types (all when empty; clicks have none).
    #[serde(default)]
    pub types: Vec<String>,
    /// An attempt with no answer within this time failed.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// After this many failed attempts a record is a dead letter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Deliveries under way at once (each of another conversation).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

fn default_include() -> Vec<String> {
    vec!["messages".to_owned()]
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_max_attempts() -> u32 {
    12
}

fn default_max_in_flight() -> usize {
    16
}

/// The keys of one `[[forward.endpoints]]` entry.
pub const ENDPOINT_KEYS: &[&str] = &[
    "name",
    "url",
    "secret",
    "secret_file",
    "previous_secrets",
    "previous_secrets_file",
    "include",
    "post_tokens",
    "types",
    "timeout_ms",
    "max_attempts",
    "max_in_flight",
];

/// What `include` may name.
pub const KINDS: &[&str] = &["messages", "events", "clicks"];

/// The fewest random bytes a `whsec_` secret may hold.
pub const MIN_WHSEC_BYTES: usize = 24;

/// The bytes of a `whsec_` secret, or why it is not one (never showing it).
pub fn secret_bytes(secret: &SecretString) -> Result<Vec<u8>, String> {
    let text = secret.expose_secret();
    let Some(encoded) = text.strip_prefix("whsec_") else {
        return Err("must start with whsec_ followed by base64".to_owned());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "the part after whsec_ is not base64".to_owned())?;
    if bytes.len() < MIN_WHSEC_BYTES {
        return Err(format!(
            "holds {} bytes; expected at least {MIN_WHSEC_BYTES} random bytes, e.g. the output \
             of `kenar-hook secret new --whsec`",
            bytes.len()
        ));
    }
    Ok(bytes)
}

impl ForwardSettings {
    /// Checks what types alone cannot: `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let top = |key: &str, problem: &str| Err((format!("forward.{key}"), problem.to_owned()));
        if self.retry_base_delay_ms == 0 {
            return top("retry_base_delay_ms", "must be greater than 0");
        }
        if self.retry_max_delay_ms < self.retry_base_delay_ms {
            return top(
                "retry_max_delay_ms",
                "must be at least forward.retry_base_delay_ms",
            );
        }
        if self.max_pending == 0 {
            return top("max_pending", "must be at least 1");
        }
        if self.attempts_retention_days == 0 {
            return top("attempts_retention_days", "must be at least 1");
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            let key = |field: &str| format!("forward.endpoints[{i}].{field}");
            super::check_name(&e.name).map_err(|p| (key("name"), p))?;
            if self.endpoints[..i].iter().any(|o| o.name == e.name) {
                return Err((key("name"), format!("{:?} is used twice", e.name)));
            }
            check_url(&e.url, self.allow_private_http).map_err(|p| (key("url"), p))?;
            secret_bytes(&e.secret).map_err(|p| (key("secret"), p))?;
            for (j, s) in e.previous_secrets.iter().enumerate() {
                secret_bytes(s).map_err(|p| (format!("{}[{j}]", key("previous_secrets")), p))?;
            }
            if e.include.is_empty() {
                return Err((
                    key("include"),
                    "must name at least one of messages, events, clicks".to_owned(),
                ));
            }
            if let Some(bad) = e.include.iter().find(|k| !KINDS.contains(&k.as_str())) {
                return Err((
                    key("include"),
                    format!("got {bad:?}; expected {}", super::one_of(KINDS)),
                ));
            }
            if e.timeout_ms == 0 {
                return Err((key("timeout_ms"), "must be greater than 0".to_owned()));
            }
            if e.max_attempts == 0 {
                return Err((key("max_attempts"), "must be at least 1".to_owned()));
            }
            if !(1..=1024).contains(&e.max_in_flight) {
                return Err((
                    key("max_in_flight"),
                    format!("got {}; expected 1 to 1024", e.max_in_flight),
                ));
            }
        }
        Ok(())
    }
}

/// An endpoint URL: https, or http on a loopback or private address when allowed.
fn check_url(text: &str, allow_private_http: bool) -> Result<(), String> {
    let url = Url::parse(text).map_err(|_| format!("got {text:?}; expected an absolute URL"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("got {text:?}; expected a URL with a host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password; sign with the secret".to_owned());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if !allow_private_http => Err(format!(
            "got {text:?}; expected https (http only on a private address, with \
             forward.allow_private_http = true)"
        )),
        "http" if is_private_host(host) => Ok(()),
        "http" => Err(format!(
            "got {text:?}; expected https (http is allowed only on localhost and private \
             addresses)"
        )),
        _ => Err(format!("got {text:?}; expected an https URL")),
    }
}

fn is_private_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_refused_on_public_hosts_even_when_allowed() {
        assert!(check_url("https://app.example.ir/hook", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook", false).is_err());
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://10.1.2.3/hook", true).is_ok());
        assert!(check_url("http://[::1]:80/hook", true).is_ok());
        assert!(check_url("http://app.example.ir/hook", true).is_err());
        assert!(check_url("ftp://app.example.ir/hook", true).is_err());
    }

    #[test]
    fn a_secret_must_be_whsec_and_base64() {
        let ok = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(secret_bytes(&ok).unwrap().len(), 24);
        assert!(secret_bytes(&SecretString::from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).is_err());
        assert!(secret_bytes(&SecretString::from("whsec_!!!")).is_err());
        assert!(secret_bytes(&SecretString::from("whsec_AAAA")).is_err());
    }
}
