//! `GET /api/v1/stream`: Server-Sent Events of newly stored messages (and, on request,
//! events and clicks).
//!
//! Each SSE `id` is the stream's position after that event, `m<seq>.e<seq>.c<seq>`; a client
//! that reconnects with `Last-Event-ID` continues exactly there. Positions are table `seq`s,
//! and writers commit in `seq` order (one at a time, across replicas with PostgreSQL), so
//! re-querying `seq > position` after any wake-up can neither skip nor repeat a row.
//! A stream reads the database itself only to catch up (from `Last-Event-ID`, or after
//! falling behind); after that it takes new rows from the process's
//! [`Hub`](super::hub::Hub), which reads and serialises each row once for every stream.
//! Wake-ups come from this process's writer and, with PostgreSQL, from LISTEN/NOTIFY of
//! every replica; a slow poll covers anything else.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::access::StreamSlot;
use super::params::{Filters, Names, Text};
use super::tickets::TicketFilters;
use crate::auth::{Client, Scope};
use crate::error::AppError;
use crate::items::read_log;
use crate::state::AppState;
use crate::store::query::StreamQuery;
use crate::store::{Positions, RecordKind, Store};

use super::hub::{BATCH, Batch, stream_budget};

/// The SSE `id` of a stream's position: `m<seq>.e<seq>.c<seq>`.
pub fn position_id(p: &Positions) -> String {
    format!("m{}.e{}.c{}", p.message, p.event, p.click)
}

/// The position an SSE `id` names: the inverse of [`position_id`].
pub fn parse_position(id: &str) -> Option<Positions> {
    let mut parts = id.trim().split('.');
    let mut next = |prefix: char| -> Option<i64> {
        parts
            .next()?
            .strip_prefix(prefix)?
            .parse()
            .ok()
            .filter(|n: &i64| *n >= 0)
    };
    let position = Positions {
        message: next('m')?,
        event: next('e')?,
        click: next('c')?,
    };
    parts.next().is_none().then_some(position)
}

struct Feed {
    store: Store,
    post_token: Option<String>,
    conversation_id: Option<String>,
    /// The posts the client is limited to; `None`: every post.
    posts: Option<Vec<String>>,
    pii: bool,
    events: bool,
    clicks: bool,
    position: Positions,
    buffer: VecDeque<Event>,
    budget: usize,
    /// Caught up with the database since the hub's batches began to arrive: batches can be
    /// taken as they come.
    synced: bool,
    hub: broadcast::Receiver<Arc<Batch>>,
    stop: CancellationToken,
    _slot: StreamSlot,
}

impl Feed {
    async fn fetch(&mut self) -> Result<(), crate::store::Error> {
        for kind in RecordKind::ALL {
            if !self.includes(kind) {
                continue;
            }
            let q = StreamQuery {
                after_seq: self.position.get(kind),
                post_token: self.post_token.clone(),
                post_tokens: self.posts.clone(),
                conversation_id: self.conversation_id.clone(),
                limit: BATCH,
            };
            let (position, buffer, pii) = (&mut self.position, &mut self.buffer, self.pii);
            read_log(&self.store, kind, &q, self.budget, |record, _, item| {
                position.set(kind, record.seq);
                let event = Event::default()
                    .event(kind.as_str())
                    .id(position_id(position))
                    .json_data(item.for_reader(pii))
                    .expect("items serialise");
                buffer.push_back(event);
            })
            .await?;
        }
        Ok(())
    }

    /// Whether the stream includes a log. Events belong to no conversation: a conversation
    /// filter leaves none.
    fn includes(&self, kind: RecordKind) -> bool {
        match kind {
            RecordKind::Message => true,
            RecordKind::Event => self.events && self.conversation_id.is_none(),
            RecordKind::Click => self.clicks,
        }
    }

