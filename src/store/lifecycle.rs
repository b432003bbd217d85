//! How stored records leave the store and how one person's records are found: retention's
//! batched pruning, the erasure of one user, conversation or post, and the export of what
//! one of them holds. Every removal is a transaction of at most one batch that also removes
//! the records' pending forwarding work and dead letters and puts their conversations right
//! (removed when empty, counters and times recomputed otherwise), so an interruption leaves
//! whole batches done and nothing half done. Written once for both databases.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::rows::{self, AnyRow};
use super::sql::{Dialect, Param, Sql};
use super::{Error, RecordKind, Store, query};

/// A table that retention prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Log {
    /// Chat messages (their age counts from `sent_at`).
    Messages,
    /// Events.
    Events,
    /// Button clicks.
    Clicks,
    /// Refused deliveries.
    Rejected,
}

impl Log {
    /// Every table, in the order they are pruned.
    pub const ALL: [Log; 4] = [Log::Messages, Log::Events, Log::Clicks, Log::Rejected];

    /// The name in settings, commands and metrics: `messages`, `events`, `clicks`, `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Log::Messages => "messages",
            Log::Events => "events",
            Log::Clicks => "clicks",
            Log::Rejected => "rejected",
        }
    }

    /// The log of a name.
    pub fn parse(name: &str) -> Option<Log> {
        Log::ALL.into_iter().find(|l| l.as_str() == name)
    }

    /// The forwarded record kind this table holds (refused deliveries are not forwarded).
    pub fn record_kind(self) -> Option<RecordKind> {
        match self {
            Log::Messages => Some(RecordKind::Message),
            Log::Events => Some(RecordKind::Event),
            Log::Clicks => Some(RecordKind::Click),
            Log::Rejected => None,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Log::Messages => "message",
            Log::Events => "event",
            Log::Clicks => "click",
            Log::Rejected => "rejected",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Log::Rejected => "id",
            _ => "seq",
        }
    }

    /// The column after the age in the table's time index: the order of a walk.
    fn tie(self) -> &'static str {
        match self {
            Log::Messages => "id",
            _ => self.key(),
        }
    }

    /// The column a row's age counts from.
    fn age(self) -> &'static str {
        match self {
            Log::Messages => "sent_at",
            _ => "received_at",
        }
    }
}

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which expired records retention keeps: those that an endpoint named here (active, that
/// is configured and taking the log) has not delivered yet, unless `force`.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    /// The configured endpoints that take the log being pruned.
    pub endpoints: Vec<String>,
    /// Delete them anyway.
    pub force: bool,
}

/// How far a walk through the expired rows of one table has come: rows before it were
/// removed or are kept, and are not read again.
#[derive(Debug, Clone, Default)]
pub struct Walk(Option<(DateTime<Utc>, Param)>);

/// What one removal took away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Rows of the table itself.
    pub rows: u64,
    /// Conversations left without messages, and removed.
    pub conversations: u64,
    /// Pending forwarding work and dead letters of the rows.
    pub forwarding: u64,
}

impl std::ops::AddAssign for Removed {
    fn add_assign(&mut self, other: Removed) {
        self.rows += other.rows;
        self.conversations += other.conversations;
        self.forwarding += other.forwarding;
    }
}

/// One person, conversation or post, as erasure and export match it (docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A user id: a party of a conversation (legacy), the sender or receiver of a legacy
    /// message, the clicking user or peer, the subject of an event (a revocation's user).
    User(String),
    /// A conversation id.
    Conversation(String),
    /// A post token.
    Post(String),
}

impl Identity {
    fn value(&self) -> &str {
        match self {
            Identity::User(v) | Identity::Conversation(v) | Identity::Post(v) => v,
        }
    }
}

/// The records of an identity stored at or before `up_to` (all when `None`).
#[derive(Debug, Clone)]
pub struct Erasure {
    /// Whose records.
    pub identity: Identity,
    /// Only records received at or before this time.
    pub up_to: Option<DateTime<Utc>>,
    /// Keep `USER_ACCESS_REVOCATION` events: the record of the request itself.
    pub keep_revocations: bool,
}

