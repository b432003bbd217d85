//! `GET /api/v1/rejected`: deliveries that carried a good key but could not be stored.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::cursor::Position;
use super::page::Keyset;
use super::params::{Filters, Paging};
use crate::auth::Client;
use crate::error::AppError;
use crate::items::{Page, rfc3339};
use crate::state::AppState;
use crate::store::rejected::Rejected;

/// A kept rejected delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedItem {
    /// Position in the list; oldest first.
    pub id: i64,
    /// Why it was refused (the answer's message).
    pub reason: String,
    /// The body as received (invalid UTF-8 replaced).
    pub body: String,
    /// When it first came (RFC 3339).
    pub received_at: String,
    /// When it last came (RFC 3339).
    pub last_received_at: String,
    /// How often it came.
    pub deliveries: i64,
}

impl RejectedItem {
    /// The API shape of a kept delivery; without `pii`, its phone numbers masked, and a
    /// body that is not JSON (where they cannot be found) withheld.
    fn new(r: Rejected, pii: bool) -> Self {
        let body = String::from_utf8_lossy(&r.raw_body).into_owned();
        let body = if pii || !crate::pii::may_hold_phone(&body) {
            body
        } else {
            match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(mut value) => {
                    crate::pii::mask(&mut value);
                    value.to_string()
                }
                Err(_) => "(withheld: not JSON, and may hold a phone number; needs the pii scope)"
                    .to_owned(),
            }
        };
        RejectedItem {
            id: r.id,
            reason: r.reason,
            body,
            received_at: rfc3339(r.received_at),
            last_received_at: rfc3339(r.last_received_at),
            deliveries: r.deliveries,
        }
    }
}

/// The route of this file.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/rejected", get(list))
}

/// Deliveries refused with 400 or 422 although their key was good, oldest first;
/// `kenar-hook rejected reprocess` runs them through ingestion again.
#[utoipa::path(get, path = "/api/v1/rejected", tag = "read",
    params(Paging),
    responses((status = 200, body = Page<RejectedItem>)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Filters(paging): Filters<Paging>,
) -> Result<Json<Page<RejectedItem>>, AppError> {
    let keyset = Keyset::new("rejected", &[], paging);
    let after = keyset.after_seq()?;
    let rows = state.store.list_rejected(after, keyset.fetch()).await?;
    Ok(Json(keyset.page(
        rows,
        false,
        |r| Position::Seq(r.id),
        |r| RejectedItem::new(r, client.pii()),
    )))
}
