//! Wire types of what Divar POSTs to the webhook — the legacy `CHAT_MESSAGE` envelope
//! (docs/divar-protocol.md §1.1) and the current events envelope (§1.2) — and [`classify`],
//! which decides which one a body is. Every field is optional at this level and every enum
//! is kept as a string, so a new Divar value never fails to parse (§3).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

mod events;
mod legacy;

pub use events::*;
pub use legacy::*;

/// A problem with a delivery's content: the JSON path of the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct WireError {
    /// Dotted JSON path, e.g. `new_message.id`.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

impl WireError {
    /// A field that its type requires is missing or empty.
    pub fn missing(path: impl Into<String>) -> Self {
        WireError {
            path: path.into(),
            problem: "is required".to_owned(),
        }
    }

    /// A field that is present but unusable.
    pub fn invalid(path: impl Into<String>, problem: impl Into<String>) -> Self {
        WireError {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// One delivery to the webhook, classified by its shape.
// Values live for one request and are moved, not copied around: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The legacy `CHAT_MESSAGE` envelope.
    LegacyChatMessage(LegacyEnvelope),
    /// `NEW_MESSAGE` or `NEW_CHATBOT_MESSAGE`.
    ChatMessage {
        /// Which of the two.
        kind: ChatEventKind,
        message: ChatMessage,
        /// The subscription's `metadata` echo.
        metadata: Option<Value>,
    },
    /// `USER_ACCESS_REVOCATION`, `POST_UPDATE`, `PAYMENT_TRANSACTION`, or any other event
    /// that is not a chat message.
    Event(OtherEvent),
}

/// Which events-API message a [`Delivery::ChatMessage`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatEventKind {
    /// `new_message`: a message in a post conversation.
    NewMessage,
    /// `new_chatbot_message`: a message to the app's chatbot.
    NewChatbotMessage,
}

impl ChatEventKind {
    /// The delivered `type` value.
    pub fn event_type(self) -> &'static str {
        match self {
            ChatEventKind::NewMessage => "NEW_MESSAGE",
            ChatEventKind::NewChatbotMessage => "NEW_CHATBOT_MESSAGE",
        }
    }

    /// The key of the envelope's object that holds the message.
    pub(crate) fn payload_key(self) -> &'static str {
        match self {
            ChatEventKind::NewMessage => "new_message",
            ChatEventKind::NewChatbotMessage => "new_chatbot_message",
        }
    }
}

/// A delivery that is not a chat message: known event types with their normalised facts,
/// and unknown ones kept as they came.
#[derive(Debug, Clone)]
pub struct OtherEvent {
    /// The event type: the envelope's `type`, or the one implied by the payload key, or
    /// `UNKNOWN`.
    pub event_type: String,
    /// A finer kind: the post update's `type`, the transaction's `state`.
    pub subtype: Option<String>,
    /// Who or what the event is about: the user id, the post token, the transaction id.
    pub subject_id: Option<String>,
    /// The post the event concerns, where known.
    pub post_token: Option<String>,
    /// The event's own object (e.g. the `post_update` value), or the whole body when unknown.
    pub payload: Value,
    /// The subscription's `metadata` echo.
    pub metadata: Option<Value>,
}

/// Decides what a parsed body is. The payload key present decides first and `type` second
/// (docs/divar-protocol.md §3.10), so a body whose `type` disagrees with its payload is still
/// read by its payload.
/// A body of a type this version does not know is an [`OtherEvent`] with the whole body as
/// payload; only a known type that lacks what it requires is an error.
pub fn classify(body: &Value) -> Result<Delivery, WireError> {
    let Some(obj) = body.as_object() else {
        return Ok(Delivery::Event(unknown_event(None, body)));
    };
    let declared = obj.get("type").and_then(Value::as_str).map(str::trim);
    let metadata = obj
        .get("metadata")
        .or_else(|| obj.get("meta_data"))
        .filter(|v| !v.is_null())
        .cloned();

    for kind in [ChatEventKind::NewMessage, ChatEventKind::NewChatbotMessage] {
        if obj.contains_key(kind.payload_key()) || declared == Some(kind.event_type()) {
            let message = field::<ChatMessage>(obj, kind.payload_key())?;
            return Ok(Delivery::ChatMessage {
                kind,
                message,
                metadata,
            });
        }
    }
    if obj.contains_key("payload") || declared == Some("CHAT_MESSAGE") {
        let envelope: LegacyEnvelope = typed(body, "")?;
        return Ok(Delivery::LegacyChatMessage(envelope));
    }
    if obj.contains_key("user_access_revocation") || declared == Some("USER_ACCESS_REVOCATION") {
        let payload = required_object(obj, "user_access_revocation")?;
        let user_id = required_str(&payload, "user_access_revocation", "user_id")?;
        return Ok(Delivery::Event(OtherEvent {
            event_type: "USER_ACCESS_REVOCATION".to_owned(),
            subtype: None,
            subject_id: Some(user_id),
            post_token: None,
            payload,
            metadata,
        }));
    }
    if obj.contains_key("post_update") || declared == Some("POST_UPDATE") {
        let payload = required_object(obj, "post_update")?;
        let post = payload
            .get("post")
            .filter(|p| p.is_object())
            .ok_or_else(|| WireError::missing("post_update.post"))?;
        let token = required_str(post, "post_update.post", "token")?;
        return Ok(Delivery::Event(OtherEvent {
            event_type: "POST_UPDATE".to_owned(),
            subtype: opt_str(&payload, "type"),
            subject_id: Some(token.clone()),
            post_token: Some(token),
            payload,
            metadata,
        }));
    }
    let payment_key = ["payment_transaction", "transaction"]
        .into_iter()
        .find(|k| obj.contains_key(*k));
    if payment_key.is_some() || declared == Some("PAYMENT_TRANSACTION") {
        let key = payment_key.unwrap_or("payment_transaction");
        let payload = required_object(obj, key)?;
        let id = required_str(&payload, key, "id")?;
        return Ok(Delivery::Event(OtherEvent {
            event_type: "PAYMENT_TRANSACTION".to_owned(),
            subtype: payload.get("state").and_then(scalar_text),
            subject_id: Some(id),
            post_token: None,
            payload,
            metadata,
        }));
    }
    Ok(Delivery::Event(
        unknown_event(declared, body).with_metadata(metadata),
    ))
}