/// What an erasure removed (or, in a dry run, would remove), table by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Chat messages.
    pub messages: u64,
    /// Conversations.
    pub conversations: u64,
    /// Events.
    pub events: u64,
    /// Clicks.
    pub clicks: u64,
    /// Refused deliveries whose body mentions the identity.
    pub rejected: u64,
    /// Pending forwarding work and dead letters of those records.
    pub forwarding: u64,
}

/// One exported record, in `seq` order within its kind.
// One value at a time is read and written out: boxing the message buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Exported {
    /// A message.
    Message(super::StoredMessage),
    /// An event.
    Event(super::StoredEvent),
    /// A click.
    Click(super::StoredClick),
}

/// `and not exists (an active endpoint that has not delivered r)`: read past it, or pending.
fn not_waiting(sql: &mut Sql, kind: RecordKind, endpoints: &[String]) {
    sql.push(
        " and not exists (select 1 from forward_endpoint e \
         where e.disabled_reason is null and e.name in (",
    );
    sql.list(endpoints.iter().cloned().map(Param::Text).collect());
    sql.push(
        ") and (exists (select 1 from forward_cursor c \
         where c.endpoint = e.name and c.kind = ",
    )
    .bind(Param::Text(kind.as_str().into()))
    .push(" and c.seq < r.seq) or exists (select 1 from forward_pending p where p.endpoint = e.name and p.kind = ")
    .bind(Param::Text(kind.as_str().into()))
    .push(" and p.seq = r.seq)))");
}

/// `from <table> r where <age> < before [and not waiting]`.
fn expired_from(d: Dialect, log: Log, before: DateTime<Utc>, keep: &Keep) -> Sql {
    let mut sql = Sql::new(
        d,
        &format!(" from {} r where r.{} < ", log.table(), log.age()),
    );
    sql.bind(Param::Time(before));
    if let Some(kind) = log.record_kind()
        && !keep.force
        && !keep.endpoints.is_empty()
    {
        not_waiting(&mut sql, kind, &keep.endpoints);
    }
    sql
}

/// `select ... <from>`: `from` is SQL starting with ` from`, with its parameters.
fn select(d: Dialect, columns: &str, from: Sql) -> Sql {
    let mut sql = Sql::new(d, &format!("select {columns}"));
    sql.text.push_str(&from.text);
    sql.params = from.params;
    sql
}

/// The condition on rows `r` of `log` that carry `identity`; `None` when none can.
fn carries(sql: &mut Sql, log: Log, identity: &Identity) -> bool {
    let condition = match (log, identity) {
        (Log::Messages, Identity::User(_)) => {
            "(r.conversation_id in (select id from conversation \
             where supply_user_id = ? or demand_user_id = ?) \
             or r.sender_id = ? or r.receiver_id = ?)"
        }
        (Log::Messages | Log::Clicks, Identity::Conversation(_)) => "r.conversation_id = ?",
        (Log::Messages, Identity::Post(_)) => {
            "(r.post_token = ? \
             or r.conversation_id in (select id from conversation where post_token = ?))"
        }
        (Log::Events, Identity::User(_)) => "r.subject_id = ?",
        (Log::Events | Log::Clicks, Identity::Post(_)) => "r.post_token = ?",
        (Log::Clicks, Identity::User(_)) => "(r.user_id = ? or r.peer_id = ?)",
        // A refused delivery could not be read: its body is searched for the value.
        (Log::Rejected, _) if sql.dialect == Dialect::POSTGRES => "position(? in r.raw_body) > 0",
        (Log::Rejected, _) => "instr(r.raw_body, ?) > 0",
        (Log::Events, Identity::Conversation(_)) => return false,
    };
    let value = match log {
        Log::Rejected => Param::Bytes(identity.value().as_bytes().to_vec()),
        _ => Param::Text(identity.value().to_owned()),
    };
    sql.push_with(condition, &value);
    true
}

/// `from <table> r where <carries identity> [and received at or before] [and not a revocation]`;
/// `None` when no row of the table can carry it.
fn erasable_from(d: Dialect, log: Log, erasure: &Erasure) -> Option<Sql> {
    let mut sql = Sql::new(d, &format!(" from {} r where ", log.table()));
    if !carries(&mut sql, log, &erasure.identity) {
        return None;
    }
    if let Some(t) = erasure.up_to {
        sql.push(" and r.received_at <= ").bind(Param::Time(t));
    }
    if log == Log::Events && erasure.keep_revocations {
        sql.push(" and r.event_type <> 'USER_ACCESS_REVOCATION'");
    }
    Some(sql)
}

