//! The JSON shapes of stored records and their pages: the read API answers them, the live
//! stream sends them and forwarding pushes them.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::store::query::{LogQuery, StreamQuery};
use crate::store::{
    JsonRef, MessageView, RecordKind, RecordRef, Store, StoredClick, StoredConversation,
    StoredEvent,
};

/// RFC 3339 in UTC with microseconds, e.g. `2025-03-09T08:14:27.315000Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A participant of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Participant<'a> {
    /// `SELLER` or `BUYER`, where known.
    pub side: Option<&'a str>,
    /// `HUMAN` or `BOT`, where known.
    #[serde(rename = "type")]
    pub kind: Option<&'a str>,
    /// User id, where known (legacy messages).
    pub id: Option<&'a str>,
}

// Borrows from the row or message it shows: a page is written out without copying its text.
/// A stored chat message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageItem<'a> {
    /// Divar's message id.
    pub id: &'a str,
    /// The conversation (derived for legacy messages).
    pub conversation_id: &'a str,
    /// The post, where known.
    pub post_token: Option<&'a str>,
    /// `TEXT`, `IMAGE`, `FILE`, `VOICE`, `LOCATION`, `VIDEO`, `CONTACT`, or a newer type.
    #[serde(rename = "type")]
    pub message_type: &'a str,
    /// The text; `null` for other types.
    pub text: Option<&'a str>,
    /// Who wrote it.
    pub sender: Participant<'a>,
    /// Who received it, where known.
    pub receiver: Option<Participant<'a>>,
    /// When it was sent (RFC 3339, UTC).
    pub sent_at: String,
    /// When kenar-hook received it (RFC 3339, UTC).
    pub received_at: String,
    /// `legacy` or `events`.
    pub source: &'static str,
    /// `CHAT_MESSAGE`, `NEW_MESSAGE` or `NEW_CHATBOT_MESSAGE`.
    pub event_type: &'a str,
    /// The type-specific object: links and sizes, location, contact with phone number
    /// (masked without the `pii` scope).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Shown<'a>>,
    /// The subscription's metadata echo, or the legacy post metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Shown<'a>>,
    /// The body exactly as received; only with `include=raw`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub raw: Option<Cow<'a, str>>,
}

impl<'a> MessageItem<'a> {
    /// The API shape of a stored message, with its raw body when one is given.
    pub fn new(m: &MessageView<'a>, raw_body: Option<&'a [u8]>) -> Self {
        let receiver =
            (m.receiver_id.is_some() || m.receiver_side.is_some()).then_some(Participant {
                side: m.receiver_side,
                kind: None,
                id: m.receiver_id,
            });
        MessageItem {
            id: m.id,
            conversation_id: m.conversation_id,
            post_token: m.post_token,
            message_type: m.message_type,
            text: m.text,
            sender: Participant {
                side: m.sender_side,
                kind: m.sender_type,
                id: m.sender_id,
            },
            receiver,
            sent_at: rfc3339(m.sent_at),
            received_at: rfc3339(m.received_at),
            source: m.source.as_str(),
            event_type: m.event_type,
            data: m.data.map(Shown::Stored),
            metadata: m.metadata.map(Shown::Stored),
            raw: raw_body.map(String::from_utf8_lossy),
        }
    }

    /// This item with its phone numbers and contact names masked (and no raw body).
    pub fn without_pii(mut self) -> Self {
        self.data = self.data.map(Shown::masked);
        self.metadata = self.metadata.map(Shown::masked);
        self.raw = None;
        self
    }

    /// This item as a reader sees it: whole with `pii`, masked without.
    pub fn for_reader(self, pii: bool) -> Self {
        if pii { self } else { self.without_pii() }
    }
}

/// A JSON column of a message as shown: as stored, or with its personal data masked.
#[derive(Debug)]
pub enum Shown<'a> {
    /// As stored.
    Stored(JsonRef<'a>),
    /// Masked by [`crate::pii::mask`].
    Masked(Value),
}

impl Shown<'_> {
    fn masked(self) -> Self {
        let Shown::Stored(stored) = self else {
            return self;
        };
        if let JsonRef::Raw(raw) = stored {
            if !crate::pii::may_hold_phone(raw.get()) {
                return self;
            }
        }
        let Some(mut value) = stored.to_value() else {
            return self;
        };
        if crate::pii::mask(&mut value) {
            Shown::Masked(value)
        } else {
            self
        }
    }
}

impl Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Shown::Stored(stored) => stored.serialize(serializer),
            Shown::Masked(value) => value.serialize(serializer),
        }
    }
}

/// The two sides of a conversation, where known.
#[derive(Debug, Serialize, ToSchema)]
pub struct Participants {
    /// The post owner's user id.
    pub supply: Option<String>,
    /// The other participant's user id.
    pub demand: Option<String>,
}

