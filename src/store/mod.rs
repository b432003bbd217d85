//! The storage interface. [`Store`] is PostgreSQL or SQLite; both implement the same
//! operations with their own SQL and migrations. Nothing here knows about HTTP.

mod batch;
pub mod forward;
pub mod oauth;
mod postgres;
pub mod query;
pub mod rejected;
mod rows;
pub mod sql;
mod sqlite;
mod statements;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::{DatabaseKind, DatabaseSettings, database_kind};

pub use postgres::PgStore;

/// The database cannot be reached or opened; the text is the cause in one line
/// ("cannot connect to db:5432: connection refused").
#[derive(Debug, Clone, thiserror::Error)]
#[error("database unavailable: {0}")]
pub struct Unreachable(pub String);

/// Connects once to PostgreSQL and closes the connection, to learn the real cause of a
/// failure (refused, unknown host, wrong password, no such database).
async fn probe_postgres(
    options: &sqlx::postgres::PgConnectOptions,
    limit: Duration,
) -> Result<(), Unreachable> {
    use sqlx::Connection;
    let place = format!("{}:{}", options.get_host(), options.get_port());
    let cause = match tokio::time::timeout(limit, sqlx::PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Ok(());
        }
        Ok(Err(sqlx::Error::Io(e))) => crate::config::io_reason(&e),
        Ok(Err(sqlx::Error::Database(e))) => e.message().to_owned(),
        Ok(Err(sqlx::Error::Tls(e))) => format!("TLS: {e}"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} ms", limit.as_millis()),
    };
    Err(Unreachable(format!("cannot connect to {place}: {cause}")))
}
pub use sqlite::SqliteStore;

use rows::AnyRow;
use sql::{Dialect, Sql};

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageSource {
    /// The legacy `CHAT_MESSAGE` webhook.
    Legacy,
    /// The current events webhook.
    Events,
}

impl MessageSource {
    /// The stored value: `legacy` or `events`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageSource::Legacy => "legacy",
            MessageSource::Events => "events",
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

/// A button click and the answer given, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewClick {
    /// A fresh UUID.
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
    pub provider_data: Value,
    /// The rule that decided, or `fallback`; none when nothing matched.
    pub rule: Option<String>,
    /// The URL answered, if any.
    pub url: Option<String>,
    /// `redirect`, `text` or `no_match`.
    pub outcome: String,
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

/// The PostgreSQL channel on which a commit announces the `seq` of what it stored.
pub const NOTIFY_CHANNEL: &str = "kenar_hook_new";

/// The PostgreSQL advisory lock every writer transaction holds.
const WRITER_LOCK: i64 = 0x6b65_6e61_7268_6f6b;

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
    rows: Vec<AnyRow>,
    /// Cut short by the byte budget: rows may be left.
    pub cut: bool,
}

impl MessageRows {
    /// Whether no row was found.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every row as a view borrowing from it.
    pub fn views(&self) -> Result<Vec<MessageView<'_>>, sqlx::Error> {
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

/// A stored conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConversation {
    /// Conversation id.
    pub id: String,
    /// `POST` or `BOT`.
    pub kind: String,
    /// `legacy` or `events`.
    pub source: String,
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
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Insertion order; the event's id.
    pub seq: i64,
    /// The event as it was stored.
    pub event: NewEvent,
}

/// The database: PostgreSQL in production, SQLite by default.
#[derive(Debug, Clone)]
pub enum Store {
    /// PostgreSQL.
    Postgres(PgStore),
    /// SQLite.
    Sqlite(SqliteStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Postgres($s) => $call,
            Store::Sqlite($s) => $call,
        }
    };
}

/// Whether an error says the database cannot be used now (as opposed to a bad record or a
/// bug): no connection, or a connection lost; PostgreSQL's connection exceptions (SQLSTATE
/// class 08), insufficient resources (53) and operator intervention such as a shutdown
/// (57); SQLite busy, locked, out of disk or unable to open its file.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if let Ok(sqlite) = code.parse::<u32>() {
                // The primary code is the low byte of an extended one.
                return matches!(sqlite & 0xff, 5 | 6 | 10 | 13 | 14);
            }
            ["08", "53", "57"]
                .iter()
                .any(|class| code.starts_with(class))
        }
        _ => false,
    }
}