/// `conversation where <it belongs to identity>`.
fn identity_conversations(d: Dialect, start: &str, identity: &Identity) -> Sql {
    let mut sql = Sql::new(d, start);
    let value = || Param::Text(identity.value().to_owned());
    match identity {
        Identity::User(_) => {
            sql.push("(supply_user_id = ")
                .bind(value())
                .push(" or demand_user_id = ")
                .bind(value())
                .push(")");
        }
        Identity::Conversation(_) => {
            sql.push("id = ").bind(value());
        }
        Identity::Post(_) => {
            sql.push("post_token = ").bind(value());
        }
    }
    sql
}

impl Store {
    /// How many rows of `log` are older than `before` and not kept by `keep`.
    pub async fn count_expired(
        &self,
        log: Log,
        before: DateTime<Utc>,
        keep: &Keep,
    ) -> Result<u64, Error> {
        let d = self.dialect();
        let sql = select(d, "count(*) as n", expired_from(d, log, before, keep));
        let n: i64 = self.fetch_one(&sql).await?.get("n")?;
        Ok(n.max(0) as u64)
    }

    /// Deletes up to `limit` of the oldest rows of `log` older than `before` and not kept
    /// by `keep`, in one transaction; nothing removed means nothing is left to prune.
    pub async fn prune_batch(
        &self,
        log: Log,
        before: DateTime<Utc>,
        keep: &Keep,
        limit: i64,
        walk: &mut Walk,
    ) -> Result<Removed, Error> {
        let d = self.dialect();
        let mut sql = select(d, &batch_columns(log), expired_from(d, log, before, keep));
        // From where the last batch ended: the rows deleted before it stay in the index until
        // they are vacuumed, and reading past them again would make each batch slower. The
        // bound is a subquery's value: a constant that low would send PostgreSQL's planner
        // through those deleted entries to find the column's true minimum, for every batch.
        if let Some((t, tie)) = &walk.0 {
            sql.push(&format!(
                " and (r.{}, r.{}) > ((select ",
                log.age(),
                log.tie()
            ))
            .bind(Param::Time(*t))
            .push("), (select ")
            .bind(tie.clone())
            .push("))");
        }
        sql.push(&format!(" order by r.{}, r.{}", log.age(), log.tie()));
        sql.limit(limit);
        loop {
            let picked = self.fetch_all(&sql).await?;
            let Some(removed) = self.remove_picked(log, &picked).await? else {
                continue;
            };
            if let Some(last) = picked.last() {
                let tie = match log {
                    Log::Messages => Param::Text(last.get("o")?),
                    _ => Param::Int(last.get("o")?),
                };
                walk.0 = Some((last.time("t")?, tie));
            }
            return Ok(removed);
        }
    }

    /// The time of the oldest row of `log` (by the column its age counts from).
    pub async fn oldest(&self, log: Log) -> Result<Option<DateTime<Utc>>, Error> {
        let sql = Sql::new(
            self.dialect(),
            &format!(
                "select {age} as t from {} order by {age} limit 1",
                log.table(),
                age = log.age()
            ),
        );
        match self.fetch_optional(&sql).await? {
            Some(row) => Ok(Some(row.time("t")?)),
            None => Ok(None),
        }
    }

    /// Counts what [`Store::erase`] would remove.
    pub async fn count_erasable(&self, erasure: &Erasure) -> Result<Erased, Error> {
        let d = self.dialect();
        let mut counts = [0u64; 4];
        for (i, log) in Log::ALL.into_iter().enumerate() {
            if let Some(from) = erasable_from(d, log, erasure) {
                let n: i64 = self
                    .fetch_one(&select(d, "count(*) as n", from))
                    .await?
                    .get("n")?;
                counts[i] = n.max(0) as u64;
            }
        }
        // Every message of these conversations is matched too, so each would go.
        let conversations = identity_conversations(
            d,
            "select count(*) as n from conversation where ",
            &erasure.identity,
        );
        let n: i64 = self.fetch_one(&conversations).await?.get("n")?;
        Ok(Erased {
            messages: counts[0],
            conversations: n.max(0) as u64,
            events: counts[1],
            clicks: counts[2],
            rejected: counts[3],
            forwarding: 0,
        })
    }

