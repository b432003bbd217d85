//! SQLite's own, the zero-setup default: opening the file, checkpoints, and the batch as
//! multi-row inserts.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use sqlx::query_builder::Separated;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{ConnectOptions, QueryBuilder, Row, Sqlite, Transaction};

use std::collections::HashMap;

use super::backend::{Backend, Db, Writing};
use super::batch::{
    CLICK_COLUMNS, CONVERSATION_COLUMNS, ConversationChange, EVENT_COLUMNS, Held, Item,
    MESSAGE_COLUMNS, Plan, clean, clean_opt, conversation_changes, conversation_conflict,
    message_conflict, scoped,
};
use super::time::Time;
use super::{NewIds, NewRecord, Side, WriteOutcome};
use crate::config::SqliteSync;
use crate::notify::Changes;

impl Db<Sqlite> {
    /// Opens (creating when missing) the database file of a `sqlite://` URL.
    ///
    /// `busy` is how long a statement waits for another connection's write lock (SQLite's
    /// busy timeout) before it fails with "database is locked".
    pub(crate) async fn open(
        url: &str,
        max_connections: u32,
        acquire: Duration,
        sync: SqliteSync,
        busy: Duration,
    ) -> anyhow::Result<Self> {
        // No `journal_mode` here: sqlx would run `pragma journal_mode = wal` on every new
        // connection. WAL is a property of the file, set once below.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // In WAL mode NORMAL writes each commit to the log before it returns (it survives
            // the process dying) and fsyncs at checkpoints; FULL fsyncs every commit.
            .synchronous(match sync {
                SqliteSync::Normal => SqliteSynchronous::Normal,
                SqliteSync::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(busy)
            .foreign_keys(true)
            // Checkpoints run from a task of their own (`spawn_upkeep`), not inside
            // whichever commit crosses SQLite's 1,000-page mark.
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", WAL_LIMIT_BYTES.to_string())
            // sqlx's SQLite worker reads rows ahead of the caller, 50 by default: with rows
            // of up to a body's size that is megabytes per query that a byte-bounded page
            // never takes.
            .row_buffer_size(8)
            .log_slow_statements(super::SLOW_STATEMENT_LOG, Duration::from_secs(1));
        let file = options.get_filename().to_path_buf();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !Path::new(dir).exists() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the database folder {}", dir.display()))?;
            }
        }
        // The usual mistake is a mounted folder the service's user cannot write: say which.
        let connect = |max_connections| {
            SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire)
                .connect_with(options.clone())
        };
        let pool = connect(max_connections).await.with_context(|| {
            format!(
                "opening the SQLite database {} (its folder must be writable by this user)",
                file.display()
            )
        })?;
        set_wal_once(&pool, busy).await.with_context(|| {
            format!(
                "switching the SQLite database {} to write-ahead logging",
                file.display()
            )
        })?;
        let writer = connect(1).await?;
        Ok(Db::with_writer(pool, writer))
    }

    /// Copies the write-ahead log into the database every 250 ms from a pooled connection of its
    /// own. Left to SQLite, the commit that crossed 1,000 log pages did it, fsync included,
    /// while every delivery of that batch waited for its answer (docs/benchmarks.md has the
    /// figures). A passive checkpoint never waits for readers or writers.
    ///
    /// It catches up, but does not let the log start again from its beginning: measured,
    /// only a checkpoint on the writer's own connection does, and batches wait for that one.
    /// Under sustained writes the log would grow without bound: by gigabytes a minute under
    /// load, all of it cut back in one commit of a second or more once the load stops. A log
    /// past [`WAL_LIMIT_BYTES`] is therefore brought back to its beginning by
    /// [`restart_log`].
    pub(crate) fn spawn_upkeep(&self, stop: CancellationToken) {
        let (pool, writer) = (self.pool.clone(), self.writer.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut known_page = None;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let done = async {
                    let page = match known_page {
                        Some(page) => page,
                        None => *known_page.insert(page_size(&pool).await?),
                    };
                    let log = checkpoint(&pool, page).await?;
                    if log.bytes > WAL_LIMIT_BYTES {
                        restart_log(&pool, &writer, page, log).await?;
                        // The log begins again with the next batch: a tick at once, missed
                        // while this one waited, would find it still past the bound.
                        tick.reset();
                    }
                    Ok::<_, sqlx::Error>(())
                };
                if let Err(e) = done.await {
                    tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
                }
            }
        });
    }

    /// Whether the write lock is this process's own (a write of ours holds it, however slow
    /// its commit), or a new connection can take it within `within`. Another process holding
    /// it that long is the database being unavailable for writing; a command's write lets
    /// it go in milliseconds.
    pub(crate) async fn alive(&self, within: Duration) -> bool {
        use sqlx::Connection;
        use std::sync::atomic::Ordering;
        if self.writing.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let options = (*self.pool.connect_options()).clone().busy_timeout(within);
        let check = async {
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
            sqlx::query("begin immediate").execute(&mut conn).await?;
            sqlx::query("rollback").execute(&mut conn).await?;
            conn.close().await
        };
        matches!(
            tokio::time::timeout(within + Duration::from_millis(250), check).await,
            Ok(Ok(()))
        )
    }

    /// Nothing to listen to: this process is the only writer, and its writer wakes the
    /// stream itself.
    pub(crate) fn spawn_change_listener(&self, _changes: Changes, _stop: CancellationToken) {}

    pub(crate) async fn write_batch(
        &self,
        records: &[NewRecord],
    ) -> Result<(Vec<WriteOutcome>, NewIds), sqlx::Error> {
        let plan = Plan::new(records);
        // One writer at a time (`BEGIN_WRITE`) also keeps `seq` order equal to commit order.
        let mut tx = self
            .writer
            .begin_with(<Sqlite as Backend>::BEGIN_WRITE)
            .await?;
        let _writing = Writing::begun(&self.writing);
        let messages = insert_messages(&mut tx, &plan).await?;
        let events = insert_events(&mut tx, &plan).await?;
        let clicks = insert_clicks(&mut tx, &plan).await?;
        let (outcomes, ids) = plan.outcomes(&messages, &events, &clicks);
        upsert_conversations(&mut tx, &conversation_changes(&plan, &outcomes)).await?;
        tx.commit().await?;
        Ok((outcomes, ids))
    }
}

