//! The storage interface. [`Store`] is PostgreSQL or SQLite, the one place that chooses;
//! what differs between the two is in `backend.rs`, and the statements are written once for
//! both. Nothing here knows about HTTP.

mod backend;
pub mod backup;
mod batch;
mod error;
pub mod forward;
pub mod lifecycle;
pub mod oauth;
pub mod outbox;
mod postgres;
pub mod query;
mod records;
pub mod rejected;
mod rows;
pub mod sql;
mod sqlite;
mod statements;
mod time;
mod view;

use std::str::FromStr;

use sqlx::ConnectOptions;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::config::{DatabaseKind, DatabaseSettings, database_kind};
use crate::notify::Changes;

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
use backend::Db;
use rows::AnyRow;
use sql::{Dialect, Sql};

pub use error::Error;
pub use records::*;
pub use view::*;

/// The PostgreSQL channel on which a commit announces the `seq` of what it stored.
pub const NOTIFY_CHANNEL: &str = "kenar_hook_new";

/// The PostgreSQL advisory lock every writer transaction holds.
const WRITER_LOCK: i64 = 0x6b65_6e61_7268_6f6b;

/// The database: PostgreSQL in production, SQLite by default.
#[derive(Debug, Clone)]
pub enum Store {
    /// PostgreSQL.
    #[allow(private_interfaces)]
    Postgres(Db<sqlx::Postgres>),
    /// SQLite.
    #[allow(private_interfaces)]
    Sqlite(Db<sqlx::Sqlite>),
}

/// What to say of PostgreSQL's `wal_compression` setting at start-up: only when it is off.
fn wal_compression_advice(value: &str) -> Option<&'static str> {
    (value == "off").then_some(
        "PostgreSQL's wal_compression is off; with lz4 the benchmark's ingest took about a \
         third more deliveries a second (docs/deployment.md, \"PostgreSQL's write-ahead log\")",
    )
}

/// The one switch on the database: `$call` is written once and runs on whichever it is.
macro_rules! dispatch {
    ($self:expr, $db:ident => $call:expr) => {
        match $self {
            Store::Postgres($db) => $call,
            Store::Sqlite($db) => $call,
        }
    };
}
use dispatch;

/// The log target under which the database library logs; a log filter that names it asks
/// for its messages.
pub const LOG_TARGET: &str = "sqlx";

/// The log directive that keeps PostgreSQL's notices (such as "relation _sqlx_migrations
/// already exists, skipping" on every start) at warn.
pub const QUIET_NOTICES: &str = "sqlx::postgres::notice=warn";

/// sqlx logs a statement slower than a second with its whole text (7 KB for a batch) at
/// warn; the writer says so itself in one line (`a commit is slow`), so that is debug.
pub(crate) const SLOW_STATEMENT_LOG: tracing::log::LevelFilter = tracing::log::LevelFilter::Debug;

/// How long the service's statements wait for SQLite's write lock: past it, the writer
/// reports the database unavailable (docs/storage.md).
pub const SERVICE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a command's statements wait for SQLite's write lock. A running service takes
/// the lock many times a second, each time for milliseconds; a command waits its turn.
pub const COMMAND_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