    /// Removes every record of `erasure`, `batch` rows per transaction: messages (and the
    /// conversations they leave empty), events, clicks, refused deliveries that mention it,
    /// and the pending forwarding work and dead letters of those records.
    pub async fn erase(&self, erasure: &Erasure, batch: i64) -> Result<Erased, Error> {
        let d = self.dialect();
        let mut erased = Erased::default();
        for log in Log::ALL {
            let Some(from) = erasable_from(d, log, erasure) else {
                continue;
            };
            let mut sql = select(d, &batch_columns(log), from);
            sql.limit(batch);
            loop {
                let removed = self.remove_rows(log, &sql).await?;
                if removed.rows == 0 {
                    break;
                }
                erased.conversations += removed.conversations;
                erased.forwarding += removed.forwarding;
                match log {
                    Log::Messages => erased.messages += removed.rows,
                    Log::Events => erased.events += removed.rows,
                    Log::Clicks => erased.clicks += removed.rows,
                    Log::Rejected => erased.rejected += removed.rows,
                }
            }
        }
        // A conversation of the identity may hold no message at all.
        if erasure.up_to.is_none() {
            let mut empty =
                identity_conversations(d, "delete from conversation where ", &erasure.identity);
            empty.push(
                " and not exists (select 1 from message m where m.conversation_id = conversation.id)",
            );
            let leftover = self.execute_count(&empty).await?;
            erased.conversations += leftover;
        }
        Ok(erased)
    }

