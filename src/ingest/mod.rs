//! `POST /webhooks/divar`: authenticate, parse (legacy or current), normalise, hand to the
//! batch writer, and answer 200 only once the record is committed.

pub mod breaker;
pub mod normalise;
pub(crate) mod reprocess;
pub mod writer;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use chrono::Utc;
use serde::Serialize;

use crate::auth::request::{AnyKey, DivarRequest, Refused, Voucher};
use crate::divar::inbound::{Delivery, classify};
use crate::divar::json::parse_json;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{NewRecord, WriteOutcome};
use normalise::{mask_phone, normalise};
use writer::WriteError;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/divar", post(receive))
}

/// The body of a 200 answer.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    /// `stored` for a new delivery, `duplicate` for a redelivery.
    pub outcome: String,
}

/// Event types used as metric labels; anything else is counted as `OTHER` so a sender
/// cannot grow the label set.
const KNOWN_TYPES: &[&str] = &[
    "CHAT_MESSAGE",
    "NEW_MESSAGE",
    "NEW_CHATBOT_MESSAGE",
    "USER_ACCESS_REVOCATION",
    "POST_UPDATE",
    "PAYMENT_TRANSACTION",
    "UNKNOWN",
];

fn count(event_type: &str, outcome: &'static str, reason: &'static str) {
    let label = if KNOWN_TYPES.contains(&event_type) {
        event_type.to_owned()
    } else {
        "OTHER".to_owned()
    };
    metrics::counter!("kenar_webhook_deliveries_total",
        "event_type" => label, "outcome" => outcome, "reason" => reason)
    .increment(1);
}

/// Everything Divar sends: the legacy `CHAT_MESSAGE` webhook and the current events.
#[utoipa::path(post, path = "/webhooks/divar", tag = "divar",
    request_body(content = Object, description = "A legacy CHAT_MESSAGE envelope or an events envelope (NEW_MESSAGE, NEW_CHATBOT_MESSAGE, USER_ACCESS_REVOCATION, POST_UPDATE, PAYMENT_TRANSACTION, or a newer type)"),
    responses(
        (status = 200, description = "Stored (or a duplicate of something stored)", body = Receipt),
        (status = 409, description = "A message id already stored for another conversation or post (within the key's scope); nothing stored", body = crate::error::ErrorBody),
        (status = 413, description = "Body over server.body_limit_bytes", body = crate::error::ErrorBody),
        (status = 422, description = "A required field is missing; the message names it", body = crate::error::ErrorBody),
        (status = 503, description = "Queue full or database unavailable; nothing stored; see Retry-After", body = crate::error::ErrorBody),
    ))]
pub async fn receive(
    State(state): State<AppState>,
    request: Result<DivarRequest<AnyKey>, Refused>,
) -> Result<Json<Receipt>, AppError> {
    let request = match request {
        Ok(request) => request,
        Err(refused) => {
            count("UNKNOWN", "rejected", refused.reason);
            // A body that carried one of the app's keys but is not JSON is kept.
            return Err(match &refused.body {
                Some(body) => keep_rejected(&state, body, refused.error).await,
                None => refused.error,
            });
        }
    };
    let prepared = std::time::Instant::now();
    let classified = classify(&request.value);
    request.vouch_for(&state, classified.as_ref().ok())?;
    let registered = request.voucher != Voucher::App;
    let delivery = match classified {
        Ok(delivery) => delivery,
        Err(e) => {
            count("UNKNOWN", "rejected", "unprocessable");
            let error = AppError::Unprocessable(e.to_string());
            return Err(keep_rejected(&state, &request.body, error).await);
        }
    };
    let phone = match &delivery {
        Delivery::ChatMessage { message, .. } => message
            .contact_data
            .as_ref()
            .and_then(|c| c.phone.as_deref())
            .map(mask_phone),
        _ => None,
    };
    let mut record = match normalise(delivery, &request.value, &request.body, Utc::now()) {
        Ok(record) => record,
        Err(e) => {
            count("UNKNOWN", "rejected", "unprocessable");
            let error = AppError::Unprocessable(e.to_string());
            if registered {
                return Err(error);
            }
            return Err(keep_rejected(&state, &request.body, error).await);
        }
    };
    // The post of the registration whose key vouched for the delivery: the scope of its
    // message id (see `NewMessage::origin`).
    if let (NewRecord::Message(m), Voucher::Registration(post)) = (&mut record, &request.voucher) {
        m.origin = post.clone();
    }
    let (event_type, key) = match &record {
        NewRecord::Message(m) => (m.event_type.clone(), m.id.clone()),
        NewRecord::Event(e) => (e.event_type.clone(), e.dedupe_key.clone()),
        NewRecord::Click(c) => ("CLICK".to_owned(), c.id.clone()),
    };
    let retry_after_secs = state.settings.ingest.retry_after_secs;
    writer::stage("prepare", prepared.elapsed());
    match state.writer.submit(record).await {
        Ok(outcome) => {
            let label = match outcome {
                WriteOutcome::Stored => "stored",
                WriteOutcome::Duplicate => "duplicate",
                WriteOutcome::Conflict => "conflict",
            };
            count(&event_type, label, "");
            // Recorded on the request's span: the request's one log line carries them.
            let span = tracing::Span::current();
            span.record("event_type", event_type.as_str());
            span.record("record_id", key.as_str());
            span.record("outcome", label);
            if let Some(phone) = &phone {
                span.record("contact_phone", phone.as_str());
            }
            if outcome == WriteOutcome::Conflict {
                tracing::warn!(
                    event_type = event_type.as_str(),
                    key = key.as_str(),
                    "message id already stored for another conversation or post; nothing stored"
                );
                return Err(AppError::Conflict(format!(
                    "message {key:?} is already stored for another conversation or post; \
                     nothing was stored"
                )));
            }
            Ok(Json(Receipt {
                outcome: label.to_owned(),
            }))
        }
        Err(err) => {
            count(
                &event_type,
                "rejected",
                match err {
                    WriteError::QueueFull => "queue_full",
                    WriteError::Unavailable => "unavailable",
                },
            );
            Err(AppError::Unavailable {
                message: format!("{err}; nothing was stored, retry later"),
                retry_after_secs,
            })
        }
    }
}

/// Keeps a delivery that carried one of the app's keys but was refused, so that it can be
/// run through ingestion again after an upgrade (`kenar-hook rejected reprocess`). The
/// answer stays the refusal, even when keeping it fails.
async fn keep_rejected(state: &AppState, body: &[u8], error: AppError) -> AppError {
    let reason = error.public_message();
    if let Err(e) = state.store.insert_rejected(body, &reason, Utc::now()).await {
        tracing::warn!(error = %e, "could not keep a rejected delivery");
    }
    error
}

/// A delivery's body as the record to store, or why it cannot be one: what ingestion does
/// after authentication, for a delivery authenticated by one of the app's keys.
pub fn record_of(body: &[u8], received_at: chrono::DateTime<Utc>) -> Result<NewRecord, AppError> {
    let value = parse_json(body).map_err(AppError::not_json)?;
    let delivery = classify(&value).map_err(|e| AppError::Unprocessable(e.to_string()))?;
    normalise(delivery, &value, body, received_at)
        .map_err(|e| AppError::Unprocessable(e.to_string()))
}
