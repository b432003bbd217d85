//! PostgreSQL's own: the batch as one statement (writers take turns, commits announce new
//! ids) and listening for the commits of every replica.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{Postgres, Row};
use tokio_util::sync::CancellationToken;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::backend::Db;
use super::batch::{
    CLICK_COLUMNS, CONVERSATION_COLUMNS, EVENT_COLUMNS, Held, Item, MESSAGE_COLUMNS, Plan, clean,
    clean_opt, conversation_conflict, message_conflict, scoped,
};
use super::{NOTIFY_CHANNEL, NewIds, NewRecord, Side, WRITER_LOCK, WriteOutcome};
use crate::notify::Changes;

impl Db<Postgres> {
    /// The server's `wal_compression` setting (`off`, `pglz`, `lz4`, ...).
    pub(crate) async fn wal_compression(&self) -> Result<String, sqlx::Error> {
        sqlx::query_scalar("select current_setting('wal_compression')")
            .fetch_one(&self.pool)
            .await
    }

    /// Whether PostgreSQL answers a new connection's `select 1` within `within`: a
    /// separate connection, so a pool busy with slow commits does not hide a live server.
    pub(crate) async fn alive(&self, within: Duration) -> bool {
        use sqlx::Connection;
        let options = self.pool.connect_options();
        let check = async {
            let mut conn = sqlx::PgConnection::connect_with(&options).await?;
            sqlx::query("select 1").execute(&mut conn).await?;
            conn.close().await
        };
        matches!(tokio::time::timeout(within, check).await, Ok(Ok(())))
    }

    /// Stores a batch with one statement, in its own implicit transaction: on a loopback
    /// connection each round trip costs about 0.2 ms here, and BEGIN, the lock, each insert,
    /// the NOTIFY and COMMIT as separate round trips were most of a small batch's time, all of
    /// it spent holding the writers' lock.
    pub(crate) async fn write_batch(
        &self,
        records: &[NewRecord],
    ) -> Result<(Vec<WriteOutcome>, NewIds), sqlx::Error> {
        let plan = Plan::new(records);
        let (m, e, c) = (&plan.messages, &plan.events, &plan.clicks);
        let rows = sqlx::query(&BATCH_STATEMENT)
            .bind(WRITER_LOCK)
            .bind(NOTIFY_CHANNEL)
            .bind(keys(m))
            .bind(origins(m))
            .bind(texts(m, |m| m.source.as_str()))
            .bind(texts(m, |m| &m.event_type))
            .bind(texts(m, |m| &m.conversation.id))
            .bind(opt_texts(m, |m| &m.conversation.post_token))
            .bind(texts(m, |m| &m.message_type))
            .bind(opt_texts(m, |m| &m.text))
            .bind(opt_texts(m, |m| &m.sender_side))
            .bind(opt_texts(m, |m| &m.sender_type))
            .bind(opt_texts(m, |m| &m.sender_id))
            .bind(opt_texts(m, |m| &m.receiver_side))
            .bind(opt_texts(m, |m| &m.receiver_id))
            .bind(times(m, |m| m.sent_at))
            .bind(opt_texts(m, |m| &m.sent_at_raw))
            .bind(times(m, |m| m.received_at))
            .bind(bodies(m, |m| &m.raw_body))
            .bind(json_texts(m, |m| m.data.as_ref()))
            .bind(json_texts(m, |m| m.metadata.as_ref()))
            .bind(texts(m, |m| &m.conversation.kind))
            .bind(opt_texts(m, |m| &m.conversation.supply_user_id))
            .bind(opt_texts(m, |m| &m.conversation.demand_user_id))
            .bind(keys(e))
            .bind(texts(e, |e| &e.event_type))
            .bind(opt_texts(e, |e| &e.subtype))
            .bind(opt_texts(e, |e| &e.subject_id))
            .bind(opt_texts(e, |e| &e.post_token))
            .bind(bodies(e, |e| &e.raw_body))
            .bind(times(e, |e| e.received_at))
            .bind(json_texts(e, |e| Some(&e.payload)))
            .bind(json_texts(e, |e| e.metadata.as_ref()))
            .bind(keys(c))
            .bind(texts(c, |c| c.version.as_str()))
            .bind(opt_texts(c, |c| &c.facts.source))
            .bind(opt_texts(c, |c| &c.facts.post_token))
            .bind(opt_texts(c, |c| &c.facts.conversation_id))
            .bind(opt_texts(c, |c| &c.facts.user_id))
            .bind(opt_texts(c, |c| &c.facts.peer_id))
            .bind(
                c.iter()
                    .map(|i| i.record.facts.side.map(Side::as_str))
                    .collect::<Vec<_>>(),
            )
            .bind(opt_texts(c, |c| &c.rule))
            .bind(opt_texts(c, |c| &c.url))
            .bind(texts(c, |c| c.outcome.as_str()))
            .bind(bodies(c, |c| &c.raw_body))
            .bind(times(c, |c| c.received_at))
            .bind(json_texts(c, |c| Some(&c.provider_data)))
            .fetch_all(&self.pool)
            .await?;
        let (mut messages, mut events, mut clicks) =
            (HashMap::new(), HashMap::new(), HashMap::new());
        for row in rows {
            let table = match row.try_get::<&str, _>(0)? {
                "m" => {
                    let (id, origin): (&str, &str) = (row.try_get(1)?, row.try_get(3)?);
                    let held = Held {
                        seq: row.try_get(2)?,
                        conversation_id: row.try_get(4)?,
                        post_token: row.try_get(5)?,
                    };
                    messages.insert(scoped(id, origin).into_owned(), held);
                    continue;
                }
                "e" => &mut events,
                "c" => &mut clicks,
                _ => continue,
            };
            table.insert(row.try_get::<String, _>(1)?, row.try_get::<i64, _>(2)?);
        }
        Ok(plan.outcomes(&messages, &events, &clicks))
    }

