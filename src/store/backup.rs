//! What a backup needs from the database: SQLite's own online copy (`VACUUM INTO`), the
//! schema version, and how many rows the main tables hold. The files around it (the folder,
//! the manifest, the key file) are the command's (`commands/backup.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::backend::Db;
use super::sql::{Param, Sql};
use super::{Error, Store};
use crate::config::DatabaseKind;

/// The tables whose row counts a backup's manifest records.
pub const COUNTED_TABLES: &[&str] = &[
    "conversation",
    "message",
    "event",
    "click",
    "rejected",
    "forward_pending",
    "forward_dead",
    "outbox",
    "oauth_token",
];

/// The highest migration version this build carries for a database kind: a database whose
/// schema version is higher was written by a newer kenar-hook.
pub fn latest_schema_version(kind: DatabaseKind) -> i64 {
    let migrator = match kind {
        DatabaseKind::Postgres => sqlx::migrate!("migrations/postgres"),
        DatabaseKind::Sqlite => sqlx::migrate!("migrations/sqlite"),
    };
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The file of a `sqlite://` URL, or why it names none.
pub fn sqlite_file(url: &str) -> Result<PathBuf, String> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| format!("database.url: {e}"))?;
    let file = options.get_filename();
    if url.contains(":memory:") || url.contains("mode=memory") || file.as_os_str().is_empty() {
        return Err("database.url names an in-memory SQLite database: there is no file".to_owned());
    }
    Ok(file.to_path_buf())
}

/// Whether another connection, of this process or another, has the SQLite file open now.
/// Leaving WAL mode needs the file to itself and fails at once when a connection elsewhere
/// holds it, so this asks for exactly that; the file is left in rollback-journal mode (the
/// next open switches it back to WAL). For a file about to be replaced.
pub async fn sqlite_file_in_use(file: &Path) -> Result<bool, Error> {
    use sqlx::Connection;
    let options = SqliteConnectOptions::new()
        .filename(file)
        .busy_timeout(Duration::ZERO);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    let mode = sqlx::query_scalar::<_, String>("pragma journal_mode = delete")
        .fetch_one(&mut conn)
        .await;
    let _ = conn.close().await;
    match mode {
        // SQLite answers the mode it is in when it could not change it.
        Ok(mode) => Ok(!mode.eq_ignore_ascii_case("delete")),
        Err(e) if super::error::is_busy(&e) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// "sqlite" or "postgres".
    pub fn kind_name(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Opens a SQLite file read-only, as it is: no journal mode set, no `-wal` or `-shm`
    /// file made beside it. For reading a backup's copy.
    pub async fn open_copy(file: &Path) -> Result<Store, Error> {
        let options = SqliteConnectOptions::new()
            .filename(file)
            .read_only(true)
            // Nothing else writes a copy, and a lock or shared-memory file left in the backup
            // folder would be a file the manifest does not list.
            .immutable(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Store::Sqlite(Db::new(pool)))
    }

    /// SQLite: writes a consistent copy of the database into `file` (which must not exist)
    /// with `VACUUM INTO`. It reads one snapshot while the service goes on writing (WAL mode:
    /// a reader never blocks the writer), so every commit made before it began is in the
    /// copy. Nothing on PostgreSQL: that is `pg_dump`'s work.
    ///
    /// SQLite writes the copy without flushing it (`synchronous = off` on this connection
    /// only): the caller flushes it as it grows, in small steps, since one flush of a whole
    /// gigabyte at the end held up the service's commits on the same disk.
    pub async fn vacuum_into(&self, file: &Path) -> Result<(), Error> {
        let Store::Sqlite(db) = self else {
            return Err(Error::from(sqlx::Error::Configuration(
                "VACUUM INTO is SQLite's; PostgreSQL is copied with pg_dump".into(),
            )));
        };
        let path = file.to_str().ok_or_else(|| {
            sqlx::Error::Configuration(format!("{} is not valid UTF-8", file.display()).into())
        })?;
        let mut conn = db.pool.acquire().await?;
        // This connection's setting stays off: it is closed, never handed out again.
        conn.close_on_drop();
        sqlx::query("pragma synchronous = off")
            .execute(&mut *conn)
            .await?;
        // The file name is bound, not spliced into the statement: no quoting to get wrong.
        sqlx::query("vacuum into ?")
            .bind(path)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Gives this database a new installation id (a restored copy must not hand out the
    /// `webhook-id`s of the positions it hands out again); the new id.
    pub async fn renew_installation(&self) -> Result<String, Error> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut sql = Sql::new(self.dialect(), "update installation set id = ");
        sql.bind(Param::Text(id.clone()));
        self.execute(&sql).await?;
        Ok(id)
    }

    /// The highest migration version applied to this database; 0 before the first.
    pub async fn schema_version(&self) -> Result<i64, Error> {
        if !self.tables().await?.iter().any(|t| t == "_sqlx_migrations") {
            return Ok(0);
        }
        let sql = Sql::new(
            self.dialect(),
            "select coalesce(max(version), 0) as version from _sqlx_migrations where success",
        );
        self.fetch_one(&sql)
            .await?
            .get("version")
            .map_err(Into::into)
    }

    /// The rows of each of [`COUNTED_TABLES`] this database has, read in one statement (one
    /// snapshot).
    pub async fn row_counts(&self) -> Result<BTreeMap<String, i64>, Error> {
        let present = self.tables().await?;
        let counted: Vec<&str> = COUNTED_TABLES
            .iter()
            .copied()
            .filter(|t| present.iter().any(|p| p == t))
            .collect();
        if counted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let columns: Vec<String> = counted
            .iter()
            .map(|t| format!("(select count(*) from {t}) as {t}"))
            .collect();
        let sql = Sql::new(self.dialect(), &format!("select {}", columns.join(", ")));
        let row = self.fetch_one(&sql).await?;
        counted
            .into_iter()
            .map(|t| Ok((t.to_owned(), row.get(t)?)))
            .collect()
    }

    /// The names of the tables of this database (of the current schema on PostgreSQL).
    async fn tables(&self) -> Result<Vec<String>, Error> {
        let text = match self {
            Store::Postgres(_) => {
                "select table_name::text as name from information_schema.tables \
                 where table_schema = current_schema()"
            }
            Store::Sqlite(_) => "select name from sqlite_master where type = 'table'",
        };
        self.fetch_all(&Sql::new(self.dialect(), text))
            .await?
            .iter()
            .map(|r| r.get("name").map_err(Into::into))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_schema_version_is_the_highest_migration() {
        let count = |dir: &str| {
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .count() as i64
        };
        assert_eq!(latest_schema_version(DatabaseKind::Sqlite), count("sqlite"));
        assert_eq!(
            latest_schema_version(DatabaseKind::Postgres),
            count("postgres")
        );
    }

    #[test]
    fn a_sqlite_url_names_its_file_and_memory_names_none() {
        assert_eq!(
            sqlite_file("sqlite://data/kenar-hook.db").unwrap(),
            Path::new("data/kenar-hook.db")
        );
        assert!(sqlite_file("sqlite::memory:").is_err());
    }
}