impl OtherEvent {
    fn with_metadata(mut self, metadata: Option<Value>) -> Self {
        self.metadata = metadata;
        self
    }
}

fn unknown_event(declared: Option<&str>, body: &Value) -> OtherEvent {
    OtherEvent {
        event_type: declared
            .filter(|t| !t.is_empty())
            .unwrap_or("UNKNOWN")
            .to_owned(),
        subtype: None,
        subject_id: None,
        post_token: None,
        payload: body.clone(),
        metadata: None,
    }
}

/// An enum value (or a time) that may be text or a number; kept as text, `None` when empty.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn opt_str(obj: &Value, key: &str) -> Option<String> {
    obj.get(key).and_then(scalar_text)
}

fn required_object(obj: &Map<String, Value>, key: &str) -> Result<Value, WireError> {
    match obj.get(key) {
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(Value::Null) | None => Err(WireError::missing(key)),
        Some(_) => Err(WireError::invalid(key, "must be an object")),
    }
}

fn required_str(obj: &Value, path: &str, key: &str) -> Result<String, WireError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            Err(WireError::missing(format!("{path}.{key}")))
        }
        Some(_) => Err(WireError::invalid(
            format!("{path}.{key}"),
            "must be a string",
        )),
    }
}

fn field<T: DeserializeOwned>(obj: &Map<String, Value>, key: &str) -> Result<T, WireError> {
    match obj.get(key) {
        Some(v @ Value::Object(_)) => typed(v, key),
        Some(Value::Null) | None => Err(WireError::missing(key)),
        Some(_) => Err(WireError::invalid(key, "must be an object")),
    }
}

/// Deserialises with the failing field's path in the error.
fn typed<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, WireError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, ".") => "body".to_owned(),
            (true, _) => inner,
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        let message = e.into_inner().to_string();
        let problem = message
            .strip_prefix("missing field ")
            .map(|f| format!("field {f} is required"))
            .unwrap_or(message);
        WireError::invalid(path, problem)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_key_wins_over_type() {
        let body = json!({"type": "SOMETHING", "new_message": {"id": "m"}});
        assert!(matches!(
            classify(&body).unwrap(),
            Delivery::ChatMessage {
                kind: ChatEventKind::NewMessage,
                ..
            }
        ));
    }

    #[test]
    fn declared_type_without_payload_names_the_missing_field() {
        let err = classify(&json!({"type": "NEW_MESSAGE"})).unwrap_err();
        assert_eq!(err.path, "new_message");
    }

    #[test]
    fn wrong_field_type_names_its_path() {
        let err = classify(&json!({"new_message": {"conversation": {"id": []}}})).unwrap_err();
        assert_eq!(err.path, "new_message.conversation.id");
    }

    #[test]
    fn sender_type_variants_are_normalised() {
        let s = |side: Option<&str>, kind: Option<&str>| MessageSender {
            side: side.map(str::to_owned),
            kind: kind.map(str::to_owned),
        };
        assert_eq!(
            s(None, Some("SELLER")).normalised(),
            (Some("SELLER".into()), None)
        );
        assert_eq!(
            s(Some("buyer"), Some("USER")).normalised(),
            (Some("BUYER".into()), Some("HUMAN".into()))
        );
        assert_eq!(
            s(None, Some("HUMAN")).normalised(),
            (None, Some("HUMAN".into()))
        );
    }

    #[test]
    fn unknown_shapes_are_events_of_their_declared_type() {
        let Delivery::Event(e) = classify(&json!({"type": "NEW_FEATURE", "x": 1})).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(e.event_type, "NEW_FEATURE");
        let Delivery::Event(e) = classify(&json!([1, 2])).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(e.event_type, "UNKNOWN");
    }
}
