//! Where PostgreSQL and SQLite differ, in one place. [`Backend`] is implemented by the two
//! databases and holds their differences: the SQL spellings ([`Dialect`]), how a time is
//! stored ([`Time`], in `time.rs`), how a write transaction begins, the migrations, how many batch writers
//! suit them. [`Db`] is a pool of either, with every operation that is the same written
//! once. The set-based insert forms of a batch differ too much to be spelled as data: they
//! are `Db::write_batch` in `postgres.rs` and `sqlite.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::rows::AnyRow;
use super::sql::{Param, Sql};
use super::time::Time;

/// The spellings of the same SQL in each database, as data: statements are built once, for
/// both, with these filled in. Placeholders are `$1`, `$2`, ... in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The case-insensitive match: `ilike`, or SQLite's `like` (case-insensitive for ASCII;
    /// Persian has no case).
    pub(crate) like: &'static str,
    /// After a placeholder holding JSON text: cast to `json` in PostgreSQL.
    pub(crate) json_param: &'static str,
    /// After a JSON column, so it reads as text.
    pub(crate) json_text: &'static str,
    /// An empty byte string.
    pub(crate) empty_bytes: &'static str,
    /// Reads a JSON column's string field as text: `{c}` the column, `{k}` the key.
    json_field: &'static str,
}

impl Dialect {
    /// PostgreSQL's.
    pub const POSTGRES: Dialect = Dialect {
        like: "ilike",
        json_param: "::text::json",
        json_text: "::text",
        empty_bytes: "'\\x'::bytea",
        json_field: "{c} ->> '{k}'",
    };

    /// SQLite's.
    pub const SQLITE: Dialect = Dialect {
        like: "like",
        json_param: "",
        json_text: "",
        empty_bytes: "x''",
        json_field: "cast(json_extract({c}, '$.{k}') as text)",
    };

    /// The text of the field `key` of the JSON in `column` (`key`: a plain name).
    pub(crate) fn json_field(&self, column: &str, key: &str) -> String {
        self.json_field.replace("{c}", column).replace("{k}", key)
    }

    /// `column` selected as JSON text, under its own name.
    pub(crate) fn json_column(&self, column: &str) -> String {
        format!("{column}{} as {column}", self.json_text)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Postgres {}
    impl Sealed for sqlx::Sqlite {}
}

/// PostgreSQL or SQLite: what differs between them.
pub(crate) trait Backend: Database + sealed::Sealed {
    /// How its SQL is spelled.
    const DIALECT: Dialect;
    /// How a transaction that will write begins. SQLite's `begin immediate` takes the
    /// write lock up front, so a second writer waits on the busy timeout instead of failing
    /// half-way with SQLITE_BUSY.
    const BEGIN_WRITE: &'static str;
    /// How many batch writers suit it when `ingest.writers` is unset (docs/benchmarks.md):
    /// a second PostgreSQL writer encodes the next batch while one is in the database;
    /// SQLite takes one writer at a time anyway.
    const DEFAULT_WRITERS: usize;

    /// A row as the store reads it.
    fn any_row(row: Self::Row) -> AnyRow;

