//! `/api/v1/forwarding/...`: each endpoint's state and lag, the attempt log and the dead
//! letters.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::cursor::Position;
use super::page::Keyset;
use super::params::{At, Filters, Listing, NoParams, Paging, Text};
use crate::auth::Client;
use crate::error::AppError;
use crate::forward::manage::{self, EndpointStatus};
use crate::forward::record::webhook_id;
use crate::items::{Page, rfc3339};
use crate::state::AppState;
use crate::store::forward::{Attempt, AttemptOutcome, AttemptQuery, Dead};

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptItem {
    /// Position in the log; newest first.
    pub id: i64,
    /// The endpoint.
    pub endpoint: String,
    /// The record's `webhook-id` (`message_<installation>_12`).
    pub record: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// `delivered`, `failed`, `probe` (an early try, not counted), `dead` (the last attempt
    /// failed) or `gone` (410).
    pub status: String,
    /// The receiver's answer, when one came.
    pub status_code: Option<i64>,
    /// Milliseconds from sending to the answer or the error.
    pub latency_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// The first KiB of the answer.
    pub response: Option<String>,
    /// When it was made (RFC 3339).
    pub at: String,
}

impl AttemptItem {
    fn new(installation: &str, a: Attempt) -> Self {
        AttemptItem {
            id: a.id,
            endpoint: a.endpoint,
            record: webhook_id(installation, a.record),
            attempt: a.attempt,
            status: a.outcome.as_str().to_owned(),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
            response: a.response,
            at: rfc3339(a.at),
        }
    }
}

/// A record an endpoint gave up on.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadItem {
    /// Position in the list; oldest first.
    pub id: i64,
    /// The endpoint.
    pub endpoint: String,
    /// The record's `webhook-id`.
    pub record: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last attempt's error.
    pub last_error: String,
    /// When it was given up (RFC 3339).
    pub dead_at: String,
    /// When kenar-hook received the record (RFC 3339).
    pub received_at: String,
    /// The body that was posted.
    #[schema(value_type = Object)]
    pub body: Box<RawValue>,
}

impl DeadItem {
    fn new(installation: &str, endpoint: String, d: Dead, pii: bool) -> Result<Self, AppError> {
        let p = d.pending;
        let not_json = |e: serde_json::Error| {
            AppError::Internal(anyhow::anyhow!("a stored body is not JSON: {e}"))
        };
        // The body that was posted is whole (forwarding goes to the app's own backend); a
        // reader without `pii` sees it masked.
        let body = if !pii && crate::pii::may_hold_phone(&p.body) {
            let mut value: serde_json::Value = serde_json::from_str(&p.body).map_err(not_json)?;
            crate::pii::mask(&mut value);
            serde_json::value::to_raw_value(&value).map_err(not_json)?
        } else {
            RawValue::from_string(p.body).map_err(not_json)?
        };
        Ok(DeadItem {
            id: d.id,
            endpoint,
            record: webhook_id(installation, p.record),
            attempts: p.attempts,
            last_error: d.last_error,
            dead_at: rfc3339(d.dead_at),
            received_at: rfc3339(p.received_at),
            body,
        })
    }
}

/// The routes of this file.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/forwarding/endpoints", get(endpoints))
        .route("/api/v1/forwarding/attempts", get(attempts))
        .route("/api/v1/forwarding/dead", get(dead))
}

/// Each configured endpoint: state, lag, last success and last error.
#[utoipa::path(get, path = "/api/v1/forwarding/endpoints", tag = "read",
    responses((status = 200, body = Page<EndpointStatus>)))]
pub async fn endpoints(
    State(state): State<AppState>,
    _: Filters<NoParams>,
) -> Result<Json<Page<EndpointStatus>>, AppError> {
    let items = manage::status(&state.store, &state.settings.forward.endpoints).await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// The parameters of `GET /forwarding/attempts`, besides its [`Paging`].
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptFilters {
    /// Only this endpoint
    #[param(inline)]
    endpoint: Option<Text>,
    /// delivered, failed, probe, dead or gone
    #[param(inline)]
    status: Option<Text>,
    /// Made at or after (RFC 3339)
    #[param(inline)]
    since: Option<At>,
}

/// The attempt log, newest first.
#[utoipa::path(get, path = "/api/v1/forwarding/attempts", tag = "read",
    params(AttemptFilters, Paging),
    responses((status = 200, body = Page<AttemptItem>)))]
pub async fn attempts(
    State(state): State<AppState>,
    Listing(f, _, paging): Listing<AttemptFilters>,
) -> Result<Json<Page<AttemptItem>>, AppError> {
    let (endpoint, status, since) = (Text::of(f.endpoint), Text::of(f.status), At::of(f.since));
    let outcome = super::params::chosen(
        "status",
        status.as_deref(),
        &AttemptOutcome::ALL,
        AttemptOutcome::as_str,
    )?;
    let keyset = Keyset::new(
        "forwarding_attempts",
        &[
            ("endpoint", endpoint.clone()),
            ("status", status.clone()),
            ("since", since.map(rfc3339)),
        ],
        paging,
    );
    let q = AttemptQuery {
        endpoint,
        outcome,
        since,
        before_id: keyset.after_seq()?,
        limit: keyset.fetch(),
    };
    let rows = state.store.forward_attempts(&q).await?;
    let installation = state.store.installation().await?;
    Ok(Json(keyset.page(
        rows,
        false,
        |a| Position::Seq(a.id),
        |a| AttemptItem::new(installation, a),
    )))
}

/// The parameters of `GET /forwarding/dead`, besides its [`Paging`].
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadFilters {
    /// Only this endpoint
    #[param(inline)]
    endpoint: Option<Text>,
}

/// Dead letters, oldest first.
#[utoipa::path(get, path = "/api/v1/forwarding/dead", tag = "read",
    params(DeadFilters, Paging),
    responses((status = 200, body = Page<DeadItem>)))]
pub async fn dead(
    State(state): State<AppState>,
    Extension(client): Extension<Arc<Client>>,
    Listing(f, _, paging): Listing<DeadFilters>,
) -> Result<Json<Page<DeadItem>>, AppError> {
    let endpoint = Text::of(f.endpoint);
    let keyset = Keyset::new("forwarding_dead", &[("endpoint", endpoint.clone())], paging);
    let after = keyset.after_seq()?;
    let rows = state
        .store
        .forward_dead(endpoint.as_deref(), after, keyset.fetch())
        .await?;
    let installation = state.store.installation().await?;
    Ok(Json(keyset.try_page(
        rows,
        false,
        |(_, d)| Position::Seq(d.id),
        |(e, d)| DeadItem::new(installation, e, d, client.pii()),
    )?))
}
