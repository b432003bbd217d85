//! The read-only REST API under `/api/v1`: conversations, messages, events, clicks and
//! registrations as keyset-paged JSON lists, forwarding's state, attempts and dead letters,
//! a live stream, and the OpenAPI document.

pub(crate) mod access;

pub use access::{SESSION_LOOKUPS_PER_MINUTE, TICKETS_PER_MINUTE};
mod conversations;
pub mod cursor;
mod events;
mod forwarding;
pub(crate) mod hub;
mod messages;
pub mod openapi;
mod outbox;
mod page;
pub(crate) mod params;
mod registrations;
mod rejected;
pub(crate) mod stream;
pub mod tickets;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use crate::state::AppState;

/// The routes of this module, behind bearer-token access.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(conversations::routes())
        .merge(messages::routes())
        .merge(events::routes())
        .merge(registrations::routes())
        .merge(forwarding::routes())
        .merge(outbox::routes())
        .merge(rejected::routes())
        .route("/api/v1/stream", get(stream::stream))
        .route("/api/v1/stream/tickets", post(tickets::issue))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route_layer(middleware::from_fn_with_state(state, access::check))
}