    /// The rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Applies this database's migrations.
    fn migrate(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<(), sqlx::migrate::MigrateError>> + Send;
}

/// The two implementations differ only in their values.
macro_rules! backend {
    ($db:ty, $migrations:literal, $dialect:expr, $begin:literal, $writers:literal) => {
        impl Backend for $db {
            const DIALECT: Dialect = $dialect;
            const BEGIN_WRITE: &'static str = $begin;
            const DEFAULT_WRITERS: usize = $writers;

            fn any_row(row: Self::Row) -> AnyRow {
                AnyRow::new(row)
            }

            fn rows_affected(result: &Self::QueryResult) -> u64 {
                result.rows_affected()
            }

            async fn migrate(pool: &Pool<Self>) -> Result<(), sqlx::migrate::MigrateError> {
                sqlx::migrate!($migrations).run(pool).await
            }
        }
    };
}

backend!(
    sqlx::Postgres,
    "migrations/postgres",
    Dialect::POSTGRES,
    "begin",
    2
);
backend!(
    sqlx::Sqlite,
    "migrations/sqlite",
    Dialect::SQLITE,
    "begin immediate",
    1
);

/// A connection pool of either database.
#[derive(Debug)]
pub(crate) struct Db<B: Backend> {
    pub(crate) pool: Pool<B>,
    /// Where write transactions run. On SQLite a pool of one connection of its own: the
    /// database takes one writer at a time anyway, so writes wait their turn here instead of
    /// in SQLite's busy handler, and the writer's page cache stays warm instead of being
    /// dropped each time another pooled connection has written. On PostgreSQL `pool` itself.
    pub(crate) writer: Pool<B>,
    /// Write transactions of this pool under way now, begun and not yet ended: on SQLite,
    /// while one is, the write lock is this process's own.
    pub(crate) writing: Arc<AtomicUsize>,
    /// The installation id, once read.
    pub(crate) installation: Arc<OnceLock<String>>,
}

impl<B: Backend> Clone for Db<B> {
    fn clone(&self) -> Self {
        Db {
            pool: self.pool.clone(),
            writer: self.writer.clone(),
            writing: self.writing.clone(),
            installation: self.installation.clone(),
        }
    }
}

/// Counts a write transaction as under way until dropped.
pub(crate) struct Writing(Arc<AtomicUsize>);

impl Writing {
    pub(crate) fn begun(count: &Arc<AtomicUsize>) -> Writing {
        count.fetch_add(1, Ordering::SeqCst);
        Writing(count.clone())
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A parameter type the database takes.
pub(crate) trait Bind<B: Database>: for<'e> Encode<'e, B> + Type<B> {}
impl<B: Database, T: for<'e> Encode<'e, B> + Type<B>> Bind<B> for T {}

impl<B: Backend> Db<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    String: Bind<B>,
    Option<String>: Bind<B>,
    Vec<u8>: Bind<B>,
    Option<Vec<u8>>: Bind<B>,
    i64: Bind<B>,
    Option<i64>: Bind<B>,
    Time: Bind<B>,
    Option<Time>: Bind<B>,
    usize: ColumnIndex<B::Row>,
    for<'r> Option<&'r [u8]>: Decode<'r, B>,
{
    /// A statement with its parameters bound. Text and bytes are bound by reference.
    fn bind(sql: &Sql) -> Query<'_, B, B::Arguments<'_>> {
        let mut q = sqlx::query(&sql.text);
        for param in &sql.params {
            q = match param {
                Param::Text(s) => q.bind(s),
                Param::OptText(s) => q.bind(s),
                Param::Int(i) => q.bind(*i),
                Param::OptInt(i) => q.bind(*i),
                Param::Bytes(b) => q.bind(b),
                Param::OptBytes(b) => q.bind(b),
                Param::Time(t) => q.bind(Time(*t)),
                Param::OptTime(t) => q.bind(t.map(Time)),
            };
        }
        q
    }

    pub(crate) fn new(pool: Pool<B>) -> Self {
        Db::with_writer(pool.clone(), pool)
    }

    /// A database whose write transactions run on `writer`.
    pub(crate) fn with_writer(pool: Pool<B>, writer: Pool<B>) -> Self {
        Db {
            pool,
            writer,
            writing: Arc::default(),
            installation: Arc::default(),
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        B::DIALECT
    }

    pub(crate) fn default_writers(&self) -> usize {
        B::DEFAULT_WRITERS
    }

    pub(crate) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        B::migrate(&self.pool).await
    }

    pub(crate) async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await
    }

    pub(crate) async fn fetch_all(&self, sql: &Sql) -> Result<Vec<AnyRow>, sqlx::Error> {
        let rows = Self::bind(sql).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(B::any_row).collect())
    }

    /// Rows until they hold `budget` bytes; true when rows may be left.
    pub(crate) async fn fetch_bounded(
        &self,
        sql: &Sql,
        budget: usize,
    ) -> Result<(Vec<AnyRow>, bool), sqlx::Error> {
        let (rows, cut) =
            super::rows::take_bounded(Self::bind(sql).fetch(&self.pool), budget).await?;
        Ok((rows.into_iter().map(B::any_row).collect(), cut))
    }

    pub(crate) async fn fetch_optional(&self, sql: &Sql) -> Result<Option<AnyRow>, sqlx::Error> {
        Ok(Self::bind(sql)
            .fetch_optional(&self.pool)
            .await?
            .map(B::any_row))
    }

    /// Runs one statement; the rows it changed.
    pub(crate) async fn execute(&self, sql: &Sql) -> Result<u64, sqlx::Error> {
        let done = Self::bind(sql).execute(&self.writer).await?;
        Ok(B::rows_affected(&done))
    }

    /// Runs the statements in one write transaction; the rows each changed, in order.
    pub(crate) async fn transaction(&self, statements: &[Sql]) -> Result<Vec<u64>, sqlx::Error> {
        let changed = self.transaction_when(statements, |_| true).await?;
        Ok(changed.expect("always committed"))
    }

    /// Runs the statements in one write transaction when the first changes exactly `n`
    /// rows; otherwise rolls back and changes nothing. The rows each changed, in order.
    pub(crate) async fn transaction_if_first_changes_exactly(
        &self,
        statements: &[Sql],
        n: u64,
    ) -> Result<Option<Vec<u64>>, sqlx::Error> {
        self.transaction_when(statements, |changed| changed == n)
            .await
    }

    /// Runs the statements in one write transaction when the first changes a row;
    /// otherwise rolls back and changes nothing.
    pub(crate) async fn transaction_if_first_changes(
        &self,
        statements: &[Sql],
    ) -> Result<bool, sqlx::Error> {
        let changed = self
            .transaction_when(statements, |changed| changed > 0)
            .await?;
        Ok(changed.is_some())
    }

    /// Runs the statements in one write transaction, rolled back (`None`) unless `first`
    /// accepts the rows the first statement changed.
    async fn transaction_when(
        &self,
        statements: &[Sql],
        first: impl Fn(u64) -> bool,
    ) -> Result<Option<Vec<u64>>, sqlx::Error> {
        let mut tx = self.writer.begin_with(B::BEGIN_WRITE).await?;
        let _writing = Writing::begun(&self.writing);
        let mut changed = Vec::with_capacity(statements.len());
        for sql in statements {
            let done = Self::bind(sql).execute(&mut *tx).await?;
            changed.push(B::rows_affected(&done));
            if changed.len() == 1 && !first(changed[0]) {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        tx.commit().await?;
        Ok(Some(changed))
    }
}
