//! The identification keys (configured, or generated into the data folder), and checking
//! the `authorization` header Divar sends against them, in constant time; the registration keys kept in memory; failed authentications
//! limited per client IP.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, header};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::store::Store;

/// The accepted keys, kept only as SHA-256 digests. Comparing fixed-length digests hides the
/// keys' lengths; every digest is compared, so the time does not tell which key matched.
#[derive(Clone)]
pub struct KeySet {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.digests.len())
    }
}

/// SHA-256 of a byte string.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl KeySet {
    /// A key set accepting each of `keys`.
    pub fn new(keys: &[SecretString]) -> Self {
        KeySet {
            digests: keys
                .iter()
                .map(|k| digest(k.expose_secret().as_bytes()))
                .collect(),
        }
    }

    /// Whether no key is accepted (then nothing is).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Which key `presented` equals, if any. Every key is compared; the index is chosen
    /// without branching on the comparisons.
    pub fn position(&self, presented: Option<&[u8]>) -> Option<usize> {
        use subtle::ConditionallySelectable;
        let candidate = digest(presented?);
        let mut found = u64::MAX;
        for (i, known) in self.digests.iter().enumerate() {
            found.conditional_assign(&(i as u64), known.ct_eq(&candidate));
        }
        (found != u64::MAX).then_some(found as usize)
    }

    /// Which key has this hex digest (as stored with a stream ticket).
    pub fn position_of_digest(&self, hex_digest: &str) -> Option<usize> {
        self.digests
            .iter()
            .position(|d| hex::encode(d) == hex_digest)
    }

    /// The hex digest of key `i`.
    pub fn digest_hex(&self, i: usize) -> Option<String> {
        self.digests.get(i).map(hex::encode)
    }

    /// Whether `presented` equals one of the keys.
    pub fn verify(&self, presented: Option<&[u8]>) -> bool {
        self.position(presented).is_some()
    }
}

/// The raw value of the `authorization` header, if present.
pub fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())
}

/// How often the registration keys are read again from the database.
pub const REGISTRATION_REFRESH: Duration = Duration::from_secs(2);

/// The digests of the legacy registrations' keys and the posts each is good for, read from
/// the database at start-up and every [`REGISTRATION_REFRESH`]. A request is never what
/// makes the service ask the database about a key: an unknown key costs a map lookup.
#[derive(Debug, Default)]
pub struct RegistrationKeys {
    posts: RwLock<Arc<HashMap<[u8; 32], Vec<String>>>>,
}

impl RegistrationKeys {
    /// The posts a key (as presented) is good for; `None` when it is no registration's key.
    pub fn posts(&self, presented: &[u8]) -> Option<Vec<String>> {
        let map = self.posts.read().map(|m| m.clone()).ok()?;
        map.get(&digest(presented)).cloned()
    }

    /// Reads the registrations again. On failure the keys known before stay in use.
    pub async fn refresh(&self, store: &Store) -> Result<(), crate::store::Error> {
        let mut map: HashMap<[u8; 32], Vec<String>> = HashMap::new();
        for registration in store.registrations().await? {
            let mut key = [0u8; 32];
            if hex::decode_to_slice(&registration.key_digest, &mut key).is_ok() {
                map.entry(key).or_default().push(registration.post_token);
            }
        }
        if let Ok(mut posts) = self.posts.write() {
            *posts = Arc::new(map);
        }
        Ok(())
    }

    /// Refreshes every [`REGISTRATION_REFRESH`] until `stop`.
    pub fn spawn_refresh(self: &Arc<Self>, store: Store, stop: CancellationToken) {
        let keys = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(REGISTRATION_REFRESH) => {}
                }
                match keys.refresh(&store).await {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "reading the registration keys failed; the keys read before stay in use");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

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

/// The identification keys to accept: the configured ones, or else the key in
/// `<data_dir>/identification_key`, generated (32 random bytes, base64url, mode 0600) when
/// the file does not exist. The key itself is never logged.
pub fn identification_keys(
    settings: &crate::config::Settings,
) -> anyhow::Result<Vec<SecretString>> {
    if !settings.divar.identification_keys.is_empty() {
        return Ok(settings.divar.identification_keys.clone());
    }
    let path = settings.server.data_dir.join("identification_key");
    let key = load_or_create_key(&path)?;
    tracing::warn!(
        path = %path.display(),
        "divar.identification_keys is not set: using the generated key stored in this file; \
         enter it in the Kenar panel or set divar.identification_keys"
    );
    Ok(vec![key])
}

fn load_or_create_key(path: &Path) -> anyhow::Result<SecretString> {
    use base64::Engine;
    use rand::RngCore;
    use std::io::Write;

    if path.exists() {
        let key =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let key = key.trim();
        anyhow::ensure!(!key.is_empty(), "{} is empty", path.display());
        let chars = key.chars().count();
        anyhow::ensure!(
            chars >= crate::config::MIN_KEY_CHARS,
            "{}: {}",
            path.display(),
            crate::config::weak_key(chars)
        );
        return Ok(SecretString::from(key.to_owned()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{key}").with_context(|| format!("writing {}", path.display()))?;
    Ok(SecretString::from(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> KeySet {
        KeySet::new(&k.iter().map(|s| SecretString::from(*s)).collect::<Vec<_>>())
    }

    #[test]
    fn every_configured_key_is_accepted() {
        let set = keys(&["old-key", "new-key"]);
        assert!(set.verify(Some(b"old-key")));
        assert!(set.verify(Some(b"new-key")));
    }

    #[test]
    fn other_values_and_absence_are_refused() {
        let set = keys(&["old-key"]);
        assert!(!set.verify(Some(b"old-ke")));
        assert!(!set.verify(Some(b"")));
        assert!(!set.verify(None));
        assert!(!keys(&[]).verify(Some(b"")));
    }

    #[test]
    fn position_tells_which_key_matched() {
        let set = keys(&["a", "b"]);
        assert_eq!(set.position(Some(b"b")), Some(1));
        assert_eq!(set.position(Some(b"c")), None);
    }

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

    #[test]
    fn debug_does_not_show_keys() {
        assert_eq!(format!("{:?}", keys(&["secret"])), "KeySet(1 keys)");
    }
}