/// A stored conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationItem {
    /// Conversation id.
    pub id: String,
    /// `POST` or `BOT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `legacy` or `events`.
    pub source: String,
    /// The post, where known.
    pub post_token: Option<String>,
    /// The post's title, where the last message gave it (legacy messages do); only with
    /// the last message.
    pub post_title: Option<String>,
    /// Participants where known (legacy messages name them; events do not).
    pub participants: Participants,
    /// Earliest `sent_at` (RFC 3339, UTC).
    pub first_message_at: String,
    /// Latest `sent_at` (RFC 3339, UTC).
    pub last_message_at: String,
    /// Stored messages.
    pub message_count: i64,
    /// The latest message, shortened: on one conversation, and on a list with
    /// `include=last_message`.
    pub last_message: Option<LastMessage>,
}

/// The latest message of a conversation, shortened.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastMessage {
    /// TEXT, IMAGE, FILE, VOICE, LOCATION, VIDEO or CONTACT.
    #[serde(rename = "type")]
    pub kind: String,
    /// `SELLER`, `BUYER` or `BOT` where known.
    pub sender_side: Option<String>,
    /// Its first 120 characters, if it has text.
    pub text: Option<String>,
}

impl LastMessage {
    /// The message and the post title of a stored `last_preview`.
    fn parse(preview: &str) -> Option<(Self, Option<String>)> {
        let mut parts = preview.splitn(3, crate::store::query::PREVIEW_SEPARATOR);
        let (kind, side) = parts.next()?.split_once(' ')?;
        let title = parts.next()?;
        let text = parts.next().unwrap_or("");
        let message = LastMessage {
            kind: kind.to_owned(),
            sender_side: (side != "-").then(|| side.to_owned()),
            text: (!text.is_empty()).then(|| text.to_owned()),
        };
        Some((message, (!title.is_empty()).then(|| title.to_owned())))
    }
}

impl From<StoredConversation> for ConversationItem {
    fn from(c: StoredConversation) -> Self {
        let (last_message, post_title) = c
            .last_preview
            .as_deref()
            .and_then(LastMessage::parse)
            .map_or((None, None), |(m, title)| (Some(m), title));
        ConversationItem {
            id: c.id,
            kind: c.kind,
            source: c.source.as_str().to_owned(),
            post_token: c.post_token,
            post_title,
            participants: Participants {
                supply: c.supply_user_id,
                demand: c.demand_user_id,
            },
            first_message_at: rfc3339(c.first_message_at),
            last_message_at: rfc3339(c.last_message_at),
            message_count: c.message_count,
            last_message,
        }
    }
}

/// A stored non-message event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventItem {
    /// Its position in the event log.
    pub id: i64,
    /// `USER_ACCESS_REVOCATION`, `POST_UPDATE`, `PAYMENT_TRANSACTION`, or as sent.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Post update type or transaction state.
    pub subtype: Option<String>,
    /// User id, post token or transaction id.
    pub subject_id: Option<String>,
    /// The post, where known.
    pub post_token: Option<String>,
    /// The event's object as sent (the whole body for unknown types).
    #[schema(value_type = Object)]
    pub payload: Value,
    /// The subscription's metadata echo.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// When kenar-hook received it (RFC 3339, UTC).
    pub received_at: String,
}

impl EventItem {
    /// This item with its phone numbers masked.
    pub fn without_pii(mut self) -> Self {
        crate::pii::mask(&mut self.payload);
        if let Some(m) = &mut self.metadata {
            crate::pii::mask(m);
        }
        self
    }

    /// This item as a reader sees it: whole with `pii`, masked without.
    pub fn for_reader(self, pii: bool) -> Self {
        if pii { self } else { self.without_pii() }
    }
}

impl From<StoredEvent> for EventItem {
    fn from(e: StoredEvent) -> Self {
        EventItem {
            id: e.seq,
            event_type: e.event.event_type,
            subtype: e.event.subtype,
            subject_id: e.event.subject_id,
            post_token: e.event.post_token,
            payload: e.event.payload,
            metadata: e.event.metadata,
            received_at: rfc3339(e.event.received_at),
        }
    }
}

/// A logged button click.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClickItem {
    /// The click's id.
    pub id: String,
    /// `legacy`, `v2` or `dynamic_action`.
    pub version: String,
    /// v2 source or dynamic-action touchpoint.
    pub source: Option<String>,
    /// The post.
    pub post_token: Option<String>,
    /// The conversation.
    pub conversation_id: Option<String>,
    /// The user who clicked.
    pub user_id: Option<String>,
    /// The other participant (legacy).
    pub peer_id: Option<String>,
    /// `supply` or `demand`.
    pub side: Option<String>,
    /// The button's data.
    #[schema(value_type = Object)]
    pub provider_data: Value,
    /// The rule that decided, or `fallback`.
    pub rule: Option<String>,
    /// The URL answered.
    pub url: Option<String>,
    /// `redirect`, `text`, `no_match` or `disallowed`.
    pub outcome: String,
    /// When it arrived (RFC 3339, UTC).
    pub received_at: String,
}

