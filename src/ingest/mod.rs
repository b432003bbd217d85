//! `POST /webhooks/divar`: authenticate, parse (legacy or current), normalise, hand to the
//! batch writer, and answer 200 only once the record is committed.

pub mod breaker;
pub mod normalise;
pub mod reprocess;
pub mod writer;

use axum::Json;
use axum::Router;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::routing::post;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth;
use crate::divar::inbound::{Delivery, classify};
use crate::divar::json::{parse_as, parse_json};
use crate::error::AppError;
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
        (status = 400, description = "Not JSON", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or unknown identification key", body = crate::error::ErrorBody),
        (status = 409, description = "A message id already stored for another conversation or post (within the key's scope); nothing stored", body = crate::error::ErrorBody),
        (status = 413, description = "Body over server.body_limit_bytes", body = crate::error::ErrorBody),
        (status = 429, description = "This client failed authentication too often; see Retry-After", body = crate::error::ErrorBody),
        (status = 422, description = "A required field is missing; the message names it", body = crate::error::ErrorBody),
        (status = 503, description = "Queue full or database unavailable; nothing stored; see Retry-After", body = crate::error::ErrorBody),
    ),
    security(("identification_key" = [])))]
pub async fn receive(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Receipt>, AppError> {
    let (parts, body) = request.into_parts();
    // Until a key is known to be good, every problem is answered 401 (429 when this client
    // has failed too often), so an unauthenticated caller learns nothing about what the body
    // would have done.
    let unauthorized = |ip: IpAddr| {
        count("UNKNOWN", "rejected", "unauthorized");
        tracing::warn!("webhook delivery with a missing or unknown authorization key");
        state.failures.fail_from(
            "webhook",
            ip,
            AppError::Unauthorized("missing or invalid authorization header".to_owned()),
        )
    };
    let presented = auth::authorization(&parts.headers);
    let app_key = state.keys.verify(presented);
    // A key that is neither the app's nor a registration's is refused before a byte of the
    // body is read.
    let registered = if app_key {
        None
    } else {
        let ip = state.failures.client_ip(&parts.headers, &parts.extensions);
        match presented.and_then(|key| state.registrations.posts(key)) {
            Some(posts) => Some((posts, ip)),
            None => return Err(unauthorized(ip)),
        }
    };
    let body = Bytes::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|rejection| {
            if let Some((_, ip)) = &registered {
                return unauthorized(*ip);
            }
            let error =
                AppError::unreadable_body(&rejection, state.settings.server.body_limit_bytes);
            let reason = match error {
                AppError::PayloadTooLarge { .. } => "too_large",
                _ => "unreadable",
            };
            count("UNKNOWN", "rejected", reason);
            error
        })?;
    // The post of the registration whose key vouched for the delivery: the scope of its
    // message id (see `NewMessage::origin`).
    let mut origin = None;
    if let Some((posts, ip)) = &registered {
        // Only the post token is read until the key is known to fit this post.
        let post = parse_as::<PostOf>(&body)
            .ok()
            .and_then(|p| p.payload?.metadata?.post_token)
            .filter(|post| posts.contains(post));
        match post {
            Some(post) => origin = Some(post),
            None => return Err(unauthorized(*ip)),
        }
    }
    let value = match parse_json(&body) {
        Ok(value) => value,
        Err(e) => {
            if let Some((_, ip)) = &registered {
                return Err(unauthorized(*ip));
            }
            count("UNKNOWN", "rejected", "not_json");
            return Err(keep_rejected(&state, &body, AppError::not_json(e)).await);
        }
    };
    let delivery = match classify(&value) {
        Ok(delivery) => delivery,
        Err(e) => {
            if let Some((_, ip)) = &registered {
                return Err(unauthorized(*ip));
            }
            count("UNKNOWN", "rejected", "unprocessable");
            let error = AppError::Unprocessable(e.to_string());
            return Err(keep_rejected(&state, &body, error).await);
        }
    };
    // A registration's key is good only for the legacy messages of its post.
    if let Some((_, ip)) = &registered {
        if !matches!(delivery, Delivery::LegacyChatMessage(_)) {
            return Err(unauthorized(*ip));
        }
    }
    let phone = match &delivery {
        Delivery::ChatMessage { message, .. } => message
            .contact_data
            .as_ref()
            .and_then(|c| c.phone.as_deref())
            .map(mask_phone),
        _ => None,
    };
    let mut record = match normalise(delivery, &value, &body, Utc::now()) {
        Ok(record) => record,
        Err(e) => {
            count("UNKNOWN", "rejected", "unprocessable");
            let error = AppError::Unprocessable(e.to_string());
            if registered.is_some() {
                return Err(error);
            }
            return Err(keep_rejected(&state, &body, error).await);
        }
    };
    if let (NewRecord::Message(m), Some(origin)) = (&mut record, origin) {
        m.origin = origin;
    }
    let (event_type, key) = match &record {
        NewRecord::Message(m) => (m.event_type.clone(), m.id.clone()),
        NewRecord::Event(e) => (e.event_type.clone(), e.dedupe_key.clone()),
        NewRecord::Click(c) => ("CLICK".to_owned(), c.id.clone()),
    };
    let retry_after_secs = state.settings.ingest.retry_after_secs;
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
            span.record("key", key.as_str());
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

/// The one field of a legacy message a registration key is checked against.
#[derive(Deserialize)]
struct PostOf {
    payload: Option<PostOfPayload>,
}

#[derive(Deserialize)]
struct PostOfPayload {
    metadata: Option<PostOfMetadata>,
}

#[derive(Deserialize)]
struct PostOfMetadata {
    post_token: Option<String>,
}
