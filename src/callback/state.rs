//! The signed `state` parameter: the click's facts, serialised as compact JSON, signed with
//! HMAC-SHA256, so the app's landing page can trust them.
//!
//! Format: `base64url(payload) "." base64url(hmac_sha256(key, base64url(payload)))`, both
//! parts without padding; the MAC is computed over the ASCII text of the first part. The
//! payload is a JSON object:
//! `{"v":1,"post_token":..,"conversation_id":..,"user_id":..,"side":..,"data":{..},
//! "iat":<unix seconds>,"exp":<unix seconds>,"nonce":<16 random bytes, base64url>}`;
//! unknown facts are `null`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::click::Click;

type HmacSha256 = Hmac<Sha256>;

/// What a `state` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateClaims {
    /// Format version: 1.
    pub v: u32,
    /// The post.
    pub post_token: Option<String>,
    /// The conversation.
    pub conversation_id: Option<String>,
    /// The user who clicked.
    pub user_id: Option<String>,
    /// `supply` or `demand`.
    pub side: Option<String>,
    /// The button's data.
    pub data: Map<String, Value>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// 16 random bytes, base64url: makes every state unique.
    pub nonce: String,
}

/// Why a `state` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not two base64url parts joined by a dot.
    #[error("malformed state")]
    Malformed,
    /// The signature does not match: wrong key or tampered content.
    #[error("bad signature")]
    BadSignature,
    /// The signature matches but the payload is not the expected JSON.
    #[error("unreadable payload")]
    BadPayload,
    /// Past its `exp`.
    #[error("expired at {0}")]
    Expired(i64),
    /// A format version this build does not know: its fields may mean something else.
    #[error("unknown state version {0}")]
    UnknownVersion(u32),
}

/// The format version written and accepted.
pub const VERSION: u32 = 1;

impl StateClaims {
    /// The claims of a click, valid for `ttl_secs` from `now` (Unix seconds).
    pub fn for_click(click: &Click, now: i64, ttl_secs: u64) -> Self {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        StateClaims {
            v: VERSION,
            post_token: click.facts.post_token.clone(),
            conversation_id: click.facts.conversation_id.clone(),
            user_id: click.facts.user_id.clone(),
            side: click.facts.side.map(|s| s.as_str().to_owned()),
            data: click.data.clone(),
            iat: now,
            exp: now.saturating_add(ttl_secs as i64),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
        }
    }
}

fn mac(key: &[u8], payload_b64: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(payload_b64.as_bytes());
    mac
}

