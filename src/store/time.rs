//! A point in time as each database stores it.

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// A point in time as each database stores it: `timestamptz` in PostgreSQL, integer
/// microseconds since the epoch in SQLite (so times sort and compare exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Time(pub DateTime<Utc>);

/// Time is stored as `$as` is.
macro_rules! stored_as {
    ($db:ty, $as:ty) => {
        impl Type<$db> for Time {
            fn type_info() -> <$db as Database>::TypeInfo {
                <$as as Type<$db>>::type_info()
            }

            fn compatible(ty: &<$db as Database>::TypeInfo) -> bool {
                <$as as Type<$db>>::compatible(ty)
            }
        }
    };
}

stored_as!(sqlx::Postgres, DateTime<Utc>);
stored_as!(sqlx::Sqlite, i64);

impl Encode<'_, sqlx::Postgres> for Time {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<sqlx::Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, sqlx::Postgres> for Time {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Time(<DateTime<Utc> as Decode<sqlx::Postgres>>::decode(
            value,
        )?))
    }
}

impl<'q> Encode<'q, sqlx::Sqlite> for Time {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<sqlx::Sqlite>>::encode(self.0.timestamp_micros(), buf)
    }
}

impl<'r> Decode<'r, sqlx::Sqlite> for Time {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<sqlx::Sqlite>>::decode(value)?;
        Ok(Time(
            DateTime::from_timestamp_micros(micros).unwrap_or_default(),
        ))
    }
}