impl ClickItem {
    /// This item with its phone numbers masked.
    pub fn without_pii(mut self) -> Self {
        crate::pii::mask(&mut self.provider_data);
        self
    }

    /// This item as a reader sees it: whole with `pii`, masked without.
    pub fn for_reader(self, pii: bool) -> Self {
        if pii { self } else { self.without_pii() }
    }
}

impl From<StoredClick> for ClickItem {
    fn from(c: StoredClick) -> Self {
        let c = c.click;
        ClickItem {
            id: c.id,
            version: c.version.as_str().to_owned(),
            source: c.facts.source,
            post_token: c.facts.post_token,
            conversation_id: c.facts.conversation_id,
            user_id: c.facts.user_id,
            peer_id: c.facts.peer_id,
            side: c.facts.side.map(|s| s.as_str().to_owned()),
            provider_data: c.provider_data,
            rule: c.rule,
            url: c.url,
            outcome: c.outcome.as_str().to_owned(),
            received_at: rfc3339(c.received_at),
        }
    }
}

/// A legacy webhook registration (never its key).
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationItem {
    /// Its id.
    pub id: String,
    /// The registered post.
    pub post_token: String,
    /// Where Divar sends the post's messages.
    pub endpoint: String,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
}

/// A stored record of any log, as its item.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Item<'a> {
    /// A chat message.
    Message(MessageItem<'a>),
    /// A non-message event.
    Event(EventItem),
    /// A button click.
    Click(ClickItem),
}

impl Item<'_> {
    /// This item with its personal data masked.
    pub fn without_pii(self) -> Self {
        match self {
            Item::Message(m) => Item::Message(m.without_pii()),
            Item::Event(e) => Item::Event(e.without_pii()),
            Item::Click(c) => Item::Click(c.without_pii()),
        }
    }

    /// This item as a reader sees it: whole with `pii`, masked without.
    pub fn for_reader(self, pii: bool) -> Self {
        if pii { self } else { self.without_pii() }
    }

    /// The post it concerns, where known.
    pub fn post_token(&self) -> Option<&str> {
        match self {
            Item::Message(m) => m.post_token,
            Item::Event(e) => e.post_token.as_deref(),
            Item::Click(c) => c.post_token.as_deref(),
        }
    }

    /// Its conversation, where known; events belong to none.
    pub fn conversation_id(&self) -> Option<&str> {
        match self {
            Item::Message(m) => Some(m.conversation_id),
            Item::Event(_) => None,
            Item::Click(c) => c.conversation_id.as_deref(),
        }
    }

    /// The message's or the event's type; a click has none.
    pub fn type_name(&self) -> Option<&str> {
        match self {
            Item::Message(m) => Some(m.message_type),
            Item::Event(e) => Some(&e.event_type),
            Item::Click(_) => None,
        }
    }
}

/// Reads the records of one log after `q.after_seq` (at most `q.limit`, fewer once they hold
/// `budget` bytes), in `seq` order, with the query's post and conversation filters (events
/// belong to no conversation: a conversation filter leaves none). `each` is given each
/// record, its arrival and its item. How many were read, and whether the budget cut the read
/// short. The live stream, its hub and forwarding all read the logs through this.
pub async fn read_log(
    store: &Store,
    kind: RecordKind,
    q: &StreamQuery,
    budget: usize,
    mut each: impl FnMut(RecordRef, DateTime<Utc>, Item<'_>),
) -> Result<(usize, bool), crate::store::Error> {
    let at = |seq| RecordRef { kind, seq };
    let log = |conversation_id: Option<String>| LogQuery {
        post_token: q.post_token.clone(),
        post_tokens: q.post_tokens.clone(),
        conversation_id,
        ..LogQuery::after(q.after_seq, q.limit)
    };
    match kind {
        RecordKind::Message => {
            let rows = store.stream_messages(q, budget).await?;
            let views = rows.views()?;
            for m in &views {
                each(
                    at(m.seq),
                    m.received_at,
                    Item::Message(MessageItem::new(m, None)),
                );
            }
            Ok((views.len(), rows.cut))
        }
        RecordKind::Event if q.conversation_id.is_some() => Ok((0, false)),
        RecordKind::Event => {
            let listed = store.list_events(&log(None), budget).await?;
            let count = listed.rows.len();
            for e in listed.rows {
                let (seq, received_at) = (e.seq, e.event.received_at);
                each(at(seq), received_at, Item::Event(EventItem::from(e)));
            }
            Ok((count, listed.cut))
        }
        RecordKind::Click => {
            let listed = store
                .list_clicks(&log(q.conversation_id.clone()), budget)
                .await?;
            let count = listed.rows.len();
            for c in listed.rows {
                let (seq, received_at) = (c.seq, c.click.received_at);
                each(at(seq), received_at, Item::Click(ClickItem::from(c)));
            }
            Ok((count, listed.cut))
        }
    }
}
