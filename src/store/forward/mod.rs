//! What forwarding keeps in the database: each endpoint's state, its read position in each
//! log, the records it has read but not yet delivered (pending), its dead letters and the
//! attempt log. Written for both databases.

use chrono::{DateTime, Utc};

mod lease;
mod log;

use super::rows::{AnyRow, from_column, read_row};
use super::{Error, Positions, RecordKind, RecordRef, Store};

use super::sql::{Dialect, Param, Sql};
pub use lease::{Lease, TRY_EVERY};

/// An endpoint's stored state.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointState {
    /// The endpoint's name.
    pub name: String,
    /// Paused from the CLI.
    pub paused: bool,
    /// Why the endpoint was disabled (the receiver answered 410), if it was.
    pub disabled_reason: Option<String>,
    /// Bumped whenever the CLI changes the state or adds pending records.
    pub revision: i64,
    /// The last delivery answered 2xx.
    pub last_success_at: Option<DateTime<Utc>>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// When it went wrong.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A record read for an endpoint and not yet delivered or dead.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The record.
    pub record: RecordRef,
    /// Records of one key are delivered one at a time, in `seq` order.
    pub order_key: Option<String>,
    /// When kenar-hook received the record.
    pub received_at: DateTime<Utc>,
    /// Attempts made so far.
    pub attempts: i64,
    /// Not attempted before this time.
    pub next_at: DateTime<Utc>,
    /// The JSON posted.
    pub body: String,
}

/// A record an endpoint gave up on.
#[derive(Debug, Clone, PartialEq)]
pub struct Dead {
    /// Position in the dead-letter list.
    pub id: i64,
    /// The record.
    pub pending: Pending,
    /// The last attempt's error.
    pub last_error: String,
    /// When it was given up.
    pub dead_at: DateTime<Utc>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Position in the log (0 before it is stored).
    pub id: i64,
    /// The endpoint.
    pub endpoint: String,
    /// The record.
    pub record: RecordRef,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The answer's status, when there was one.
    pub status_code: Option<i64>,
    /// From sending to the answer's end or the error.
    pub latency_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// The first KiB of the answer.
    pub response: Option<String>,
    /// When it was made.
    pub at: DateTime<Utc>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed and will be tried again (or the record was erased meanwhile).
    Failed,
    /// An early try while the endpoint was failing: its failure is not counted.
    Probe,
    /// It failed, and it was the last attempt.
    Dead,
    /// The receiver answered 410: the endpoint is disabled.
    Gone,
}

impl AttemptOutcome {
    /// Every outcome.
    pub const ALL: [AttemptOutcome; 5] = [
        Self::Delivered,
        Self::Failed,
        Self::Probe,
        Self::Dead,
        Self::Gone,
    ];

    /// The name stored, shown, counted and filtered on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Probe => "probe",
            Self::Dead => "dead",
            Self::Gone => "gone",
        }
    }

    /// The outcome of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

from_column!(named AttemptOutcome);

/// A record that failed, to be tried again.
#[derive(Debug, Clone)]
pub struct Retry {
    /// The record.
    pub record: RecordRef,
    /// Attempts made so far.
    pub attempts: i64,
    /// Not attempted before this time.
    pub next_at: DateTime<Utc>,
}

/// What a round of deliveries changed, written in one transaction.
#[derive(Debug, Default)]
pub struct Progress {
    /// Delivered (or dead): no longer pending.
    pub done: Vec<RecordRef>,
    /// Failed, to be retried.
    pub retries: Vec<Retry>,
    /// Given up.
    pub dead: Vec<Dead>,
    /// The attempts made.
    pub attempts: Vec<Attempt>,
    /// The newest success.
    pub success_at: Option<DateTime<Utc>>,
    /// The newest error.
    pub error: Option<(String, DateTime<Utc>)>,
    /// Replies the endpoint answered with.
    pub replies: Vec<super::outbox::NewReply>,
}

