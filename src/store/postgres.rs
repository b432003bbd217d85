//! PostgreSQL: the pool, its transaction rules (writers take turns, commits announce new
//! ids), and parameter binding. The statements themselves are shared.

use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row, Transaction};

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::batch::{
    CLICK_COLUMNS, CONVERSATION_COLUMNS, ConversationChange, EVENT_COLUMNS, MESSAGE_COLUMNS, Plan,
    clean, clean_opt, conversation_changes, conversation_conflict,
};
use super::sql::{Param, Sql};
use super::{NOTIFY_CHANNEL, NewIds, NewRecord, WRITER_LOCK, WriteOutcome, notification};

/// A PostgreSQL connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// A statement with its parameters bound.
fn bind(sql: &Sql) -> Query<'_, Postgres, PgArguments> {
    let mut q = sqlx::query(&sql.text);
    for param in &sql.params {
        q = match param {
            Param::Text(s) => q.bind(s),
            Param::OptText(s) => q.bind(s),
            Param::Int(i) => q.bind(*i),
            Param::Bytes(b) => q.bind(b),
            Param::Time(t) => q.bind(*t),
        };
    }
    q
}

impl PgStore {
    /// Wraps a pool.
    pub fn new(pool: PgPool) -> Self {
        PgStore { pool }
    }