impl Store {
    /// Opens a pool for `database.url`. A SQLite file and its folder are created when
    /// missing. Does not migrate.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, Unreachable> {
        let url = settings.url.expose_secret();
        let acquire = Duration::from_millis(settings.acquire_timeout_ms);
        match database_kind(url).map_err(Unreachable)? {
            DatabaseKind::Postgres => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .map_err(|e| Unreachable(format!("database.url: {e}")))?;
                // The pool connects lazily, and on failure reports only "pool timed out":
                // one connection made here says what is really wrong.
                probe_postgres(&options, acquire).await?;
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(acquire)
                    // A ping on every checkout doubles the round trips of each request; a
                    // dead connection instead fails its one statement (answered 503/500, and
                    // retried by the caller) and is then dropped from the pool.
                    .test_before_acquire(false)
                    .connect_lazy_with(options);
                Ok(Store::Postgres(PgStore::new(pool)))
            }
            DatabaseKind::Sqlite => Ok(Store::Sqlite(
                SqliteStore::open(
                    url,
                    settings.max_connections,
                    acquire,
                    settings.sqlite_synchronous,
                )
                .await
                .map_err(|e| Unreachable(format!("{e:#}")))?,
            )),
        }
    }

    fn dialect(&self) -> Dialect {
        match self {
            Store::Postgres(_) => Dialect::Postgres,
            Store::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Rows up to `budget` bytes, each read into a `T`.
    async fn listed<T>(
        &self,
        sql: &Sql,
        budget: usize,
        read: fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Listed<T>, sqlx::Error> {
        let (rows, cut) = self.fetch_bounded(sql, budget).await?;
        let rows = rows.iter().map(read).collect::<Result<_, _>>()?;
        Ok(Listed { rows, cut })
    }

    async fn fetch_bounded(
        &self,
        sql: &Sql,
        budget: usize,
    ) -> Result<(Vec<AnyRow>, bool), sqlx::Error> {
        Ok(match self {
            Store::Postgres(s) => {
                let (rows, cut) = s.fetch_bounded(sql, budget).await?;
                (rows.into_iter().map(AnyRow::Postgres).collect(), cut)
            }
            Store::Sqlite(s) => {
                let (rows, cut) = s.fetch_bounded(sql, budget).await?;
                (rows.into_iter().map(AnyRow::Sqlite).collect(), cut)
            }
        })
    }

    async fn fetch_all(&self, sql: &Sql) -> Result<Vec<AnyRow>, sqlx::Error> {
        Ok(match self {
            Store::Postgres(s) => s
                .fetch_all(sql)
                .await?
                .into_iter()
                .map(AnyRow::Postgres)
                .collect(),
            Store::Sqlite(s) => s
                .fetch_all(sql)
                .await?
                .into_iter()
                .map(AnyRow::Sqlite)
                .collect(),
        })
    }

    async fn fetch_optional(&self, sql: &Sql) -> Result<Option<AnyRow>, sqlx::Error> {
        Ok(match self {
            Store::Postgres(s) => s.fetch_optional(sql).await?.map(AnyRow::Postgres),
            Store::Sqlite(s) => s.fetch_optional(sql).await?.map(AnyRow::Sqlite),
        })
    }

    async fn fetch_one(&self, sql: &Sql) -> Result<AnyRow, sqlx::Error> {
        self.fetch_optional(sql)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    async fn execute(&self, sql: &Sql) -> Result<(), sqlx::Error> {
        dispatch!(self, s => s.execute(sql).await)
    }

    /// Applies the migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        dispatch!(self, s => s.migrate().await)
    }

    /// Starts the database's own upkeep until `stop` is cancelled: SQLite's checkpoints (see
    /// `SqliteStore::spawn_checkpointer`); nothing on PostgreSQL.
    pub fn spawn_upkeep(&self, stop: tokio_util::sync::CancellationToken) {
        if let Store::Sqlite(s) = self {
            s.spawn_checkpointer(stop);
        }
    }

    /// How many batch writers suit this database when `ingest.writers` is unset. Measured
    /// (docs/benchmarks.md): a second PostgreSQL writer encodes the next batch while one is in the
    /// database; SQLite takes one writer at a time anyway.
    pub fn default_writers(&self) -> usize {
        match self {
            Store::Postgres(_) => 2,
            Store::Sqlite(_) => 1,
        }
    }

    /// A cheap round trip to the database.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.execute(&Sql::new(self.dialect(), "select 1")).await
    }

    /// Stores every record in one transaction: a record whose key exists already is a
    /// [`WriteOutcome::Duplicate`] and changes nothing; a message whose id and origin are
    /// held by a message of another conversation or post is a [`WriteOutcome::Conflict`] and
    /// changes nothing either. Copies inside the batch are judged as if the records were
    /// written one by one. Outcomes are in input order.
    pub async fn write_batch(
        &self,
        records: &[NewRecord],
    ) -> Result<(Vec<WriteOutcome>, NewIds), sqlx::Error> {
        dispatch!(self, s => s.write_batch(records).await)
    }

    /// One message by id, raw body and origin included. When the id is held in several
    /// origins, the app's own (origin empty) comes first, then the oldest.
    pub async fn message(&self, id: &str) -> Result<Option<StoredMessage>, sqlx::Error> {
        let row = self
            .fetch_optional(&query::message(self.dialect(), id))
            .await?;
        row.as_ref().map(rows::message_with_raw).transpose()
    }

    /// One conversation by id.
    pub async fn conversation(&self, id: &str) -> Result<Option<StoredConversation>, sqlx::Error> {
        let row = self
            .fetch_optional(&query::conversation(self.dialect(), id))
            .await?;
        row.as_ref().map(rows::conversation).transpose()
    }

    /// A page of conversations.
    pub async fn list_conversations(
        &self,
        q: &query::ConversationQuery,
    ) -> Result<Vec<StoredConversation>, sqlx::Error> {
        let rows = self
            .fetch_all(&query::conversations(self.dialect(), q))
            .await?;
        rows.iter().map(rows::conversation).collect()
    }

    /// A page of messages (without raw bodies), cut short once it holds `budget` bytes.
    pub async fn list_messages(
        &self,
        q: &query::MessageQuery,
        budget: usize,
    ) -> Result<MessageRows, sqlx::Error> {
        let (rows, cut) = self
            .fetch_bounded(&query::messages(self.dialect(), q), budget)
            .await?;
        Ok(MessageRows { rows, cut })
    }

    /// Messages stored after a `seq`, for the live stream (without raw bodies), cut short
    /// once they hold `budget` bytes.
    pub async fn stream_messages(
        &self,
        q: &query::StreamQuery,
        budget: usize,
    ) -> Result<MessageRows, sqlx::Error> {
        let (rows, cut) = self
            .fetch_bounded(&query::stream_messages(self.dialect(), q), budget)
            .await?;
        Ok(MessageRows { rows, cut })
    }

    /// A page of events, cut short once it holds `budget` bytes.
    pub async fn list_events(
        &self,
        q: &query::LogQuery,
        budget: usize,
    ) -> Result<Listed<StoredEvent>, sqlx::Error> {
        self.listed(&query::events(self.dialect(), q), budget, rows::event)
            .await
    }

    /// A page of clicks, cut short once it holds `budget` bytes.
    pub async fn list_clicks(
        &self,
        q: &query::LogQuery,
        budget: usize,
    ) -> Result<Listed<StoredClick>, sqlx::Error> {
        self.listed(&query::clicks(self.dialect(), q), budget, rows::click)
            .await
    }

    /// Every event with its raw body, oldest first (for tests and small tools; the API pages).
    pub async fn all_events(&self) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let all = query::LogQuery {
            limit: i64::MAX,
            with_raw: true,
            ..Default::default()
        };
        Ok(self.list_events(&all, usize::MAX).await?.rows)
    }

    /// Every click with its raw body, oldest first (for tests and small tools; the API pages).
    pub async fn all_clicks(&self) -> Result<Vec<StoredClick>, sqlx::Error> {
        let all = query::LogQuery {
            limit: i64::MAX,
            with_raw: true,
            ..Default::default()
        };
        Ok(self.list_clicks(&all, usize::MAX).await?.rows)
    }

    /// The highest `seq` of (message, event, click).
    pub async fn high_water_marks(&self) -> Result<(i64, i64, i64), sqlx::Error> {
        let row = self
            .fetch_one(&query::high_water_marks(self.dialect()))
            .await?;
        Ok((row.get("message")?, row.get("event")?, row.get("click")?))
    }

    /// How many rows each table holds: (conversations, messages, events).
    pub async fn counts(&self) -> Result<(i64, i64, i64), sqlx::Error> {
        let row = self.fetch_one(&query::counts(self.dialect())).await?;
        Ok((
            row.get("conversations")?,
            row.get("messages")?,
            row.get("events")?,
        ))
    }

    /// Stores a registration.
    pub async fn insert_registration(
        &self,
        registration: &Registration,
    ) -> Result<(), sqlx::Error> {
        self.execute(&statements::insert_registration(
            self.dialect(),
            registration,
        ))
        .await
    }

    /// Removes a registration (when Divar refused it).
    pub async fn delete_registration(&self, id: &str) -> Result<(), sqlx::Error> {
        self.execute(&statements::delete_registration(self.dialect(), id))
            .await
    }

    /// Every registration, newest first.
    pub async fn registrations(&self) -> Result<Vec<Registration>, sqlx::Error> {
        let rows = self
            .fetch_all(&query::registrations(self.dialect()))
            .await?;
        rows.iter().map(rows::registration).collect()
    }

    /// Whether a registration key digest is valid for a post.
    pub async fn registration_key_valid(
        &self,
        key_digest: &str,
        post_token: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = query::registration_for(self.dialect(), key_digest, post_token);
        Ok(self.fetch_optional(&sql).await?.is_some())
    }

    /// Keeps a stream ticket (its digest) until `expires_at`.
    pub async fn insert_stream_ticket(
        &self,
        digest: &str,
        token_digest: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        for sql in statements::insert_stream_ticket(
            self.dialect(),
            digest,
            token_digest,
            expires_at,
            Utc::now(),
        ) {
            self.execute(&sql).await?;
        }
        Ok(())
    }

    /// Redeems a stream ticket once: the digest of the token it was issued to, or `None`
    /// when it is unknown, used or expired.
    pub async fn redeem_stream_ticket(&self, digest: &str) -> Result<Option<String>, sqlx::Error> {
        let sql = statements::redeem_stream_ticket(self.dialect(), digest, Utc::now());
        match self.fetch_optional(&sql).await? {
            Some(row) => Ok(Some(row.get("token_digest")?)),
            None => Ok(None),
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}

/// Parses a json/text column back.
pub(crate) fn parse_json_column(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}
