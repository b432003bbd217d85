//! Deliveries that carried a good key but could not be stored, kept as received.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::sql::{Param, Sql};
use super::{Error, Store};

/// A kept rejected delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Position in the list.
    pub id: i64,
    /// Why it was refused (the 400/422 answer's message).
    pub reason: String,
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
    /// When it first came.
    pub received_at: DateTime<Utc>,
    /// When it last came.
    pub last_received_at: DateTime<Utc>,
    /// How often it came.
    pub deliveries: i64,
}

impl Store {
    /// Keeps a refused delivery; the same body again only counts another delivery.
    pub async fn insert_rejected(
        &self,
        body: &[u8],
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "insert into rejected (digest, reason, raw_body, received_at, last_received_at) \
             values (",
        );
        sql.list(vec![
            Param::Text(hex::encode(Sha256::digest(body))),
            Param::Text(reason.to_owned()),
            Param::Bytes(body.to_vec()),
            Param::Time(at),
            Param::Time(at),
        ])
        .push(
            ") on conflict (digest) do update set deliveries = rejected.deliveries + 1, \
             last_received_at = excluded.last_received_at, reason = excluded.reason",
        );
        self.execute(&sql).await
    }

    /// A page of kept deliveries, oldest first.
    pub async fn list_rejected(
        &self,
        after_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Rejected>, Error> {
        let mut sql = Sql::new(self.dialect(), "select * from rejected");
        sql.oldest_after(after_id, limit);
        self.fetch_all(&sql)
            .await?
            .iter()
            .map(|r| {
                Ok(Rejected {
                    id: r.get("id")?,
                    reason: r.get("reason")?,
                    raw_body: r.get("raw_body")?,
                    received_at: r.time("received_at")?,
                    last_received_at: r.time("last_received_at")?,
                    deliveries: r.get("deliveries")?,
                })
            })
            .collect()
    }

    /// Forgets a kept delivery (it was stored at last).
    pub async fn delete_rejected(&self, id: i64) -> Result<(), Error> {
        let mut sql = Sql::new(self.dialect(), "delete from rejected where id = ");
        sql.bind(Param::Int(id));
        self.execute(&sql).await
    }

    /// Records why a kept delivery is still refused.
    pub async fn update_rejected_reason(&self, id: i64, reason: &str) -> Result<(), Error> {
        let mut sql = Sql::new(self.dialect(), "update rejected set reason = ");
        sql.bind(Param::Text(reason.to_owned()))
            .push(" where id = ")
            .bind(Param::Int(id));
        self.execute(&sql).await
    }
}
