//! Read queries, built once for both databases: filters, keyset pagination and ordering
//! produce SQL text and typed parameters.

use chrono::{DateTime, Utc};

pub use super::sql::{Dialect, Param, Sql};

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
    /// Only these posts (a reader limited to some posts); `None`: every post.
    pub post_tokens: Option<Vec<String>>,
    /// Last message at or after.
    pub since: Option<DateTime<Utc>>,
    /// Last message before.
    pub until: Option<DateTime<Utc>>,
    /// Keyset: (last_message_at, id) of the last row of the previous page.
    pub after: Option<(DateTime<Utc>, String)>,
    /// Page size.
    pub limit: i64,
    /// Also read each conversation's last message (shortened).
    pub with_last: bool,
}

/// Filters and page of the message lists (by `sent_at`, then id, then `seq`: one id may be
/// stored once per origin).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Only this conversation.
    pub conversation_id: Option<String>,
    /// Only this post.
    pub post_token: Option<String>,
    /// Only these posts (a reader limited to some posts); `None`: every post.
    pub post_tokens: Option<Vec<String>>,
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
    /// Keyset: (sent_at, id, seq) of the last row of the previous page.
    pub after: Option<(DateTime<Utc>, String, i64)>,
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
    /// Only these posts (a reader limited to some posts); `None`: every post.
    pub post_tokens: Option<Vec<String>>,
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
    sql.filter("seq > ", Some(q.after_seq));
    sql.filter("post_token = ", q.post_token.as_ref());
    sql.filter_in("post_token", q.post_tokens.as_deref());
    sql.filter("conversation_id = ", q.conversation_id.as_ref());
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
    /// Only these posts (a reader limited to some posts); `None`: every post.
    pub post_tokens: Option<Vec<String>>,
    /// Clicks: only this conversation.
    pub conversation_id: Option<String>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    /// Keyset: the `seq` of the last row of the previous page.
    pub after_seq: Option<i64>,
    /// Newest first (the page goes on below `after_seq`).
    pub newest_first: bool,
    /// Page size.
    pub limit: i64,
    /// Also select the raw bodies (lists never show them; tools and tests may).
    pub with_raw: bool,
}

impl LogQuery {
    /// Every record after `seq`, `limit` at most, in arrival order.
    pub fn after(seq: i64, limit: i64) -> LogQuery {
        LogQuery {
            after_seq: Some(seq),
            limit,
            ..Default::default()
        }
    }
}

/// The raw body column, or an empty stand-in when it is not wanted.
fn raw_body(dialect: Dialect, wanted: bool) -> String {
    if wanted {
        "raw_body".to_owned()
    } else {
        format!("{} as raw_body", dialect.empty_bytes)
    }
}

/// The columns of a message row without its raw body (lists and the stream never show it).
pub fn message_columns(dialect: Dialect) -> String {
    format!(
        "seq, id, source, event_type, conversation_id, post_token, message_type, text, \
         sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, \
         sent_at_raw, received_at, {}, {}",
        dialect.json_column("data"),
        dialect.json_column("metadata")
    )
}

/// The separator of the parts of `last_preview`: a control character no type, side or
/// post title holds.
pub const PREVIEW_SEPARATOR: char = '\u{1f}';

/// A conversation, and with `with_last` its last message as one text column,
/// `<type> <sender side or -><US><post title><US><first 120 characters of its text>`: one
/// index seek on `message_conversation_idx` a row, so only for those who ask.
fn conversation_select(dialect: Dialect, with_last: bool) -> String {
    if !with_last {
        return "select conversation.*, cast(null as text) as last_preview from conversation"
            .to_owned();
    }
    let title = dialect.json_field("m.metadata", "title");
    let us = PREVIEW_SEPARATOR;
    format!(
        "select conversation.*, (select m.message_type || ' ' || coalesce(m.sender_side, '-') \
         || '{us}' || coalesce({title}, '') || '{us}' || coalesce(substr(m.text, 1, 120), '') \
         from message m where m.conversation_id = conversation.id \
         order by m.sent_at desc, m.id desc limit 1) as last_preview from conversation"
    )
}

