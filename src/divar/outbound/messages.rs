//! What the client sends and what Divar answers: request and response bodies of each
//! operation. Fields that are not set are omitted, never sent as `null`.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ValidationError;
use super::buttons::{ButtonGrid, LegacyButton};
use crate::divar::lenient;

/// The only message type Divar documents.
const TEXT: &str = "TEXT";

/// Body of the legacy send-message API (docs/divar-protocol.md §2.3); `type` is always `TEXT`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacySendMessage {
    /// The consenting user the message is written as.
    pub user_id: String,
    /// Post of the conversation.
    pub post_token: String,
    /// The other participant.
    pub peer_id: String,
    /// The text, shown to both sides.
    pub message: String,
    /// Button shown only to `user_id`.
    pub sender_btn: Option<LegacyButton>,
    /// Button shown only to `peer_id`.
    pub receiver_btn: Option<LegacyButton>,
}

/// Body of send message v2 (docs/divar-protocol.md §2.4). Text, a media token, or both.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendMessage {
    /// The text; sent with `type: "TEXT"`.
    pub message: Option<String>,
    /// A media token from the upload API; a media-only message has no `type` and no text
    /// (docs/divar-protocol.md §3.21).
    pub media_token: Option<String>,
    /// Buttons shown only to the author.
    pub sender_buttons: Option<ButtonGrid>,
    /// Buttons shown only to the counterpart.
    pub receiver_buttons: Option<ButtonGrid>,
}

/// Body of the chatbot send-message APIs (docs/divar-protocol.md §2.5). The target is the path
/// parameter; `user_id`/`conversation_id` are never put in the body (§3.20).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BotMessage {
    /// The text; sent with `type: "TEXT"`.
    pub text_message: Option<String>,
    /// A media token from the upload API.
    pub media_token: Option<String>,
    /// Buttons under the message.
    pub buttons: Option<ButtonGrid>,
}

/// Body of the legacy webhook registration (docs/divar-protocol.md §2.1). The SDK's `phone` is
/// not sent.
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyRegistration {
    /// The post whose conversations are streamed.
    pub post_token: String,
    /// Absolute URL Divar POSTs CHAT_MESSAGE notifications to.
    pub endpoint: String,
    /// Secret Divar echoes in the `authorization` header of each notification; shown as
    /// `***` in a dry run.
    pub identification_key: SecretString,
}

/// Body of the events subscription API (docs/divar-protocol.md §2.2).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSubscription {
    /// [`Self::NEW_MESSAGE_ON_POST`] or [`Self::POST_UPDATE`]; kept a string so new types
    /// need no release.
    pub event_type: String,
    /// A post token; omitted or empty means every post of the user.
    pub event_resource_id: Option<String>,
    /// Echoed in each event's `metadata`; read from `meta_data` too, always sent as
    /// `metadata`. Never put secrets here: the echo is not signed.
    #[serde(alias = "meta_data")]
    pub metadata: Option<Map<String, Value>>,
}

impl EventSubscription {
    /// New messages in the conversations of a post (or of every post).
    pub const NEW_MESSAGE_ON_POST: &str = "NEW_MESSAGE_ON_POST";
    /// Changes of a post (or of every post) of the user.
    pub const POST_UPDATE: &str = "POST_UPDATE";
}

/// Answer of both send-message APIs: `{"status": 200, "message": "success"}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SendMessageResponse {
    /// Divar's status, a number or a numeric string.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub status: Option<i64>,
    /// Divar's message.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub message: Option<String>,
}

/// Answer of the chatbot send-message APIs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BotMessageResponse {
    /// The conversation created or used.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub conversation_id: Option<String>,
}

impl LegacySendMessage {
    /// Checks the ids, the text and the button captions.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (field, value) in [
            ("user_id", &self.user_id),
            ("post_token", &self.post_token),
            ("peer_id", &self.peer_id),
            ("message", &self.message),
        ] {
            if value.trim().is_empty() {
                return Err(ValidationError::EmptyField(field));
            }
        }
        if let Some(b) = &self.sender_btn {
            b.validate("sender_btn")?;
        }
        if let Some(b) = &self.receiver_btn {
            b.validate("receiver_btn")?;
        }
        Ok(())
    }

    pub(super) fn body(&self) -> Result<Value, ValidationError> {
        typed(Some(TEXT), self)
    }
}

