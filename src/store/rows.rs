//! Reading rows of either database into the store's types, written once.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, ColumnIndex, Decode, Row, Type};

use super::time::Time;
use super::{
    ClickFacts, ClickOutcome, ClickVersion, JsonRef, MessageSource, MessageView, NewClick,
    NewEvent, RecordKind, RecordRef, Registration, Side, StoredClick, StoredConversation,
    StoredEvent, StoredMessage, parse_json_column,
};

/// A column by name or by position.
#[derive(Debug, Clone, Copy)]
pub enum Col<'a> {
    /// By name.
    Name(&'a str),
    /// By position, from 0.
    At(usize),
}

impl<'a> From<&'a str> for Col<'a> {
    fn from(name: &'a str) -> Self {
        Col::Name(name)
    }
}

impl From<usize> for Col<'_> {
    fn from(position: usize) -> Self {
        Col::At(position)
    }
}

/// What the store reads from a row of either database: the few kinds of value both store
/// alike. One macro implements it for both row types, so every row is read the same way.
pub(super) trait Read: Send + Sync {
    fn text(&self, column: Col<'_>) -> Result<Option<&str>, sqlx::Error>;
    fn bytes(&self, column: Col<'_>) -> Result<Option<&[u8]>, sqlx::Error>;
    fn int(&self, column: Col<'_>) -> Result<Option<i64>, sqlx::Error>;
    fn boolean(&self, column: Col<'_>) -> Result<Option<bool>, sqlx::Error>;
    fn time(&self, column: Col<'_>) -> Result<Option<Time>, sqlx::Error>;
    fn name(&self, position: usize) -> Option<&str>;
}

macro_rules! read {
    ($row:ty) => {
        impl Read for $row {
            fn text(&self, column: Col<'_>) -> Result<Option<&str>, sqlx::Error> {
                value(self, column)
            }
            fn bytes(&self, column: Col<'_>) -> Result<Option<&[u8]>, sqlx::Error> {
                value(self, column)
            }
            fn int(&self, column: Col<'_>) -> Result<Option<i64>, sqlx::Error> {
                value(self, column)
            }
            fn boolean(&self, column: Col<'_>) -> Result<Option<bool>, sqlx::Error> {
                value(self, column)
            }
            fn time(&self, column: Col<'_>) -> Result<Option<Time>, sqlx::Error> {
                value(self, column)
            }
            fn name(&self, position: usize) -> Option<&str> {
                self.columns().get(position).map(Column::name)
            }
        }
    };
}
read!(PgRow);
read!(SqliteRow);

fn value<'r, R, T>(row: &'r R, column: Col<'_>) -> Result<T, sqlx::Error>
where
    R: Row,
    T: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
    for<'n> &'n str: ColumnIndex<R>,
{
    match column {
        Col::Name(name) => row.try_get(name),
        Col::At(position) => row.try_get(position),
    }
}

/// A row of either database, read by column with the types both store alike.
pub struct AnyRow(Box<dyn Read>);

impl AnyRow {
    /// Wraps a row as fetched.
    pub(super) fn new(row: impl Read + 'static) -> Self {
        AnyRow(Box::new(row))
    }
}

/// A value that can be read from a column of either database.
pub trait FromColumn<'r>: Sized {
    #[doc(hidden)]
    fn from_column(row: &'r AnyRow, column: Col<'_>) -> Result<Self, sqlx::Error>;
}

pub(super) fn present<T>(value: Option<T>, column: Col<'_>) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: format!("{column:?}"),
        source: Box::new(sqlx::error::UnexpectedNullError),
    })
}

/// `FromColumn` for a type read by `$method`, also when NULL is allowed; with `named`, for a
/// type stored as its name (its `parse` refuses a name this version does not know).
macro_rules! from_column {
    ($t:ty, $method:ident, $convert:expr) => {
        impl<'r> FromColumn<'r> for Option<$t> {
            fn from_column(row: &'r AnyRow, column: Col<'_>) -> Result<Self, sqlx::Error> {
                Ok(row.0.$method(column)?.map($convert))
            }
        }
        from_column!(present $t);
    };
    (named $t:ty) => {
        impl<'r> $crate::store::rows::FromColumn<'r> for Option<$t> {
            fn from_column(
                row: &'r $crate::store::rows::AnyRow,
                column: $crate::store::rows::Col<'_>,
            ) -> Result<Self, sqlx::Error> {
                row.get::<Option<&str>>(column)?
                    .map(|name| $crate::store::rows::named(row, <$t>::parse, name, column))
                    .transpose()
            }
        }
        from_column!(present $t);
    };
    (present $t:ty) => {
        impl<'r> $crate::store::rows::FromColumn<'r> for $t {
            fn from_column(
                row: &'r $crate::store::rows::AnyRow,
                column: $crate::store::rows::Col<'_>,
            ) -> Result<Self, sqlx::Error> {
                $crate::store::rows::present(Option::<$t>::from_column(row, column)?, column)
            }
        }
    };
}
pub(super) use from_column;

from_column!(&'r str, text, |s| s);
from_column!(String, text, str::to_owned);
from_column!(&'r [u8], bytes, |b| b);
from_column!(Vec<u8>, bytes, <[u8]>::to_vec);
from_column!(i64, int, |i| i);
from_column!(bool, boolean, |b| b);
from_column!(Time, time, |t| t);
from_column!(DateTime<Utc>, time, |t: Time| t.0);
from_column!(named ClickVersion);
from_column!(named Side);
from_column!(named ClickOutcome);
from_column!(named RecordKind);
from_column!(named MessageSource);

/// A value stored as its name; a name this version does not know is refused, naming it.
pub(super) fn named<T>(
    row: &AnyRow,
    parse: fn(&str) -> Option<T>,
    name: &str,
    column: Col<'_>,
) -> Result<T, sqlx::Error> {
    parse(name).ok_or_else(|| {
        let index = match column {
            Col::Name(column) => column,
            Col::At(position) => row.0.name(position).unwrap_or("?"),
        };
        sqlx::Error::ColumnDecode {
            index: format!("{index:?}"),
            source: format!("{name:?} is not a value this version knows").into(),
        }
    })
}

/// Reads a row into a struct whose fields are its columns, each read by its own name (or,
/// as `field = value`, given); with `fields`, the struct itself (a part of a larger one),
/// else `Ok` of it.
macro_rules! read_row {
    (@value $row:expr, $field:ident) => {
        $row.get(stringify!($field))?
    };
    (@value $row:expr, $field:ident, $value:expr) => {
        $value
    };
    (fields $row:expr, $ty:ident { $($field:ident $(= $value:expr)?),* $(,)? }) => {
        $ty { $($field: read_row!(@value $row, $field $(, $value)?)),* }
    };
    ($row:expr, $ty:ident { $($field:ident $(= $value:expr)?),* $(,)? }) => {
        Ok(read_row!(fields $row, $ty { $($field $(= $value)?),* }))
    };
}
pub(super) use read_row;

/// Takes rows from `rows` until they hold `budget` bytes (always at least one row). The
/// rest is never read into memory: the database is asked for a page of rows, but a page of
/// large rows is cut short here. The flag says whether a row was left.
pub(super) async fn take_bounded<R: Row>(
    rows: impl futures_util::Stream<Item = Result<R, sqlx::Error>>,
    budget: usize,
) -> Result<(Vec<R>, bool), sqlx::Error>
where
    usize: ColumnIndex<R>,
    for<'r> Option<&'r [u8]>: Decode<'r, R::Database>,
{
    use futures_util::TryStreamExt;
    let mut rows = std::pin::pin!(rows);
    let mut taken = Vec::new();
    let mut bytes = 0;
    while let Some(row) = rows.try_next().await? {
        bytes += row_bytes(&row);
        taken.push(row);
        if bytes >= budget {
            let left = rows.try_next().await?.is_some();
            return Ok((taken, left));
        }
    }
    Ok((taken, false))
}

/// The bytes a row's values take as the database sent them.
fn row_bytes<R: Row>(row: &R) -> usize
where
    usize: ColumnIndex<R>,
    for<'r> Option<&'r [u8]>: Decode<'r, R::Database>,
{
    (0..row.len())
        .map(|i| {
            // Unchecked: every value is read as its bytes, whatever its type.
            row.try_get_unchecked::<Option<&[u8]>, _>(i)
                .ok()
                .flatten()
                .map_or(0, <[u8]>::len)
        })
        .sum()
}

impl AnyRow {
    /// A column by name or position; `&str` and `&[u8]` borrow from the row.
    pub fn get<'r, 'c, T: FromColumn<'r>>(
        &'r self,
        column: impl Into<Col<'c>>,
    ) -> Result<T, sqlx::Error> {
        T::from_column(self, column.into())
    }

    /// The record a row names by its `kind` and `seq` columns.
    pub fn record(&self) -> Result<RecordRef, sqlx::Error> {
        Ok(RecordRef {
            kind: self.get("kind")?,
            seq: self.get("seq")?,
        })
    }

    /// A time column (see [`Time`]).
    pub fn time<'c>(&self, column: impl Into<Col<'c>>) -> Result<DateTime<Utc>, sqlx::Error> {
        Ok(self.get::<Time>(column)?.0)
    }

    /// A time column that may be NULL.
    pub fn opt_time<'c>(
        &self,
        column: impl Into<Col<'c>>,
    ) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(self.get::<Option<Time>>(column)?.map(|t| t.0))
    }