/// The size of log past which it is brought back to its beginning: a bound on the disk it
/// takes, reached only under writes that never pause (at 6,000 deliveries a second on a new
/// file, every 9 s), each time a wait for the batches as long as two fsyncs (150 ms and more
/// on a busy disk; docs/benchmarks.md). Its file is cut back to that size when the log
/// restarts larger, and keeps its size otherwise: growing a file again at every restart
/// would wait for the file system's journal.
const WAL_LIMIT_BYTES: i64 = 1024 * 1024 * 1024;

/// What a checkpoint found of the log, in bytes.
#[derive(Debug, Clone, Copy)]
struct Log {
    /// Its length.
    bytes: i64,
    /// How much of it is not yet copied into the database.
    behind: i64,
}

/// The database's page size, in bytes.
async fn page_size(pool: &sqlx::SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("pragma page_size").fetch_one(pool).await
}

/// A passive checkpoint on a connection of `pool` (`page`: the database's page size).
async fn checkpoint(pool: &sqlx::SqlitePool, page: i64) -> Result<Log, sqlx::Error> {
    checkpoint_on(&mut *pool.acquire().await?, page).await
}

/// A passive checkpoint on `conn`. A connection that has not read the database yet has not
/// opened its log either: SQLite then copies nothing and answers -1 for the log's size, so a
/// read opens the log and the checkpoint is made again.
async fn checkpoint_on(conn: &mut sqlx::SqliteConnection, page: i64) -> Result<Log, sqlx::Error> {
    const CHECKPOINT: &str = "pragma wal_checkpoint(passive)";
    let mut done: (i64, i64, i64) = sqlx::query_as(CHECKPOINT).fetch_one(&mut *conn).await?;
    if done.1 < 0 {
        sqlx::query("select 1 from sqlite_schema limit 1")
            .fetch_optional(&mut *conn)
            .await?;
        done = sqlx::query_as(CHECKPOINT).fetch_one(&mut *conn).await?;
    }
    let (_, frames, copied) = done;
    Ok(Log {
        bytes: frames.max(0) * page,
        behind: (frames - copied).max(0) * page,
    })
}

