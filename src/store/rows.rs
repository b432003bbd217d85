//! Reading rows of either database into the store's types, written once.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Postgres, Row, Sqlite, Type};

use super::{
    ConversationFacts, MessageSource, NewClick, NewEvent, NewMessage, Registration, StoredClick,
    StoredConversation, StoredEvent, StoredMessage, parse_json_column,
};

/// A row of either database.
pub enum AnyRow {
    /// From PostgreSQL.
    Postgres(PgRow),
    /// From SQLite.
    Sqlite(SqliteRow),
}

/// Microseconds since the epoch: how SQLite stores times.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`micros`].
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl AnyRow {
    /// A column that both databases store alike (text, integers, bytes).
    pub fn get<T>(&self, column: &str) -> Result<T, sqlx::Error>
    where
        T: for<'r> Decode<'r, Postgres>
            + Type<Postgres>
            + for<'r> Decode<'r, Sqlite>
            + Type<Sqlite>,
    {
        match self {
            AnyRow::Postgres(r) => r.try_get(column),
            AnyRow::Sqlite(r) => r.try_get(column),
        }
    }

    /// A time column: `timestamptz` in PostgreSQL, microseconds in SQLite.
    pub fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        match self {
            AnyRow::Postgres(r) => r.try_get(column),
            AnyRow::Sqlite(r) => Ok(from_micros(r.try_get(column)?)),
        }
    }

    fn json(&self, column: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
        Ok(parse_json_column(self.get(column)?))
    }
}

/// A row selected with [`super::query::message_columns`]; `raw_body` is left empty.
pub fn message(r: &AnyRow) -> Result<StoredMessage, sqlx::Error> {
    let source: String = r.get("source")?;
    Ok(StoredMessage {
        seq: r.get("seq")?,
        message: NewMessage {
            id: r.get("id")?,
            source: if source == "legacy" {
                MessageSource::Legacy
            } else {
                MessageSource::Events
            },
            event_type: r.get("event_type")?,
            conversation: ConversationFacts {
                id: r.get("conversation_id")?,
                kind: String::new(),
                post_token: r.get("post_token")?,
                supply_user_id: None,
                demand_user_id: None,
            },
            message_type: r.get("message_type")?,
            text: r.get("text")?,
            sender_side: r.get("sender_side")?,
            sender_type: r.get("sender_type")?,
            sender_id: r.get("sender_id")?,
            receiver_side: r.get("receiver_side")?,
            receiver_id: r.get("receiver_id")?,
            sent_at: r.time("sent_at")?,
            sent_at_raw: r.get("sent_at_raw")?,
            received_at: r.time("received_at")?,
            data: r.json("data")?,
            metadata: r.json("metadata")?,
            raw_body: Vec::new(),
        },
    })
}

/// A row selected with [`super::query::message_columns`] and `raw_body`.
pub fn message_with_raw(r: &AnyRow) -> Result<StoredMessage, sqlx::Error> {
    let mut stored = message(r)?;
    stored.message.raw_body = r.get("raw_body")?;
    Ok(stored)
}

/// A row of `conversation`.
pub fn conversation(r: &AnyRow) -> Result<StoredConversation, sqlx::Error> {
    Ok(StoredConversation {
        id: r.get("id")?,
        kind: r.get("kind")?,
        source: r.get("source")?,
        post_token: r.get("post_token")?,
        supply_user_id: r.get("supply_user_id")?,
        demand_user_id: r.get("demand_user_id")?,
        first_message_at: r.time("first_message_at")?,
        last_message_at: r.time("last_message_at")?,
        message_count: r.get("message_count")?,
    })
}

/// A row selected by [`super::query::events`].
pub fn event(r: &AnyRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        seq: r.get("seq")?,
        event: NewEvent {
            dedupe_key: r.get("dedupe_key")?,
            event_type: r.get("event_type")?,
            subtype: r.get("subtype")?,
            subject_id: r.get("subject_id")?,
            post_token: r.get("post_token")?,
            payload: r.json("payload")?.unwrap_or_default(),
            metadata: r.json("metadata")?,
            raw_body: r.get("raw_body")?,
            received_at: r.time("received_at")?,
        },
    })
}

/// A row selected by [`super::query::clicks`].
pub fn click(r: &AnyRow) -> Result<StoredClick, sqlx::Error> {
    Ok(StoredClick {
        seq: r.get("seq")?,
        click: NewClick {
            id: r.get("id")?,
            version: r.get("version")?,
            source: r.get("source")?,
            post_token: r.get("post_token")?,
            conversation_id: r.get("conversation_id")?,
            user_id: r.get("user_id")?,
            peer_id: r.get("peer_id")?,
            side: r.get("side")?,
            provider_data: r.json("provider_data")?.unwrap_or_default(),
            rule: r.get("rule")?,
            url: r.get("url")?,
            outcome: r.get("outcome")?,
            raw_body: r.get("raw_body")?,
            received_at: r.time("received_at")?,
        },
    })
}

/// A row of `registration`.
pub fn registration(r: &AnyRow) -> Result<Registration, sqlx::Error> {
    Ok(Registration {
        id: r.get("id")?,
        post_token: r.get("post_token")?,
        endpoint: r.get("endpoint")?,
        key_digest: r.get("key_digest")?,
        created_at: r.time("created_at")?,
    })
}