impl Progress {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
            && self.retries.is_empty()
            && self.dead.is_empty()
            && self.attempts.is_empty()
            && self.success_at.is_none()
            && self.error.is_none()
            && self.replies.is_empty()
    }
}

/// Filters and page of the attempt log (newest first).
#[derive(Debug, Clone, Default)]
pub struct AttemptQuery {
    /// Only this endpoint.
    pub endpoint: Option<String>,
    /// Only this outcome.
    pub outcome: Option<AttemptOutcome>,
    /// Made at or after.
    pub since: Option<DateTime<Utc>>,
    /// Keyset: the id of the last row of the previous page.
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: i64,
}

fn state(r: &AnyRow) -> Result<EndpointState, Error> {
    read_row!(
        r,
        EndpointState {
            name,
            paused,
            disabled_reason,
            revision,
            last_success_at,
            last_error,
            last_error_at
        }
    )
}

const PENDING_COLUMNS: &str = "kind, seq, order_key, received_at, attempts, next_at, body";

fn pending(r: &AnyRow) -> Result<Pending, Error> {
    read_row!(
        r,
        Pending {
            record = r.record()?,
            order_key,
            received_at,
            attempts,
            next_at,
            body
        }
    )
}

fn attempt(r: &AnyRow) -> Result<Attempt, Error> {
    read_row!(
        r,
        Attempt {
            id,
            endpoint,
            record = r.record()?,
            attempt,
            outcome,
            status_code,
            latency_ms,
            error,
            response,
            at
        }
    )
}

/// Rows per multi-row insert: well under both databases' parameter limits.
const CHUNK: usize = 400;

fn insert_pending(d: Dialect, endpoint: &str, rows: &[Pending]) -> Vec<Sql> {
    rows.chunks(CHUNK)
        .map(|chunk| {
            let mut sql = Sql::new(
                d,
                &format!("insert into forward_pending (endpoint, {PENDING_COLUMNS}) values "),
            );
            for (i, p) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" });
                sql.list(vec![
                    Param::Text(endpoint.to_owned()),
                    Param::Text(p.record.kind.as_str().to_owned()),
                    Param::Int(p.record.seq),
                    Param::OptText(p.order_key.clone()),
                    Param::Time(p.received_at),
                    Param::Int(p.attempts),
                    Param::Time(p.next_at),
                    Param::Text(p.body.clone()),
                ]);
                sql.push(")");
            }
            sql.push(" on conflict (endpoint, kind, seq) do nothing");
            sql
        })
        .collect()
}

fn delete_keys(d: Dialect, table: &str, endpoint: &str, keys: &[RecordRef]) -> Vec<Sql> {
    // In the kinds' name order, as the forwarding tables list them.
    let mut kinds = RecordKind::ALL;
    kinds.sort_by_key(|k| k.as_str());
    let mut out = Vec::new();
    for kind in kinds {
        let seqs: Vec<Param> = keys
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| Param::Int(r.seq))
            .collect();
        for chunk in seqs.chunks(CHUNK) {
            let mut sql = Sql::new(d, &format!("delete from {table} where endpoint = "));
            sql.bind(Param::Text(endpoint.to_owned()))
                .push(" and kind = ")
                .bind(Param::Text(kind.as_str().to_owned()))
                .push(" and seq in (")
                .list(chunk.to_vec())
                .push(")");
            out.push(sql);
        }
    }
    out
}

impl Store {
    /// Adds a state row and read positions for each endpoint not seen before. A new
    /// endpoint starts at the current end of each log: it gets what is stored from now on
    /// (older records by replay).
    pub async fn forward_register(&self, names: &[String]) -> Result<(), Error> {
        let d = self.dialect();
        let high = self.high_water_marks().await?;
        let mut statements = Vec::new();
        for name in names {
            let mut sql = Sql::new(d, "insert into forward_endpoint (name) values (");
            sql.bind(Param::Text(name.clone()))
                .push(") on conflict (name) do nothing");
            statements.push(sql);
            for kind in RecordKind::ALL {
                let mut sql = Sql::new(
                    d,
                    "insert into forward_cursor (endpoint, kind, seq) values (",
                );
                sql.list(vec![
                    Param::Text(name.clone()),
                    Param::Text(kind.as_str().to_owned()),
                    Param::Int(high.get(kind)),
                ])
                .push(") on conflict (endpoint, kind) do nothing");
                statements.push(sql);
            }
        }
        self.transaction(&statements).await.map(|_| ())
    }