    /// Listens on the notification channel until `stop`, waking `changes` on every
    /// notification and after every reconnect (notifications sent while disconnected are
    /// lost, so subscribers must re-query).
    pub(crate) fn spawn_change_listener(&self, changes: Changes, stop: CancellationToken) {
        tokio::spawn(listen(self.pool.clone(), changes, stop));
    }

    /// Nothing to do: PostgreSQL looks after itself.
    pub(crate) fn spawn_upkeep(&self, _stop: CancellationToken) {}
}

async fn listen(pool: sqlx::PgPool, changes: Changes, stop: CancellationToken) {
    // At shutdown the pool is closed while this task may be waiting on it: that is the end,
    // not a failure to report or retry.
    let ending = || stop.is_cancelled() || pool.is_closed();
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match connected.await {
            Ok(l) => l,
            Err(_) if ending() => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN; retrying in 1 s");
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        changes.notify();
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(_)) => changes.notify(),
                // The connection dropped; the next try_recv reconnects. Re-query meanwhile.
                Ok(None) => changes.notify(),
                Err(_) if ending() => return,
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    changes.notify();
                    break;
                }
            }
        }
    }
}

/// The whole batch as one statement. Writers of every replica take turns on an advisory
/// lock (every insert reads from `lock`, so nothing is inserted before it is held, and it is
/// held until the commit), so `seq` order is commit order and a reader that has seen seq N
/// never later finds a smaller one appear. A message whose id its origin holds for another
/// conversation or post comes back from the insert unchanged (see `message_conflict`);
/// `m_new` keeps the rows that are the batch's own. The new messages' conversations are
/// upserted once each, with counts and time ranges added up and each fact the first one
/// known in batch order. The NOTIFY carries only the newest ids and is delivered when (and
/// only if) this commits. Rows come back as (table, key, seq, origin, conversation id, post
/// token) for what was inserted, and for messages also what conflicted.
static BATCH_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with lock as materialized (select pg_advisory_xact_lock($1)), \
         m_in as (select * from unnest($3::text[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
             $13::text[], $14::text[], $15::text[], $16::timestamptz[], $17::text[], \
             $18::timestamptz[], $19::bytea[], $20::text[], $21::text[], $22::text[], \
             $23::text[], $24::text[]) \
           with ordinality as t({MESSAGE_COLUMNS}, conversation_kind, supply_user_id, \
             demand_user_id, ord)), \
         m_ins as (insert into message ({MESSAGE_COLUMNS}) \
           select id, origin, source, event_type, conversation_id, post_token, message_type, \
             text, sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, \
             sent_at_raw, received_at, raw_body, data::json, metadata::json \
           from m_in, lock order by ord{}), \
         m_new as (select i.*, r.seq from m_ins r join m_in i using (id, origin) \
           where r.conversation_id = i.conversation_id \
             and r.post_token is not distinct from i.post_token), \
         c_up as (insert into conversation ({CONVERSATION_COLUMNS}) \
           select conversation_id, \
             (array_agg(conversation_kind order by ord))[1], \
             (array_agg(source order by ord))[1], \
             (array_agg(post_token order by ord) filter (where post_token is not null))[1], \
             (array_agg(supply_user_id order by ord) filter (where supply_user_id is not null))[1], \
             (array_agg(demand_user_id order by ord) filter (where demand_user_id is not null))[1], \
             min(sent_at), max(sent_at), count(*) \
           from m_new \
           group by conversation_id order by conversation_id{}), \
         e_ins as (insert into event ({EVENT_COLUMNS}) \
           select dedupe_key, event_type, subtype, subject_id, post_token, raw_body, \
             received_at, payload::json, metadata::json \
           from unnest($25::text[], $26::text[], $27::text[], $28::text[], $29::text[], \
             $30::bytea[], $31::timestamptz[], $32::text[], $33::text[]) \
             with ordinality as t({EVENT_COLUMNS}, ord), lock \
           order by ord \
           on conflict (dedupe_key) do nothing returning dedupe_key, seq), \
         k_ins as (insert into click ({CLICK_COLUMNS}) \
           select id, version, source, post_token, conversation_id, user_id, peer_id, side, \
             rule, url, outcome, raw_body, received_at, provider_data::json \
           from unnest($34::text[], $35::text[], $36::text[], $37::text[], $38::text[], \
             $39::text[], $40::text[], $41::text[], $42::text[], $43::text[], $44::text[], \
             $45::bytea[], $46::timestamptz[], $47::text[]) \
             with ordinality as t({CLICK_COLUMNS}, ord), lock \
           order by ord \
           returning id, seq), \
         notified as (select pg_notify($2, concat_ws(' ', \
             (select 'm:' || max(seq) from m_new), \
             (select 'e:' || max(seq) from e_ins), \
             (select 'c:' || max(seq) from k_ins))) \
           where exists (select from m_new) or exists (select from e_ins) \
             or exists (select from k_ins)) \
         select 'm', id, seq, origin, conversation_id, post_token from m_ins \
         union all select 'e', dedupe_key, seq, null, null, null from e_ins \
         union all select 'c', id, seq, null, null, null from k_ins \
         union all select 'n', null, null, null, null, null from notified",
        message_conflict("is distinct from"),
        conversation_conflict("least", "greatest")
    )
});

