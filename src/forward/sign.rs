//! Standard Webhooks signatures: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`,
//! one per secret, space-separated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The keys an endpoint signs with: the current secret first, then the previous ones.
#[derive(Clone)]
pub struct Signer {
    keys: std::sync::Arc<[Vec<u8>]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} keys)", self.keys.len())
    }
}

impl Signer {
    /// A signer over decoded secrets.
    pub fn new(keys: Vec<Vec<u8>>) -> Self {
        Signer { keys: keys.into() }
    }

    /// The `webhook-signature` value.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.keys
            .iter()
            .map(|key| {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
                mac.update(id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification.
    #[test]
    fn the_specification_example_signs_alike() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signer = Signer::new(vec![key]);
        assert_eq!(
            signer.signature(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_secret_signs_during_a_rotation() {
        let signer = Signer::new(vec![
            b"0123456789abcdef".to_vec(),
            b"fedcba9876543210".to_vec(),
        ]);
        let value = signer.signature("message_0123456789abcdef0123456789abcdef_1", 1, b"{}");
        assert_eq!(value.split(' ').count(), 2);
        assert!(value.split(' ').all(|s| s.starts_with("v1,")));
    }
}
