//! The outbox: the replies endpoints asked for in their answers to pushes, one row per record
//! and endpoint at most, and what became of each.

use super::rows::{AnyRow, from_column, read_row};
use super::sql::{Dialect, Param, Sql};
use super::{Error, RecordRef, Store};
use chrono::{DateTime, Utc};

/// Where a reply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Recorded; the call to Divar is still to be made.
    Pending,
    /// The call is being made.
    Sending,
    /// Divar accepted it.
    Sent,
    /// Divar could not be reached, or kept asking to wait, until the call's deadline.
    Failed,
    /// The call may or may not have reached Divar: never made again on its own.
    Unknown,
    /// Never to be sent: the reply is malformed, no credential can send it, or Divar
    /// refused it.
    Refused,
}

impl OutboxStatus {
    /// Every status, in the order of a reply's life.
    pub const ALL: [OutboxStatus; 6] = [
        Self::Pending,
        Self::Sending,
        Self::Sent,
        Self::Failed,
        Self::Unknown,
        Self::Refused,
    ];

    /// The name stored, shown and filtered on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Refused => "refused",
        }
    }

    /// The status of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

from_column!(named OutboxStatus);

/// A reply read from an endpoint's answer, to be recorded with the push's progress.
#[derive(Debug, Clone)]
pub struct NewReply {
    /// The record answered.
    pub record: RecordRef,
    /// Divar's message id, where there is one.
    pub record_id: Option<String>,
    /// The conversation, where there is one.
    pub conversation_id: Option<String>,
    /// `Sending` (its call is made right after the commit), or `Refused` with the reason in
    /// `answer`; on a stored reply, where it stands now.
    pub status: OutboxStatus,
    /// The reply as answered (JSON).
    pub json: String,
    /// Which API answers the record, and whom (JSON); `None` when refused.
    pub target: Option<String>,
    /// Why it is refused; on a stored reply, Divar's answer or why no call was made.
    pub answer: Option<String>,
}

/// A stored reply.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Position in the outbox.
    pub id: i64,
    /// The endpoint that answered with the reply.
    pub endpoint: String,
    /// The reply as recorded, its status and answer as they stand now.
    pub reply: NewReply,
    /// The call made: method, URL and body, without credentials.
    pub request: Option<String>,
    /// `api key`, or the vault user whose token was used.
    pub credential: Option<String>,
    /// Calls taken for (1 after the first).
    pub attempts: i64,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// How a call ended, to be written on its row.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub status: OutboxStatus,
    /// The call made, without credentials.
    pub request: Option<String>,
    /// The credential used.
    pub credential: Option<String>,
    /// Divar's answer, or why there was no call.
    pub answer: Option<String>,
}

/// A call that ended, to be written on its reply's row.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The endpoint of the reply.
    pub endpoint: String,
    /// The record answered.
    pub record: RecordRef,
    /// How the call ended.
    pub outcome: Outcome,
}

/// Filters and page of the outbox list (newest first).
#[derive(Debug, Clone, Default)]
pub struct OutboxQuery {
    /// Only this status.
    pub status: Option<OutboxStatus>,
    /// Only this endpoint.
    pub endpoint: Option<String>,
    /// Only this conversation.
    pub conversation_id: Option<String>,
    /// Recorded at or after.
    pub since: Option<DateTime<Utc>>,
    /// Older than this id (the cursor).
    pub before_id: Option<i64>,
    /// Rows at most.
    pub limit: i64,
}

/// What `outbox retry` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Pending again; it was in this status.
    Queued(OutboxStatus),
    /// Not in a status that may be retried.
    NotRetryable(OutboxStatus),
    /// No such row.
    Missing,
}

/// The statement that records a reply, unless one is recorded for the record and endpoint.
pub(super) fn insert_reply(d: Dialect, endpoint: &str, r: &NewReply, now: DateTime<Utc>) -> Sql {
    let mut sql = Sql::new(
        d,
        "insert into outbox (endpoint, kind, seq, record_id, conversation_id, status, reply, \
         target, answer, attempts, created_at, updated_at) values (",
    );
    sql.list(vec![
        Param::Text(endpoint.to_owned()),
        Param::Text(r.record.kind.as_str().to_owned()),
        Param::Int(r.record.seq),
        Param::OptText(r.record_id.clone()),
        Param::OptText(r.conversation_id.clone()),
        Param::Text(r.status.as_str().to_owned()),
        Param::Text(r.json.clone()),
        Param::OptText(r.target.clone()),
        Param::OptText(r.answer.clone()),
        Param::Int(i64::from(r.status == OutboxStatus::Sending)),
        Param::Time(now),
        Param::Time(now),
    ])
    .push(") on conflict (endpoint, kind, seq) do nothing");
    sql
}

fn key(sql: &mut Sql, endpoint: &str, record: RecordRef) {
    sql.push(" where endpoint = ")
        .bind(Param::Text(endpoint.to_owned()))
        .push(" and kind = ")
        .bind(Param::Text(record.kind.as_str().to_owned()))
        .push(" and seq = ")
        .bind(Param::Int(record.seq));
}

fn row(r: &AnyRow) -> Result<OutboxRow, Error> {
    read_row!(
        r,
        OutboxRow {
            id,
            endpoint,
            reply = read_row!(fields r, NewReply {
                record = r.record()?,
                record_id,
                conversation_id,
                status,
                json = r.get("reply")?,
                target,
                answer
            }),
            request,
            credential,
            attempts,
            created_at,
            updated_at
        }
    )
}

