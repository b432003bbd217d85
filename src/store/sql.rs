//! SQL text with typed parameters, written once for both databases (`$1`, `$2`, ...
//! placeholders in both); `backend::bind` binds the parameters.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

pub use super::backend::Dialect;

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    /// An integer.
    Int(i64),
    /// An integer or NULL.
    OptInt(Option<i64>),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A time: `timestamptz` in PostgreSQL, microseconds in SQLite.
    Time(DateTime<Utc>),
    /// A time or NULL.
    OptTime(Option<DateTime<Utc>>),
    /// Bytes or NULL.
    OptBytes(Option<Vec<u8>>),
}

/// Text never takes U+0000 to the database: PostgreSQL text cannot hold it, so both
/// databases get U+FFFD in its place, in every column and filter alike.
pub(super) fn without_nul(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

impl Param {
    fn without_nul(self) -> Self {
        fn replace(s: String) -> String {
            match without_nul(&s) {
                Cow::Borrowed(_) => s,
                Cow::Owned(cleaned) => cleaned,
            }
        }
        match self {
            Param::Text(s) => Param::Text(replace(s)),
            Param::OptText(s) => Param::OptText(s.map(replace)),
            other => other,
        }
    }
}

impl From<&String> for Param {
    fn from(s: &String) -> Self {
        Param::Text(s.clone())
    }
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Text(s.to_owned())
    }
}

impl From<i64> for Param {
    fn from(n: i64) -> Self {
        Param::Int(n)
    }
}

impl From<DateTime<Utc>> for Param {
    fn from(t: DateTime<Utc>) -> Self {
        Param::Time(t)
    }
}

/// SQL text with its parameters.
#[derive(Debug, Clone)]
pub struct Sql {
    pub(super) dialect: Dialect,
    /// The statement.
    pub text: String,
    /// Its parameters, in placeholder order.
    pub params: Vec<Param>,
    /// Whether a `where` clause has begun.
    filtered: bool,
}

impl Sql {
    /// A statement starting with `text`.
    pub fn new(dialect: Dialect, text: &str) -> Self {
        Sql {
            dialect,
            text: text.to_owned(),
            params: Vec::new(),
            filtered: false,
        }
    }

    /// Appends text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `param`. Text never takes U+0000 to the database:
    /// PostgreSQL text cannot hold it, so both databases get U+FFFD in its place, in every
    /// column and filter alike.
    pub fn bind(&mut self, param: Param) -> &mut Self {
        self.params.push(param.without_nul());
        let n = self.params.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// Appends `template` with `value` bound at each `?` in it.
    pub fn push_with(&mut self, template: &str, value: &Param) -> &mut Self {
        let mut pieces = template.split('?');
        self.push(pieces.next().unwrap_or_default());
        for piece in pieces {
            self.bind(value.clone()).push(piece);
        }
        self
    }

    /// Appends a placeholder for JSON text (a `json` column in PostgreSQL, text in SQLite).
    pub fn bind_json(&mut self, json: Option<String>) -> &mut Self {
        self.bind(Param::OptText(json));
        self.text.push_str(self.dialect.json_param);
        self
    }

    /// Appends comma-separated placeholders for a list of parameters.
    pub fn list(&mut self, params: Vec<Param>) -> &mut Self {
        for (i, p) in params.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(p);
        }
        self
    }

    /// Begins the next condition of the `where` clause: ` where ` first, ` and ` after.
    pub(super) fn condition(&mut self) -> &mut Self {
        let joint = if self.filtered { " and " } else { " where " };
        self.filtered = true;
        self.push(joint)
    }

    /// `column_op value` as the next condition; a filter not given (`None`) adds nothing.
    pub(super) fn filter<P: Into<Param>>(
        &mut self,
        column_op: &str,
        value: Option<P>,
    ) -> &mut Self {
        if let Some(value) = value {
            self.condition().push(column_op).bind(value.into());
        }
        self
    }

    /// `column in (...)` as the next condition; with no values, a condition no row meets.
    pub(super) fn filter_in(&mut self, column: &str, values: Option<&[String]>) -> &mut Self {
        let Some(values) = values else {
            return self;
        };
        self.condition();
        if values.is_empty() {
            return self.push("1 = 0");
        }
        self.push(column).push(" in (");
        self.list(values.iter().cloned().map(Param::Text).collect())
            .push(")")
    }

    pub(super) fn limit(&mut self, limit: i64) {
        self.push(" limit ").bind(Param::Int(limit));
    }

    /// A page of a log kept by `id`, oldest first: at most `limit` rows after `after`.
    pub(super) fn oldest_after(&mut self, after: Option<i64>, limit: i64) {
        self.filter("id > ", after)
            .push(" order by id")
            .limit(limit);
    }

    /// A page of a log kept by `id`, newest first: at most `limit` rows before `before`.
    pub(super) fn newest_before(&mut self, before: Option<i64>, limit: i64) {
        self.filter("id < ", before)
            .push(" order by id desc")
            .limit(limit);
    }
}
