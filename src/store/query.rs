//! Read queries of the API, built once for both databases: filters, keyset pagination and
//! ordering produce SQL text and typed parameters; each backend binds them its own way.

use chrono::{DateTime, Utc};

/// The database's flavour of SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `$1` placeholders, `ilike`, json columns read as text.
    Postgres,
    /// `?1` placeholders, `like` (case-insensitive for ASCII; Persian has no case).
    Sqlite,
}

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A time: `timestamptz` in PostgreSQL, microseconds in SQLite.
    Time(DateTime<Utc>),
}

/// SQL text with its parameters.
#[derive(Debug, Clone)]
pub struct Sql {
    dialect: Dialect,
    /// The statement.
    pub text: String,
    /// Its parameters, in placeholder order.
    pub params: Vec<Param>,
}

impl Sql {
    fn new(dialect: Dialect, text: &str) -> Self {
        Sql {
            dialect,
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `param`.
    fn bind(&mut self, param: Param) -> &mut Self {
        self.params.push(param);
        let n = self.params.len();
        match self.dialect {
            Dialect::Postgres => self.text.push_str(&format!("${n}")),
            Dialect::Sqlite => self.text.push_str(&format!("?{n}")),
        }
        self
    }

    fn filter(&mut self, first: &mut bool, column_op: &str, param: Param) {
        self.push(if *first { " where " } else { " and " });
        *first = false;
        self.push(column_op).bind(param);
    }

    fn limit(&mut self, limit: i64) {
        self.push(" limit ").bind(Param::Int(limit));
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// Filters and page of `GET /conversations` (newest activity first).
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    /// Only this post.
    pub post_token: Option<String>,
    /// Last message at or after.
    pub since: Option<DateTime<Utc>>,
    /// Last message before.
    pub until: Option<DateTime<Utc>>,
    /// Keyset: (last_message_at, id) of the last row of the previous page.
    pub after: Option<(DateTime<Utc>, String)>,
    /// Page size.
    pub limit: i64,
}

/// Filters and page of the message lists (by `sent_at`, then id).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Only this conversation.
    pub conversation_id: Option<String>,
    /// Only this post.
    pub post_token: Option<String>,
    /// Only this message type.
    pub message_type: Option<String>,
    /// Only this sender side (`SELLER` / `BUYER`).
    pub sender_side: Option<String>,
    /// Sent at or after.
    pub since: Option<DateTime<Utc>>,
    /// Sent before.
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the text.
    pub text: Option<String>,
    /// Direction.
    pub order: Order,
    /// Keyset: (sent_at, id) of the last row of the previous page.
    pub after: Option<(DateTime<Utc>, String)>,
    /// Page size.
    pub limit: i64,
}

/// New messages for the live stream, in `seq` order.
#[derive(Debug, Clone, Default)]
pub struct StreamQuery {
    /// Only messages with a greater `seq`.
    pub after_seq: i64,
    /// Only this post.
    pub post_token: Option<String>,
    /// Only this conversation.
    pub conversation_id: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// `select ... from message where seq > ...` for the live stream.
pub fn stream_messages(dialect: Dialect, q: &StreamQuery) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("select {} from message", message_columns(dialect)),
    );
    let mut first = true;
    sql.filter(&mut first, "seq > ", Param::Int(q.after_seq));
    if let Some(p) = &q.post_token {
        sql.filter(&mut first, "post_token = ", Param::Text(p.clone()));
    }
    if let Some(c) = &q.conversation_id {
        sql.filter(&mut first, "conversation_id = ", Param::Text(c.clone()));
    }
    sql.push(" order by seq asc");
    sql.limit(q.limit);
    sql
}

/// Filters and page of the event and click logs (in insertion order).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Events: only this type.
    pub event_type: Option<String>,
    /// Only this post.
    pub post_token: Option<String>,
    /// Clicks: only this conversation.
    pub conversation_id: Option<String>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    /// Keyset: the `seq` of the last row of the previous page.
    pub after_seq: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// The columns of a message row, as every backend reads them.
pub fn message_columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "seq, id, source, event_type, conversation_id, post_token, message_type, text, \
             sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, \
             sent_at_raw, received_at, data::text as data, metadata::text as metadata, raw_body"
        }
        Dialect::Sqlite => {
            "seq, id, source, event_type, conversation_id, post_token, message_type, text, \
             sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, \
             sent_at_raw, received_at, data, metadata, raw_body"
        }
    }
}

fn json_text(dialect: Dialect, column: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("{column}::text as {column}"),
        Dialect::Sqlite => column.to_owned(),
    }
}

/// `select ... from conversation ...`
pub fn conversations(dialect: Dialect, q: &ConversationQuery) -> Sql {
    let mut sql = Sql::new(dialect, "select * from conversation");
    let mut first = true;
    if let Some(p) = &q.post_token {
        sql.filter(&mut first, "post_token = ", Param::Text(p.clone()));
    }
    if let Some(t) = q.since {
        sql.filter(&mut first, "last_message_at >= ", Param::Time(t));
    }
    if let Some(t) = q.until {
        sql.filter(&mut first, "last_message_at < ", Param::Time(t));
    }
    if let Some((t, id)) = &q.after {
        sql.push(if first { " where " } else { " and " });
        sql.push("(last_message_at < ").bind(Param::Time(*t));
        sql.push(" or (last_message_at = ").bind(Param::Time(*t));
        sql.push(" and id < ")
            .bind(Param::Text(id.clone()))
            .push("))");
    }
    sql.push(" order by last_message_at desc, id desc");
    sql.limit(q.limit);
    sql
}