/// Brings the log back to its beginning, from what the checkpoint beside the writer that
/// found it past its bound left (`log`). More checkpoints beside the writer copy what it added
/// meanwhile, each less than the one before, until less than 1 MiB is left (seven more at
/// most); a last one on the writer's own connection, between two batches, copies the rest
/// while nothing can add to the log, and the next batch starts the log from its beginning.
/// That last one is what batches wait for (docs/benchmarks.md), so it is skipped when the
/// log could not be caught up: a reader's older snapshot (a backup's, for its whole length)
/// holds back what may be copied, no checkpoint gets past it, and the log cannot begin
/// again until it ends.
async fn restart_log(
    pool: &sqlx::SqlitePool,
    writer: &sqlx::SqlitePool,
    page: i64,
    mut log: Log,
) -> Result<Log, sqlx::Error> {
    for _ in 1..8 {
        if log.behind < CAUGHT_UP_BYTES {
            break;
        }
        let before = log.behind;
        log = checkpoint(pool, page).await?;
        if log.behind >= before {
            break;
        }
    }
    if log.behind >= CAUGHT_UP_BYTES {
        return Ok(log);
    }
    let started = std::time::Instant::now();
    let log = checkpoint(writer, page).await?;
    let waited = started.elapsed();
    metrics::histogram!("kenar_sqlite_log_restart_seconds").record(waited.as_secs_f64());
    tracing::info!(
        waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        "SQLite log brought back to its beginning; batches waited for its last checkpoint"
    );
    Ok(log)
}

/// Left behind by the checkpoints beside the writer, the rest is small enough for batches to
/// wait while the writer's own connection copies it.
const CAUGHT_UP_BYTES: i64 = 1024 * 1024;

/// Switches a new database file to WAL, once: the mode is kept in the file. Changing it
/// needs the file to itself, which SQLite does not wait for on the busy timeout, so a
/// database still being created by another process is tried again until `within` passes.
async fn set_wal_once(pool: &sqlx::SqlitePool, within: Duration) -> Result<(), sqlx::Error> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mode: String = sqlx::query_scalar("pragma journal_mode")
            .fetch_one(pool)
            .await?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match sqlx::query_scalar::<_, String>("pragma journal_mode = wal")
            .fetch_one(pool)
            .await
        {
            Ok(_) => {}
            Err(e) if super::error::is_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

type SqliteTx = Transaction<'static, Sqlite>;

/// Rows per multi-row insert: SQLite takes at most 32,766 parameters in one statement.
const ROWS_PER_STATEMENT: usize = 1000;

/// Runs `insert into <head> values (...), (...) <tail>` over `rows` in chunks and collects
/// what `read` makes of each row it returns, by slot.
async fn insert_values<'a, T: 'a, V>(
    tx: &mut SqliteTx,
    head: &str,
    tail: &str,
    rows: &'a [Item<'a, T>],
    push: impl Fn(Separated<'_, 'a, Sqlite, &'static str>, &'a Item<'a, T>),
    read: impl Fn(&SqliteRow) -> Result<(String, V), sqlx::Error>,
) -> Result<HashMap<String, V>, sqlx::Error> {
    let mut stored = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new(head);
        query.push_values(chunk, &push);
        query.push(tail);
        for row in query.build().fetch_all(&mut **tx).await? {
            let (slot, value) = read(&row)?;
            stored.insert(slot, value);
        }
    }
    Ok(stored)
}

/// A `(key, seq)` row of an event or click insert.
fn key_and_seq(row: &SqliteRow) -> Result<(String, i64), sqlx::Error> {
    Ok((row.try_get(0)?, row.try_get(1)?))
}

async fn insert_messages(
    tx: &mut SqliteTx,
    plan: &Plan<'_>,
) -> Result<HashMap<String, Held>, sqlx::Error> {
    let head = format!("insert into message ({MESSAGE_COLUMNS}) ");
    insert_values(
        tx,
        &head,
        &message_conflict("is not"),
        &plan.messages,
        |mut row, item| {
            let m = item.record;
            row.push_bind(item.key.as_ref())
                .push_bind(item.origin.as_ref())
                .push_bind(m.source.as_str())
                .push_bind(clean(&m.event_type))
                .push_bind(clean(&m.conversation.id))
                .push_bind(clean_opt(&m.conversation.post_token))
                .push_bind(clean(&m.message_type))
                .push_bind(clean_opt(&m.text))
                .push_bind(clean_opt(&m.sender_side))
                .push_bind(clean_opt(&m.sender_type))
                .push_bind(clean_opt(&m.sender_id))
                .push_bind(clean_opt(&m.receiver_side))
                .push_bind(clean_opt(&m.receiver_id))
                .push_bind(Time(m.sent_at))
                .push_bind(clean_opt(&m.sent_at_raw))
                .push_bind(Time(m.received_at))
                .push_bind(m.raw_body.as_slice())
                .push_bind(m.data.as_ref().map(|v| v.to_string()))
                .push_bind(m.metadata.as_ref().map(|v| v.to_string()));
        },
        |row| {
            let (id, origin): (&str, &str) = (row.try_get(0)?, row.try_get(1)?);
            let held = Held {
                seq: row.try_get(2)?,
                conversation_id: row.try_get(3)?,
                post_token: row.try_get(4)?,
            };
            Ok((scoped(id, origin).into_owned(), held))
        },
    )
    .await
}

