//! The identification keys (configured, or generated into the data folder) and checking the
//! `authorization` header Divar sends against them, in constant time.

use std::path::Path;

use anyhow::Context;
use axum::http::{HeaderMap, header};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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

/// How a random token (a sign-in state, a stream ticket, an inbox session) is stored: the
/// hex SHA-256 of its text.
pub fn stored_digest(token: &str) -> String {
    hex::encode(digest(token.as_bytes()))
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
    use std::io::Write;

    if path.exists() {
        let key =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let key = key.trim();
        anyhow::ensure!(!key.is_empty(), "{} is empty", path.display());
        if let Err(problem) = crate::config::strong_identification_key(key) {
            anyhow::bail!("{}: {problem}", path.display());
        }
        return Ok(SecretString::from(key.to_owned()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = random_token();
    let mut file = crate::private_file::create_new(Some(crate::private_file::PRIVATE))
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{key}").with_context(|| format!("writing {}", path.display()))?;
    Ok(SecretString::from(key))
}

/// A new token of the shape [`is_random_token`] accepts: 32 random bytes in URL-safe
/// base64.
pub fn random_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of the cookie `name` among a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether `text` has the shape of a token this service makes (sign-in states, stream
/// tickets): 32 random bytes in URL-safe base64, 43 characters. Anything else is refused
/// without a lookup.
pub fn is_random_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
    fn debug_does_not_show_keys() {
        assert_eq!(format!("{:?}", keys(&["secret"])), "KeySet(1 keys)");
    }
}
