//! The one error of the store's public methods: whether the database can be used now is
//! decided here, once, so that no caller needs to know which library speaks to it.

/// A storage operation failed. Its text is the database library's own message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be used now: no connection, or a connection lost; PostgreSQL's
    /// connection exceptions (SQLSTATE class 08), insufficient resources (53) and operator
    /// intervention such as a shutdown (57); SQLite busy, locked, out of disk or unable to
    /// open its file. Worth retrying later.
    #[error(transparent)]
    Unavailable(Cause),
    /// Anything else: a bad record, a failed migration, a bug.
    #[error(transparent)]
    Other(Cause),
}

/// What the database library said, kept for the message and the log.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Cause(Source);

#[derive(Debug, thiserror::Error)]
enum Source {
    #[error(transparent)]
    Query(sqlx::Error),
    #[error(transparent)]
    Migrate(sqlx::migrate::MigrateError),
}

impl Error {
    /// Whether the database cannot be used now (as opposed to a bad record or a bug).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            Error::Unavailable(Cause(Source::Query(err)))
        } else {
            Error::Other(Cause(Source::Query(err)))
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(err) if is_unavailable(&err) => {
                Error::Unavailable(Cause(Source::Migrate(
                    sqlx::migrate::MigrateError::Execute(err),
                )))
            }
            err => Error::Other(Cause(Source::Migrate(err))),
        }
    }
}

/// SQLite's "database is locked" (SQLITE_BUSY, any extended code).
pub(crate) fn is_busy(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| c & 0xff == 5))
}

/// Whether `err` says the database cannot be used now; see [`Error::Unavailable`].
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if let Ok(sqlite) = code.parse::<u32>() {
                // The primary code is the low byte of an extended one.
                return matches!(sqlite & 0xff, 5 | 6 | 10 | 13 | 14);
            }
            ["08", "53", "57"]
                .iter()
                .any(|class| code.starts_with(class))
        }
        _ => false,
    }
}
