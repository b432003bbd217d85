//! Section `oauth`: the app at Divar's OAuth server, the vault keys, and the refresher's
//! timing.

use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::divar::oauth::OAuthApp;

/// Section `oauth`. Sign-in and the vault are off until `vault_keys` holds a key.
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthSettings {
    /// The app slug.
    pub client_id: Option<String>,
    /// The client secret of the Kenar panel.
    pub client_secret: Option<SecretString>,
    /// The public URL of `GET /oauth/divar/callback`, as registered in the panel.
    pub redirect_url: Option<String>,
    /// Scopes asked for when `start` or `oauth url` names none. `USER_ID` and
    /// `offline_access` are always added: the vault files tokens by user and refreshes them.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// Further scopes a `start` link may ask for; `PERMISSION.*` allows any resource id.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// Requests to `/oauth/*` allowed per client IP and minute.
    pub rate_limit_per_minute: u32,
    /// Sign-ins begun and not yet finished or expired, at most; `start` answers 503 beyond.
    pub max_pending_sign_ins: u64,
    /// Where the OAuth server is.
    pub base_url: String,
    /// Base64 32-byte keys: the first encrypts, all decrypt.
    #[serde(default)]
    pub vault_keys: Vec<SecretString>,
    /// How long a sign-in may take from `start` (or `oauth url`) to the callback, in seconds.
    pub state_ttl_secs: u64,
    /// A token is refreshed once this share of its lifetime has passed (0.5 to 0.95).
    pub refresh_at_fraction: f64,
    /// How often the refresher looks for due tokens and pending subscriptions, in ms.
    pub refresh_check_ms: u64,
    /// The first wait after a failed refresh, in ms; it doubles with each failure (at most
    /// five minutes).
    pub refresh_retry_base_ms: u64,
    /// How long one replica holds a token while refreshing it, in seconds. Under the two
    /// minutes for which Divar keeps old tokens valid, so another replica can take over a
    /// refresh whose replica died, with tokens that still work.
    pub refresh_lease_secs: u64,
    /// Longest wait for one call to the OAuth server, in ms.
    pub request_timeout_ms: u64,
}

/// What `oauth.refresh_at_fraction` may be.
const FRACTION: &str = "a number from 0.5 to 0.95";
/// What `oauth.refresh_lease_secs` may be.
const LEASE: &str = "10 to 110 (under the two minutes old tokens stay valid)";

/// The error of a setting `oauth.KEY` outside its range.
fn out_of_range(key: &str, got: impl std::fmt::Display, expected: &str) -> (String, String) {
    (
        format!("oauth.{key}"),
        format!("got {got}; expected {expected}"),
    )
}

/// The scopes every sign-in asks for.
pub const REQUIRED_SCOPES: [&str; 2] = ["USER_ID", "offline_access"];

impl OAuthSettings {
    /// Whether sign-in and the vault are on.
    pub fn enabled(&self) -> bool {
        !self.vault_keys.is_empty()
    }

