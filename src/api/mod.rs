//! The read-only REST API under `/api/v1`: conversations, messages, events, clicks and
//! registrations as keyset-paged JSON lists, forwarding's state, attempts and dead letters,
//! a live stream, and the OpenAPI document.

pub(crate) mod access;
pub mod cursor;
mod forwarding;
mod handlers;
pub(crate) mod hub;
pub mod openapi;
pub(crate) mod params;
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
        .route("/api/v1/conversations", get(handlers::list_conversations))
        .route(
            "/api/v1/conversations/{id}",
            get(handlers::get_conversation),
        )
        .route(
            "/api/v1/conversations/{id}/messages",
            get(handlers::conversation_messages),
        )
        .route("/api/v1/messages", get(handlers::list_messages))
        .route("/api/v1/messages/{id}", get(handlers::get_message))
        .route("/api/v1/events", get(handlers::list_events))
        .route("/api/v1/clicks", get(handlers::list_clicks))
        .route("/api/v1/registrations", get(handlers::list_registrations))
        .route("/api/v1/forwarding/endpoints", get(forwarding::endpoints))
        .route("/api/v1/forwarding/attempts", get(forwarding::attempts))
        .route("/api/v1/forwarding/dead", get(forwarding::dead))
        .route("/api/v1/rejected", get(rejected::list))
        .route("/api/v1/stream", get(stream::stream))
        .route("/api/v1/stream/tickets", post(tickets::issue))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route_layer(middleware::from_fn_with_state(state, access::check))
}
