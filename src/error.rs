//! The one error type every HTTP handler answers with, and its stable JSON body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything a handler can fail with. Each variant maps to one HTTP status and one stable
/// `code` string; internal details are logged, never echoed to the client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The `authorization` header is missing or does not match a configured key.
    #[error("{0}")]
    Unauthorized(String),
    /// The credential is valid but its scopes do not cover the request, or the client's
    /// address may not call this route.
    #[error("{0}")]
    Forbidden(String),
    /// The body is not JSON (or not UTF-8).
    #[error("{0}")]
    BadRequest(String),
    /// A query parameter is malformed.
    #[error("{message}")]
    InvalidParameter {
        /// The parameter's name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The JSON is well formed but lacks what its type requires.
    #[error("{0}")]
    Unprocessable(String),
    /// The body is larger than `server.body_limit_bytes`.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The request took longer than `server.request_timeout_ms`.
    #[error("the request took longer than {limit_ms} ms (server.request_timeout_ms)")]
    RequestTimeout {
        /// The configured limit.
        limit_ms: u64,
    },
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored (a message id already held by another
    /// conversation or post). Nothing was stored.
    #[error("{0}")]
    Conflict(String),
    /// The method is not allowed on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too many requests; retry after the given number of seconds.
    #[error("too many requests")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// The service cannot take the request now (queue full, database down). Nothing was
    /// stored; the sender should retry after the given number of seconds.
    #[error("{message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// A bug or an unexpected failure. The detail is logged, not answered.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

/// The JSON body of every error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error object.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `unauthorized` or `payload_too_large`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

impl AppError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) | AppError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `code` string of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::BadRequest(_) => "bad_request",
            AppError::InvalidParameter { .. } => "invalid_parameter",
            AppError::Unprocessable(_) => "unprocessable_entity",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::RequestTimeout { .. } => "request_timeout",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable { .. } => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// The message shown to the client; internal errors are never echoed.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after_secs }
            | AppError::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

/// Seconds a client is told to wait after a database failure.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 5;

impl AppError {
    /// The 503 for a database that does not answer (or whose breaker is open).
    pub fn database_unavailable() -> Self {
        AppError::Unavailable {
            message: "the database is unavailable; retry later".to_owned(),
            retry_after_secs: DATABASE_RETRY_AFTER_SECS,
        }
    }
}

impl From<crate::store::Error> for AppError {
    /// An unavailable database is a 503 with `Retry-After`; anything else is internal.
    fn from(err: crate::store::Error) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "the database is unavailable");
            AppError::database_unavailable()
        } else {
            AppError::Internal(err.into())
        }
    }
}

impl AppError {
    /// A request body that could not be read: over `limit` bytes, or cut off.
    pub fn unreadable_body(
        rejection: &axum::extract::rejection::BytesRejection,
        limit: usize,
    ) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge { limit }
        } else {
            AppError::BadRequest(format!(
                "could not read the body: {}",
                rejection.body_text()
            ))
        }
    }

    /// A request body that is not JSON.
    pub fn not_json(error: impl std::fmt::Display) -> Self {
        AppError::BadRequest(format!("body is not valid JSON: {error}"))
    }

    /// Answers this error with `body` instead of the standard one: same status, same
    /// `Retry-After`, internal errors logged. For callers whose client expects another shape.
    pub fn respond_with(self, body: serde_json::Value) -> Response {
        if let AppError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.public_message(),
            },
        };
        let body = serde_json::to_value(body).expect("the error body serialises");
        self.respond_with(body)
    }
}
