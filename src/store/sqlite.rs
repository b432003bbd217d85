//! SQLite, the zero-setup default: opening the file, its transaction rules, and parameter
//! binding (times as integer microseconds, so they sort and compare exactly). The statements
//! themselves are shared.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::rows::micros;
use super::sql::{Dialect, Param, Sql};
use super::{NewIds, NewRecord, Tx, WriteOutcome};

/// A SQLite connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// A statement with its parameters bound.
fn bind(sql: &Sql) -> Query<'_, Sqlite, SqliteArguments<'_>> {
    let mut q = sqlx::query(&sql.text);
    for param in &sql.params {
        q = match param {
            Param::Text(s) => q.bind(s),
            Param::OptText(s) => q.bind(s),
            Param::Int(i) => q.bind(*i),
            Param::Bytes(b) => q.bind(b),
            Param::Time(t) => q.bind(micros(*t)),
        };
    }
    q
}

impl SqliteStore {
    /// Opens (creating when missing) the database file of a `sqlite://` URL.
    pub async fn open(url: &str, max_connections: u32, acquire: Duration) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the 200 is answered.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !Path::new(dir).exists() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }

    pub(super) async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.pool.close().await
    }

    pub(super) async fn fetch_all(&self, sql: &Sql) -> Result<Vec<SqliteRow>, sqlx::Error> {
        bind(sql).fetch_all(&self.pool).await
    }

    pub(super) async fn fetch_optional(&self, sql: &Sql) -> Result<Option<SqliteRow>, sqlx::Error> {
        bind(sql).fetch_optional(&self.pool).await
    }

    pub(super) async fn execute(&self, sql: &Sql) -> Result<(), sqlx::Error> {
        bind(sql).execute(&self.pool).await.map(|_| ())
    }

    pub(super) async fn write_batch(
        &self,
        records: &[NewRecord],
    ) -> Result<(Vec<WriteOutcome>, NewIds), sqlx::Error> {
        // BEGIN IMMEDIATE takes the write lock up front, so a second writer waits on the
        // busy timeout instead of failing half-way with SQLITE_BUSY; one writer at a time
        // also keeps `seq` order equal to commit order.
        let mut tx = self.pool.begin_with("begin immediate").await?;
        let result = super::write_records(&mut tx, records).await?;
        tx.commit().await?;
        Ok(result)
    }
}

impl Tx for Transaction<'_, Sqlite> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn returning_seq(&mut self, sql: &Sql) -> Result<Option<i64>, sqlx::Error> {
        let row = bind(sql).fetch_optional(&mut **self).await?;
        row.map(|r| r.try_get(0)).transpose()
    }

    async fn execute(&mut self, sql: &Sql) -> Result<(), sqlx::Error> {
        bind(sql).execute(&mut **self).await.map(|_| ())
    }
}
