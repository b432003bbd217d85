//! Stored messages read in place, borrowing from fetched rows instead of copying them.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::rows::{self, AnyRow};
use super::{ConversationFacts, Error, MessageSource, NewMessage, StoredMessage};

impl StoredMessage {
    /// The message as a [`MessageView`] borrowing from it.
    pub fn view(&self) -> MessageView<'_> {
        let m = &self.message;
        MessageView {
            seq: self.seq,
            id: &m.id,
            source: m.source,
            event_type: &m.event_type,
            conversation_id: &m.conversation.id,
            post_token: m.conversation.post_token.as_deref(),
            message_type: &m.message_type,
            text: m.text.as_deref(),
            sender_side: m.sender_side.as_deref(),
            sender_type: m.sender_type.as_deref(),
            sender_id: m.sender_id.as_deref(),
            receiver_side: m.receiver_side.as_deref(),
            receiver_id: m.receiver_id.as_deref(),
            sent_at: m.sent_at,
            sent_at_raw: m.sent_at_raw.as_deref(),
            received_at: m.received_at,
            data: m.data.as_ref().map(JsonRef::Parsed),
            metadata: m.metadata.as_ref().map(JsonRef::Parsed),
        }
    }
}

/// A JSON column as read: checked text straight from a row, or a parsed value.
#[derive(Debug, Clone, Copy)]
pub enum JsonRef<'a> {
    /// Valid JSON text, written out as it is.
    Raw(&'a RawValue),
    /// A parsed value.
    Parsed(&'a Value),
}

impl JsonRef<'_> {
    /// The value, parsed.
    pub fn to_value(self) -> Option<Value> {
        match self {
            JsonRef::Raw(raw) => serde_json::from_str(raw.get()).ok(),
            JsonRef::Parsed(value) => Some(value.clone()),
        }
    }
}

impl Serialize for JsonRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JsonRef::Raw(raw) => raw.serialize(serializer),
            JsonRef::Parsed(value) => value.serialize(serializer),
        }
    }
}

/// A stored message read in place, its text borrowed from a fetched row or a
/// [`StoredMessage`]. Lists read tens of rows per request; copying every column into owned
/// strings and parsing the JSON columns only to write them out again was a large share of
/// the read API's CPU time.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    /// Insertion order.
    pub seq: i64,
    /// Divar's message id.
    pub id: &'a str,
    /// Legacy or events webhook.
    pub source: MessageSource,
    /// `CHAT_MESSAGE`, `NEW_MESSAGE` or `NEW_CHATBOT_MESSAGE`.
    pub event_type: &'a str,
    /// The conversation.
    pub conversation_id: &'a str,
    /// The post, where known.
    pub post_token: Option<&'a str>,
    /// `TEXT`, `IMAGE`, ... or a newer type, as sent.
    pub message_type: &'a str,
    /// Text of a text message.
    pub text: Option<&'a str>,
    /// `SELLER` or `BUYER`.
    pub sender_side: Option<&'a str>,
    /// `HUMAN` or `BOT`.
    pub sender_type: Option<&'a str>,
    /// The author's user id (legacy only).
    pub sender_id: Option<&'a str>,
    /// `SELLER` or `BUYER` (legacy only).
    pub receiver_side: Option<&'a str>,
    /// The recipient's user id (legacy only).
    pub receiver_id: Option<&'a str>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// `sent_at` exactly as sent, when it was sent.
    pub sent_at_raw: Option<&'a str>,
    /// When kenar-hook received it.
    pub received_at: DateTime<Utc>,
    /// The type-specific data object.
    pub data: Option<JsonRef<'a>>,
    /// The envelope's metadata.
    pub metadata: Option<JsonRef<'a>>,
}

impl MessageView<'_> {
    /// An owned copy, without the raw body and the origin (a view has neither).
    pub fn to_stored(&self) -> StoredMessage {
        StoredMessage {
            seq: self.seq,
            message: NewMessage {
                id: self.id.to_owned(),
                origin: String::new(),
                source: self.source,
                event_type: self.event_type.to_owned(),
                conversation: ConversationFacts {
                    id: self.conversation_id.to_owned(),
                    kind: String::new(),
                    post_token: self.post_token.map(str::to_owned),
                    supply_user_id: None,
                    demand_user_id: None,
                },
                message_type: self.message_type.to_owned(),
                text: self.text.map(str::to_owned),
                sender_side: self.sender_side.map(str::to_owned),
                sender_type: self.sender_type.map(str::to_owned),
                sender_id: self.sender_id.map(str::to_owned),
                receiver_side: self.receiver_side.map(str::to_owned),
                receiver_id: self.receiver_id.map(str::to_owned),
                sent_at: self.sent_at,
                sent_at_raw: self.sent_at_raw.map(str::to_owned),
                received_at: self.received_at,
                data: self.data.and_then(JsonRef::to_value),
                metadata: self.metadata.and_then(JsonRef::to_value),
                raw_body: Vec::new(),
            },
        }
    }
}

/// Message rows as fetched, read in place through [`MessageRows::views`].
pub struct MessageRows {
    pub(super) rows: Vec<AnyRow>,
    /// Cut short by the byte budget: rows may be left.
    pub cut: bool,
}

impl MessageRows {
    /// Whether no row was found.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every row as a view borrowing from it.
    pub fn views(&self) -> Result<Vec<MessageView<'_>>, Error> {
        self.rows.iter().map(rows::message_view).collect()
    }
}

/// A page of rows as fetched.
#[derive(Debug)]
pub struct Listed<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// Cut short by the byte budget: rows may be left.
    pub cut: bool,
}