    /// Why the OAuth routes and commands are off, when they are.
    pub fn why_off(&self) -> Option<&'static str> {
        (!self.enabled()).then_some(
            "OAuth sign-in is off: set oauth.vault_keys (with oauth.client_id, \
             oauth.client_secret and oauth.redirect_url) to turn it on",
        )
    }

    /// The app at the OAuth server; `None` when sign-in is off.
    pub fn app(&self) -> Option<OAuthApp> {
        if !self.enabled() {
            return None;
        }
        Some(OAuthApp {
            client_id: self.client_id.clone()?,
            client_secret: self.client_secret.clone()?,
            redirect_url: self.redirect_url.clone()?,
            base_url: self.base_url.clone(),
        })
    }

    /// The scopes to ask for: the given ones (or the defaults), then the required ones, each
    /// once.
    pub fn scopes(&self, asked: &[String]) -> Vec<String> {
        let asked = if asked.is_empty() {
            &self.default_scopes
        } else {
            asked
        };
        let mut scopes: Vec<String> = Vec::new();
        let all = asked
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .chain(REQUIRED_SCOPES.iter().map(|s| (*s).to_owned()));
        for scope in all {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    /// Whether a sign-in link may ask for `scope`: one of `default_scopes`, the required
    /// ones, or matched by `allowed_scopes`.
    pub fn allows(&self, scope: &str) -> bool {
        let permission = |s: &str| {
            let at = [s.find('.'), s.find("__")].into_iter().flatten().min();
            at.map_or(s.len(), |at| at)
        };
        REQUIRED_SCOPES.contains(&scope)
            || self.default_scopes.iter().any(|s| s == scope)
            || self
                .allowed_scopes
                .iter()
                .any(|allowed| match allowed.strip_suffix(".*") {
                    Some(name) => scope.len() > name.len() && scope[..permission(scope)] == *name,
                    None => allowed == scope,
                })
    }

    /// [`Self::refresh_check_ms`] as a duration.
    pub fn refresh_check(&self) -> Duration {
        Duration::from_millis(self.refresh_check_ms)
    }

    /// Checks what types alone cannot; `(key, problem)` for the first failure. No message
    /// shows a secret.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, key) in self.vault_keys.iter().enumerate() {
            if let Err(problem) = decode_key(key.expose_secret()) {
                return Err((format!("oauth.vault_keys[{i}]"), problem));
            }
        }
        if let Err(problem) = check_http_url(&self.base_url) {
            return Err(("oauth.base_url".into(), problem));
        }
        if self.enabled() {
            let missing = |key: &str| {
                Err((
                    format!("oauth.{key}"),
                    "must be set when oauth.vault_keys is".to_owned(),
                ))
            };
            match &self.client_id {
                Some(id) if !id.trim().is_empty() => {}
                _ => return missing("client_id"),
            }
            match &self.client_secret {
                Some(s) if !s.expose_secret().trim().is_empty() => {}
                _ => return missing("client_secret"),
            }
            match &self.redirect_url {
                Some(url) if !url.trim().is_empty() => {
                    check_http_url(url).map_err(|p| ("oauth.redirect_url".to_owned(), p))?;
                    if url.contains('?') {
                        return Err((
                            "oauth.redirect_url".into(),
                            format!("got {url:?}; expected a URL without a query string"),
                        ));
                    }
                }
                _ => return missing("redirect_url"),
            }
        }
        if !(0.5..=0.95).contains(&self.refresh_at_fraction) {
            let got = self.refresh_at_fraction;
            return Err(out_of_range("refresh_at_fraction", got, FRACTION));
        }
        for (i, scope) in self.allowed_scopes.iter().enumerate() {
            let known = scope.strip_suffix(".*").map_or_else(
                || crate::divar::scope::check_known(scope).is_ok(),
                crate::divar::scope::takes_resource,
            );
            if !known {
                return Err((
                    format!("oauth.allowed_scopes[{i}]"),
                    format!(
                        "got {scope:?}; expected one of Divar's scopes, or PERMISSION.* for a \
                         permission that takes a resource id"
                    ),
                ));
            }
        }
        for (key, value) in [
            (
                "rate_limit_per_minute",
                u64::from(self.rate_limit_per_minute),
            ),
            ("max_pending_sign_ins", self.max_pending_sign_ins),
            ("state_ttl_secs", self.state_ttl_secs),
            ("refresh_check_ms", self.refresh_check_ms),
            ("refresh_retry_base_ms", self.refresh_retry_base_ms),
            ("request_timeout_ms", self.request_timeout_ms),
        ] {
            if value == 0 {
                return Err((format!("oauth.{key}"), "must be greater than 0".into()));
            }
        }
        if !(10..=110).contains(&self.refresh_lease_secs) {
            let got = self.refresh_lease_secs;
            return Err(out_of_range("refresh_lease_secs", got, LEASE));
        }
        Ok(())
    }
}

fn check_http_url(text: &str) -> Result<(), String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(format!("got {text:?}; expected an http(s) URL")),
    }
}

/// A key from its base64 text: 32 bytes, standard or URL-safe alphabet, padded or not.
/// The error never shows the text.
pub fn decode_key(text: &str) -> Result<[u8; 32], String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(|| {
            "not base64; expected 32 random bytes in base64, e.g. the output of \
             `openssl rand -base64 32`"
                .to_owned()
        })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "holds {} bytes; expected 32 (e.g. the output of `openssl rand -base64 32`)",
            bytes.len()
        )
    })
}