    /// Takes from a hub batch what this stream includes and its filters match.
    fn take(&mut self, batch: &Batch) {
        for row in &batch.rows {
            let kind = row.record.kind;
            let matches = |filter: &Option<String>, value: &Option<String>| {
                filter.is_none() || filter == value
            };
            let may_see = match &self.posts {
                None => true,
                Some(posts) => row.post_token.as_ref().is_some_and(|p| posts.contains(p)),
            };
            if !self.includes(kind)
                || !may_see
                || row.record.seq <= self.position.get(kind)
                || !matches(&self.post_token, &row.post_token)
                || !matches(&self.conversation_id, &row.conversation_id)
            {
                continue;
            }
            self.position.set(kind, row.record.seq);
            self.buffer.push_back(
                Event::default()
                    .event(kind.as_str())
                    .id(position_id(&self.position))
                    .data(match (&row.masked, self.pii) {
                        (Some(masked), false) => masked,
                        _ => &row.json,
                    }),
            );
        }
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some((Ok(event), self));
            }
            if !self.synced {
                // Every batch sent from here on is received, and every row of an earlier
                // batch was committed before this read: nothing falls between the two.
                match self.fetch().await {
                    Ok(()) => self.synced = self.buffer.is_empty(),
                    Err(e) => {
                        tracing::warn!(error = %e, "live stream query failed");
                        tokio::select! {
                            _ = self.stop.cancelled() => return None,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
                continue;
            }
            let received = tokio::select! {
                _ = self.stop.cancelled() => return None,
                received = self.hub.recv() => received,
            };
            match received {
                Ok(batch) => self.take(&batch),
                // Batches were dropped while this reader was slow: read them from the
                // database instead.
                Err(broadcast::error::RecvError::Lagged(_)) => self.synced = false,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The query parameters of the live stream (and of a ticket for it).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamFilters {
    /// events,clicks: also stream those
    #[param(value_type = Option<String>, pattern = "^(events|clicks)(,(events|clicks))?$")]
    pub(super) include: Option<Names>,
    /// Only this post
    #[param(inline)]
    pub(super) post_token: Option<Text>,
    /// Only this conversation
    #[param(inline)]
    pub(super) conversation_id: Option<Text>,
    /// Where to start when no Last-Event-ID is sent: `start` replays everything stored, or an event id `m<seq>.e<seq>.c<seq>`; default: only what is stored from now on
    #[param(value_type = Option<String>, pattern = r"^(start|m\d+\.e\d+\.c\d+)$")]
    pub(super) from: Option<Text>,
    /// A ticket from POST /api/v1/stream/tickets, instead of the Authorization header (for a browser's EventSource); single use, and the only parameter beside it
    #[param(inline)]
    pub(super) ticket: Option<Text>,
}

impl StreamFilters {
    /// The first parameter given beside `ticket`, if any.
    fn beside_ticket(&self) -> Option<&'static str> {
        [
            ("include", self.include.is_some()),
            ("post_token", self.post_token.is_some()),
            ("conversation_id", self.conversation_id.is_some()),
            ("from", self.from.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }
}

/// The live stream.
#[utoipa::path(get, path = "/api/v1/stream", tag = "read",
    params(
        StreamFilters,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (`m0.e0.c0`: from the beginning); wins over `from`", pattern = r"^m\d+\.e\d+\.c\d+$"),
    ),
    responses((status = 200, description = "text/event-stream of `message`, `event` and `click` events whose data is a MessageItem, EventItem or ClickItem", content_type = "text/event-stream", body = String),
        (status = 403, description = "The client lacks the scope messages, or one that include= names", body = crate::error::ErrorBody),
        (status = 429, description = "api.max_streams or api.max_streams_per_token streams are open, or the token's rate limit is reached; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable; see Retry-After", body = crate::error::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    ticket: Option<Extension<TicketFilters>>,
    headers: HeaderMap,
    Filters(f): Filters<StreamFilters>,
) -> Result<
    (
        [(HeaderName, &'static str); 1],
        Sse<impl Stream<Item = Result<Event, Infallible>>>,
    ),
    AppError,
> {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let filters = match ticket {
        // A ticket serves exactly what it was issued for: nothing may be added or widened.
        Some(Extension(filters)) => {
            let extra = f.beside_ticket().or(last_event_id.map(|_| "Last-Event-ID"));
            if let Some(name) = extra {
                return Err(AppError::InvalidParameter {
                    name: name.into(),
                    message: format!(
                        "{name}: not taken beside a ticket; give it when the ticket is issued"
                    ),
                });
            }
            for name in &filters.include {
                let scope = if name == "events" {
                    Scope::Events
                } else {
                    Scope::Clicks
                };
                client.require(scope, &format!("include={name}"))?;
            }
            filters
        }
        None => TicketFilters::of(&client, f)?,
    };
    let slot = state.api.open_stream(&client)?;
    // Before the first read of the database, so no batch is missed after it.
    let hub = state.hub.subscribe();
    let include = filters.include;
    // A reconnecting EventSource repeats the URL (with `from`) and adds Last-Event-ID: the
    // header is the later position, so it wins.
    let resume = match last_event_id {
        Some(id) => Some(("Last-Event-ID", id.to_owned())),
        None => filters.from.map(|from| ("from", from)),
    };
    let position = match resume {
        Some(("from", from)) if from == "start" => Positions::default(),
        Some((name, id)) => parse_position(&id).ok_or_else(|| AppError::InvalidParameter {
            name: name.into(),
            message: format!(
                "{name}: {id:?} is not an id of this stream (expected m<seq>.e<seq>.c<seq>{})",
                if name == "from" { ", or start" } else { "" }
            ),
        })?,
        None => state.store.high_water_marks().await?,
    };
    let feed = Feed {
        store: state.store.clone(),
        post_token: filters.post_token,
        conversation_id: filters.conversation_id,
        posts: client.posts().map(<[String]>::to_vec),
        pii: client.pii(),
        events: include.iter().any(|i| i == "events"),
        clicks: include.iter().any(|i| i == "clicks"),
        position,
        buffer: VecDeque::new(),
        budget: stream_budget(state.settings.api.page_max_bytes),
        synced: false,
        hub,
        stop: state.shutdown.clone(),
        _slot: slot,
    };
    let keep_alive = Duration::from_secs(state.settings.api.stream_keepalive_secs);
    let sse = Sse::new(futures_util::stream::unfold(feed, Feed::next))
        .keep_alive(KeepAlive::new().interval(keep_alive));
    // nginx passes each event on at once even where the site's settings would buffer.
    Ok(([(HeaderName::from_static("x-accel-buffering"), "no")], sse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        let p = Positions {
            message: 12,
            event: 0,
            click: 3,
        };
        assert_eq!(parse_position(&position_id(&p)), Some(p));
        for bad in [
            "",
            "m1.e2",
            "m1.e2.c3.d4",
            "x1.e2.c3",
            "m-1.e0.c0",
            "m1.e2.cx",
        ] {
            assert_eq!(parse_position(bad), None, "{bad}");
        }
    }
}