/// Serialises and signs claims.
pub fn sign(claims: &StateClaims, key: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let signature = URL_SAFE_NO_PAD.encode(mac(key, &payload).finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// Checks a state's signature (in constant time) and expiry at `now` (Unix seconds).
pub fn verify(state: &str, key: &[u8], now: i64) -> Result<StateClaims, StateError> {
    let (payload, signature) = state.trim().split_once('.').ok_or(StateError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| StateError::Malformed)?;
    mac(key, payload)
        .verify_slice(&signature)
        .map_err(|_| StateError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| StateError::BadPayload)?;
    let claims: StateClaims = serde_json::from_slice(&json).map_err(|_| StateError::BadPayload)?;
    if claims.v != VERSION {
        return Err(StateError::UnknownVersion(claims.v));
    }
    if now >= claims.exp {
        return Err(StateError::Expired(claims.exp));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ClickVersion;
    use serde_json::json;

    const KEY: &[u8] = b"state-signing-key";

    fn claims() -> StateClaims {
        let click = Click::parse(
            ClickVersion::V2,
            &json!({"source": "CHAT_MESSAGE_ACTION", "post_token": "AZx7Kp2Q",
                "conversation_id": "c-1", "user_side": "Demand", "user_id": "u-1",
                "extra_data": {"order_id": "ord_1"}}),
        )
        .unwrap();
        StateClaims::for_click(&click, 1_700_000_000, 600)
    }

    #[test]
    fn a_signed_state_verifies_to_its_claims() {
        let c = claims();
        let state = sign(&c, KEY);
        assert_eq!(verify(&state, KEY, 1_700_000_001).unwrap(), c);
        assert_eq!(c.side.as_deref(), Some("demand"));
        assert_eq!(c.exp, 1_700_000_600);
    }

    #[test]
    fn an_expired_state_fails() {
        let state = sign(&claims(), KEY);
        assert_eq!(
            verify(&state, KEY, 1_700_000_600),
            Err(StateError::Expired(1_700_000_600))
        );
    }

    #[test]
    fn a_signed_state_of_another_version_fails() {
        let mut c = claims();
        c.v = 2;
        assert_eq!(
            verify(&sign(&c, KEY), KEY, 1_700_000_001),
            Err(StateError::UnknownVersion(2))
        );
    }

    #[test]
    fn tampering_with_either_part_or_the_key_fails() {
        let state = sign(&claims(), KEY);
        let (payload, signature) = state.split_once('.').unwrap();
        let forged = {
            let mut c = claims();
            c.user_id = Some("someone-else".into());
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
        };
        let flip = |s: &str| {
            let mut b = s.as_bytes().to_vec();
            b[3] = if b[3] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        let now = 1_700_000_001;
        assert_eq!(
            verify(&format!("{forged}.{signature}"), KEY, now),
            Err(StateError::BadSignature)
        );
        assert_eq!(
            verify(&format!("{}.{signature}", flip(payload)), KEY, now),
            Err(StateError::BadSignature)
        );
        assert_eq!(
            verify(&format!("{payload}.{}", flip(signature)), KEY, now),
            Err(StateError::BadSignature)
        );
        assert_eq!(
            verify(&state, b"another-key", now),
            Err(StateError::BadSignature)
        );
        assert_eq!(verify(payload, KEY, now), Err(StateError::Malformed));
        assert_eq!(
            verify(&format!("{payload}.!!"), KEY, now),
            Err(StateError::Malformed)
        );
    }

    /// Fixed claims: a fixed time and nonce, so the output is fixed too.
    fn fixed_claims() -> StateClaims {
        let mut data = Map::new();
        data.insert("order_id".into(), json!("ord_1"));
        StateClaims {
            v: VERSION,
            post_token: Some("AZx7Kp2Q".into()),
            conversation_id: Some("c-1".into()),
            user_id: Some("u-1".into()),
            side: Some("demand".into()),
            data,
            iat: 1_700_000_000,
            exp: 1_700_000_600,
            nonce: "AAECAwQFBgcICQoLDA0ODw".into(),
        }
    }

    // Landing pages verify these states with their own code: a change of the format must
    // fail here, not only in a round trip through this module.
    const FIXED_STATE: &str = "eyJ2IjoxLCJwb3N0X3Rva2VuIjoiQVp4N0twMlEiLCJjb252ZXJzYXRpb25faWQiOiJjLTEiLCJ1c2VyX2lkIjoidS0xIiwic2lkZSI6ImRlbWFuZCIsImRhdGEiOnsib3JkZXJfaWQiOiJvcmRfMSJ9LCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDYwMCwibm9uY2UiOiJBQUVDQXdRRkJnY0lDUW9MREEwT0R3In0.sm_t04pHMgFnXUlgeheguA8pfm_Urtak07xni1eiOvA";

    #[test]
    fn the_state_format_is_fixed() {
        assert_eq!(sign(&fixed_claims(), KEY), FIXED_STATE);
    }

    #[test]
    fn a_literal_state_verifies_to_its_claims() {
        assert_eq!(verify(FIXED_STATE, KEY, 1_700_000_599), Ok(fixed_claims()));
        assert_eq!(
            verify(FIXED_STATE, KEY, 1_700_000_600),
            Err(StateError::Expired(1_700_000_600))
        );
    }

    #[test]
    fn claims_of_a_click_take_the_given_time() {
        let c = claims();
        assert_eq!((c.iat, c.exp), (1_700_000_000, 1_700_000_600));
        assert_eq!(URL_SAFE_NO_PAD.decode(&c.nonce).unwrap().len(), 16);
        assert_ne!(c.nonce, claims().nonce, "a fresh nonce each time");
    }
}
