//! PostgreSQL: the pool, its transaction rules (writers take turns, commits announce new
//! ids), and parameter binding. The statements themselves are shared.

use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row, Transaction};

use super::sql::{Dialect, Param, Sql};
use super::{NOTIFY_CHANNEL, NewIds, NewRecord, Tx, WRITER_LOCK, WriteOutcome, notification};

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
        let mut tx = self.pool.begin().await?;
        // Writers of every replica take turns, so `seq` order is commit order and a reader
        // that has seen seq N will never later find a smaller one appear.
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(WRITER_LOCK)
            .execute(&mut *tx)
            .await?;
        let (outcomes, new_ids) = super::write_records(&mut tx, records).await?;
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

impl Tx for Transaction<'_, Postgres> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn returning_seq(&mut self, sql: &Sql) -> Result<Option<i64>, sqlx::Error> {
        let row = bind(sql).fetch_optional(&mut **self).await?;
        row.map(|r| r.try_get(0)).transpose()
    }

    async fn execute(&mut self, sql: &Sql) -> Result<(), sqlx::Error> {
        bind(sql).execute(&mut **self).await.map(|_| ())
    }
}
