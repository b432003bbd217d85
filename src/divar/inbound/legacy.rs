//! The legacy `CHAT_MESSAGE` envelope (docs/divar-protocol.md §1.1).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::divar::lenient;

/// The legacy `CHAT_MESSAGE` envelope (docs/divar-protocol.md §1.1).
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyEnvelope {
    /// `"CHAT_MESSAGE"`.
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    /// When the notification was sent (unit unstated).
    #[serde(default)]
    pub timestamp: Value,
    /// The message.
    pub payload: LegacyPayload,
}

/// `payload` of the legacy envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyPayload {
    /// Message id.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    /// Message type; only `TEXT` is documented.
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub message_type: Option<String>,
    /// `{text}` for text messages.
    pub data: Option<Map<String, Value>>,
    /// The author; spelled `from` in January 2024.
    #[serde(default, alias = "from")]
    pub sender: Option<LegacyParty>,
    /// The recipient; spelled `to` in January 2024.
    #[serde(default, alias = "to")]
    pub receiver: Option<LegacyParty>,
    /// The post the conversation belongs to.
    pub metadata: Option<LegacyMetadata>,
    /// When the message was sent (unit unstated).
    #[serde(default)]
    pub sent_at: Value,
}

/// A participant of a legacy message.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LegacyParty {
    /// User id.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    /// `true` for the post owner (supply side); absent means `false`.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_supply: Option<bool>,
}

/// `payload.metadata` of the legacy envelope.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LegacyMetadata {
    /// Token of the post.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub post_token: Option<String>,
    /// Category slug of the post.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub category: Option<String>,
    /// Post title.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub title: Option<String>,
}
