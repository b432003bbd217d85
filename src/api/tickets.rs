//! Stream tickets: a browser's `EventSource` cannot send an `Authorization` header, so a
//! page's backend asks for a ticket with the bearer token and hands the page
//! `/api/v1/stream?ticket=…`. A ticket opens one stream, within a minute, on any replica
//! (only its digest is stored, in the database); the long-lived token never appears in a URL.
//! A ticket carries its client and the filters given when it was issued: the stream it opens
//! shows exactly that, within the client's scopes and posts, and nothing can be added to it.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

use super::params::{Filters, Names, Text};
use super::stream::{StreamFilters, parse_position};
use crate::auth::{Client, Scope};
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

/// The filters a ticket was issued with; the stream it opens uses these and no others.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TicketFilters {
    /// Only this post.
    pub post_token: Option<String>,
    /// Only this conversation.
    pub conversation_id: Option<String>,
    /// `events`, `clicks`.
    #[serde(default)]
    pub include: Vec<String>,
    /// `start` or a stream position; `None`: from when the stream opens.
    pub from: Option<String>,
}

impl TicketFilters {
    /// The stored form read back; a ticket stored without filters has none.
    pub fn read(stored: Option<&str>) -> Self {
        stored
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    /// The filters of a request, checked against the client's scopes.
    pub fn of(client: &Client, f: StreamFilters) -> Result<Self, AppError> {
        let include = Names::only(f.include, "include", &["events", "clicks"])?;
        for name in &include {
            let scope = if name == "events" {
                Scope::Events
            } else {
                Scope::Clicks
            };
            client.require(scope, &format!("include={name}"))?;
        }
        let from = Text::of(f.from);
        if let Some(from) = from.as_deref().filter(|f| *f != "start") {
            if parse_position(from).is_none() {
                return Err(AppError::InvalidParameter {
                    name: "from".into(),
                    message: format!(
                        "from: {from:?} is not an id of this stream (expected m<seq>.e<seq>.c<seq>, or start)"
                    ),
                });
            }
        }
        Ok(TicketFilters {
            post_token: Text::of(f.post_token),
            conversation_id: Text::of(f.conversation_id),
            include,
            from,
        })
    }
}

/// A single-use ticket for one live stream with the filters given here.
#[utoipa::path(post, path = "/api/v1/stream/tickets", tag = "read",
    params(StreamFilters),
    responses(
        (status = 201, description = "A ticket valid for 60 seconds and one stream", body = Ticket),
        (status = 403, description = "include= names a scope the client does not have", body = crate::error::ErrorBody),
        (status = 408, body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable; see Retry-After", body = crate::error::ErrorBody)))]
pub async fn issue(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Filters(f): Filters<StreamFilters>,
) -> Result<impl IntoResponse, AppError> {
    if f.ticket.is_some() {
        return Err(AppError::InvalidParameter {
            name: "ticket".into(),
            message: "ticket: a ticket is not issued for a ticket".into(),
        });
    }
    let filters = TicketFilters::of(&client, f)?;
    let ticket = crate::auth::random_token();
    let expires_at = Utc::now() + chrono::Duration::seconds(TICKET_TTL_SECS);
    let token_digest = state.api.token_digest(&client).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("client {} is not configured", client.index))
    })?;
    let filters = serde_json::to_string(&filters).expect("filters serialise");
    state
        .store
        .insert_stream_ticket(&digest(&ticket), &token_digest, &filters, expires_at)
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
    crate::auth::stored_digest(ticket)
}