    fn json<'c>(
        &self,
        column: impl Into<Col<'c>>,
    ) -> Result<Option<serde_json::Value>, sqlx::Error> {
        Ok(parse_json_column(self.get(column)?))
    }

    /// A JSON column (text in both databases, as selected) checked but not parsed; `None`
    /// when null or not JSON, like [`Self::json`].
    fn raw_json<'c>(&self, column: impl Into<Col<'c>>) -> Result<Option<JsonRef<'_>>, sqlx::Error> {
        let text: Option<&str> = self.get(column)?;
        Ok(text.and_then(|t| serde_json::from_str(t).ok().map(JsonRef::Raw)))
    }
}

/// Positions of the columns [`super::query::message_columns`] selects. Pages read tens of
/// rows per request, and looking each column up by name was a visible share of a profile.
mod col {
    pub const SEQ: usize = 0;
    pub const ID: usize = 1;
    pub const SOURCE: usize = 2;
    pub const EVENT_TYPE: usize = 3;
    pub const CONVERSATION_ID: usize = 4;
    pub const POST_TOKEN: usize = 5;
    pub const MESSAGE_TYPE: usize = 6;
    pub const TEXT: usize = 7;
    pub const SENDER_SIDE: usize = 8;
    pub const SENDER_TYPE: usize = 9;
    pub const SENDER_ID: usize = 10;
    pub const RECEIVER_SIDE: usize = 11;
    pub const RECEIVER_ID: usize = 12;
    pub const SENT_AT: usize = 13;
    pub const SENT_AT_RAW: usize = 14;
    pub const RECEIVED_AT: usize = 15;
    pub const DATA: usize = 16;
    pub const METADATA: usize = 17;
    /// Selected after the others, by [`super::super::query::message`] only.
    pub const RAW_BODY: usize = 18;
    /// Selected last, by [`super::super::query::message`] only.
    pub const ORIGIN: usize = 19;
}

