//! The list and item handlers of `/api/v1`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::cursor::{self, Position};
use super::params::{
    At, EventType, Filters, Limit, MessageType, Names, NoParams, SenderSide, SortOrder, Text,
};
use crate::error::AppError;
use crate::items::{
    ClickItem, ConversationItem, EventItem, MessageItem, Page, RegistrationItem, rfc3339,
};
use crate::state::AppState;
use crate::store::MessageRows;
use crate::store::query::{ConversationQuery, LogQuery, MessageQuery, Order};

/// Cuts a `limit + 1` fetch to a page and the cursor of its last row. A fetch `cut` short by
/// the byte budget has rows left too: its cursor simply comes earlier.
fn page<R, T>(
    mut rows: Vec<R>,
    cut: bool,
    limit: i64,
    position: impl Fn(&R) -> Position,
    list: &str,
    fingerprint: &str,
    item: impl Fn(R) -> T,
) -> Page<T> {
    let more = cut || rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|r| cursor::encode(list, fingerprint, &position(r)))
        })
        .flatten();
    Page {
        items: rows.into_iter().map(item).collect(),
        next_cursor,
    }
}

/// The position a `cursor` parameter holds, of the kind `pick` accepts.
fn position<T>(
    cursor: Option<Text>,
    list: &str,
    fp: &str,
    pick: fn(Position) -> Option<T>,
) -> Result<Option<T>, AppError> {
    cursor
        .map(|c| {
            pick(cursor::decode(&c.0, list, fp)?).ok_or_else(|| AppError::InvalidParameter {
                name: "cursor".into(),
                message: "cursor: belongs to another list".into(),
            })
        })
        .transpose()
}

fn time_position(
    cursor: Option<Text>,
    list: &str,
    fp: &str,
) -> Result<Option<(chrono::DateTime<chrono::Utc>, String)>, AppError> {
    position(cursor, list, fp, |p| match p {
        Position::Time(t, id) => Some((t, id)),
        Position::Message(..) | Position::Seq(_) => None,
    })
}

/// Where a message list's cursor points: its row's (sent_at, id, seq). A cursor made before
/// `seq` joined the sort key goes on past every row of its (sent_at, id), as it did then.
fn message_position(
    cursor: Option<Text>,
    fp: &str,
    order: Order,
) -> Result<Option<(chrono::DateTime<chrono::Utc>, String, i64)>, AppError> {
    let past = match order {
        Order::Asc => i64::MAX,
        Order::Desc => i64::MIN,
    };
    let position = position(cursor, "messages", fp, |p| match p {
        Position::Message(t, id, seq) => Some((t, id, Some(seq))),
        Position::Time(t, id) => Some((t, id, None)),
        Position::Seq(_) => None,
    })?;
    Ok(position.map(|(t, id, seq)| (t, id, seq.unwrap_or(past))))
}

fn seq_position(cursor: Option<Text>, list: &str, fp: &str) -> Result<Option<i64>, AppError> {
    position(cursor, list, fp, |p| match p {
        Position::Seq(s) => Some(s),
        Position::Time(..) | Position::Message(..) => None,
    })
}

/// The parameters of `GET /conversations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConversationFilters {
    /// Only this post
    #[param(inline)]
    post_token: Option<Text>,
    /// Last message at or after (RFC 3339)
    #[param(inline)]
    since: Option<At>,
    /// Last message before (RFC 3339)
    #[param(inline)]
    until: Option<At>,
    /// 1–500, default 50
    #[param(inline)]
    limit: Option<Limit>,
    /// next_cursor of the previous page
    #[param(inline)]
    cursor: Option<Text>,
}

/// Conversations, newest activity first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "read",
    params(ConversationFilters),
    responses((status = 200, body = Page<ConversationItem>), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_conversations(
    State(state): State<AppState>,
    Filters(f): Filters<ConversationFilters>,
) -> Result<Json<Page<ConversationItem>>, AppError> {
    let (post_token, since, until, limit) = (
        Text::of(f.post_token),
        At::of(f.since),
        At::of(f.until),
        Limit::of(f.limit),
    );
    let fp = cursor::fingerprint(&[
        ("post_token", post_token.clone()),
        ("since", since.map(rfc3339)),
        ("until", until.map(rfc3339)),
    ]);
    let after = time_position(f.cursor, "conversations", &fp)?;
    let q = ConversationQuery {
        post_token,
        since,
        until,
        after,
        limit: limit + 1,
    };
    let rows = state.store.list_conversations(&q).await?;
    Ok(Json(page(
        rows,
        false,
        limit,
        |c| Position::Time(c.last_message_at, c.id.clone()),
        "conversations",
        &fp,
        ConversationItem::from,
    )))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "read",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationItem), (status = 404, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_conversation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Filters<NoParams>,
) -> Result<Json<ConversationItem>, AppError> {
    let c = state.store.conversation(&id).await?;
    c.map(|c| Json(c.into()))
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id:?}")))
}

