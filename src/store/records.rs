//! What the store takes and gives back: records to store, outcomes, and stored rows.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageSource {
    /// The legacy `CHAT_MESSAGE` webhook.
    Legacy,
    /// The current events webhook.
    Events,
}

impl MessageSource {
    /// Every source.
    pub const ALL: [MessageSource; 2] = [MessageSource::Legacy, MessageSource::Events];

    /// The stored value: `legacy` or `events`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageSource::Legacy => "legacy",
            MessageSource::Events => "events",
        }
    }

    /// The source of a stored value.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// The three logs a stored record is in. The wire name (`as_str`) is the table's name, the
/// `kind` of a forwarded record and of the forwarding tables, the prefix of its
/// `webhook-id` and the live stream's event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A chat message.
    Message,
    /// A non-message event.
    Event,
    /// A button click.
    Click,
}

impl RecordKind {
    /// Every kind, in the order the logs are read.
    pub const ALL: [RecordKind; 3] = [RecordKind::Message, RecordKind::Event, RecordKind::Click];

    /// The wire name: `message`, `event` or `click`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Message => "message",
            RecordKind::Event => "event",
            RecordKind::Click => "click",
        }
    }

    /// The kind of a wire name.
    pub fn parse(name: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored record: its log and its `seq` there. Records are ordered by the kind's name,
/// then `seq`, as the forwarding tables list them (`order by kind, seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordRef {
    /// Its log.
    pub kind: RecordKind,
    /// Its place in that log.
    pub seq: i64,
}

impl Ord for RecordRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.kind.as_str(), self.seq).cmp(&(other.kind.as_str(), other.seq))
    }
}

impl PartialOrd for RecordRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A `seq` in each log: how far each has been written, or read by an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Positions {
    /// In the message log.
    pub message: i64,
    /// In the event log.
    pub event: i64,
    /// In the click log.
    pub click: i64,
}

impl Positions {
    /// The position in one log.
    pub fn get(&self, kind: RecordKind) -> i64 {
        match kind {
            RecordKind::Message => self.message,
            RecordKind::Event => self.event,
            RecordKind::Click => self.click,
        }
    }

    /// Moves the position in one log.
    pub fn set(&mut self, kind: RecordKind, seq: i64) {
        match kind {
            RecordKind::Message => self.message = seq,
            RecordKind::Event => self.event = seq,
            RecordKind::Click => self.click = seq,
        }
    }
}

/// What is known about a message's conversation when the message arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationFacts {
    /// Divar's conversation id, or the derived id of a legacy conversation.
    pub id: String,
    /// `POST` or `BOT`.
    pub kind: String,
    /// The post, where known.
    pub post_token: Option<String>,
    /// The post owner's user id, where known.
    pub supply_user_id: Option<String>,
    /// The other participant's user id, where known.
    pub demand_user_id: Option<String>,
}

/// A chat message ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Divar's message id; unique within its origin.
    pub id: String,
    /// Who vouched for the message, and so the scope of its id: empty for a delivery
    /// authenticated by one of the app's identification keys, the post token of a legacy
    /// registration for a delivery authenticated by that registration's key. A registration
    /// key can thereby never meet, hide or replace a message of another post.
    pub origin: String,
    /// Legacy or events webhook.
    pub source: MessageSource,
    /// `CHAT_MESSAGE`, `NEW_MESSAGE` or `NEW_CHATBOT_MESSAGE`.
    pub event_type: String,
    /// The conversation.
    pub conversation: ConversationFacts,
    /// `TEXT`, `IMAGE`, ... or a newer type, as sent.
    pub message_type: String,
    /// Text of a text message. U+0000 is stored as U+FFFD (PostgreSQL text cannot hold
    /// it); the raw body keeps the original.
    pub text: Option<String>,
    /// `SELLER` or `BUYER`.
    pub sender_side: Option<String>,
    /// `HUMAN` or `BOT`.
    pub sender_type: Option<String>,
    /// The author's user id (legacy only).
    pub sender_id: Option<String>,
    /// `SELLER` or `BUYER` (legacy only).
    pub receiver_side: Option<String>,
    /// The recipient's user id (legacy only).
    pub receiver_id: Option<String>,
    /// When it was sent; the arrival time when Divar did not say.
    pub sent_at: DateTime<Utc>,
    /// `sent_at` exactly as sent, when it was sent.
    pub sent_at_raw: Option<String>,
    /// When kenar-hook received it.
    pub received_at: DateTime<Utc>,
    /// The type-specific data object, normalised.
    pub data: Option<Value>,
    /// The envelope's `metadata` (events) or `payload.metadata` (legacy).
    pub metadata: Option<Value>,
    /// The request body exactly as received.
    pub raw_body: Vec<u8>,
}

/// A non-message event ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique: the SHA-256 of the canonical body, hex.
    pub dedupe_key: String,
    /// `USER_ACCESS_REVOCATION`, `POST_UPDATE`, `PAYMENT_TRANSACTION`, or as sent.
    pub event_type: String,
    /// Post update type or transaction state.
    pub subtype: Option<String>,
    /// User id, post token or transaction id.
    pub subject_id: Option<String>,
    /// The post, where known.
    pub post_token: Option<String>,
    /// The event's object.
    pub payload: Value,
    /// The envelope's `metadata`.
    pub metadata: Option<Value>,
    /// The request body exactly as received.
    pub raw_body: Vec<u8>,
    /// When kenar-hook received it.
    pub received_at: DateTime<Utc>,
}

/// Which request a click came as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickVersion {
    /// The legacy session-init click: replied `{status, message, url}`.
    Legacy,
    /// The v2 server-link click: replied `{url}`.
    V2,
    /// The dynamic action: replied `{action, text_message}`.
    DynamicAction,
}