/// A row selected with [`super::query::message_columns`], read in place.
pub fn message_view(r: &AnyRow) -> Result<MessageView<'_>, super::Error> {
    Ok(MessageView {
        seq: r.get(col::SEQ)?,
        id: r.get(col::ID)?,
        source: r.get(col::SOURCE)?,
        event_type: r.get(col::EVENT_TYPE)?,
        conversation_id: r.get(col::CONVERSATION_ID)?,
        post_token: r.get(col::POST_TOKEN)?,
        message_type: r.get(col::MESSAGE_TYPE)?,
        text: r.get(col::TEXT)?,
        sender_side: r.get(col::SENDER_SIDE)?,
        sender_type: r.get(col::SENDER_TYPE)?,
        sender_id: r.get(col::SENDER_ID)?,
        receiver_side: r.get(col::RECEIVER_SIDE)?,
        receiver_id: r.get(col::RECEIVER_ID)?,
        sent_at: r.time(col::SENT_AT)?,
        sent_at_raw: r.get(col::SENT_AT_RAW)?,
        received_at: r.time(col::RECEIVED_AT)?,
        data: r.raw_json(col::DATA)?,
        metadata: r.raw_json(col::METADATA)?,
    })
}

/// A row selected with [`super::query::message_columns`]; `raw_body` is left empty.
pub fn message(r: &AnyRow) -> Result<StoredMessage, super::Error> {
    Ok(message_view(r)?.to_stored())
}

