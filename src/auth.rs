//! Checking the `authorization` header Divar sends against the configured identification
//! keys, in constant time.

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

    /// Whether `presented` equals one of the keys.
    pub fn verify(&self, presented: Option<&[u8]>) -> bool {
        self.position(presented).is_some()
    }
}

/// The raw value of the `authorization` header, if present.
pub fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())
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
