//! Forwarding's lists: dead letters, the attempt log, and replay into pending records.

use chrono::{DateTime, Utc};

use super::super::sql::{Param, Sql};
use super::super::{Error, RecordKind, RecordRef, Store};
use super::{
    Attempt, AttemptOutcome, AttemptQuery, Dead, Pending, attempt, delete_keys, insert_pending,
    pending,
};

impl Store {
    /// Adds records to an endpoint's pending ones again (a record pending already stays as
    /// it is), takes them out of its dead letters, and tells the forwarder. How many were
    /// added.
    pub async fn forward_replay(&self, name: &str, rows: &[Pending]) -> Result<u64, Error> {
        let d = self.dialect();
        let inserts = insert_pending(d, name, rows);
        let n = inserts.len();
        let mut statements = inserts;
        let keys: Vec<RecordRef> = rows.iter().map(|r| r.record).collect();
        statements.extend(delete_keys(d, "forward_dead", name, &keys));
        let mut bump = Sql::new(
            d,
            "update forward_endpoint set revision = revision + 1 where name = ",
        );
        bump.bind(Param::Text(name.to_owned()));
        statements.push(bump);
        let changed = self.transaction(&statements).await?;
        Ok(changed[..n].iter().sum())
    }

    /// A page of an endpoint's dead letters (or every endpoint's), oldest first.
    pub async fn forward_dead(
        &self,
        endpoint: Option<&str>,
        after_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(String, Dead)>, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select id, endpoint, kind, seq, order_key, received_at, attempts, \
             dead_at as next_at, body, last_error, dead_at from forward_dead",
        );
        sql.filter("endpoint = ", endpoint.map(|e| Param::Text(e.to_owned())));
        sql.oldest_after(after_id, limit);
        self.fetch_all(&sql)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.get("endpoint")?,
                    Dead {
                        id: r.get("id")?,
                        pending: pending(r)?,
                        last_error: r.get("last_error")?,
                        dead_at: r.time("dead_at")?,
                    },
                ))
            })
            .collect()
    }

    /// A page of the attempt log, newest first.
    pub async fn forward_attempts(&self, q: &AttemptQuery) -> Result<Vec<Attempt>, Error> {
        let mut sql = Sql::new(self.dialect(), "select * from forward_attempt");
        sql.filter("endpoint = ", q.endpoint.as_ref());
        sql.filter("outcome = ", q.outcome.map(AttemptOutcome::as_str));
        sql.filter("at >= ", q.since);
        sql.newest_before(q.before_id, q.limit);
        self.fetch_all(&sql).await?.iter().map(attempt).collect()
    }

    /// Deletes attempts made before `before`; how many.
    pub async fn forward_prune(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let mut sql = Sql::new(self.dialect(), "delete from forward_attempt where at < ");
        sql.bind(Param::Time(before));
        Ok(self.transaction(&[sql]).await?[0])
    }

    /// The arrival time of the first record of a log after `seq`.
    pub async fn forward_first_after(
        &self,
        kind: RecordKind,
        seq: i64,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        // Each log's table bears its kind's name.
        let table = kind.as_str();
        let mut sql = Sql::new(
            self.dialect(),
            &format!("select received_at from {table} where seq > "),
        );
        sql.bind(Param::Int(seq)).push(" order by seq limit 1");
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|r| r.time("received_at"))
            .transpose()?)
    }
}