async fn upsert_conversations(
    tx: &mut SqliteTx,
    changes: &[ConversationChange<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "insert into conversation ({CONVERSATION_COLUMNS}) "
        ));
        query.push_values(chunk, |mut row, c| {
            row.push_bind(c.id.as_ref())
                .push_bind(clean(c.kind))
                .push_bind(c.source)
                .push_bind(c.post_token.map(clean))
                .push_bind(c.supply_user_id.map(clean))
                .push_bind(c.demand_user_id.map(clean))
                .push_bind(Time(c.first_message_at))
                .push_bind(Time(c.last_message_at))
                .push_bind(c.message_count);
        });
        query.push(conversation_conflict("min", "max"));
        query.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_events(
    tx: &mut SqliteTx,
    plan: &Plan<'_>,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let head = format!("insert into event ({EVENT_COLUMNS}) ");
    insert_values(
        tx,
        &head,
        " on conflict (dedupe_key) do nothing returning dedupe_key, seq",
        &plan.events,
        |mut row, item| {
            let e = item.record;
            row.push_bind(item.key.as_ref())
                .push_bind(clean(&e.event_type))
                .push_bind(clean_opt(&e.subtype))
                .push_bind(clean_opt(&e.subject_id))
                .push_bind(clean_opt(&e.post_token))
                .push_bind(e.raw_body.as_slice())
                .push_bind(Time(e.received_at))
                .push_bind(e.payload.to_string())
                .push_bind(e.metadata.as_ref().map(|v| v.to_string()));
        },
        key_and_seq,
    )
    .await
}

