//! `/api/v1/messages` and a conversation's messages, keyset-paged, and one message by id.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::cursor::{self, Position};
use super::page::Keyset;
use super::params::{Filters, Listing, MessageType, Names, Paging, SenderSide, Text, Window};
use crate::auth::{Client, Scope};
use crate::error::AppError;
use crate::items::{MessageItem, Page};
use crate::state::AppState;
use crate::store::MessageRows;
use crate::store::query::{MessageQuery, Order};

/// The routes of this file.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/conversations/{id}/messages",
            get(conversation_messages),
        )
        .route("/api/v1/messages", get(list_messages))
        .route("/api/v1/messages/{id}", get(get_message))
}

/// The parameters of the message lists, besides their [`Window`] and [`Paging`].
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
    /// Case-insensitive substring of the text (not on a conversation's own list)
    #[param(inline)]
    q: Option<Text>,
}

/// Messages of one conversation, by `sent_at`, then id, then arrival.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "read",
    params(("id" = String, Path, description = "Conversation id"), MessageFilters, Window, Paging),
    responses((status = 200, body = Page<MessageItem>),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn conversation_messages(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Path(id): Path<String>,
    Listing(mut f, window, paging): Listing<MessageFilters, Window>,
) -> Result<Response, AppError> {
    // The path names the conversation; a post or text filter does not apply here.
    f.post_token = None;
    f.q = None;
    f.conversation_id = Some(Text(id.clone()));
    let list = messages(&state, &client, f, window, paging).await?;
    if list.rows.is_empty() {
        let conversation = state.store.conversation(&id).await?;
        // Another post's conversation is answered as one that does not exist.
        if !conversation.is_some_and(|c| client.may_see(c.post_token.as_deref())) {
            return Err(AppError::NotFound(format!("no conversation {id:?}")));
        }
    }
    list.page(client.pii())
}

/// Messages across conversations, by `sent_at`, then id, then arrival.
#[utoipa::path(get, path = "/api/v1/messages", tag = "read",
    params(MessageFilters, Window, Paging),
    responses((status = 200, body = Page<MessageItem>)))]
pub async fn list_messages(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Listing(f, window, paging): Listing<MessageFilters, Window>,
) -> Result<Response, AppError> {
    messages(&state, &client, f, window, paging)
        .await?
        .page(client.pii())
}

/// The fetched rows of a message list, and how to cut them to a page.
struct MessageList {
    rows: MessageRows,
    keyset: Keyset,
}

impl MessageList {
    /// The page answer. Items borrow from the rows, so it is written out here, while they
    /// are still held.
    fn page(&self, pii: bool) -> Result<Response, AppError> {
        Ok(Json(self.keyset.page(
            self.rows.views()?,
            self.rows.cut,
            |m| Position::Message(m.sent_at, m.id.to_owned(), m.seq),
            |m| MessageItem::new(&m, None).for_reader(pii),
        ))
        .into_response())
    }
}

async fn messages(
    state: &AppState,
    client: &Client,
    f: MessageFilters,
    window: Window,
    paging: Paging,
) -> Result<MessageList, AppError> {
    let (since, until, order) = window.split();
    let q = MessageQuery {
        conversation_id: Text::of(f.conversation_id),
        post_token: Text::of(f.post_token),
        post_tokens: client.posts().map(<[String]>::to_vec),
        message_type: f.kind.map(|t| t.0),
        sender_side: f.sender_side.map(|s| s.0),
        since,
        until,
        text: Text::of(f.q),
        order,
        after: None,
        limit: paging.limit(),
    };
    let keyset = Keyset::with_fingerprint("messages", cursor::messages_fingerprint(&q), paging);
    let q = MessageQuery {
        after: message_position(&keyset, q.order)?,
        limit: keyset.fetch(),
        ..q
    };
    let rows = state
        .store
        .list_messages(&q, state.settings.api.page_max_bytes)
        .await?;
    Ok(MessageList { rows, keyset })
}

/// Where a message list's cursor points: its row's (sent_at, id, seq). A cursor made before
/// `seq` joined the sort key goes on past every row of its (sent_at, id), as it did then.
fn message_position(
    keyset: &Keyset,
    order: Order,
) -> Result<Option<(DateTime<Utc>, String, i64)>, AppError> {
    let past = match order {
        Order::Asc => i64::MAX,
        Order::Desc => i64::MIN,
    };
    let position = keyset.after(|p| match p {
        Position::Message(t, id, seq) => Some((t, id, Some(seq))),
        Position::Time(t, id) => Some((t, id, None)),
        Position::Seq(_) => None,
    })?;
    Ok(position.map(|(t, id, seq)| (t, id, seq.unwrap_or(past))))
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
    responses((status = 200, body = MessageItem), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_message(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Path(id): Path<String>,
    Filters(f): Filters<MessageInclude>,
) -> Result<Response, AppError> {
    let with_raw = !Names::only(f.include, "include", &["raw"])?.is_empty();
    if with_raw {
        // The body as received holds phone numbers unmasked.
        client.require(Scope::Raw, "include=raw")?;
        client.require(Scope::Pii, "include=raw")?;
    }
    let m = state.store.message(&id).await?;
    // Another post's message is answered as one that does not exist.
    let m = m
        .filter(|m| client.may_see(m.view().post_token))
        .ok_or_else(|| AppError::NotFound(format!("no message {id:?}")))?;
    let raw = with_raw.then_some(m.message.raw_body.as_slice());
    Ok(Json(MessageItem::new(&m.view(), raw).for_reader(client.pii())).into_response())
}
