//! Opaque keyset cursors. A cursor names the list it belongs to and a fingerprint of that
//! list's filters, so a cursor from another list or other filters is refused (400) instead of
//! silently paging something else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A time and an id (conversations; messages, in cursors made before `seq` joined their
    /// sort key).
    Time(DateTime<Utc>, String),
    /// A time, an id and a `seq` (messages: one id may be stored once per origin, so the
    /// `seq` tells apart rows of one time and id).
    Message(DateTime<Utc>, String, i64),
    /// A `seq` (events, clicks).
    Seq(i64),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    l: String,
    f: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    i: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<i64>,
}

/// A fingerprint of a list's filters, in a fixed order.
pub fn fingerprint(filters: &[(&str, Option<String>)]) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in filters {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        if let Some(v) = value {
            hasher.update(v.as_bytes());
        }
        hasher.update([1]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// The fingerprint of a message list's filters (both `/messages` and a conversation's
/// messages use it).
pub fn messages_fingerprint(q: &crate::store::query::MessageQuery) -> String {
    use crate::items::rfc3339;
    fingerprint(&[
        ("conversation_id", q.conversation_id.clone()),
        ("post_token", q.post_token.clone()),
        ("type", q.message_type.clone()),
        ("sender_side", q.sender_side.clone()),
        ("since", q.since.map(rfc3339)),
        ("until", q.until.map(rfc3339)),
        ("q", q.text.clone()),
        ("order", Some(format!("{:?}", q.order))),
    ])
}

/// Encodes a position of `list` with the filters' fingerprint.
pub fn encode(list: &str, fingerprint: &str, position: &Position) -> String {
    let (t, i, s) = match position {
        Position::Time(t, id) => (Some(t.timestamp_micros()), Some(id.clone()), None),
        Position::Message(t, id, seq) => (Some(t.timestamp_micros()), Some(id.clone()), Some(*seq)),
        Position::Seq(seq) => (None, None, Some(*seq)),
    };
    let wire = Wire {
        v: 1,
        l: list.to_owned(),
        f: fingerprint.to_owned(),
        t,
        i,
        s,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).expect("cursor serialises"))
}

/// Decodes a cursor of `list` made with the same filters.
pub fn decode(cursor: &str, list: &str, fingerprint: &str) -> Result<Position, AppError> {
    let invalid = |why: &str| AppError::InvalidParameter {
        name: "cursor".to_owned(),
        message: format!("cursor: {why}"),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid("malformed"))?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| invalid("malformed"))?;
    if wire.v != 1 || wire.l != list {
        return Err(invalid("belongs to another list"));
    }
    if wire.f != fingerprint {
        return Err(invalid("was made with other filters"));
    }
    match (wire.t, wire.i, wire.s) {
        (Some(t), Some(i), s) => DateTime::from_timestamp_micros(t)
            .map(|t| match s {
                Some(s) => Position::Message(t, i, s),
                None => Position::Time(t, i),
            })
            .ok_or_else(|| invalid("malformed")),
        (None, None, Some(s)) => Ok(Position::Seq(s)),
        _ => Err(invalid("malformed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let f = fingerprint(&[("post_token", Some("AZ".into()))]);
        let p = Position::Time(
            DateTime::from_timestamp_micros(1_741_508_067_315_000).unwrap(),
            "m".into(),
        );
        assert_eq!(
            decode(&encode("messages", &f, &p), "messages", &f).unwrap(),
            p
        );
        let p = Position::Message(DateTime::UNIX_EPOCH, "m".into(), 7);
        assert_eq!(
            decode(&encode("messages", &f, &p), "messages", &f).unwrap(),
            p
        );
    }

    #[test]
    fn foreign_and_malformed_cursors_are_refused() {
        let f = fingerprint(&[]);
        let c = encode("events", &f, &Position::Seq(5));
        assert!(decode(&c, "clicks", &f).is_err());
        assert!(decode(&c, "events", &fingerprint(&[("type", Some("X".into()))])).is_err());
        assert!(decode("!!!", "events", &f).is_err());
        assert!(decode("e30", "events", &f).is_err());
    }
}