/// The parameters of the message lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageFilters {
    /// Only this post (not on a conversation's own list)
    #[param(inline)]
    post_token: Option<Text>,
    /// Only this conversation (on a conversation's own list, the path's)
    #[param(inline)]
    conversation_id: Option<Text>,
    /// TEXT, IMAGE, FILE, VOICE, LOCATION, VIDEO or CONTACT
    #[serde(rename = "type")]
    #[param(inline, rename = "type")]
    kind: Option<MessageType>,
    /// SELLER or BUYER (also supply or demand)
    #[param(inline)]
    sender_side: Option<SenderSide>,
    /// Sent at or after (RFC 3339)
    #[param(inline)]
    since: Option<At>,
    /// Sent before (RFC 3339)
    #[param(inline)]
    until: Option<At>,
    /// Case-insensitive substring of the text (not on a conversation's own list)
    #[param(inline)]
    q: Option<Text>,
    /// asc (default) or desc
    #[param(inline)]
    order: Option<SortOrder>,
    /// 1–500, default 50
    #[param(inline)]
    limit: Option<Limit>,
    /// next_cursor of the previous page
    #[param(inline)]
    cursor: Option<Text>,
}

/// Messages of one conversation, by `sent_at`, then id, then arrival.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "read",
    params(("id" = String, Path, description = "Conversation id"), MessageFilters),
    responses((status = 200, body = Page<MessageItem>), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn conversation_messages(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Filters(mut f): Filters<MessageFilters>,
) -> Result<Response, AppError> {
    // The path names the conversation; a post or text filter does not apply here.
    f.post_token = None;
    f.q = None;
    f.conversation_id = Some(Text(id.clone()));
    let list = messages(&state, f).await?;
    if list.rows.is_empty() && state.store.conversation(&id).await?.is_none() {
        return Err(AppError::NotFound(format!("no conversation {id:?}")));
    }
    list.page()
}

/// Messages across conversations, by `sent_at`, then id, then arrival.
#[utoipa::path(get, path = "/api/v1/messages", tag = "read",
    params(MessageFilters),
    responses((status = 200, body = Page<MessageItem>), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_messages(
    State(state): State<AppState>,
    Filters(f): Filters<MessageFilters>,
) -> Result<Response, AppError> {
    messages(&state, f).await?.page()
}

/// The fetched rows of a message list, and how to cut them to a page.
struct MessageList {
    rows: MessageRows,
    limit: i64,
    fingerprint: String,
}

impl MessageList {
    /// The page answer. Items borrow from the rows, so it is written out here, while they
    /// are still held.
    fn page(&self) -> Result<Response, AppError> {
        Ok(Json(page(
            self.rows.views()?,
            self.rows.cut,
            self.limit,
            |m| Position::Message(m.sent_at, m.id.to_owned(), m.seq),
            "messages",
            &self.fingerprint,
            |m| MessageItem::new(&m, None),
        ))
        .into_response())
    }
}

async fn messages(state: &AppState, f: MessageFilters) -> Result<MessageList, AppError> {
    let q = MessageQuery {
        conversation_id: Text::of(f.conversation_id),
        post_token: Text::of(f.post_token),
        message_type: f.kind.map(|t| t.0),
        sender_side: f.sender_side.map(|s| s.0),
        since: At::of(f.since),
        until: At::of(f.until),
        text: Text::of(f.q),
        order: SortOrder::of(f.order),
        after: None,
        limit: Limit::of(f.limit),
    };
    let fp = cursor::messages_fingerprint(&q);
    let limit = q.limit;
    let q = MessageQuery {
        after: message_position(f.cursor, &fp, q.order)?,
        limit: limit + 1,
        ..q
    };
    let rows = state
        .store
        .list_messages(&q, state.settings.api.page_max_bytes)
        .await?;
    Ok(MessageList {
        rows,
        limit,
        fingerprint: fp,
    })
}

/// The parameters of `GET /messages/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageInclude {
    /// raw: add the body as received
    #[param(value_type = Option<String>, pattern = "^raw$")]
    include: Option<Names>,
}

/// One message; `include=raw` adds the body exactly as received.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "read",
    params(("id" = String, Path, description = "Message id"), MessageInclude),
    responses((status = 200, body = MessageItem), (status = 404, body = crate::error::ErrorBody),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Filters(f): Filters<MessageInclude>,
) -> Result<Response, AppError> {
    let with_raw = !Names::only(f.include, "include", &["raw"])?.is_empty();
    let m = state.store.message(&id).await?;
    let m = m.ok_or_else(|| AppError::NotFound(format!("no message {id:?}")))?;
    let raw = with_raw.then_some(m.message.raw_body.as_slice());
    Ok(Json(MessageItem::new(&m.view(), raw)).into_response())
}

/// The parameters of `GET /events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    /// USER_ACCESS_REVOCATION, POST_UPDATE, PAYMENT_TRANSACTION, ...
    #[serde(rename = "type")]
    #[param(inline, rename = "type")]
    kind: Option<EventType>,
    /// Received at or after (RFC 3339)
    #[param(inline)]
    since: Option<At>,
    /// Received before (RFC 3339)
    #[param(inline)]
    until: Option<At>,
    /// 1–500, default 50
    #[param(inline)]
    limit: Option<Limit>,
    /// next_cursor of the previous page
    #[param(inline)]
    cursor: Option<Text>,
}

