//! Liveness and readiness.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: the process answers. No I/O.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers within two seconds, and the breaker is closed.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Object), (status = 503, body = crate::error::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    if state.breaker.is_open() {
        return Err(AppError::Unavailable {
            message: "the database is unavailable (deliveries are refused for now)".to_owned(),
            retry_after_secs: 1,
        });
    }
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database ping failed");
            Err(AppError::Unavailable {
                message: "the database is unavailable".to_owned(),
                retry_after_secs: 5,
            })
        }
        Err(_) => Err(AppError::Unavailable {
            message: "the database did not answer within 2 s".to_owned(),
            retry_after_secs: 5,
        }),
    }
}
