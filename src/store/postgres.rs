//! The PostgreSQL implementation of the store.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::query::{self, Dialect, Param, Sql};
use super::{
    ConversationFacts, MessageSource, NOTIFY_CHANNEL, NewClick, NewEvent, NewIds, NewMessage,
    NewRecord, Registration, StoredClick, StoredConversation, StoredEvent, StoredMessage,
    WRITER_LOCK, WriteOutcome, json_text, notification, parse_json_column, storable_text,
};

/// A PostgreSQL connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Wraps a pool.
    pub fn new(pool: PgPool) -> Self {
        PgStore { pool }
    }

    /// The pool, for the read API and the live stream.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub(super) async fn close(&self) {
        self.pool.close().await
    }

    pub(super) async fn write_batch(
        &self,
        records: &[NewRecord],
    ) -> Result<(Vec<WriteOutcome>, NewIds), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Writers of every replica take turns, so `seq` order is commit order and a reader
        // that has seen seq N will never later find a smaller one appear.
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(WRITER_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut outcomes = Vec::with_capacity(records.len());
        let mut new_ids = NewIds::default();
        for record in records {
            let (outcome, seq) = match record {
                NewRecord::Message(m) => insert_message(&mut tx, m).await?,
                NewRecord::Event(e) => insert_event(&mut tx, e).await?,
                NewRecord::Click(c) => insert_click(&mut tx, c).await?,
            };
            new_ids.note(record, seq);
            outcomes.push(outcome);
        }
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

    pub(super) async fn message(&self, id: &str) -> Result<Option<StoredMessage>, sqlx::Error> {
        let sql = format!(
            "select {} from message where id = $1",
            query::message_columns(DIALECT)
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| message_from_row(&r)).transpose()
    }

    pub(super) async fn conversation(
        &self,
        id: &str,
    ) -> Result<Option<StoredConversation>, sqlx::Error> {
        let row = sqlx::query("select * from conversation where id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| conversation_from_row(&r)).transpose()
    }

    pub(super) async fn all_events(&self) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let rows = sqlx::query(
            "select seq, dedupe_key, event_type, subtype, subject_id, post_token, \
             payload::text as payload, metadata::text as metadata, raw_body, received_at \
             from event order by seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    pub(super) async fn all_clicks(&self) -> Result<Vec<StoredClick>, sqlx::Error> {
        let rows = sqlx::query("select seq, id, version, source, post_token, conversation_id, user_id, peer_id, side, provider_data::text as provider_data, rule, url, outcome, raw_body, received_at from click order by seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(click_from_row).collect()
    }

    pub(super) async fn insert_registration(&self, r: &Registration) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into registration (id, post_token, endpoint, key_digest, created_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(&r.id)
        .bind(&r.post_token)
        .bind(&r.endpoint)
        .bind(&r.key_digest)
        .bind(r.created_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    pub(super) async fn delete_registration(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("delete from registration where id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub(super) async fn registrations(&self) -> Result<Vec<Registration>, sqlx::Error> {
        let rows = sqlx::query("select * from registration order by created_at desc, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Registration {
                    id: r.try_get("id")?,
                    post_token: r.try_get("post_token")?,
                    endpoint: r.try_get("endpoint")?,
                    key_digest: r.try_get("key_digest")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub(super) async fn registration_key_valid(
        &self,
        key_digest: &str,
        post_token: &str,
    ) -> Result<bool, sqlx::Error> {
        let row =
            sqlx::query("select 1 from registration where key_digest = $1 and post_token = $2")
                .bind(key_digest)
                .bind(post_token)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    pub(super) async fn list_conversations(
        &self,
        q: &query::ConversationQuery,
    ) -> Result<Vec<StoredConversation>, sqlx::Error> {
        let sql = query::conversations(DIALECT, q);
        let rows = bind(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(conversation_from_row).collect()
    }

    pub(super) async fn list_messages(
        &self,
        q: &query::MessageQuery,
    ) -> Result<Vec<StoredMessage>, sqlx::Error> {
        let sql = query::messages(DIALECT, q);
        let rows = bind(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(message_from_row).collect()
    }

    pub(super) async fn list_events(
        &self,
        q: &query::LogQuery,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = query::events(DIALECT, q);
        let rows = bind(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }

    pub(super) async fn list_clicks(
        &self,
        q: &query::LogQuery,
    ) -> Result<Vec<StoredClick>, sqlx::Error> {
        let sql = query::clicks(DIALECT, q);
        let rows = bind(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(click_from_row).collect()
    }

    pub(super) async fn stream_messages(
        &self,
        q: &query::StreamQuery,
    ) -> Result<Vec<StoredMessage>, sqlx::Error> {
        let sql = query::stream_messages(DIALECT, q);
        let rows = bind(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(message_from_row).collect()
    }

    pub(super) async fn high_water_marks(&self) -> Result<(i64, i64, i64), sqlx::Error> {
        let row = sqlx::query(query::high_water_marks())
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
    }

    pub(super) async fn counts(&self) -> Result<(i64, i64, i64), sqlx::Error> {
        let row = sqlx::query(
            "select (select count(*) from conversation), (select count(*) from message), \
             (select count(*) from event)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
    }
}

async fn insert_message(
    tx: &mut Transaction<'_, Postgres>,
    m: &NewMessage,
) -> Result<(WriteOutcome, Option<i64>), sqlx::Error> {
    let inserted = sqlx::query(
        "insert into message (id, source, event_type, conversation_id, post_token, \
         message_type, text, sender_side, sender_type, sender_id, receiver_side, receiver_id, \
         sent_at, sent_at_raw, received_at, data, metadata, raw_body) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16::text::json, $17::text::json, $18) \
         on conflict (id) do nothing returning seq",
    )
    .bind(&m.id)
    .bind(m.source.as_str())
    .bind(&m.event_type)
    .bind(&m.conversation.id)
    .bind(&m.conversation.post_token)
    .bind(&m.message_type)
    .bind(storable_text(&m.text))
    .bind(&m.sender_side)
    .bind(&m.sender_type)
    .bind(&m.sender_id)
    .bind(&m.receiver_side)
    .bind(&m.receiver_id)
    .bind(m.sent_at)
    .bind(&m.sent_at_raw)
    .bind(m.received_at)
    .bind(json_text(&m.data))
    .bind(json_text(&m.metadata))
    .bind(&m.raw_body)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = inserted else {
        return Ok((WriteOutcome::Duplicate, None));
    };
    let c = &m.conversation;
    sqlx::query(
        "insert into conversation (id, kind, source, post_token, supply_user_id, \
         demand_user_id, first_message_at, last_message_at, message_count) \
         values ($1, $2, $3, $4, $5, $6, $7, $7, 1) \
         on conflict (id) do update set \
           post_token = coalesce(conversation.post_token, excluded.post_token), \
           supply_user_id = coalesce(conversation.supply_user_id, excluded.supply_user_id), \
           demand_user_id = coalesce(conversation.demand_user_id, excluded.demand_user_id), \
           first_message_at = least(conversation.first_message_at, excluded.first_message_at), \
           last_message_at = greatest(conversation.last_message_at, excluded.last_message_at), \
           message_count = conversation.message_count + 1",
    )
    .bind(&c.id)
    .bind(&c.kind)
    .bind(m.source.as_str())
    .bind(&c.post_token)
    .bind(&c.supply_user_id)
    .bind(&c.demand_user_id)
    .bind(m.sent_at)
    .execute(&mut **tx)
    .await?;
    Ok((WriteOutcome::Stored, Some(row.try_get(0)?)))
}

async fn insert_event(
    tx: &mut Transaction<'_, Postgres>,
    e: &NewEvent,
) -> Result<(WriteOutcome, Option<i64>), sqlx::Error> {
    let inserted = sqlx::query(
        "insert into event (dedupe_key, event_type, subtype, subject_id, post_token, payload, \
         metadata, raw_body, received_at) \
         values ($1, $2, $3, $4, $5, $6::text::json, $7::text::json, $8, $9) \
         on conflict (dedupe_key) do nothing returning seq",
    )
    .bind(&e.dedupe_key)
    .bind(&e.event_type)
    .bind(&e.subtype)
    .bind(&e.subject_id)
    .bind(&e.post_token)
    .bind(e.payload.to_string())
    .bind(json_text(&e.metadata))
    .bind(&e.raw_body)
    .bind(e.received_at)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match inserted {
        Some(row) => (WriteOutcome::Stored, Some(row.try_get(0)?)),
        None => (WriteOutcome::Duplicate, None),
    })
}

async fn insert_click(
    tx: &mut Transaction<'_, Postgres>,
    c: &NewClick,
) -> Result<(WriteOutcome, Option<i64>), sqlx::Error> {
    let row = sqlx::query(
        "insert into click (id, version, source, post_token, conversation_id, user_id, \
         peer_id, side, rule, provider_data, url, outcome, raw_body, received_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::json, $11, $12, $13, $14) \
         returning seq",
    )
    .bind(&c.id)
    .bind(&c.version)
    .bind(&c.source)
    .bind(&c.post_token)
    .bind(&c.conversation_id)
    .bind(&c.user_id)
    .bind(&c.peer_id)
    .bind(&c.side)
    .bind(&c.rule)
    .bind(c.provider_data.to_string())
    .bind(&c.url)
    .bind(&c.outcome)
    .bind(&c.raw_body)
    .bind(c.received_at)
    .fetch_one(&mut **tx)
    .await?;
    Ok((WriteOutcome::Stored, Some(row.try_get(0)?)))
}

/// Reads a row selected with [`query::message_columns`].
pub(crate) fn message_from_row(r: &PgRow) -> Result<StoredMessage, sqlx::Error> {
    let source: String = r.try_get("source")?;
    Ok(StoredMessage {
        seq: r.try_get("seq")?,
        message: NewMessage {
            id: r.try_get("id")?,
            source: if source == "legacy" {
                MessageSource::Legacy
            } else {
                MessageSource::Events
            },
            event_type: r.try_get("event_type")?,
            conversation: ConversationFacts {
                id: r.try_get("conversation_id")?,
                kind: String::new(),
                post_token: r.try_get("post_token")?,
                supply_user_id: None,
                demand_user_id: None,
            },
            message_type: r.try_get("message_type")?,
            text: r.try_get("text")?,
            sender_side: r.try_get("sender_side")?,
            sender_type: r.try_get("sender_type")?,
            sender_id: r.try_get("sender_id")?,
            receiver_side: r.try_get("receiver_side")?,
            receiver_id: r.try_get("receiver_id")?,
            sent_at: r.try_get::<DateTime<Utc>, _>("sent_at")?,
            sent_at_raw: r.try_get("sent_at_raw")?,
            received_at: r.try_get::<DateTime<Utc>, _>("received_at")?,
            data: parse_json_column(r.try_get("data")?),
            metadata: parse_json_column(r.try_get("metadata")?),
            raw_body: r.try_get("raw_body")?,
        },
    })
}

pub(crate) fn conversation_from_row(r: &PgRow) -> Result<StoredConversation, sqlx::Error> {
    Ok(StoredConversation {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        source: r.try_get("source")?,
        post_token: r.try_get("post_token")?,
        supply_user_id: r.try_get("supply_user_id")?,
        demand_user_id: r.try_get("demand_user_id")?,
        first_message_at: r.try_get("first_message_at")?,
        last_message_at: r.try_get("last_message_at")?,
        message_count: r.try_get("message_count")?,
    })
}

pub(crate) fn event_from_row(r: &PgRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        seq: r.try_get("seq")?,
        event: NewEvent {
            dedupe_key: r.try_get("dedupe_key")?,
            event_type: r.try_get("event_type")?,
            subtype: r.try_get("subtype")?,
            subject_id: r.try_get("subject_id")?,
            post_token: r.try_get("post_token")?,
            payload: parse_json_column(r.try_get("payload")?).unwrap_or_default(),
            metadata: parse_json_column(r.try_get("metadata")?),
            raw_body: r.try_get("raw_body")?,
            received_at: r.try_get("received_at")?,
        },
    })
}

pub(crate) fn click_from_row(r: &PgRow) -> Result<StoredClick, sqlx::Error> {
    Ok(StoredClick {
        seq: r.try_get("seq")?,
        click: NewClick {
            id: r.try_get("id")?,
            version: r.try_get("version")?,
            source: r.try_get("source")?,
            post_token: r.try_get("post_token")?,
            conversation_id: r.try_get("conversation_id")?,
            user_id: r.try_get("user_id")?,
            peer_id: r.try_get("peer_id")?,
            side: r.try_get("side")?,
            provider_data: parse_json_column(r.try_get("provider_data")?).unwrap_or_default(),
            rule: r.try_get("rule")?,
            url: r.try_get("url")?,
            outcome: r.try_get("outcome")?,
            raw_body: r.try_get("raw_body")?,
            received_at: r.try_get("received_at")?,
        },
    })
}

const DIALECT: Dialect = Dialect::Postgres;

/// A query with its parameters bound.
fn bind(sql: &Sql) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    let mut q = sqlx::query(&sql.text);
    for param in &sql.params {
        q = match param {
            Param::Text(s) => q.bind(s),
            Param::Int(i) => q.bind(*i),
            Param::Time(t) => q.bind(*t),
        };
    }
    q
}