/// `select ... from conversation ...`
pub fn conversations(dialect: Dialect, q: &ConversationQuery) -> Sql {
    let mut sql = Sql::new(dialect, &conversation_select(dialect, q.with_last));
    sql.filter("post_token = ", q.post_token.as_ref());
    sql.filter_in("post_token", q.post_tokens.as_deref());
    sql.filter("last_message_at >= ", q.since);
    sql.filter("last_message_at < ", q.until);
    if let Some((t, id)) = &q.after {
        sql.condition();
        // A row comparison is one index range condition; the equivalent `a < x or (a = x
        // and b < y)` makes PostgreSQL read and sort everything past the cursor.
        sql.push("(last_message_at, id) < (").bind(Param::Time(*t));
        sql.push(", ").bind(Param::Text(id.clone())).push(")");
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
    sql.filter("conversation_id = ", q.conversation_id.as_ref());
    sql.filter("post_token = ", q.post_token.as_ref());
    sql.filter_in("post_token", q.post_tokens.as_deref());
    sql.filter("message_type = ", q.message_type.as_ref());
    sql.filter("sender_side = ", q.sender_side.as_ref());
    sql.filter("sent_at >= ", q.since);
    sql.filter("sent_at < ", q.until);
    if let Some(text) = &q.text {
        let like = format!("text {} ", dialect.like);
        sql.filter(&like, Some(Param::Text(like_pattern(text))));
        sql.push(" escape '\\'");
    }
    let (cmp, dir) = match q.order {
        Order::Asc => (">", "asc"),
        Order::Desc => ("<", "desc"),
    };
    if let Some((t, id, seq)) = &q.after {
        sql.condition();
        sql.push(&format!("(sent_at, id, seq) {cmp} ("))
            .bind(Param::Time(*t));
        sql.push(", ").bind(Param::Text(id.clone()));
        sql.push(", ").bind(Param::Int(*seq)).push(")");
    }
    // The indexes on (..., sent_at, id) still serve: PostgreSQL bounds the scan by the
    // (sent_at, id) prefix and sorts the rare rows of one time and id by seq; SQLite's
    // indexes end in the rowid, which seq is.
    sql.push(&format!(" order by sent_at {dir}, id {dir}, seq {dir}"));
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

/// The columns of an event row, with its raw body when `raw`.
pub(super) fn event_columns(dialect: Dialect, raw: bool) -> String {
    format!(
        "seq, dedupe_key, event_type, subtype, subject_id, post_token, {}, {}, {}, \
         received_at",
        dialect.json_column("payload"),
        dialect.json_column("metadata"),
        raw_body(dialect, raw)
    )
}

/// The columns of a click row, with its raw body when `raw`.
pub(super) fn click_columns(dialect: Dialect, raw: bool) -> String {
    format!(
        "seq, id, version, source, post_token, conversation_id, user_id, peer_id, side, {}, \
         rule, url, outcome, {}, received_at",
        dialect.json_column("provider_data"),
        raw_body(dialect, raw)
    )
}

/// `select ... from event ...`
pub fn events(dialect: Dialect, q: &LogQuery) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("select {} from event", event_columns(dialect, q.with_raw)),
    );
    sql.filter("event_type = ", q.event_type.as_ref());
    sql.filter("post_token = ", q.post_token.as_ref());
    sql.filter_in("post_token", q.post_tokens.as_deref());
    log_filters(&mut sql, q);
    sql
}

/// `select ... from click ...`
pub fn clicks(dialect: Dialect, q: &LogQuery) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("select {} from click", click_columns(dialect, q.with_raw)),
    );
    sql.filter("post_token = ", q.post_token.as_ref());
    sql.filter_in("post_token", q.post_tokens.as_deref());
    sql.filter("conversation_id = ", q.conversation_id.as_ref());
    log_filters(&mut sql, q);
    sql
}

fn log_filters(sql: &mut Sql, q: &LogQuery) {
    sql.filter("received_at >= ", q.since);
    sql.filter("received_at < ", q.until);
    let after = if q.newest_first { "seq < " } else { "seq > " };
    sql.filter(after, q.after_seq);
    sql.push(if q.newest_first {
        " order by seq desc"
    } else {
        " order by seq asc"
    });
    sql.limit(q.limit);
}

/// The highest `seq` of each table, as `message`, `event`, `click`; 0 when empty.
pub fn high_water_marks(dialect: Dialect) -> Sql {
    Sql::new(
        dialect,
        "select (select coalesce(max(seq), 0) from message) as message, \
         (select coalesce(max(seq), 0) from event) as event, \
         (select coalesce(max(seq), 0) from click) as click",
    )
}

/// How many rows each table holds, as `conversations`, `messages`, `events`.
pub fn counts(dialect: Dialect) -> Sql {
    Sql::new(
        dialect,
        "select (select count(*) from conversation) as conversations, \
         (select count(*) from message) as messages, \
         (select count(*) from event) as events",
    )
}

/// One message by id: when several origins hold the id, the app's own (origin empty), then
/// the oldest.
pub fn message(dialect: Dialect, id: &str) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!(
            "select {}, raw_body, origin from message where id = ",
            message_columns(dialect)
        ),
    );
    sql.bind(Param::Text(id.to_owned()));
    sql.push(" order by origin <> '', seq limit 1");
    sql
}

/// One conversation by id.
pub fn conversation(dialect: Dialect, id: &str) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("{} where id = ", conversation_select(dialect, true)),
    );
    sql.bind(Param::Text(id.to_owned()));
    sql
}

/// Every registration, newest first.
pub fn registrations(dialect: Dialect) -> Sql {
    Sql::new(
        dialect,
        "select * from registration order by created_at desc, id",
    )
}

/// The registration with this key digest for this post, if any.
pub fn registration_for(dialect: Dialect, key_digest: &str, post_token: &str) -> Sql {
    let mut sql = Sql::new(
        dialect,
        "select 1 as found from registration where key_digest = ",
    );
    sql.bind(Param::Text(key_digest.to_owned()))
        .push(" and post_token = ")
        .bind(Param::Text(post_token.to_owned()));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn keyset_pages_compare_the_sort_key_as_a_row() {
        let q = MessageQuery {
            conversation_id: Some("c".into()),
            order: Order::Desc,
            after: Some((DateTime::UNIX_EPOCH, "m".into(), 7)),
            limit: 50,
            ..Default::default()
        };
        let sql = messages(Dialect::POSTGRES, &q);
        assert!(
            sql.text.ends_with(
                "where conversation_id = $1 and (sent_at, id, seq) < ($2, $3, $4) \
                 order by sent_at desc, id desc, seq desc limit $5"
            ),
            "{}",
            sql.text
        );
        assert_eq!(sql.params.len(), 5);
    }
}
