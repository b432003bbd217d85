//! Stream tickets: a browser's `EventSource` cannot send an `Authorization` header, so a
//! page's backend asks for a ticket with the bearer token and hands the page
//! `/api/v1/stream?ticket=…`. A ticket opens one stream, within a minute, on any replica
//! (only its digest is stored, in the database); the long-lived token never appears in a URL.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

use super::access::TokenId;
use super::params::{Filters, NoParams};
use crate::error::AppError;
use crate::state::AppState;

/// How long a ticket can be redeemed.
pub const TICKET_TTL_SECS: i64 = 60;

/// A new stream ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket {
    /// Opaque; pass it as `GET /api/v1/stream?ticket=…` once.
    pub ticket: String,
    /// The ticket is refused after this time (RFC 3339).
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A single-use ticket for one live stream.
#[utoipa::path(post, path = "/api/v1/stream/tickets", tag = "read",
    responses(
        (status = 201, description = "A ticket valid for 60 seconds and one stream", body = Ticket),
        (status = 401, body = crate::error::ErrorBody),
        (status = 408, body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable; see Retry-After", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn issue(
    State(state): State<AppState>,
    Extension(token): Extension<TokenId>,
    _: Filters<NoParams>,
) -> Result<impl IntoResponse, AppError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let ticket = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let expires_at = Utc::now() + chrono::Duration::seconds(TICKET_TTL_SECS);
    let token_digest = state.api.token_digest(token).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("token {} is not configured", token.0))
    })?;
    state
        .store
        .insert_stream_ticket(&digest(&ticket), &token_digest, expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Ticket {
            ticket,
            expires_at: rfc3339(expires_at),
        }),
    ))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The stored form of a ticket.
pub fn digest(ticket: &str) -> String {
    hex::encode(crate::auth::digest(ticket.as_bytes()))
}