/// `select ... from message ...`
pub fn messages(dialect: Dialect, q: &MessageQuery) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("select {} from message", message_columns(dialect)),
    );
    let mut first = true;
    if let Some(c) = &q.conversation_id {
        sql.filter(&mut first, "conversation_id = ", Param::Text(c.clone()));
    }
    if let Some(p) = &q.post_token {
        sql.filter(&mut first, "post_token = ", Param::Text(p.clone()));
    }
    if let Some(t) = &q.message_type {
        sql.filter(&mut first, "message_type = ", Param::Text(t.clone()));
    }
    if let Some(s) = &q.sender_side {
        sql.filter(&mut first, "sender_side = ", Param::Text(s.clone()));
    }
    if let Some(t) = q.since {
        sql.filter(&mut first, "sent_at >= ", Param::Time(t));
    }
    if let Some(t) = q.until {
        sql.filter(&mut first, "sent_at < ", Param::Time(t));
    }
    if let Some(text) = &q.text {
        let like = match dialect {
            Dialect::Postgres => "text ilike ",
            Dialect::Sqlite => "text like ",
        };
        sql.filter(&mut first, like, Param::Text(like_pattern(text)));
        sql.push(" escape '\\'");
    }
    let (cmp, dir) = match q.order {
        Order::Asc => (">", "asc"),
        Order::Desc => ("<", "desc"),
    };
    if let Some((t, id)) = &q.after {
        sql.push(if first { " where " } else { " and " });
        sql.push(&format!("(sent_at {cmp} ")).bind(Param::Time(*t));
        sql.push(" or (sent_at = ").bind(Param::Time(*t));
        sql.push(&format!(" and id {cmp} "))
            .bind(Param::Text(id.clone()))
            .push("))");
    }
    sql.push(&format!(" order by sent_at {dir}, id {dir}"));
    sql.limit(q.limit);
    sql
}

/// `%text%` with `%`, `_` and `\` escaped.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `select ... from event ...`
pub fn events(dialect: Dialect, q: &LogQuery) -> Sql {
    let columns = format!(
        "seq, dedupe_key, event_type, subtype, subject_id, post_token, {}, {}, raw_body, \
         received_at",
        json_text(dialect, "payload"),
        json_text(dialect, "metadata")
    );
    let mut sql = Sql::new(dialect, &format!("select {columns} from event"));
    let mut first = true;
    if let Some(t) = &q.event_type {
        sql.filter(&mut first, "event_type = ", Param::Text(t.clone()));
    }
    if let Some(p) = &q.post_token {
        sql.filter(&mut first, "post_token = ", Param::Text(p.clone()));
    }
    log_filters(&mut sql, &mut first, q);
    sql
}

/// `select ... from click ...`
pub fn clicks(dialect: Dialect, q: &LogQuery) -> Sql {
    let columns = format!(
        "seq, id, version, source, post_token, conversation_id, user_id, peer_id, side, {}, \
         rule, url, outcome, raw_body, received_at",
        json_text(dialect, "provider_data")
    );
    let mut sql = Sql::new(dialect, &format!("select {columns} from click"));
    let mut first = true;
    if let Some(p) = &q.post_token {
        sql.filter(&mut first, "post_token = ", Param::Text(p.clone()));
    }
    if let Some(c) = &q.conversation_id {
        sql.filter(&mut first, "conversation_id = ", Param::Text(c.clone()));
    }
    log_filters(&mut sql, &mut first, q);
    sql
}

fn log_filters(sql: &mut Sql, first: &mut bool, q: &LogQuery) {
    if let Some(t) = q.since {
        sql.filter(first, "received_at >= ", Param::Time(t));
    }
    if let Some(t) = q.until {
        sql.filter(first, "received_at < ", Param::Time(t));
    }
    if let Some(seq) = q.after_seq {
        sql.filter(first, "seq > ", Param::Int(seq));
    }
    sql.push(" order by seq asc");
    sql.limit(q.limit);
}

/// The highest `seq` of each table: (message, event, click); 0 when empty.
pub fn high_water_marks() -> &'static str {
    "select (select coalesce(max(seq), 0) from message), \
     (select coalesce(max(seq), 0) from event), \
     (select coalesce(max(seq), 0) from click)"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn keyset_pages_compare_the_sort_key() {
        let q = MessageQuery {
            conversation_id: Some("c".into()),
            order: Order::Desc,
            after: Some((DateTime::UNIX_EPOCH, "m".into())),
            limit: 50,
            ..Default::default()
        };
        let sql = messages(Dialect::Postgres, &q);
        assert!(
            sql.text.ends_with(
                "where conversation_id = $1 and (sent_at < $2 or (sent_at = $3 and id < $4)) \
             order by sent_at desc, id desc limit $5"
            ),
            "{}",
            sql.text
        );
        assert_eq!(sql.params.len(), 5);
    }
}