/// Columns as arrays: NUL-free text borrowed from the records where it can be.
fn texts<'a, T: 'a>(rows: &[Item<'a, T>], f: impl Fn(&'a T) -> &'a str) -> Vec<Cow<'a, str>> {
    rows.iter().map(|i| clean(f(i.record))).collect()
}

/// The key column, already cleaned by the plan.
fn keys<'a, T>(rows: &'a [Item<'_, T>]) -> Vec<&'a str> {
    rows.iter().map(|i| i.key.as_ref()).collect()
}

/// The origin column, already cleaned by the plan.
fn origins<'a, T>(rows: &'a [Item<'_, T>]) -> Vec<&'a str> {
    rows.iter().map(|i| i.origin.as_ref()).collect()
}

fn opt_texts<'a, T: 'a>(
    rows: &[Item<'a, T>],
    f: impl Fn(&'a T) -> &'a Option<String>,
) -> Vec<Option<Cow<'a, str>>> {
    rows.iter().map(|i| clean_opt(f(i.record))).collect()
}

fn json_texts<'a, T: 'a>(
    rows: &[Item<'a, T>],
    f: impl Fn(&'a T) -> Option<&'a serde_json::Value>,
) -> Vec<Option<String>> {
    rows.iter()
        .map(|i| f(i.record).map(|v| v.to_string()))
        .collect()
}

fn times<'a, T: 'a>(
    rows: &[Item<'a, T>],
    f: impl Fn(&'a T) -> DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    rows.iter().map(|i| f(i.record)).collect()
}

fn bodies<'a, T: 'a>(rows: &[Item<'a, T>], f: impl Fn(&'a T) -> &'a [u8]) -> Vec<&'a [u8]> {
    rows.iter().map(|i| f(i.record)).collect()
}
