//! From a classified delivery to the record that is stored: ids, the derived legacy
//! conversation id, sides, times and type-specific data.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::divar::inbound::{
    ChatEventKind, ChatMessage, Delivery, LegacyEnvelope, WireError, scalar_text,
};
use crate::divar::time::parse_timestamp;
use crate::store::{ConversationFacts, MessageSource, NewEvent, NewMessage, NewRecord};

/// The rule for the id of a legacy conversation, which Divar does not send: a UUID version 5
/// in the URL namespace of `kenar-hook:legacy-conversation:{post_token}:{demand_user_id}`,
/// where the demand-side user is the participant whose `is_supply` is not true. Both
/// directions of one buyer's chat about one post get the same id.
pub fn legacy_conversation_id(post_token: &str, demand_user_id: &str) -> String {
    let name = format!("kenar-hook:legacy-conversation:{post_token}:{demand_user_id}");
    Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

/// Builds the record to store. `body` is the parsed body, `raw` the bytes as received. A
/// message's origin is left empty (the app's): the caller knows who vouched for it.
pub fn normalise(
    delivery: Delivery,
    body: &Value,
    raw: &[u8],
    received_at: DateTime<Utc>,
) -> Result<NewRecord, WireError> {
    match delivery {
        Delivery::LegacyChatMessage(envelope) => legacy(envelope, body, raw, received_at),
        Delivery::ChatMessage {
            kind,
            message,
            metadata,
        } => chat(kind, message, metadata, raw, received_at),
        Delivery::Event(event) => Ok(NewRecord::Event(NewEvent {
            dedupe_key: canonical_digest(body),
            event_type: event.event_type,
            subtype: event.subtype,
            subject_id: event.subject_id,
            post_token: event.post_token,
            payload: event.payload,
            metadata: event.metadata,
            raw_body: raw.to_vec(),
            received_at,
        })),
    }
}

fn legacy(
    envelope: LegacyEnvelope,
    body: &Value,
    raw: &[u8],
    received_at: DateTime<Utc>,
) -> Result<NewRecord, WireError> {
    let p = envelope.payload;
    let id = non_empty(p.id).ok_or_else(|| WireError::missing("payload.id"))?;
    let post_token = non_empty(p.metadata.as_ref().and_then(|m| m.post_token.clone()))
        .ok_or_else(|| WireError::missing("payload.metadata.post_token"))?;
    let party = |p: &Option<crate::divar::inbound::LegacyParty>| {
        p.as_ref()
            .and_then(|p| non_empty(p.id.clone()).map(|id| (id, p.is_supply.unwrap_or(false))))
    };
    let sender = party(&p.sender);
    let receiver = party(&p.receiver);
    let demand = [&sender, &receiver]
        .into_iter()
        .flatten()
        .find(|(_, supply)| !supply)
        .map(|(id, _)| id.clone())
        .ok_or_else(|| {
            WireError::invalid(
                "payload.sender",
                "neither sender nor receiver is a demand-side user (is_supply false) with an id",
            )
        })?;
    let supply = [&sender, &receiver]
        .into_iter()
        .flatten()
        .find(|(_, supply)| *supply)
        .map(|(id, _)| id.clone());
    let side = |party: &Option<(String, bool)>| {
        party
            .as_ref()
            .map(|(_, supply)| if *supply { "SELLER" } else { "BUYER" }.to_owned())
    };
    let sent_at = parse_timestamp(&p.sent_at)
        .map_err(|e| WireError::invalid("payload.sent_at", e))?
        .or(parse_timestamp(&envelope.timestamp).map_err(|e| WireError::invalid("timestamp", e))?)
        .unwrap_or(received_at);
    let message_type = non_empty(p.message_type)
        .map(|t| t.to_ascii_uppercase())
        .unwrap_or_else(|| "TEXT".to_owned());
    let text = p
        .data
        .as_ref()
        .and_then(|d| d.get("text"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let data = p
        .data
        .filter(|d| d.keys().any(|k| k != "text"))
        .map(Value::Object);
    Ok(NewRecord::Message(NewMessage {
        id,
        origin: String::new(),
        source: MessageSource::Legacy,
        event_type: "CHAT_MESSAGE".to_owned(),
        conversation: ConversationFacts {
            id: legacy_conversation_id(&post_token, &demand),
            kind: "POST".to_owned(),
            post_token: Some(post_token),
            supply_user_id: supply,
            demand_user_id: Some(demand),
        },
        message_type,
        text,
        sender_side: side(&sender),
        sender_type: None,
        sender_id: sender.map(|(id, _)| id),
        receiver_side: side(&receiver),
        receiver_id: receiver.map(|(id, _)| id),
        sent_at,
        sent_at_raw: scalar_text(&p.sent_at),
        received_at,
        data,
        metadata: body.pointer("/payload/metadata").cloned(),
        raw_body: raw.to_vec(),
    }))
}

fn chat(
    kind: ChatEventKind,
    message: ChatMessage,
    metadata: Option<Value>,
    raw: &[u8],
    received_at: DateTime<Utc>,
) -> Result<NewRecord, WireError> {
    let path = kind.payload_key();
    let id =
        non_empty(message.id.clone()).ok_or_else(|| WireError::missing(format!("{path}.id")))?;
    let conversation = message.conversation.clone().unwrap_or_default();
    let conversation_id = non_empty(conversation.id)
        .ok_or_else(|| WireError::missing(format!("{path}.conversation.id")))?;
    let post_token = non_empty(conversation.post_token);
    let message_type = match non_empty(message.message_type.clone()) {
        Some(t) => t.to_ascii_uppercase(),
        None => message
            .inferred_type()
            .map(str::to_owned)
            .ok_or_else(|| WireError::missing(format!("{path}.type")))?,
    };
    let data = message.data(path, &message_type)?;
    let (sender_side, sender_type) = message.sender.clone().unwrap_or_default().normalised();
    let conversation_kind = non_empty(conversation.kind)
        .map(|k| k.to_ascii_uppercase())
        .unwrap_or_else(|| match kind {
            ChatEventKind::NewChatbotMessage => "BOT".to_owned(),
            ChatEventKind::NewMessage => "POST".to_owned(),
        });
    let sent_at = parse_timestamp(&message.sent_at)
        .map_err(|e| WireError::invalid(format!("{path}.sent_at"), e))?
        .unwrap_or(received_at);
    Ok(NewRecord::Message(NewMessage {
        id,
        origin: String::new(),
        source: MessageSource::Events,
        event_type: kind.event_type().to_owned(),
        conversation: ConversationFacts {
            id: conversation_id,
            kind: conversation_kind,
            post_token,
            supply_user_id: None,
            demand_user_id: None,
        },
        message_type,
        text: message.text.clone(),
        sender_side,
        sender_type,
        sender_id: None,
        receiver_side: None,
        receiver_id: None,
        sent_at,
        sent_at_raw: scalar_text(&message.sent_at),
        received_at,
        data,
        metadata,
        raw_body: raw.to_vec(),
    }))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// SHA-256 (hex) of the body written canonically: object keys sorted, no white space. Two
/// deliveries of the same event that differ only in key order or spacing get one key.
pub fn canonical_digest(body: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(body, &mut out);
    hex::encode(Sha256::digest(&out))
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// A phone number fit for logs: the first four and last two characters, the rest masked.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 4 || i >= chars.len() - 2 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_conversation_id_is_stable_and_documented() {
        let id = legacy_conversation_id("AZx7Kp2Q", "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f");
        assert_eq!(
            id,
            legacy_conversation_id("AZx7Kp2Q", "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
        );
        assert_ne!(
            id,
            legacy_conversation_id("AZx7Kp2R", "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
        );
        assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 5);
    }

    #[test]
    fn legacy_conversation_id_is_the_documented_uuid() {
        // uuid.uuid5(uuid.NAMESPACE_URL,
        //   "kenar-hook:legacy-conversation:AZx7Kp2Q:8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
        assert_eq!(
            legacy_conversation_id("AZx7Kp2Q", "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"),
            "af198748-82bf-5e33-9353-ee8361a9a903"
        );
    }

    #[test]
    fn canonical_digest_ignores_key_order_and_spacing() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"t"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "a": {"x": "t", "y": [1, 2]}, "b": 1 }"#).unwrap();
        assert_eq!(canonical_digest(&a), canonical_digest(&b));
        assert_ne!(canonical_digest(&a), canonical_digest(&json!({"b": 2})));
    }

    #[test]
    fn phone_numbers_are_masked() {
        assert_eq!(mask_phone("+989121234567"), "+989*******67");
        assert_eq!(mask_phone("12345"), "*****");
    }
}
