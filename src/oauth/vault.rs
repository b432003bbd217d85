//! Tokens at rest: AES-256-GCM under `oauth.vault_keys`, with the user id, the scope and
//! the token's kind as associated data, so a ciphertext copied onto another user's row (or
//! swapped between access and refresh) does not decrypt.
//!
//! A sealed token is `1 || key id (4 bytes) || nonce (12 bytes) || ciphertext and tag`. The
//! key id is the start of the SHA-256 of the key: it picks the key that decrypts, and tells
//! `oauth rekey` which rows are still under an old key.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub use crate::config::oauth::decode_key;

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// Which token a ciphertext holds; part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The access token.
    Access,
    /// The refresh token.
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// Why a sealed token cannot be opened. Never holds key or token material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// Sealed under a key that is not in `oauth.vault_keys` any more.
    #[error("the token is sealed under a key that oauth.vault_keys no longer holds")]
    UnknownKey,
    /// The ciphertext was changed, or belongs to another user, scope or kind.
    #[error("the sealed token does not verify (changed, or moved from another row)")]
    Corrupt,
}

struct Key {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

/// The vault keys: the first seals, all open.
pub struct Vault {
    keys: Vec<Key>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::digest(key);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

fn associated_data(user_id: &str, scope: &str, kind: TokenKind) -> Vec<u8> {
    // Lengths first, so no two (user, scope) pairs give the same bytes.
    let mut aad = Vec::with_capacity(32 + user_id.len() + scope.len());
    aad.extend_from_slice(b"kenar-hook oauth token v1\0");
    aad.extend_from_slice(kind.as_str().as_bytes());
    for part in [user_id, scope] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

impl Vault {
    /// The vault of `oauth.vault_keys`; `None` when the list is empty. The keys were checked
    /// when the settings loaded.
    pub fn new(keys: &[SecretString]) -> Result<Option<Vault>, String> {
        if keys.is_empty() {
            return Ok(None);
        }
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let bytes = decode_key(k.expose_secret())
                    .map_err(|p| format!("oauth.vault_keys[{i}]: {p}"))?;
                Ok(Key {
                    id: key_id(&bytes),
                    cipher: Aes256Gcm::new(&bytes.into()),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Some(Vault { keys }))
    }

    /// Seals a token under the first key.
    pub fn seal(
        &self,
        token: &SecretString,
        user_id: &str,
        scope: &str,
        kind: TokenKind,
    ) -> Vec<u8> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(user_id, scope, kind);
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any message shorter than 64 GiB");
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a sealed token with whichever key sealed it.
    pub fn open(
        &self,
        sealed: &[u8],
        user_id: &str,
        scope: &str,
        kind: TokenKind,
    ) -> Result<SecretString, VaultError> {
        if sealed.len() < HEADER_LEN || sealed[0] != VERSION {
            return Err(VaultError::Corrupt);
        }
        let id = &sealed[1..1 + KEY_ID_LEN];
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(VaultError::UnknownKey)?;
        let nonce = Nonce::from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        let aad = associated_data(user_id, scope, kind);
        let plain = key
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Corrupt)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| VaultError::Corrupt)
    }

    /// Whether a sealed token is under the first key already.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.len() > KEY_ID_LEN && sealed[1..1 + KEY_ID_LEN] == self.keys[0].id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn key(byte: u8) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    }

    #[test]
    fn a_token_opens_only_for_its_own_user_scope_and_kind() {
        let vault = Vault::new(&[key(1)]).unwrap().unwrap();
        let token = SecretString::from("ory_at_secret");
        let sealed = vault.seal(&token, "u1", "USER_ID", TokenKind::Access);
        assert!(!sealed.windows(13).any(|w| w == b"ory_at_secret"));
        let opened = vault.open(&sealed, "u1", "USER_ID", TokenKind::Access);
        assert_eq!(opened.unwrap().expose_secret(), "ory_at_secret");
        for (user, scope, kind) in [
            ("u2", "USER_ID", TokenKind::Access),
            ("u1", "USER_PHONE", TokenKind::Access),
            ("u1", "USER_ID", TokenKind::Refresh),
        ] {
            assert_eq!(
                vault.open(&sealed, user, scope, kind).unwrap_err(),
                VaultError::Corrupt
            );
        }
    }

    #[test]
    fn every_listed_key_opens_and_only_the_first_seals() {
        let old = Vault::new(&[key(1)]).unwrap().unwrap();
        let sealed = old.seal(&"t".into(), "u", "s", TokenKind::Refresh);
        let rotated = Vault::new(&[key(2), key(1)]).unwrap().unwrap();
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.open(&sealed, "u", "s", TokenKind::Refresh).is_ok());
        let resealed = rotated.seal(&"t".into(), "u", "s", TokenKind::Refresh);
        assert!(rotated.is_current(&resealed));
        let without_old = Vault::new(&[key(2)]).unwrap().unwrap();
        assert_eq!(
            without_old
                .open(&sealed, "u", "s", TokenKind::Refresh)
                .unwrap_err(),
            VaultError::UnknownKey
        );
    }

    #[test]
    fn a_key_that_is_not_32_bytes_is_refused_without_showing_it() {
        let problem = decode_key("c2hvcnQ=").unwrap_err();
        assert!(problem.contains("holds 5 bytes"), "{problem}");
        assert!(!problem.contains("c2hvcnQ"));
        assert!(decode_key("not base64 at all!").is_err());
    }
}
