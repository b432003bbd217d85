//! Keyset paging, shared by every list route: a `cursor` parameter decoded into the key its
//! list pages by, and a `limit + 1` fetch cut into a page and the cursor of its last row.

use std::convert::Infallible;

use super::cursor::{self, Position};
use super::params::{Paging, Text};
use crate::error::AppError;
use crate::items::Page;

/// One list's paging: its name, its filters' fingerprint, its page size and the cursor
/// given.
pub(crate) struct Keyset {
    list: &'static str,
    fingerprint: String,
    limit: i64,
    cursor: Option<Text>,
}

impl Keyset {
    /// Paging of `list` under `filters` (in a fixed order).
    pub(crate) fn new(
        list: &'static str,
        filters: &[(&str, Option<String>)],
        paging: Paging,
    ) -> Keyset {
        Keyset::with_fingerprint(list, cursor::fingerprint(filters), paging)
    }

    /// Paging of `list` whose filters' fingerprint is already made.
    pub(crate) fn with_fingerprint(
        list: &'static str,
        fingerprint: String,
        paging: Paging,
    ) -> Keyset {
        Keyset {
            list,
            fingerprint,
            limit: paging.limit(),
            cursor: paging.cursor,
        }
    }

    /// How many rows to fetch: one more than a page, to learn whether another follows.
    pub(crate) fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The key the `cursor` parameter holds, of the kind `pick` accepts; any other kind is a
    /// 400 `invalid_parameter`, as is a cursor of another list or other filters.
    pub(crate) fn after<K>(&self, pick: fn(Position) -> Option<K>) -> Result<Option<K>, AppError> {
        self.cursor
            .as_ref()
            .map(|c| {
                pick(cursor::decode(&c.0, self.list, &self.fingerprint)?).ok_or_else(|| {
                    AppError::InvalidParameter {
                        name: "cursor".into(),
                        message: "cursor: belongs to another list".into(),
                    }
                })
            })
            .transpose()
    }

    /// The `seq` (or id) the `cursor` parameter holds.
    pub(crate) fn after_seq(&self) -> Result<Option<i64>, AppError> {
        self.after(|p| match p {
            Position::Seq(s) => Some(s),
            Position::Time(..) | Position::Message(..) => None,
        })
    }

    /// Cuts a `limit + 1` fetch to a page and the cursor of its last row. A fetch `cut` short
    /// by the byte budget has rows left too: its cursor simply comes earlier.
    pub(crate) fn page<R, T>(
        &self,
        rows: Vec<R>,
        cut: bool,
        position: impl Fn(&R) -> Position,
        item: impl Fn(R) -> T,
    ) -> Page<T> {
        match self.try_page(rows, cut, position, |r| Ok::<_, Infallible>(item(r))) {
            Ok(page) => page,
            Err(never) => match never {},
        }
    }

    /// [`Keyset::page`] for items that may fail to be made.
    pub(crate) fn try_page<R, T, E>(
        &self,
        mut rows: Vec<R>,
        cut: bool,
        position: impl Fn(&R) -> Position,
        item: impl Fn(R) -> Result<T, E>,
    ) -> Result<Page<T>, E> {
        let more = cut || rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = more
            .then(|| rows.last())
            .flatten()
            .map(|r| cursor::encode(self.list, &self.fingerprint, &position(r)));
        Ok(Page {
            items: rows.into_iter().map(item).collect::<Result<_, _>>()?,
            next_cursor,
        })
    }
}
