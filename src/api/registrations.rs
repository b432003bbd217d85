//! `GET /api/v1/registrations`: legacy webhook registrations (scope `messages`: a
//! registration is where a post's messages come from).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::params::{Filters, NoParams};
use crate::auth::Client;
use crate::error::AppError;
use crate::items::{Page, RegistrationItem, rfc3339};
use crate::state::AppState;

/// The route of this file.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/registrations", get(list_registrations))
}

/// Legacy webhook registrations, newest first (never their keys).
#[utoipa::path(get, path = "/api/v1/registrations", tag = "read",
    responses((status = 200, body = Page<RegistrationItem>)))]
pub async fn list_registrations(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    _: Filters<NoParams>,
) -> Result<Json<Page<RegistrationItem>>, AppError> {
    let rows = state.store.registrations().await?;
    Ok(Json(Page {
        items: rows
            .into_iter()
            .filter(|r| client.may_see(Some(&r.post_token)))
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
