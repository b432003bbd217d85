//! The current events' chat message: `new_message` and `new_chatbot_message`
//! (docs/divar-protocol.md §1.2.2), and its type-specific data.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::WireError;
use crate::divar::lenient;

/// The ChatMessage of `new_message` and `new_chatbot_message` (docs/divar-protocol.md §1.2.2).
#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    /// Message id.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub conversation: Option<Conversation>,
    /// Who wrote it.
    #[serde(default)]
    pub sender: Option<MessageSender>,
    /// `TEXT`, `IMAGE`, `FILE`, `VOICE`, `LOCATION`, `VIDEO`, `CONTACT`, or a newer value.
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub message_type: Option<String>,
    /// int64 microseconds or RFC 3339.
    #[serde(default)]
    pub sent_at: Value,
    /// Text of a `TEXT` message.
    #[serde(default)]
    pub text: Option<String>,
    /// Data of an `IMAGE` message.
    #[serde(default)]
    pub image_data: Option<ImageData>,
    /// Data of a `FILE` message.
    #[serde(default)]
    pub file_data: Option<FileData>,
    /// Data of a `VOICE` message.
    #[serde(default)]
    pub voice_data: Option<VoiceData>,
    /// Data of a `LOCATION` message.
    #[serde(default)]
    pub location_data: Option<LocationData>,
    /// Data of a `VIDEO` message.
    #[serde(default)]
    pub video_data: Option<VideoData>,
    /// Data of a `CONTACT` message.
    #[serde(default)]
    pub contact_data: Option<ContactData>,
    /// Fields this version does not know, e.g. the data object of a newer message type.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The conversation of a ChatMessage.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Conversation {
    /// Conversation id.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    /// `POST` or `BOT`.
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    /// Only for `POST` conversations.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub post_token: Option<String>,
}

/// The sender of a ChatMessage as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageSender {
    /// `SELLER` or `BUYER`; absent for chatbot messages.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub side: Option<String>,
    /// `HUMAN` or `BOT` (also seen: `USER`, and the side itself).
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
}

impl MessageSender {
    /// The sender with the documented inconsistencies resolved (docs/divar-protocol.md §3.11):
    /// `USER` becomes `HUMAN`; a `SELLER`/`BUYER` in `type` with no `side` becomes the side.
    /// Values are upper-cased; unknown values are kept.
    pub fn normalised(&self) -> (Option<String>, Option<String>) {
        let up = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_uppercase)
        };
        let mut side = up(&self.side);
        let mut kind = up(&self.kind);
        if side.is_none() && matches!(kind.as_deref(), Some("SELLER" | "BUYER")) {
            side = kind.take();
        }
        if kind.as_deref() == Some("USER") {
            kind = Some("HUMAN".to_owned());
        }
        (side, kind)
    }
}

/// `image_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageData {
    /// URL of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Size in bytes.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub size_bytes: Option<u64>,
    /// Height in pixels.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub height_px: Option<u64>,
    /// Width in pixels.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub width_px: Option<u64>,
}

/// `file_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileData {
    /// URL of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// File name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size in bytes.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub size_bytes: Option<u64>,
}

/// `voice_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VoiceData {
    /// URL of the recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Size in bytes.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub size_bytes: Option<u64>,
}

/// `location_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LocationData {
    /// Latitude in degrees.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub longitude: Option<f64>,
}

/// `video_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VideoData {
    /// URL of the video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// URL of its thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_link: Option<String>,
    /// Size in bytes.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub size_bytes: Option<u64>,
}

/// `contact_data`. The phone number is personal data: never log it unmasked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContactData {
    /// The contact's name; absent when the user has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phone number, e.g. `+989123456789`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl ChatMessage {
    /// The type-specific data object for this message's type, normalised (sizes as numbers).
    /// For a type this version does not know, the first `*_data` object is kept as sent.
    /// `Err` names the data field when the type requires one and it is missing.
    pub fn data(&self, path: &str, message_type: &str) -> Result<Option<Value>, WireError> {
        fn some<T: Serialize>(v: &T) -> Option<Value> {
            serde_json::to_value(v).ok()
        }
        let (field, value) = match message_type {
            "TEXT" => return Ok(None),
            "IMAGE" => ("image_data", self.image_data.as_ref().and_then(some)),
            "FILE" => ("file_data", self.file_data.as_ref().and_then(some)),
            "VOICE" => ("voice_data", self.voice_data.as_ref().and_then(some)),
            "LOCATION" => ("location_data", self.location_data.as_ref().and_then(some)),
            "VIDEO" => ("video_data", self.video_data.as_ref().and_then(some)),
            "CONTACT" => ("contact_data", self.contact_data.as_ref().and_then(some)),
            _ => {
                return Ok(self
                    .other
                    .iter()
                    .find(|(k, v)| k.ends_with("_data") && v.is_object())
                    .map(|(_, v)| v.clone()));
            }
        };
        match value {
            Some(v) => Ok(Some(v)),
            None => Err(WireError::missing(format!("{path}.{field}"))),
        }
    }
}