/// A row selected with [`super::query::message_columns`], `raw_body` and `origin`.
pub fn message_with_raw(r: &AnyRow) -> Result<StoredMessage, super::Error> {
    let mut stored = message(r)?;
    stored.message.raw_body = r.get(col::RAW_BODY)?;
    stored.message.origin = r.get(col::ORIGIN)?;
    Ok(stored)
}

/// A row of `conversation`.
pub fn conversation(r: &AnyRow) -> Result<StoredConversation, super::Error> {
    read_row!(
        r,
        StoredConversation {
            id,
            kind,
            source,
            post_token,
            supply_user_id,
            demand_user_id,
            first_message_at,
            last_message_at,
            message_count,
            last_preview,
        }
    )
}

/// A row selected by [`super::query::events`].
pub fn event(r: &AnyRow) -> Result<StoredEvent, super::Error> {
    read_row!(
        r,
        StoredEvent {
            seq,
            event = read_row!(fields r, NewEvent {
                dedupe_key,
                event_type,
                subtype,
                subject_id,
                post_token,
                payload = r.json("payload")?.unwrap_or_default(),
                metadata = r.json("metadata")?,
                raw_body,
                received_at,
            }),
        }
    )
}

/// A row selected by [`super::query::clicks`].
pub fn click(r: &AnyRow) -> Result<StoredClick, super::Error> {
    read_row!(
        r,
        StoredClick {
            seq,
            click = read_row!(fields r, NewClick {
                id,
                version,
                facts = read_row!(fields r, ClickFacts {
                    source,
                    post_token,
                    conversation_id,
                    user_id,
                    peer_id,
                    side,
                }),
                provider_data = r.json("provider_data")?.unwrap_or_default(),
                rule,
                url,
                outcome,
                raw_body,
                received_at,
            }),
        }
    )
}

/// A row of `registration`.
pub fn registration(r: &AnyRow) -> Result<Registration, super::Error> {
    read_row!(
        r,
        Registration {
            id,
            post_token,
            endpoint,
            key_digest,
            created_at,
        }
    )
}

#[cfg(test)]
mod tests {
    use super::col;
    use crate::store::query::{Dialect, message_columns};

    /// The name each position in `col` stands for, as the select list spells it.
    fn selected(dialect: Dialect) -> Vec<String> {
        let list = format!("{}, raw_body, origin", message_columns(dialect));
        list.split(',')
            .map(|c| c.split_whitespace().last().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn message_column_positions_match_the_select_list() {
        let expected = [
            (col::SEQ, "seq"),
            (col::ID, "id"),
            (col::SOURCE, "source"),
            (col::EVENT_TYPE, "event_type"),
            (col::CONVERSATION_ID, "conversation_id"),
            (col::POST_TOKEN, "post_token"),
            (col::MESSAGE_TYPE, "message_type"),
            (col::TEXT, "text"),
            (col::SENDER_SIDE, "sender_side"),
            (col::SENDER_TYPE, "sender_type"),
            (col::SENDER_ID, "sender_id"),
            (col::RECEIVER_SIDE, "receiver_side"),
            (col::RECEIVER_ID, "receiver_id"),
            (col::SENT_AT, "sent_at"),
            (col::SENT_AT_RAW, "sent_at_raw"),
            (col::RECEIVED_AT, "received_at"),
            (col::DATA, "data"),
            (col::METADATA, "metadata"),
            (col::RAW_BODY, "raw_body"),
            (col::ORIGIN, "origin"),
        ];
        for dialect in [Dialect::POSTGRES, Dialect::SQLITE] {
            let names = selected(dialect);
            assert_eq!(names.len(), expected.len(), "{dialect:?}: {names:?}");
            for (position, name) in expected {
                assert_eq!(names[position], name, "{dialect:?} position {position}");
            }
        }
    }
}
