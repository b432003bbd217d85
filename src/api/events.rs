//! `/api/v1/events` and `/api/v1/clicks`: the two logs, in arrival order, keyset-paged by
//! `seq` and cut by the byte budget.

use std::future::Future;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use utoipa::IntoParams;

use super::cursor::Position;
use super::page::Keyset;
use super::params::{EventType, Listing, Paging, Text, Window};
use crate::auth::Client;
use crate::error::AppError;
use crate::items::{ClickItem, EventItem, Page, rfc3339};
use crate::state::AppState;
use crate::store::Listed;
use crate::store::query::{LogQuery, Order};

/// The routes of this file.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(list_events))
        .route("/api/v1/clicks", get(list_clicks))
}

/// A page of a log: `q` holds the filters, `own` the names and values of the log's own
/// filters (the time span and order are added); `fetch` reads the rows after the cursor's
/// `seq`.
async fn log_page<R, T, Fut>(
    list: &'static str,
    q: LogQuery,
    own: &[(&str, Option<String>)],
    paging: Paging,
    fetch: impl FnOnce(LogQuery) -> Fut,
    seq: impl Fn(&R) -> i64,
    item: impl Fn(R) -> T,
) -> Result<Json<Page<T>>, AppError>
where
    Fut: Future<Output = Result<Listed<R>, crate::store::Error>>,
{
    let mut filters = own.to_vec();
    filters.extend([
        ("since", q.since.map(rfc3339)),
        ("until", q.until.map(rfc3339)),
        ("order", q.newest_first.then(|| "desc".to_owned())),
    ]);
    let keyset = Keyset::new(list, &filters, paging);
    let q = LogQuery {
        after_seq: keyset.after_seq()?,
        limit: keyset.fetch(),
        ..q
    };
    let listed = fetch(q).await?;
    Ok(Json(keyset.page(
        listed.rows,
        listed.cut,
        |r| Position::Seq(seq(r)),
        item,
    )))
}

/// What both logs take: the client's posts, a time span of arrival and an order.
fn span(client: &Client, window: Window) -> LogQuery {
    let (since, until, order) = window.split();
    LogQuery {
        post_tokens: client.posts().map(<[String]>::to_vec),
        since,
        until,
        newest_first: order == Order::Desc,
        ..Default::default()
    }
}

/// The parameters of `GET /events`, besides its [`Window`] and [`Paging`].
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    /// USER_ACCESS_REVOCATION, POST_UPDATE, PAYMENT_TRANSACTION, ...
    #[serde(rename = "type")]
    #[param(inline, rename = "type")]
    kind: Option<EventType>,
}

/// Non-message events, in arrival order (or newest first).
#[utoipa::path(get, path = "/api/v1/events", tag = "read",
    params(EventFilters, Window, Paging),
    responses((status = 200, body = Page<EventItem>)))]
pub async fn list_events(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Listing(f, window, paging): Listing<EventFilters, Window>,
) -> Result<Json<Page<EventItem>>, AppError> {
    let q = LogQuery {
        event_type: f.kind.map(|t| t.0),
        // Events of no post are left out too: a client limited to some posts never sees them.
        ..span(&client, window)
    };
    let filters = [("type", q.event_type.clone())];
    let budget = state.settings.api.page_max_bytes;
    log_page(
        "events",
        q,
        &filters,
        paging,
        |q| async move { state.store.list_events(&q, budget).await },
        |e| e.seq,
        |e| EventItem::from(e).for_reader(client.pii()),
    )
    .await
}

/// The parameters of `GET /clicks`, besides its [`Window`] and [`Paging`].
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
}

/// The click log, in arrival order (or newest first).
#[utoipa::path(get, path = "/api/v1/clicks", tag = "read",
    params(ClickFilters, Window, Paging),
    responses((status = 200, body = Page<ClickItem>)))]
pub async fn list_clicks(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Listing(f, window, paging): Listing<ClickFilters, Window>,
) -> Result<Json<Page<ClickItem>>, AppError> {
    let q = LogQuery {
        post_token: Text::of(f.post_token),
        conversation_id: Text::of(f.conversation_id),
        ..span(&client, window)
    };
    let filters = [
        ("post_token", q.post_token.clone()),
        ("conversation_id", q.conversation_id.clone()),
    ];
    let budget = state.settings.api.page_max_bytes;
    log_page(
        "clicks",
        q,
        &filters,
        paging,
        |q| async move { state.store.list_clicks(&q, budget).await },
        |c| c.seq,
        |c| ClickItem::from(c).for_reader(client.pii()),
    )
    .await
}