impl SendMessage {
    /// A text message without buttons.
    pub fn text(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// Checks that there is text or media and that both grids are within Divar's limits.
    pub fn validate(&self) -> Result<(), ValidationError> {
        has_content(&self.message, &self.media_token)?;
        if let Some(grid) = &self.sender_buttons {
            grid.validate("sender_buttons")?;
        }
        if let Some(grid) = &self.receiver_buttons {
            grid.validate("receiver_buttons")?;
        }
        Ok(())
    }

    pub(super) fn body(&self) -> Result<Value, ValidationError> {
        typed(self.message.as_ref().map(|_| TEXT), self)
    }
}

impl BotMessage {
    /// A text message without buttons.
    pub fn text(text_message: impl Into<String>) -> Self {
        Self {
            text_message: Some(text_message.into()),
            ..Self::default()
        }
    }

    /// Checks that there is text or media and that the grid is within Divar's limits.
    pub fn validate(&self) -> Result<(), ValidationError> {
        has_content(&self.text_message, &self.media_token)?;
        if let Some(grid) = &self.buttons {
            grid.validate("buttons")?;
        }
        Ok(())
    }

    pub(super) fn body(&self) -> Result<Value, ValidationError> {
        typed(self.text_message.as_ref().map(|_| TEXT), self)
    }
}

impl LegacyRegistration {
    /// Checks that no field is empty and that `endpoint` is an absolute http(s) URL.
    pub fn validate(&self) -> Result<(), ValidationError> {
        use secrecy::ExposeSecret;
        if self.post_token.trim().is_empty() {
            return Err(ValidationError::EmptyField("post_token"));
        }
        if self.identification_key.expose_secret().is_empty() {
            return Err(ValidationError::EmptyField("identification_key"));
        }
        match url::Url::parse(&self.endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
            _ => Err(ValidationError::InvalidField {
                field: "endpoint",
                reason: "not an absolute http(s) URL",
            }),
        }
    }

    /// The body with the identification key masked; the real key is put in when sending.
    pub(super) fn masked_body(&self) -> Value {
        serde_json::json!({
            "post_token": self.post_token,
            "endpoint": self.endpoint,
            "identification_key": super::prepared::MASK,
        })
    }
}

impl EventSubscription {
    /// Checks that the event type is set.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.event_type.trim().is_empty() {
            return Err(ValidationError::EmptyField("event_type"));
        }
        Ok(())
    }

    pub(super) fn body(&self) -> Result<Value, ValidationError> {
        typed(None, self)
    }
}

fn has_content(text: &Option<String>, media: &Option<String>) -> Result<(), ValidationError> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if set(text) || set(media) {
        Ok(())
    } else {
        Err(ValidationError::NoContent)
    }
}

/// The JSON of `value`, with `type` added when given.
fn typed<T: Serialize>(kind: Option<&str>, value: &T) -> Result<Value, ValidationError> {
    let mut body =
        serde_json::to_value(value).map_err(|e| ValidationError::Unserializable(e.to_string()))?;
    if let (Some(kind), Value::Object(map)) = (kind, &mut body) {
        map.insert("type".to_owned(), Value::String(kind.to_owned()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_is_typed_and_media_alone_is_not() {
        assert_eq!(
            SendMessage::text("hi").body().unwrap(),
            json!({"type": "TEXT", "message": "hi"})
        );
        let media = BotMessage {
            media_token: Some("mt".into()),
            ..BotMessage::default()
        };
        assert_eq!(media.body().unwrap(), json!({"media_token": "mt"}));
        assert_eq!(
            BotMessage::default().validate(),
            Err(ValidationError::NoContent)
        );
    }

    #[test]
    fn unset_subscription_fields_are_omitted() {
        let s = EventSubscription {
            event_type: EventSubscription::POST_UPDATE.into(),
            event_resource_id: None,
            metadata: None,
        };
        assert_eq!(s.body().unwrap(), json!({"event_type": "POST_UPDATE"}));
    }

    #[test]
    fn a_registration_needs_an_absolute_endpoint() {
        let r = LegacyRegistration {
            post_token: "AZx7Kp2Q".into(),
            endpoint: "/relative".into(),
            identification_key: "k".into(),
        };
        assert!(matches!(
            r.validate(),
            Err(ValidationError::InvalidField {
                field: "endpoint",
                ..
            })
        ));
    }
}

/// The answer of `/v1/open-platform/users`: each field only when its scope was granted.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserInfo {
    /// The app-scoped user id (scope `USER_ID`): stable per user and app.
    #[serde(default, deserialize_with = "crate::divar::lenient::opt_string")]
    pub user_id: Option<String>,
}