    /// One endpoint's state.
    pub async fn forward_state(&self, name: &str) -> Result<Option<EndpointState>, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select * from forward_endpoint where name = ",
        );
        sql.bind(Param::Text(name.to_owned()));
        self.fetch_optional(&sql)
            .await?
            .as_ref()
            .map(state)
            .transpose()
    }

    /// Where an endpoint has read each log to.
    pub async fn forward_cursors(&self, name: &str) -> Result<Positions, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select kind, seq from forward_cursor where endpoint = ",
        );
        sql.bind(Param::Text(name.to_owned()));
        let mut out = Positions::default();
        for row in self.fetch_all(&sql).await? {
            out.set(row.get("kind")?, row.get("seq")?);
        }
        Ok(out)
    }

    /// Moves an endpoint's read position in one log from `from` to `to` and adds what it
    /// read there to its pending records, in one transaction. False (and nothing changed)
    /// when the position was not `from`: another process moved it.
    pub async fn forward_take(
        &self,
        name: &str,
        kind: RecordKind,
        from: i64,
        to: i64,
        rows: &[Pending],
    ) -> Result<bool, Error> {
        let d = self.dialect();
        let mut cas = Sql::new(d, "update forward_cursor set seq = ");
        cas.bind(Param::Int(to))
            .push(" where endpoint = ")
            .bind(Param::Text(name.to_owned()))
            .push(" and kind = ")
            .bind(Param::Text(kind.as_str().to_owned()))
            .push(" and seq = ")
            .bind(Param::Int(from));
        let mut statements = vec![cas];
        statements.extend(insert_pending(d, name, rows));
        // The pending rows must not land when another process moved the position.
        self.transaction_if_first_changes(&statements).await
    }

    /// An endpoint's pending records, in (kind, seq) order.
    pub async fn forward_pending(&self, name: &str) -> Result<Vec<Pending>, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            &format!("select {PENDING_COLUMNS} from forward_pending where endpoint = "),
        );
        sql.bind(Param::Text(name.to_owned()))
            .push(" order by kind, seq");
        self.fetch_all(&sql).await?.iter().map(pending).collect()
    }

    /// How many records an endpoint has pending, and the oldest one's arrival.
    pub async fn forward_pending_summary(
        &self,
        name: &str,
    ) -> Result<(i64, Option<DateTime<Utc>>), Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select count(*) as n, min(received_at) as oldest from forward_pending where endpoint = ",
        );
        sql.bind(Param::Text(name.to_owned()));
        let row = self.fetch_one(&sql).await?;
        Ok((row.get("n")?, row.opt_time("oldest")?))
    }

    /// How many dead letters an endpoint holds.
    pub async fn forward_dead_count(&self, name: &str) -> Result<i64, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select count(*) as n from forward_dead where endpoint = ",
        );
        sql.bind(Param::Text(name.to_owned()));
        Ok(self.fetch_one(&sql).await?.get("n")?)
    }

    /// Writes what a round of deliveries changed, in one transaction. Which of
    /// `p.replies` were recorded (a reply recorded already for its record is not).
    pub async fn forward_progress(&self, name: &str, p: &Progress) -> Result<Vec<bool>, Error> {
        let d = self.dialect();
        let text = |s: &str| Param::Text(s.to_owned());
        if p.is_empty() {
            return Ok(Vec::new());
        }
        // The endpoint's row first: a prune or an erasure locks it before the pending rows
        // it deletes, and taking the two in the other order deadlocks PostgreSQL.
        let (error, error_at) = match &p.error {
            Some((error, at)) => (Some(error.clone()), Some(*at)),
            None => (None, None),
        };
        let mut endpoint = Sql::new(d, "update forward_endpoint set last_success_at = coalesce(");
        endpoint
            .bind(Param::OptTime(p.success_at))
            .push(", last_success_at), last_error = coalesce(")
            .bind(Param::OptText(error))
            .push(", last_error), last_error_at = coalesce(")
            .bind(Param::OptTime(error_at))
            .push(", last_error_at) where name = ")
            .bind(text(name));
        let mut statements = vec![endpoint];
        statements.extend(delete_keys(d, "forward_pending", name, &p.done));
        for retry in &p.retries {
            let mut sql = Sql::new(d, "update forward_pending set attempts = ");
            sql.bind(Param::Int(retry.attempts))
                .push(", next_at = ")
                .bind(Param::Time(retry.next_at))
                .push(" where endpoint = ")
                .bind(text(name))
                .push(" and kind = ")
                .bind(text(retry.record.kind.as_str()))
                .push(" and seq = ")
                .bind(Param::Int(retry.record.seq));
            statements.push(sql);
        }
        for dead in &p.dead {
            let r = &dead.pending;
            let mut sql = Sql::new(
                d,
                "insert into forward_dead (endpoint, kind, seq, order_key, received_at, \
                 attempts, last_error, dead_at, body) values (",
            );
            sql.list(vec![
                text(name),
                text(r.record.kind.as_str()),
                Param::Int(r.record.seq),
                Param::OptText(r.order_key.clone()),
                Param::Time(r.received_at),
                Param::Int(r.attempts),
                text(&dead.last_error),
                Param::Time(dead.dead_at),
                text(&r.body),
            ])
            .push(
                ") on conflict (endpoint, kind, seq) do update set attempts = excluded.attempts, \
                 last_error = excluded.last_error, dead_at = excluded.dead_at",
            );
            statements.push(sql);
        }
        for chunk in p.attempts.chunks(CHUNK) {
            let mut sql = Sql::new(
                d,
                "insert into forward_attempt (endpoint, kind, seq, attempt, outcome, \
                 status_code, latency_ms, error, response, at) values ",
            );
            for (i, a) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" });
                sql.list(vec![
                    text(&a.endpoint),
                    text(a.record.kind.as_str()),
                    Param::Int(a.record.seq),
                    Param::Int(a.attempt),
                    text(a.outcome.as_str()),
                    Param::OptInt(a.status_code),
                    Param::Int(a.latency_ms),
                    Param::OptText(a.error.clone()),
                    Param::OptText(a.response.clone()),
                    Param::Time(a.at),
                ]);
                sql.push(")");
            }
            statements.push(sql);
        }
        // Last, so that their rows changed are the last counts.
        let now = Utc::now();
        for r in &p.replies {
            statements.push(super::outbox::insert_reply(d, name, r, now));
        }
        let changed = self.transaction(&statements).await?;
        let inserted = &changed[changed.len() - p.replies.len()..];
        Ok(inserted.iter().map(|n| *n > 0).collect())
    }

    /// Pauses or resumes an endpoint; resuming also clears a 410's disabling. False when no
    /// endpoint has this name.
    pub async fn forward_set_paused(&self, name: &str, paused: bool) -> Result<bool, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            if paused {
                "update forward_endpoint set paused = true, revision = revision + 1 where name = "
            } else {
                "update forward_endpoint set paused = false, disabled_reason = null, \
                 revision = revision + 1 where name = "
            },
        );
        sql.bind(Param::Text(name.to_owned()));
        Ok(self.transaction(&[sql]).await?[0] == 1)
    }

    /// Disables an endpoint (its receiver answered 410).
    pub async fn forward_disable(&self, name: &str, reason: &str) -> Result<(), Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "update forward_endpoint set disabled_reason = ",
        );
        sql.bind(Param::Text(reason.to_owned()))
            .push(" where name = ")
            .bind(Param::Text(name.to_owned()));
        self.execute(&sql).await
    }
}