async fn insert_clicks(
    tx: &mut SqliteTx,
    plan: &Plan<'_>,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let head = format!("insert into click ({CLICK_COLUMNS}) ");
    insert_values(
        tx,
        &head,
        " returning id, seq",
        &plan.clicks,
        |mut row, item| {
            let c = item.record;
            row.push_bind(item.key.as_ref())
                .push_bind(c.version.as_str())
                .push_bind(clean_opt(&c.facts.source))
                .push_bind(clean_opt(&c.facts.post_token))
                .push_bind(clean_opt(&c.facts.conversation_id))
                .push_bind(clean_opt(&c.facts.user_id))
                .push_bind(clean_opt(&c.facts.peer_id))
                .push_bind(c.facts.side.map(Side::as_str))
                .push_bind(clean_opt(&c.rule))
                .push_bind(clean_opt(&c.url))
                .push_bind(c.outcome.as_str())
                .push_bind(c.raw_body.as_slice())
                .push_bind(Time(c.received_at))
                .push_bind(c.provider_data.to_string());
        },
        key_and_seq,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_synchronous_setting_reaches_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        for (sync, level) in [(SqliteSync::Normal, 1), (SqliteSync::Full, 2)] {
            let url = format!("sqlite://{}", dir.path().join("s.db").display());
            let store = Db::<Sqlite>::open(
                &url,
                2,
                Duration::from_secs(3),
                sync,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
            let got: i64 = sqlx::query_scalar("pragma synchronous")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(got, level, "{sync:?}");
            let auto: i64 = sqlx::query_scalar("pragma wal_autocheckpoint")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(auto, 0, "checkpoints are the upkeep task's");
            store.close().await;
        }
    }

    #[tokio::test]
    async fn a_log_written_without_pause_is_brought_back_to_its_beginning() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.db");
        let url = format!("sqlite://{}", file.display());
        let (busy, acquire) = (Duration::from_secs(5), Duration::from_secs(3));
        let store = Db::<Sqlite>::open(&url, 2, acquire, SqliteSync::Normal, busy)
            .await
            .unwrap();
        sqlx::query("create table t (v blob)")
            .execute(&store.writer)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let writing = tokio::spawn({
            let (writer, stop) = (store.writer.clone(), stop.clone());
            async move {
                while !stop.is_cancelled() {
                    sqlx::query("insert into t values (randomblob(8000))")
                        .execute(&writer)
                        .await
                        .unwrap();
                }
            }
        });
        let wal = dir.path().join("w.db-wal");
        // The limit is the disk's bound; here a log of 8 MiB is brought back by hand.
        let started = std::time::Instant::now();
        while std::fs::metadata(&wal).map_or(0, |m| m.len()) < 8 << 20 {
            assert!(started.elapsed() < Duration::from_secs(30), "the log grows");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let page = page_size(&store.pool).await.unwrap();
        let metrics = crate::telemetry::metrics_handle();
        let log = checkpoint(&store.pool, page).await.unwrap();
        restart_log(&store.pool, &store.writer, page, log)
            .await
            .unwrap();
        let restarts = metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("kenar_sqlite_log_restart_seconds_count "))
            .map(|n| n.trim().parse::<u64>().unwrap());
        assert!(restarts >= Some(1), "the wait is measured: {restarts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after = checkpoint(&store.pool, page).await.unwrap().bytes;
        stop.cancel();
        writing.await.unwrap();
        assert!(
            after < 4 << 20,
            "the log began again: {after} bytes of it, against 8 MiB"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_connection_that_read_before_the_switch_to_wal_checkpoints_too() {
        use sqlx::sqlite::SqliteJournalMode;
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("c.db"))
            .create_if_missing(true);
        // A pooled connection that read the new file before another one made it WAL, as
        // `set_wal_once` may leave one, and has read nothing since.
        let mut early = options
            .clone()
            .journal_mode(SqliteJournalMode::Delete)
            .connect()
            .await
            .unwrap();
        sqlx::query("create table t (v blob)")
            .execute(&mut early)
            .await
            .unwrap();
        let mut writer = options
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", "0")
            .connect()
            .await
            .unwrap();
        sqlx::query("insert into t values (randomblob(100000))")
            .execute(&mut writer)
            .await
            .unwrap();
        // What SQLite answers it: no log, so nothing was copied.
        let (_, frames, _): (i64, i64, i64) = sqlx::query_as("pragma wal_checkpoint(passive)")
            .fetch_one(&mut early)
            .await
            .unwrap();
        assert_eq!(frames, -1, "this connection has not opened the log yet");
        let log = checkpoint_on(&mut early, 4096).await.unwrap();
        assert!(log.bytes >= 100_000, "the log is seen: {log:?}");
        assert_eq!(
            log.behind, 0,
            "and copied, nothing holding it back: {log:?}"
        );
    }

    #[tokio::test]
    async fn batches_never_wait_for_a_restart_that_a_reader_holds_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let (busy, acquire) = (Duration::from_secs(5), Duration::from_secs(3));
        let store = Db::<Sqlite>::open(&url, 2, acquire, SqliteSync::Normal, busy)
            .await
            .unwrap();
        let insert = |rows: i64| {
            sqlx::query(
                "insert into t select randomblob(8000) from \
                 (with recursive n(i) as (select 1 union all select i + 1 from n where i < ?) \
                 select i from n)",
            )
            .bind(rows)
        };
        sqlx::query("create table t (v blob)")
            .execute(&store.writer)
            .await
            .unwrap();
        insert(10).execute(&store.writer).await.unwrap();
        // A reader's snapshot, as a backup holds one, taken before 2 MiB more are written.
        let mut reader = store.pool.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("select count(*) from t")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        insert(250).execute(&store.writer).await.unwrap();
        let page = page_size(&store.pool).await.unwrap();
        // The writer's connection taken, as a batch in progress takes it: a checkpoint on it
        // would fail once the pool's acquire timeout passes.
        let batch = store.writer.acquire().await.unwrap();
        let found = checkpoint(&store.pool, page).await.unwrap();
        let log = restart_log(&store.pool, &store.writer, page, found)
            .await
            .expect("no checkpoint on the writer's connection while a reader holds the log back");
        assert!(
            log.behind >= CAUGHT_UP_BYTES,
            "the reader held back {log:?}"
        );
        drop(batch);
        // The reader gone, the log is caught up and begins again.
        reader.rollback().await.unwrap();
        let found = checkpoint(&store.pool, page).await.unwrap();
        restart_log(&store.pool, &store.writer, page, found)
            .await
            .unwrap();
        insert(1).execute(&store.writer).await.unwrap();
        let after = checkpoint(&store.pool, page).await.unwrap().bytes;
        assert!(after < 1 << 20, "the log began again: {after} bytes");
        store.close().await;
    }
}