    /// The pool (the live stream LISTENs through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.pool.close().await
    }

    pub(super) async fn fetch_all(&self, sql: &Sql) -> Result<Vec<PgRow>, sqlx::Error> {
        bind(sql).fetch_all(&self.pool).await
    }

    pub(super) async fn fetch_optional(&self, sql: &Sql) -> Result<Option<PgRow>, sqlx::Error> {
        bind(sql).fetch_optional(&self.pool).await
    }

    pub(super) async fn execute(&self, sql: &Sql) -> Result<(), sqlx::Error> {
        bind(sql).execute(&self.pool).await.map(|_| ())
    }

    pub(super) async fn write_batch(
        &self,
        records: &[NewRecord],
    ) -> Result<(Vec<WriteOutcome>, NewIds), sqlx::Error> {
        let plan = Plan::new(records);
        let mut tx = self.pool.begin().await?;
        // Writers of every replica take turns, so `seq` order is commit order and a reader
        // that has seen seq N will never later find a smaller one appear.
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(WRITER_LOCK)
            .execute(&mut *tx)
            .await?;
        let messages = insert_messages(&mut tx, &plan).await?;
        upsert_conversations(&mut tx, &conversation_changes(&plan, &messages)).await?;
        let events = insert_events(&mut tx, &plan).await?;
        let clicks = insert_clicks(&mut tx, &plan).await?;
        let (outcomes, new_ids) = plan.outcomes(&messages, &events, &clicks);
        if let Some(ids) = notification(&new_ids) {
            // Delivered to every listening replica when (and only if) this commits.
            sqlx::query("select pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(ids)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((outcomes, new_ids))
    }
}

type PgTx = Transaction<'static, Postgres>;

/// Columns as arrays: NUL-free text borrowed from the records where it can be.
fn texts<'a, T: 'a>(rows: &[(usize, &'a T)], f: impl Fn(&'a T) -> &'a str) -> Vec<Cow<'a, str>> {
    rows.iter().map(|(_, r)| clean(f(r))).collect()
}

fn opt_texts<'a, T: 'a>(
    rows: &[(usize, &'a T)],
    f: impl Fn(&'a T) -> &'a Option<String>,
) -> Vec<Option<Cow<'a, str>>> {
    rows.iter().map(|(_, r)| clean_opt(f(r))).collect()
}

fn json_texts<'a, T: 'a>(
    rows: &[(usize, &'a T)],
    f: impl Fn(&'a T) -> Option<&'a serde_json::Value>,
) -> Vec<Option<String>> {
    rows.iter()
        .map(|(_, r)| f(r).map(|v| v.to_string()))
        .collect()
}

fn times<'a, T: 'a>(
    rows: &[(usize, &'a T)],
    f: impl Fn(&'a T) -> DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    rows.iter().map(|(_, r)| f(r)).collect()
}

fn bodies<'a, T: 'a>(rows: &[(usize, &'a T)], f: impl Fn(&'a T) -> &'a [u8]) -> Vec<&'a [u8]> {
    rows.iter().map(|(_, r)| f(r)).collect()
}

/// The `(key, seq)` rows an insert returned.
async fn returned(
    tx: &mut PgTx,
    query: Query<'_, Postgres, PgArguments>,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect()
}

async fn insert_messages(
    tx: &mut PgTx,
    plan: &Plan<'_>,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let m = &plan.messages;
    if m.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "insert into message ({MESSAGE_COLUMNS}) \
         select id, source, event_type, conversation_id, post_token, message_type, text, \
           sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, \
           sent_at_raw, received_at, raw_body, data::json, metadata::json \
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
           $13::timestamptz[], $14::text[], $15::timestamptz[], $16::bytea[], $17::text[], \
           $18::text[]) with ordinality as t({MESSAGE_COLUMNS}, ord) \
         order by ord \
         on conflict (id) do nothing returning id, seq"
    );
    let query = sqlx::query(&sql)
        .bind(texts(m, |m| &m.id))
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
        .bind(json_texts(m, |m| m.metadata.as_ref()));
    returned(tx, query).await
}

async fn upsert_conversations(
    tx: &mut PgTx,
    changes: &[ConversationChange<'_>],
) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "insert into conversation ({CONVERSATION_COLUMNS}) \
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
           $6::text[], $7::timestamptz[], $8::timestamptz[], $9::int8[]){}",
        conversation_conflict("least", "greatest")
    );
    sqlx::query(&sql)
        .bind(changes.iter().map(|c| c.id.as_ref()).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| clean(c.kind)).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.source).collect::<Vec<_>>())
        .bind(optional(changes, |c| c.post_token))
        .bind(optional(changes, |c| c.supply_user_id))
        .bind(optional(changes, |c| c.demand_user_id))
        .bind(
            changes
                .iter()
                .map(|c| c.first_message_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|c| c.last_message_at)
                .collect::<Vec<_>>(),
        )
        .bind(changes.iter().map(|c| c.message_count).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn optional<'a>(
    changes: &[ConversationChange<'a>],
    f: impl Fn(&ConversationChange<'a>) -> Option<&'a str>,
) -> Vec<Option<Cow<'a, str>>> {
    changes.iter().map(|c| f(c).map(clean)).collect()
}

async fn insert_events(
    tx: &mut PgTx,
    plan: &Plan<'_>,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let e = &plan.events;
    if e.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "insert into event ({EVENT_COLUMNS}) \
         select dedupe_key, event_type, subtype, subject_id, post_token, raw_body, received_at, \
           payload::json, metadata::json \
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], \
           $7::timestamptz[], $8::text[], $9::text[]) with ordinality as t({EVENT_COLUMNS}, ord) \
         order by ord \
         on conflict (dedupe_key) do nothing returning dedupe_key, seq"
    );
    let query = sqlx::query(&sql)
        .bind(texts(e, |e| &e.dedupe_key))
        .bind(texts(e, |e| &e.event_type))
        .bind(opt_texts(e, |e| &e.subtype))
        .bind(opt_texts(e, |e| &e.subject_id))
        .bind(opt_texts(e, |e| &e.post_token))
        .bind(bodies(e, |e| &e.raw_body))
        .bind(times(e, |e| e.received_at))
        .bind(json_texts(e, |e| Some(&e.payload)))
        .bind(json_texts(e, |e| e.metadata.as_ref()));
    returned(tx, query).await
}

async fn insert_clicks(
    tx: &mut PgTx,
    plan: &Plan<'_>,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let c = &plan.clicks;
    if c.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "insert into click ({CLICK_COLUMNS}) \
         select id, version, source, post_token, conversation_id, user_id, peer_id, side, rule, \
           url, outcome, raw_body, received_at, provider_data::json \
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bytea[], \
           $13::timestamptz[], $14::text[]) with ordinality as t({CLICK_COLUMNS}, ord) \
         order by ord \
         returning id, seq"
    );
    let query = sqlx::query(&sql)
        .bind(texts(c, |c| &c.id))
        .bind(texts(c, |c| &c.version))
        .bind(opt_texts(c, |c| &c.source))
        .bind(opt_texts(c, |c| &c.post_token))
        .bind(opt_texts(c, |c| &c.conversation_id))
        .bind(opt_texts(c, |c| &c.user_id))
        .bind(opt_texts(c, |c| &c.peer_id))
        .bind(opt_texts(c, |c| &c.side))
        .bind(opt_texts(c, |c| &c.rule))
        .bind(opt_texts(c, |c| &c.url))
        .bind(texts(c, |c| &c.outcome))
        .bind(bodies(c, |c| &c.raw_body))
        .bind(times(c, |c| c.received_at))
        .bind(json_texts(c, |c| Some(&c.provider_data)));
    returned(tx, query).await
}