    /// Up to `limit` records of `identity` of one kind with a `seq` above `after`, oldest
    /// first, unmasked, without raw bodies.
    pub async fn export_page(
        &self,
        kind: RecordKind,
        identity: &Identity,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Exported>, Error> {
        let d = self.dialect();
        let (log, columns) = match kind {
            RecordKind::Message => (Log::Messages, query::message_columns(d)),
            RecordKind::Event => (Log::Events, query::event_columns(d, false)),
            RecordKind::Click => (Log::Clicks, query::click_columns(d, false)),
        };
        let erasure = Erasure {
            identity: identity.clone(),
            up_to: None,
            keep_revocations: false,
        };
        let Some(from) = erasable_from(d, log, &erasure) else {
            return Ok(Vec::new());
        };
        let mut sql = select(d, &columns, from);
        sql.push(" and r.seq > ").bind(Param::Int(after));
        sql.push(" order by r.seq");
        sql.limit(limit);
        let rows = self.fetch_all(&sql).await?;
        rows.iter()
            .map(|r| {
                Ok(match kind {
                    RecordKind::Message => Exported::Message(rows::message(r)?),
                    RecordKind::Event => Exported::Event(rows::event(r)?),
                    RecordKind::Click => Exported::Click(rows::click(r)?),
                })
            })
            .collect()
    }

    /// Reads the batch `select` picks and removes those rows, as [`Store::remove_picked`];
    /// picks again while another removal took some of them first.
    async fn remove_rows(&self, log: Log, select: &Sql) -> Result<Removed, Error> {
        loop {
            let picked = self.fetch_all(select).await?;
            if let Some(removed) = self.remove_picked(log, &picked).await? {
                return Ok(removed);
            }
        }
    }

    /// Removes the rows picked by a batch's select (keys, and conversation ids for messages)
    /// with their forwarding work in one transaction, and puts their conversations right:
    /// each one's count goes down by its messages removed (an update relative to the row, as
    /// the batch writers' are, so neither waits for the other's lock), its first and last
    /// times are read again, and one left with no message is removed. `None`: some rows were
    /// gone already (removed by another command), and nothing was changed.
    async fn remove_picked(&self, log: Log, picked: &[AnyRow]) -> Result<Option<Removed>, Error> {
        let d = self.dialect();
        if picked.is_empty() {
            return Ok(Some(Removed::default()));
        }
        let keys = picked
            .iter()
            .map(|r| r.get::<i64>("k").map(Param::Int))
            .collect::<Result<Vec<_>, _>>()?;
        let mut per_conversation = std::collections::BTreeMap::<String, i64>::new();
        if log == Log::Messages {
            for r in picked {
                *per_conversation.entry(r.get::<String>("c")?).or_default() += 1;
            }
        }

        let mut delete = Sql::new(
            d,
            &format!("delete from {} where {} in (", log.table(), log.key()),
        );
        delete.list(keys.clone()).push(")");
        let mut statements = vec![delete];
        if let Some(kind) = log.record_kind() {
            // A forwarder holds its pending records in memory: a new revision makes it read
            // them again and drop what is gone.
            let mut bump = Sql::new(
                d,
                "update forward_endpoint set revision = revision + 1 where name in \
                 (select endpoint from forward_pending where kind = ",
            );
            bump.bind(Param::Text(kind.as_str().into()))
                .push(" and seq in (")
                .list(keys.clone())
                .push("))");
            statements.push(bump);
            for table in ["forward_pending", "forward_dead"] {
                let mut sql = Sql::new(
                    d,
                    &format!(
                        "delete from {table} where endpoint in (select name from forward_endpoint) \
                         and kind = "
                    ),
                );
                sql.bind(Param::Text(kind.as_str().into()))
                    .push(" and seq in (")
                    .list(keys.clone())
                    .push(")");
                statements.push(sql);
            }
        }
        if !per_conversation.is_empty() {
            let mut down = Sql::new(d, "with v (id, n) as (values ");
            for (i, (id, n)) in per_conversation.iter().enumerate() {
                down.push(if i == 0 { "(cast(" } else { ", (cast(" })
                    .bind(Param::Text(id.clone()))
                    .push(" as text), cast(")
                    .bind(Param::Int(*n))
                    .push(" as bigint))");
            }
            // One new version of each row: its count goes down and its first and last times
            // are read again, except where no message is left and the row goes next.
            down.push(
                ") update conversation set message_count = message_count - v.n, \
                 first_message_at = case when message_count > v.n then coalesce(\
                   (select min(m.sent_at) from message m \
                    where m.conversation_id = conversation.id), first_message_at) \
                   else first_message_at end, \
                 last_message_at = case when message_count > v.n then coalesce(\
                   (select max(m.sent_at) from message m \
                    where m.conversation_id = conversation.id), last_message_at) \
                   else last_message_at end \
                 from v where conversation.id = v.id",
            );
            statements.push(down);
            let ids: Vec<Param> = per_conversation.into_keys().map(Param::Text).collect();
            // Checked on the row itself, so a message a writer adds meanwhile keeps it.
            let mut empty = Sql::new(
                d,
                "delete from conversation where message_count <= 0 and id in (",
            );
            empty.list(ids).push(")");
            statements.push(empty);
        }
        if let Some(kind) = log.record_kind() {
            // Last, so that the counts above keep their places.
            let mut replies = Sql::new(d, "delete from outbox where kind = ");
            replies
                .bind(Param::Text(kind.as_str().into()))
                .push(" and seq in (")
                .list(keys.clone())
                .push(")");
            statements.push(replies);
        }
        let expected = keys.len() as u64;
        let Some(changed) = self
            .transaction_if_first_changes_exactly(&statements, expected)
            .await?
        else {
            return Ok(None);
        };
        let forwarding = if log.record_kind().is_some() {
            changed[2] + changed[3]
        } else {
            0
        };
        let conversations = if log == Log::Messages { changed[5] } else { 0 };
        Ok(Some(Removed {
            rows: changed[0],
            conversations,
            forwarding,
        }))
    }
}

/// What a batch selects: the key as `k`, for messages the conversation as `c`, and the
/// age as `t` and the walk's tie as `o`.
fn batch_columns(log: Log) -> String {
    let walk = format!("r.{} as t, r.{} as o", log.age(), log.tie());
    match log {
        Log::Messages => format!("r.seq as k, r.conversation_id as c, {walk}"),
        _ => format!("r.{} as k, {walk}", log.key()),
    }
}