impl ClickVersion {
    /// `legacy`, `v2` or `dynamic_action`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClickVersion::Legacy => "legacy",
            ClickVersion::V2 => "v2",
            ClickVersion::DynamicAction => "dynamic_action",
        }
    }

    /// The inverse of [`ClickVersion::as_str`], case-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "legacy" => Some(ClickVersion::Legacy),
            "v2" => Some(ClickVersion::V2),
            "dynamic_action" => Some(ClickVersion::DynamicAction),
            _ => None,
        }
    }
}

/// The side of the user who clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The post owner.
    Supply,
    /// The other participant.
    Demand,
}

impl Side {
    /// `supply` or `demand`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Supply => "supply",
            Side::Demand => "demand",
        }
    }

    /// A side as Divar names it (`supply`/`supplier`/`seller`, `demand`/`buyer`), or as
    /// [`Side::as_str`] wrote it; case-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "supply" | "supplier" | "seller" => Some(Side::Supply),
            "demand" | "buyer" => Some(Side::Demand),
            _ => None,
        }
    }
}

/// What a click was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickOutcome {
    /// A rule (or the fallback) gave a URL.
    Redirect,
    /// A rule gave only a text (dynamic action).
    Text,
    /// No rule matched and there is no fallback.
    NoMatch,
    /// The URL a rule's template made is not an allowed target.
    Disallowed,
}

impl ClickOutcome {
    /// Every outcome.
    pub const ALL: [ClickOutcome; 4] = [
        ClickOutcome::Redirect,
        ClickOutcome::Text,
        ClickOutcome::NoMatch,
        ClickOutcome::Disallowed,
    ];

    /// `redirect`, `text`, `no_match` or `disallowed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClickOutcome::Redirect => "redirect",
            ClickOutcome::Text => "text",
            ClickOutcome::NoMatch => "no_match",
            ClickOutcome::Disallowed => "disallowed",
        }
    }

    /// The inverse of [`ClickOutcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        ClickOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Who clicked, where: what a click request tells, whatever its version.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickFacts {
    /// v2 `source` (`POST_ADODN` read as `POST_ADDON`), or the dynamic action's touchpoint.
    pub source: Option<String>,
    /// The post.
    pub post_token: Option<String>,
    /// The conversation, where sent.
    pub conversation_id: Option<String>,
    /// The user who clicked.
    pub user_id: Option<String>,
    /// The other participant (legacy only).
    pub peer_id: Option<String>,
    /// The clicking user's side, where known.
    pub side: Option<Side>,
}

/// A button click and the answer given, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewClick {
    /// A fresh UUID.
    pub id: String,
    /// The request it came as.
    pub version: ClickVersion,
    /// Who clicked, where.
    pub facts: ClickFacts,
    /// The button's data.
    pub provider_data: Value,
    /// The rule that decided, or `fallback`; none when nothing matched.
    pub rule: Option<String>,
    /// The URL answered, if any.
    pub url: Option<String>,
    /// What it was answered.
    pub outcome: ClickOutcome,
    /// The request body exactly as received.
    pub raw_body: Vec<u8>,
    /// When kenar-hook received it.
    pub received_at: DateTime<Utc>,
}

/// A stored click.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredClick {
    /// Insertion order.
    pub seq: i64,
    /// The click as stored.
    pub click: NewClick,
}

/// A legacy webhook registration. The key itself is never stored, only its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// A fresh UUID.
    pub id: String,
    /// The registered post.
    pub post_token: String,
    /// The URL Divar sends the post's messages to.
    pub endpoint: String,
    /// SHA-256 of the identification key, hex.
    pub key_digest: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// Something to store.
// Values live for one request and are moved, not copied around: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum NewRecord {
    /// A chat message (and its conversation).
    Message(NewMessage),
    /// Any other event.
    Event(NewEvent),
    /// A button click.
    Click(NewClick),
}

/// The highest `seq` a batch stored, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewIds {
    /// Newest message stored, if any.
    pub message: Option<i64>,
    /// Newest event stored, if any.
    pub event: Option<i64>,
    /// Newest click stored, if any.
    pub click: Option<i64>,
}

impl NewIds {
    /// Whether anything was stored.
    pub fn any(&self) -> bool {
        self.message.is_some() || self.event.is_some() || self.click.is_some()
    }
}

/// Whether a record was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Inserted now.
    Stored,
    /// Already there: a redelivery. Nothing was changed.
    Duplicate,
    /// A message whose id is already held within its origin by a message of another
    /// conversation or post. Nothing was changed.
    Conflict,
}

/// A stored message as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Insertion order.
    pub seq: i64,
    /// The message as it was stored.
    pub message: NewMessage,
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConversation {
    /// Conversation id.
    pub id: String,
    /// `POST` or `BOT`.
    pub kind: String,
    /// Where its messages came from.
    pub source: MessageSource,
    /// The post, where known.
    pub post_token: Option<String>,
    /// The post owner's user id, where known.
    pub supply_user_id: Option<String>,
    /// The other participant's user id, where known.
    pub demand_user_id: Option<String>,
    /// Earliest `sent_at` of its messages.
    pub first_message_at: DateTime<Utc>,
    /// Latest `sent_at` of its messages.
    pub last_message_at: DateTime<Utc>,
    /// How many messages are stored.
    pub message_count: i64,
    /// The last message, where read: see [`super::query::PREVIEW_SEPARATOR`].
    pub last_preview: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Insertion order; the event's id.
    pub seq: i64,
    /// The event as it was stored.
    pub event: NewEvent,
}
