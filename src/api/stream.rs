//! `GET /api/v1/stream`: Server-Sent Events of newly stored messages (and, on request,
//! events and clicks).
//!
//! Each SSE `id` is the stream's position after that event, `m<seq>.e<seq>.c<seq>`; a client
//! that reconnects with `Last-Event-ID` continues exactly there. Positions are table `seq`s,
//! and writers commit in `seq` order (one at a time, across replicas with PostgreSQL), so
//! re-querying `seq > position` after any wake-up can neither skip nor repeat a row.
//! Wake-ups come from this process's writer and, with PostgreSQL, from LISTEN/NOTIFY of
//! every replica; a slow poll covers anything else.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::access::{StreamSlot, TokenId};
use super::items::{ClickItem, EventItem, MessageItem};
use super::params::Params;
use crate::app::AppState;
use crate::error::AppError;
use crate::store::Store;
use crate::store::query::{LogQuery, StreamQuery};

/// Rows fetched per query (fewer when they hold more than `api.page_max_bytes`).
const BATCH: i64 = 200;
/// Re-query at least this often even without a wake-up.
const POLL: Duration = Duration::from_secs(5);
/// Re-query at most this often: under a stream of commits a thousand open streams would
/// otherwise each query the database after every one.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// A position in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamPosition {
    /// Last message `seq` delivered.
    pub message: i64,
    /// Last event `seq` delivered.
    pub event: i64,
    /// Last click `seq` delivered.
    pub click: i64,
}

impl StreamPosition {
    /// `m<seq>.e<seq>.c<seq>`.
    pub fn id(&self) -> String {
        format!("m{}.e{}.c{}", self.message, self.event, self.click)
    }

    /// The inverse of [`StreamPosition::id`].
    pub fn parse(id: &str) -> Option<Self> {
        let mut parts = id.trim().split('.');
        let mut next = |prefix: char| -> Option<i64> {
            parts
                .next()?
                .strip_prefix(prefix)?
                .parse()
                .ok()
                .filter(|n: &i64| *n >= 0)
        };
        let position = StreamPosition {
            message: next('m')?,
            event: next('e')?,
            click: next('c')?,
        };
        parts.next().is_none().then_some(position)
    }
}

struct Feed {
    store: Store,
    post_token: Option<String>,
    conversation_id: Option<String>,
    events: bool,
    clicks: bool,
    position: StreamPosition,
    buffer: VecDeque<Event>,
    budget: usize,
    last_fetch: Instant,
    changes: watch::Receiver<u64>,
    stop: CancellationToken,
    _slot: StreamSlot,
}

impl Feed {
    async fn fetch(&mut self) -> Result<(), sqlx::Error> {
        let messages = self
            .store
            .stream_messages(
                &StreamQuery {
                    after_seq: self.position.message,
                    post_token: self.post_token.clone(),
                    conversation_id: self.conversation_id.clone(),
                    limit: BATCH,
                },
                self.budget,
            )
            .await?;
        for m in messages.views()? {
            self.position.message = m.seq;
            self.push("message", &MessageItem::new(&m, None));
        }
        // Events belong to no conversation: a conversation filter leaves none.
        if self.events && self.conversation_id.is_none() {
            let events = self
                .store
                .list_events(&self.log_query(self.position.event), self.budget)
                .await?;
            for e in events.rows {
                self.position.event = e.seq;
                self.push("event", &EventItem::from(e));
            }
        }
        if self.clicks {
            let mut q = self.log_query(self.position.click);
            q.conversation_id = self.conversation_id.clone();
            let clicks = self.store.list_clicks(&q, self.budget).await?;
            for c in clicks.rows {
                self.position.click = c.seq;
                self.push("click", &ClickItem::from(c));
            }
        }
        Ok(())
    }

    fn log_query(&self, after: i64) -> LogQuery {
        LogQuery {
            post_token: self.post_token.clone(),
            after_seq: Some(after),
            limit: BATCH,
            ..Default::default()
        }
    }

    fn push(&mut self, kind: &str, item: &impl serde::Serialize) {
        let event = Event::default()
            .event(kind)
            .id(self.position.id())
            .json_data(item)
            .expect("items serialise");
        self.buffer.push_back(event);
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some((Ok(event), self));
            }
            // Seen before querying: a commit that lands during the query wakes the wait.
            self.changes.borrow_and_update();
            self.last_fetch = Instant::now();
            if let Err(e) = self.fetch().await {
                tracing::warn!(error = %e, "live stream query failed");
            }
            if !self.buffer.is_empty() {
                continue;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return None,
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    tokio::select! {
                        _ = self.stop.cancelled() => return None,
                        _ = tokio::time::sleep_until(self.last_fetch + MIN_INTERVAL) => {}
                    }
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// The live stream.
#[utoipa::path(get, path = "/api/v1/stream", tag = "read",
    params(
        ("include" = Option<String>, Query, description = "events,clicks: also stream those"),
        ("post_token" = Option<String>, Query, description = "Only this post"),
        ("conversation_id" = Option<String>, Query, description = "Only this conversation"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses((status = 200, description = "text/event-stream of `message`, `event` and `click` events whose data is a MessageItem, EventItem or ClickItem", content_type = "text/event-stream", body = String),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 429, description = "api.max_streams or api.max_streams_per_token streams are open; see Retry-After", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    Extension(token): Extension<TokenId>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let slot = state.api.open_stream(token)?;
    let p = Params(params);
    let include = p.include(&["events", "clicks"])?;
    let position = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(id) => StreamPosition::parse(id).ok_or_else(|| AppError::InvalidParameter {
            name: "Last-Event-ID".into(),
            message: format!("Last-Event-ID: {id:?} is not an id of this stream"),
        })?,
        None => {
            let (message, event, click) = state.store.high_water_marks().await?;
            StreamPosition {
                message,
                event,
                click,
            }
        }
    };
    let feed = Feed {
        store: state.store.clone(),
        post_token: p.text("post_token")?,
        conversation_id: p.text("conversation_id")?,
        events: include.iter().any(|i| i == "events"),
        clicks: include.iter().any(|i| i == "clicks"),
        position,
        buffer: VecDeque::new(),
        budget: state.settings.api.page_max_bytes,
        last_fetch: Instant::now(),
        changes: state.changes.subscribe(),
        stop: state.shutdown.clone(),
        _slot: slot,
    };
    let keep_alive = Duration::from_secs(state.settings.api.stream_keepalive_secs);
    Ok(Sse::new(futures_util::stream::unfold(feed, Feed::next))
        .keep_alive(KeepAlive::new().interval(keep_alive)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        let p = StreamPosition {
            message: 12,
            event: 0,
            click: 3,
        };
        assert_eq!(StreamPosition::parse(&p.id()), Some(p));
        for bad in [
            "",
            "m1.e2",
            "m1.e2.c3.d4",
            "x1.e2.c3",
            "m-1.e0.c0",
            "m1.e2.cx",
        ] {
            assert_eq!(StreamPosition::parse(bad), None, "{bad}");
        }
    }
}
