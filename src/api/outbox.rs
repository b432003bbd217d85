//! `/api/v1/outbox`: the replies endpoints answered pushes with, and what became of each.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cursor::Position;
use super::page::Keyset;
use super::params::{At, Listing, Paging, Text, chosen};
use crate::auth::Client;
use crate::error::AppError;
use crate::forward::record::webhook_id;
use crate::items::{Page, rfc3339};
use crate::state::AppState;
use crate::store::outbox::{OutboxQuery, OutboxRow, OutboxStatus};

/// One reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxItem {
    /// Position in the outbox; newest first. `kenar-hook outbox retry --id` takes it.
    pub id: i64,
    /// The endpoint that answered with the reply.
    pub endpoint: String,
    /// The `webhook-id` of the record answered (`message_<installation>_12`).
    pub record: String,
    /// Divar's id of the message answered.
    pub message_id: Option<String>,
    /// The conversation.
    pub conversation_id: Option<String>,
    /// `pending`, `sending`, `sent`, `failed` (Divar unreachable or busy until the call's
    /// deadline), `unknown` (the call may have reached Divar; never sent again on its own) or
    /// `refused` (malformed, no credential, or refused by Divar).
    pub status: String,
    /// The reply as the endpoint answered it.
    #[schema(value_type = Object)]
    pub reply: serde_json::Value,
    /// The call made: method, URL and JSON body, without credentials.
    pub request: Option<String>,
    /// `api key`, or the vault user whose token was used.
    pub credential: Option<String>,
    /// Divar's answer (its first KiB), or why no call was made.
    pub answer: Option<String>,
    /// Calls taken for (a retry by hand adds one).
    pub attempts: i64,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

impl OutboxItem {
    /// A reader without `pii` sees phone numbers in the reply and the call masked.
    fn new(installation: &str, r: OutboxRow, pii: bool) -> Self {
        let answered = r.reply;
        let mut reply = serde_json::from_str(&answered.json)
            .unwrap_or(serde_json::Value::String(answered.json));
        let mut request = r.request;
        if !pii {
            crate::pii::mask(&mut reply);
            request = request.map(|text| match text.split_once('\n') {
                Some((line, body)) if crate::pii::may_hold_phone(body) => {
                    match serde_json::from_str::<serde_json::Value>(body) {
                        Ok(mut body) => {
                            crate::pii::mask(&mut body);
                            format!("{line}\n{body}")
                        }
                        Err(_) => line.to_owned(),
                    }
                }
                _ => text,
            });
        }
        OutboxItem {
            id: r.id,
            record: webhook_id(installation, answered.record),
            endpoint: r.endpoint,
            message_id: answered.record_id,
            conversation_id: answered.conversation_id,
            status: answered.status.as_str().to_owned(),
            reply,
            request,
            credential: r.credential,
            answer: answered.answer,
            attempts: r.attempts,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// The parameters of `GET /outbox`, besides its [`Paging`].
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboxFilters {
    /// pending, sending, sent, failed, unknown or refused
    #[param(inline)]
    status: Option<Text>,
    /// Only this endpoint
    #[param(inline)]
    endpoint: Option<Text>,
    /// Only this conversation
    #[param(inline)]
    conversation_id: Option<Text>,
    /// Recorded at or after (RFC 3339)
    #[param(inline)]
    since: Option<At>,
}

/// The routes of this file.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/outbox", get(list))
}

/// The outbox, newest first.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "read",
    params(OutboxFilters, Paging),
    responses((status = 200, body = Page<OutboxItem>)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Listing(f, _, paging): Listing<OutboxFilters>,
) -> Result<Json<Page<OutboxItem>>, AppError> {
    let (status, endpoint, conversation_id, since) = (
        Text::of(f.status),
        Text::of(f.endpoint),
        Text::of(f.conversation_id),
        At::of(f.since),
    );
    let wanted = chosen(
        "status",
        status.as_deref(),
        &OutboxStatus::ALL,
        OutboxStatus::as_str,
    )?;
    let keyset = Keyset::new(
        "outbox",
        &[
            ("status", status.clone()),
            ("endpoint", endpoint.clone()),
            ("conversation_id", conversation_id.clone()),
            ("since", since.map(rfc3339)),
        ],
        paging,
    );
    let q = OutboxQuery {
        status: wanted,
        endpoint,
        conversation_id,
        since,
        before_id: keyset.after_seq()?,
        limit: keyset.fetch(),
    };
    let rows = state.store.outbox_list(&q).await?;
    let installation = state.store.installation().await?;
    Ok(Json(keyset.page(
        rows,
        false,
        |r| Position::Seq(r.id),
        |r| OutboxItem::new(installation, r, client.pii()),
    )))
}