impl Store {
    /// Takes a pending reply for its call: it is `sending` from now on. `None` when it is not
    /// pending (another task took it, or it was never recorded).
    pub async fn outbox_claim(
        &self,
        endpoint: &str,
        record: RecordRef,
    ) -> Result<Option<OutboxRow>, Error> {
        let d = self.dialect();
        let mut claim = Sql::new(
            d,
            "update outbox set status = 'sending', attempts = attempts + 1, updated_at = ",
        );
        claim.bind(Param::Time(Utc::now()));
        key(&mut claim, endpoint, record);
        claim.push(" and status = 'pending' returning *");
        self.fetch_optional(&claim)
            .await?
            .map(|r| row(&r))
            .transpose()
    }

    /// Writes how calls ended on replies being sent, in one transaction.
    pub async fn outbox_finish(&self, ended: &[Finished]) -> Result<(), Error> {
        if ended.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let statements: Vec<Sql> = ended
            .iter()
            .map(|f| {
                let o = &f.outcome;
                let mut sql = Sql::new(self.dialect(), "update outbox set status = ");
                sql.bind(Param::Text(o.status.as_str().to_owned()))
                    .push(", request = ")
                    .bind(Param::OptText(o.request.clone()))
                    .push(", credential = ")
                    .bind(Param::OptText(o.credential.clone()))
                    .push(", answer = ")
                    .bind(Param::OptText(o.answer.clone()))
                    .push(", updated_at = ")
                    .bind(Param::Time(now));
                key(&mut sql, &f.endpoint, f.record);
                sql.push(" and status = 'sending'");
                sql
            })
            .collect();
        self.transaction(&statements).await?;
        Ok(())
    }

    /// Marks an endpoint's replies left `sending` by a stopped forwarder `unknown`; how many.
    pub async fn outbox_orphans(&self, endpoint: &str) -> Result<u64, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "update outbox set status = 'unknown', answer = 'kenar-hook stopped while the call \
             was being made: whether Divar received it is not known', updated_at = ",
        );
        sql.bind(Param::Time(Utc::now()))
            .push(" where endpoint = ")
            .bind(Param::Text(endpoint.to_owned()))
            .push(" and status = 'sending'");
        self.execute_count(&sql).await
    }

    /// The records of an endpoint's pending replies, oldest first.
    pub async fn outbox_pending(&self, endpoint: &str) -> Result<Vec<RecordRef>, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select kind, seq from outbox where endpoint = ",
        );
        sql.bind(Param::Text(endpoint.to_owned()))
            .push(" and status = 'pending' order by id");
        self.fetch_all(&sql)
            .await?
            .iter()
            .map(|r| Ok(r.record()?))
            .collect()
    }

    /// One reply by its id.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, Error> {
        let mut sql = Sql::new(self.dialect(), "select * from outbox where id = ");
        sql.bind(Param::Int(id));
        self.fetch_optional(&sql)
            .await?
            .map(|r| row(&r))
            .transpose()
    }

    /// A page of the outbox, newest first.
    pub async fn outbox_list(&self, q: &OutboxQuery) -> Result<Vec<OutboxRow>, Error> {
        let mut sql = Sql::new(self.dialect(), "select * from outbox");
        sql.filter("status = ", q.status.map(OutboxStatus::as_str));
        sql.filter("endpoint = ", q.endpoint.as_ref());
        sql.filter("conversation_id = ", q.conversation_id.as_ref());
        sql.filter("created_at >= ", q.since);
        sql.newest_before(q.before_id, q.limit);
        self.fetch_all(&sql).await?.iter().map(row).collect()
    }

    /// How many replies each endpoint has in each status: (endpoint, status, count).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, OutboxStatus, i64)>, Error> {
        let sql = Sql::new(
            self.dialect(),
            "select endpoint, status, count(*) as n from outbox group by endpoint, status \
             order by endpoint, status",
        );
        self.fetch_all(&sql)
            .await?
            .iter()
            .map(|r| Ok((r.get("endpoint")?, r.get("status")?, r.get("n")?)))
            .collect()
    }

    /// Makes a `failed` or `unknown` reply pending again and tells its endpoint's forwarder.
    pub async fn outbox_retry(&self, id: i64) -> Result<Retried, Error> {
        let Some(current) = self.outbox_row(id).await? else {
            return Ok(Retried::Missing);
        };
        let status = current.reply.status;
        if !matches!(status, OutboxStatus::Failed | OutboxStatus::Unknown) {
            return Ok(Retried::NotRetryable(status));
        }
        let d = self.dialect();
        let mut queue = Sql::new(d, "update outbox set status = 'pending', updated_at = ");
        queue
            .bind(Param::Time(Utc::now()))
            .push(" where id = ")
            .bind(Param::Int(id))
            .push(" and status = ")
            .bind(Param::Text(status.as_str().to_owned()));
        let mut bump = Sql::new(
            d,
            "update forward_endpoint set revision = revision + 1 where name = ",
        );
        bump.bind(Param::Text(current.endpoint.clone()));
        if self.transaction_if_first_changes(&[queue, bump]).await? {
            Ok(Retried::Queued(status))
        } else {
            // Changed between the read and the update.
            match self.outbox_row(id).await? {
                Some(now) => Ok(Retried::NotRetryable(now.reply.status)),
                None => Ok(Retried::Missing),
            }
        }
    }
}
