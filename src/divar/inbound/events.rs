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
    pub conversation: Option<Conversation>,
    /// Who wrote it.
    pub sender: Option<MessageSender>,
    /// `TEXT`, `IMAGE`, `FILE`, `VOICE`, `LOCATION`, `VIDEO`, `CONTACT`, or a newer value.
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub message_type: Option<String>,
    /// int64 microseconds or RFC 3339.
    #[serde(default)]
    pub sent_at: Value,
    /// Text of a `TEXT` message.
    pub text: Option<String>,
    /// Data of an `IMAGE` message.
    pub image_data: Option<ImageData>,
    /// Data of a `FILE` message.
    pub file_data: Option<FileData>,
    /// Data of a `VOICE` message.
    pub voice_data: Option<VoiceData>,
    /// Data of a `LOCATION` message.
    pub location_data: Option<LocationData>,
    /// Data of a `VIDEO` message.
    pub video_data: Option<VideoData>,
    /// Data of a `CONTACT` message.
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
#[serde(default)]
pub struct ImageData {
    /// URL of the image.
    pub link: Option<String>,
    /// Size in bytes.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub size_bytes: Option<u64>,
    /// Height in pixels.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub height_px: Option<u64>,
    /// Width in pixels.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub width_px: Option<u64>,
}

/// `file_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FileData {
    /// URL of the file.
    pub link: Option<String>,
    /// File name.
    pub name: Option<String>,
    /// Size in bytes.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub size_bytes: Option<u64>,
}

/// `voice_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VoiceData {
    /// URL of the recording.
    pub link: Option<String>,
    /// Size in bytes.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub size_bytes: Option<u64>,
}

/// `location_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LocationData {
    /// Latitude in degrees.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    #[serde(deserialize_with = "lenient::opt_f64")]
    pub longitude: Option<f64>,
}

/// `video_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VideoData {
    /// URL of the video.
    pub link: Option<String>,
    /// URL of its thumbnail.
    pub thumbnail_link: Option<String>,
    /// Size in bytes.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub size_bytes: Option<u64>,
}

/// `contact_data`. The phone number is personal data: never log it unmasked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactData {
    /// The contact's name; absent when the user has none.
    pub name: Option<String>,
    /// Phone number, e.g. `+989123456789`.
    pub phone: Option<String>,
}

/// The message types that carry a data object, in the order a message without a type is
/// tried against.
const DATA_TYPES: [&str; 6] = ["IMAGE", "FILE", "VOICE", "LOCATION", "VIDEO", "CONTACT"];

/// A data object as sent, absent fields left out rather than written as null.
fn object<T: Serialize>(v: &T) -> Option<Value> {
    let mut value = serde_json::to_value(v).ok()?;
    if let Value::Object(fields) = &mut value {
        fields.retain(|_, v| !v.is_null());
    }
    Some(value)
}

impl ChatMessage {
    /// The type-specific data object for this message's type, normalised (sizes as numbers).
    /// For a type this version does not know, the first `*_data` object is kept as sent.
    /// `Err` names the data field when the type requires one and it is missing.
    pub fn data(&self, path: &str, message_type: &str) -> Result<Option<Value>, WireError> {
        if message_type == "TEXT" {
            return Ok(None);
        }
        match self.data_field(message_type) {
            Some((field, value)) => value
                .map(Some)
                .ok_or_else(|| WireError::missing(format!("{path}.{field}"))),
            None => Ok(self
                .other
                .iter()
                .find(|(k, v)| k.ends_with("_data") && v.is_object())
                .map(|(_, v)| v.clone())),
        }
    }

    /// The type of a message that does not say: by the data object it carries, else `TEXT`
    /// when it has a text.
    pub fn inferred_type(&self) -> Option<&'static str> {
        DATA_TYPES
            .into_iter()
            .find(|t| self.data_field(t).is_some_and(|(_, v)| v.is_some()))
            .or(self.text.is_some().then_some("TEXT"))
    }

    /// The data field of one of [`DATA_TYPES`], and its object in this message.
    fn data_field(&self, message_type: &str) -> Option<(&'static str, Option<Value>)> {
        Some(match message_type {
            "IMAGE" => ("image_data", self.image_data.as_ref().and_then(object)),
            "FILE" => ("file_data", self.file_data.as_ref().and_then(object)),
            "VOICE" => ("voice_data", self.voice_data.as_ref().and_then(object)),
            "LOCATION" => (
                "location_data",
                self.location_data.as_ref().and_then(object),
            ),
            "VIDEO" => ("video_data", self.video_data.as_ref().and_then(object)),
            "CONTACT" => ("contact_data", self.contact_data.as_ref().and_then(object)),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(body: Value) -> ChatMessage {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn data_keeps_what_was_sent_with_sizes_as_numbers_and_no_nulls() {
        let m = message(
            json!({"image_data": {"link": "https://x/1.jpg", "size_bytes": "2048",
            "width_px": null, "extra": 1}}),
        );
        assert_eq!(
            m.data("new_message", "IMAGE").unwrap(),
            Some(json!({"link": "https://x/1.jpg", "size_bytes": 2048}))
        );
        let m = message(json!({"location_data": {"latitude": "35.7", "longitude": 51.4}}));
        assert_eq!(
            m.data("new_message", "LOCATION").unwrap(),
            Some(json!({"latitude": 35.7, "longitude": 51.4}))
        );
        let m = message(json!({"contact_data": {"phone": "+989121234567"}}));
        assert_eq!(
            m.data("new_message", "CONTACT").unwrap(),
            Some(json!({"phone": "+989121234567"}))
        );
    }

    #[test]
    fn a_size_that_is_not_a_number_is_refused_with_what_was_expected() {
        let err = serde_json::from_value::<ChatMessage>(json!({"file_data": {"size_bytes": "-1"}}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a non-negative integer, found \"-1\""),
            "{err}"
        );
        let err = serde_json::from_value::<ChatMessage>(json!({"file_data": {"size_bytes": -1}}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a non-negative integer, found -1"),
            "{err}"
        );
        let err = serde_json::from_value::<ChatMessage>(json!({"voice_data": {"size_bytes": []}}))
            .unwrap_err();
        assert!(err.to_string().contains("found []"), "{err}");
    }

    #[test]
    fn a_message_without_a_type_is_typed_by_its_data_object_then_its_text() {
        let cases = [
            (
                json!({"image_data": {"link": "https://x/1.jpg"}, "text": "t"}),
                Some("IMAGE"),
            ),
            (json!({"file_data": {}}), Some("FILE")),
            (json!({"voice_data": {}}), Some("VOICE")),
            (
                json!({"location_data": {"latitude": 35.7}}),
                Some("LOCATION"),
            ),
            (json!({"video_data": {}}), Some("VIDEO")),
            (
                json!({"contact_data": {"phone": "+989121234567"}, "text": "t"}),
                Some("CONTACT"),
            ),
            (json!({"text": "سلام"}), Some("TEXT")),
            (json!({"sticker_data": {}}), None),
            (json!({}), None),
        ];
        for (body, expected) in cases {
            assert_eq!(message(body.clone()).inferred_type(), expected, "{body}");
        }
    }

    #[test]
    fn data_of_a_required_type_that_is_missing_names_the_field() {
        let err = message(json!({})).data("new_message", "VIDEO").unwrap_err();
        assert_eq!(err.path, "new_message.video_data");
    }
}