/// Non-message events, in arrival order.
#[utoipa::path(get, path = "/api/v1/events", tag = "read",
    params(EventFilters),
    responses((status = 200, body = Page<EventItem>), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    Filters(f): Filters<EventFilters>,
) -> Result<Json<Page<EventItem>>, AppError> {
    let (event_type, since, until, limit) = (
        f.kind.map(|t| t.0),
        At::of(f.since),
        At::of(f.until),
        Limit::of(f.limit),
    );
    let fp = cursor::fingerprint(&[
        ("type", event_type.clone()),
        ("since", since.map(rfc3339)),
        ("until", until.map(rfc3339)),
    ]);
    let after_seq = seq_position(f.cursor, "events", &fp)?;
    let q = LogQuery {
        event_type,
        since,
        until,
        after_seq,
        limit: limit + 1,
        ..Default::default()
    };
    let listed = state
        .store
        .list_events(&q, state.settings.api.page_max_bytes)
        .await?;
    Ok(Json(page(
        listed.rows,
        listed.cut,
        limit,
        |e| Position::Seq(e.seq),
        "events",
        &fp,
        EventItem::from,
    )))
}

/// The parameters of `GET /clicks`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClickFilters {
    /// Only this post
    #[param(inline)]
    post_token: Option<Text>,
    /// Only this conversation
    #[param(inline)]
    conversation_id: Option<Text>,
    /// Received at or after (RFC 3339)
    #[param(inline)]
    since: Option<At>,
    /// Received before (RFC 3339)
    #[param(inline)]
    until: Option<At>,
    /// 1–500, default 50
    #[param(inline)]
    limit: Option<Limit>,
    /// next_cursor of the previous page
    #[param(inline)]
    cursor: Option<Text>,
}

/// The click log, in arrival order.
#[utoipa::path(get, path = "/api/v1/clicks", tag = "read",
    params(ClickFilters),
    responses((status = 200, body = Page<ClickItem>), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_clicks(
    State(state): State<AppState>,
    Filters(f): Filters<ClickFilters>,
) -> Result<Json<Page<ClickItem>>, AppError> {
    let (post_token, conversation_id) = (Text::of(f.post_token), Text::of(f.conversation_id));
    let (since, until, limit) = (At::of(f.since), At::of(f.until), Limit::of(f.limit));
    let fp = cursor::fingerprint(&[
        ("post_token", post_token.clone()),
        ("conversation_id", conversation_id.clone()),
        ("since", since.map(rfc3339)),
        ("until", until.map(rfc3339)),
    ]);
    let after_seq = seq_position(f.cursor, "clicks", &fp)?;
    let q = LogQuery {
        post_token,
        conversation_id,
        since,
        until,
        after_seq,
        limit: limit + 1,
        ..Default::default()
    };
    let listed = state
        .store
        .list_clicks(&q, state.settings.api.page_max_bytes)
        .await?;
    Ok(Json(page(
        listed.rows,
        listed.cut,
        limit,
        |c| Position::Seq(c.seq),
        "clicks",
        &fp,
        ClickItem::from,
    )))
}

/// Legacy webhook registrations, newest first (never their keys).
#[utoipa::path(get, path = "/api/v1/registrations", tag = "read",
    responses((status = 200, body = Page<RegistrationItem>), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_registrations(
    State(state): State<AppState>,
    _: Filters<NoParams>,
) -> Result<Json<Page<RegistrationItem>>, AppError> {
    let rows = state.store.registrations().await?;
    Ok(Json(Page {
        items: rows
            .into_iter()
            .map(|r| RegistrationItem {
                id: r.id,
                post_token: r.post_token,
                endpoint: r.endpoint,
                created_at: rfc3339(r.created_at),
            })
            .collect(),
        next_cursor: None,
    }))
}
