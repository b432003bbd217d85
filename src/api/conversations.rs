//! `/api/v1/conversations`: the conversations, newest activity first, and one by id.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde::Deserialize;
use utoipa::IntoParams;

use super::cursor::Position;
use super::page::Keyset;
use super::params::{At, Filters, Listing, Names, NoParams, Paging, Text};
use crate::auth::Client;
use crate::error::AppError;
use crate::items::{ConversationItem, Page, rfc3339};
use crate::state::AppState;
use crate::store::query::ConversationQuery;

/// The routes of this file (a conversation's messages are in `messages`).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations", get(list_conversations))
        .route("/api/v1/conversations/{id}", get(get_conversation))
}

/// The parameters of `GET /conversations`, besides its [`Paging`].
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
    /// last_message: each conversation with its last message, shortened, and its post's title
    #[param(inline)]
    include: Option<Names>,
}

/// Conversations, newest activity first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "read",
    params(ConversationFilters, Paging),
    responses((status = 200, body = Page<ConversationItem>)))]
pub async fn list_conversations(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Listing(f, _, paging): Listing<ConversationFilters>,
) -> Result<Json<Page<ConversationItem>>, AppError> {
    let (post_token, since, until) = (Text::of(f.post_token), At::of(f.since), At::of(f.until));
    let keyset = Keyset::new(
        "conversations",
        &[
            ("post_token", post_token.clone()),
            ("since", since.map(rfc3339)),
            ("until", until.map(rfc3339)),
        ],
        paging,
    );
    let after = keyset.after(|p| match p {
        Position::Time(t, id) => Some((t, id)),
        Position::Message(..) | Position::Seq(_) => None,
    })?;
    let q = ConversationQuery {
        post_token,
        post_tokens: client.posts().map(<[String]>::to_vec),
        since,
        until,
        after,
        limit: keyset.fetch(),
        with_last: !Names::only(f.include, "include", &["last_message"])?.is_empty(),
    };
    let rows = state.store.list_conversations(&q).await?;
    Ok(Json(keyset.page(
        rows,
        false,
        |c| Position::Time(c.last_message_at, c.id.clone()),
        ConversationItem::from,
    )))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "read",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationItem), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_conversation(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Path(id): Path<String>,
    _: Filters<NoParams>,
) -> Result<Json<ConversationItem>, AppError> {
    let c = state.store.conversation(&id).await?;
    // Another post's conversation is answered as one that does not exist.
    c.filter(|c| client.may_see(c.post_token.as_deref()))
        .map(|c| Json(c.into()))
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id:?}")))
}