impl Store {
    /// Opens a pool for `database.url`, as the service does. A SQLite file and its folder
    /// are created when missing. Does not migrate.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, Unreachable> {
        Self::connect_waiting(settings, SERVICE_BUSY_TIMEOUT).await
    }

    /// Opens a pool for a command-line operation: on SQLite its statements wait up to
    /// [`COMMAND_BUSY_TIMEOUT`] for a running service's write lock.
    pub async fn connect_for_command(settings: &DatabaseSettings) -> Result<Store, Unreachable> {
        Self::connect_waiting(settings, COMMAND_BUSY_TIMEOUT).await
    }

    async fn connect_waiting(
        settings: &DatabaseSettings,
        busy: Duration,
    ) -> Result<Store, Unreachable> {
        let url = settings.url.expose_secret();
        let acquire = Duration::from_millis(settings.acquire_timeout_ms);
        match database_kind(url).map_err(Unreachable)? {
            DatabaseKind::Postgres => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .map_err(|e| Unreachable(format!("database.url: {e}")))?
                    .log_slow_statements(SLOW_STATEMENT_LOG, Duration::from_secs(1));
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
                Ok(Store::Postgres(Db::new(pool)))
            }
            DatabaseKind::Sqlite => Ok(Store::Sqlite(
                Db::<sqlx::Sqlite>::open(
                    url,
                    settings.max_connections,
                    acquire,
                    settings.sqlite_synchronous,
                    busy,
                )
                .await
                .map_err(|e| Unreachable(format!("{e:#}")))?,
            )),
        }
    }

    fn dialect(&self) -> Dialect {
        dispatch!(self, db => db.dialect())
    }

    /// Rows up to `budget` bytes, each read into a `T`.
    async fn listed<T>(
        &self,
        sql: &Sql,
        budget: usize,
        read: fn(&AnyRow) -> Result<T, Error>,
    ) -> Result<Listed<T>, Error> {
        let (rows, cut) = self.fetch_bounded(sql, budget).await?;
        let rows = rows.iter().map(read).collect::<Result<_, _>>()?;
        Ok(Listed { rows, cut })
    }

    async fn fetch_bounded(&self, sql: &Sql, budget: usize) -> Result<(Vec<AnyRow>, bool), Error> {
        Ok(dispatch!(self, db => db.fetch_bounded(sql, budget).await)?)
    }

    async fn fetch_all(&self, sql: &Sql) -> Result<Vec<AnyRow>, Error> {
        Ok(dispatch!(self, db => db.fetch_all(sql).await)?)
    }

    async fn fetch_optional(&self, sql: &Sql) -> Result<Option<AnyRow>, Error> {
        Ok(dispatch!(self, db => db.fetch_optional(sql).await)?)
    }

    async fn fetch_one(&self, sql: &Sql) -> Result<AnyRow, Error> {
        Ok(self
            .fetch_optional(sql)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?)
    }

    async fn execute(&self, sql: &Sql) -> Result<(), Error> {
        self.execute_count(sql).await.map(|_| ())
    }

    /// Runs one statement; the rows it changed.
    async fn execute_count(&self, sql: &Sql) -> Result<u64, Error> {
        Ok(dispatch!(self, db => db.execute(sql).await)?)
    }

    /// Whether the database answers a check on a connection of its own within `within`
    /// (PostgreSQL: `select 1`; SQLite: the write lock can be taken).
    pub async fn alive(&self, within: Duration) -> bool {
        dispatch!(self, db => db.alive(within).await)
    }

    /// Runs the statements in one write transaction; the rows each changed, in order.
    async fn transaction(&self, statements: &[Sql]) -> Result<Vec<u64>, Error> {
        Ok(dispatch!(self, db => db.transaction(statements).await)?)
    }

    /// Runs the statements in one write transaction when the first changes exactly `n` rows
    /// (the rows each changed); otherwise changes nothing (`None`).
    async fn transaction_if_first_changes_exactly(
        &self,
        statements: &[Sql],
        n: u64,
    ) -> Result<Option<Vec<u64>>, Error> {
        Ok(dispatch!(self, db => db.transaction_if_first_changes_exactly(statements, n).await)?)
    }

    /// Runs the statements in one write transaction when the first changes a row;
    /// otherwise changes nothing.
    async fn transaction_if_first_changes(&self, statements: &[Sql]) -> Result<bool, Error> {
        Ok(dispatch!(self, db => db.transaction_if_first_changes(statements).await)?)
    }

    /// Applies the migrations of this backend.
    pub async fn migrate(&self) -> Result<(), Error> {
        Ok(dispatch!(self, db => db.migrate().await)?)
    }

    /// This database's installation id: 32 hex digits made at random by its migrations,
    /// never changed. Read on the first call, then kept for the life of the pool.
    pub async fn installation(&self) -> Result<&str, Error> {
        let kept = dispatch!(self, db => &db.installation);
        if let Some(id) = kept.get() {
            return Ok(id);
        }
        let row = self
            .fetch_one(&Sql::new(self.dialect(), "select id from installation"))
            .await?;
        let id: String = row.get("id")?;
        Ok(kept.get_or_init(|| id))
    }

    /// Starts the database's own upkeep until `stop` is cancelled: SQLite's checkpoints;
    /// nothing on PostgreSQL.
    pub fn spawn_upkeep(&self, stop: tokio_util::sync::CancellationToken) {
        dispatch!(self, db => db.spawn_upkeep(stop))
    }

    /// Wakes `changes` whenever another replica sharing the database commits (PostgreSQL's
    /// LISTEN, until `stop`); nothing on SQLite, whose only writer is this process.
    pub fn spawn_change_listener(
        &self,
        changes: Changes,
        stop: tokio_util::sync::CancellationToken,
    ) {
        dispatch!(self, db => db.spawn_change_listener(changes, stop))
    }

    /// How many batch writers suit this database when `ingest.writers` is unset.
    pub fn default_writers(&self) -> usize {
        dispatch!(self, db => db.default_writers())
    }

    /// A database setting that costs ingest speed, said once at start-up: on PostgreSQL,
    /// `wal_compression` left off. None when there is none, or the setting cannot be read.
    pub async fn setting_advice(&self) -> Option<&'static str> {
        match self {
            Store::Postgres(db) => wal_compression_advice(&db.wal_compression().await.ok()?),
            Store::Sqlite(_) => None,
        }
    }

    /// A cheap round trip to the database.
    pub async fn ping(&self) -> Result<(), Error> {
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
    ) -> Result<(Vec<WriteOutcome>, NewIds), Error> {
        Ok(dispatch!(self, db => db.write_batch(records).await)?)
    }

    /// One message by id, raw body and origin included. When the id is held in several
    /// origins, the app's own (origin empty) comes first, then the oldest.
    pub async fn message(&self, id: &str) -> Result<Option<StoredMessage>, Error> {
        let row = self
            .fetch_optional(&query::message(self.dialect(), id))
            .await?;
        row.as_ref().map(rows::message_with_raw).transpose()
    }

    /// One conversation by id.
    pub async fn conversation(&self, id: &str) -> Result<Option<StoredConversation>, Error> {
        let row = self
            .fetch_optional(&query::conversation(self.dialect(), id))
            .await?;
        row.as_ref().map(rows::conversation).transpose()
    }

    /// A page of conversations.
    pub async fn list_conversations(
        &self,
        q: &query::ConversationQuery,
    ) -> Result<Vec<StoredConversation>, Error> {
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
    ) -> Result<MessageRows, Error> {
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
    ) -> Result<MessageRows, Error> {
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
    ) -> Result<Listed<StoredEvent>, Error> {
        self.listed(&query::events(self.dialect(), q), budget, rows::event)
            .await
    }

    /// A page of clicks, cut short once it holds `budget` bytes.
    pub async fn list_clicks(
        &self,
        q: &query::LogQuery,
        budget: usize,
    ) -> Result<Listed<StoredClick>, Error> {
        self.listed(&query::clicks(self.dialect(), q), budget, rows::click)
            .await
    }

    /// Every event with its raw body, oldest first (for tests and small tools; the API pages).
    pub async fn all_events(&self) -> Result<Vec<StoredEvent>, Error> {
        let all = query::LogQuery {
            limit: i64::MAX,
            with_raw: true,
            ..Default::default()
        };
        Ok(self.list_events(&all, usize::MAX).await?.rows)
    }

    /// Every click with its raw body, oldest first (for tests and small tools; the API pages).
    pub async fn all_clicks(&self) -> Result<Vec<StoredClick>, Error> {
        let all = query::LogQuery {
            limit: i64::MAX,
            with_raw: true,
            ..Default::default()
        };
        Ok(self.list_clicks(&all, usize::MAX).await?.rows)
    }

    /// The highest `seq` of each log.
    pub async fn high_water_marks(&self) -> Result<Positions, Error> {
        let row = self
            .fetch_one(&query::high_water_marks(self.dialect()))
            .await?;
        Ok(Positions {
            message: row.get("message")?,
            event: row.get("event")?,
            click: row.get("click")?,
        })
    }

    /// How many rows each table holds: (conversations, messages, events).
    pub async fn counts(&self) -> Result<(i64, i64, i64), Error> {
        let row = self.fetch_one(&query::counts(self.dialect())).await?;
        Ok((
            row.get("conversations")?,
            row.get("messages")?,
            row.get("events")?,
        ))
    }

    /// Stores a registration.
    pub async fn insert_registration(&self, registration: &Registration) -> Result<(), Error> {
        self.execute(&statements::insert_registration(
            self.dialect(),
            registration,
        ))
        .await
    }

    /// Removes a registration (when Divar refused it).
    pub async fn delete_registration(&self, id: &str) -> Result<(), Error> {
        self.execute(&statements::delete_registration(self.dialect(), id))
            .await
    }

    /// Every registration, newest first.
    pub async fn registrations(&self) -> Result<Vec<Registration>, Error> {
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
    ) -> Result<bool, Error> {
        let sql = query::registration_for(self.dialect(), key_digest, post_token);
        Ok(self.fetch_optional(&sql).await?.is_some())
    }

    /// Keeps a stream ticket (its digest), with the filters it was issued with, until
    /// `expires_at`.
    pub async fn insert_stream_ticket(
        &self,
        digest: &str,
        token_digest: &str,
        filters: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        for sql in statements::insert_stream_ticket(
            self.dialect(),
            digest,
            token_digest,
            filters,
            expires_at,
            Utc::now(),
        ) {
            self.execute(&sql).await?;
        }
        Ok(())
    }

    /// Redeems a stream ticket once: the digest of the token it was issued to and the
    /// filters it was issued with, or `None` when it is unknown, used or expired.
    pub async fn redeem_stream_ticket(
        &self,
        digest: &str,
    ) -> Result<Option<(String, Option<String>)>, Error> {
        let sql = statements::redeem_stream_ticket(self.dialect(), digest, Utc::now());
        match self.fetch_optional(&sql).await? {
            Some(row) => Ok(Some((row.get("token_digest")?, row.get("filters")?))),
            None => Ok(None),
        }
    }

    /// Keeps an inbox session (its digest) for the client whose token has `token_digest`,
    /// until `expires_at`.
    pub async fn insert_inbox_session(
        &self,
        digest: &str,
        token_digest: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        for sql in statements::insert_inbox_session(
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

    /// The digest of the token an inbox session was opened with, while it lasts.
    pub async fn inbox_session(&self, digest: &str) -> Result<Option<String>, Error> {
        let sql = statements::inbox_session(self.dialect(), digest, Utc::now());
        match self.fetch_optional(&sql).await? {
            Some(row) => Ok(Some(row.get("token_digest")?)),
            None => Ok(None),
        }
    }

    /// Ends an inbox session.
    pub async fn delete_inbox_session(&self, digest: &str) -> Result<(), Error> {
        self.execute(&statements::delete_inbox_session(self.dialect(), digest))
            .await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        dispatch!(self, db => db.close().await)
    }
}

/// Parses a json/text column back.
pub(crate) fn parse_json_column(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

#[cfg(test)]
mod tests {
    use super::wal_compression_advice;

    #[test]
    fn wal_compression_is_advised_only_when_off() {
        let advice = wal_compression_advice("off").expect("advice when off");
        assert!(advice.contains("lz4") && advice.contains("docs/deployment.md"));
        for value in ["on", "pglz", "lz4", "zstd"] {
            assert_eq!(wal_compression_advice(value), None, "{value}");
        }
    }
}
