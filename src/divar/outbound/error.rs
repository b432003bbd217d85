//! Errors of calls to Divar, and how an HTTP answer or a transport failure becomes one.
//! No error holds a header, an API key or an access token.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::divar::lenient;

/// Most characters of a non-JSON error body kept in an error message.
const BODY_EXCERPT: usize = 300;

/// A call to Divar that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DivarError {
    /// HTTP 412 with code 9: the recipient blocked the sender, or a user is blacklisted.
    #[error("Divar did not deliver the message: the recipient restricts it ({message})")]
    RecipientRestricted {
        /// Divar's message.
        message: String,
    },
    /// HTTP 401: the API key or the access token is not valid.
    #[error("Divar answered 401: the API key or the access token is not valid ({message})")]
    Unauthorized {
        /// gRPC status code of the body, if any.
        code: Option<i64>,
        /// Divar's message.
        message: String,
    },
    /// HTTP 403: the API key lacks the permission, or the token lacks the scope.
    #[error(
        "Divar answered 403: the API key lacks the permission or the access token the scope \
         ({message})"
    )]
    Forbidden {
        /// gRPC status code of the body, if any.
        code: Option<i64>,
        /// Divar's message.
        message: String,
    },
    /// HTTP 429: a per-minute or daily quota is exhausted.
    #[error("Divar rate-limited the call (429){}", retry_after_text(*.retry_after))]
    RateLimited {
        /// Divar's `Retry-After`, unclamped.
        retry_after: Option<Duration>,
        /// Divar's message, if any.
        message: Option<String>,
    },
    /// Any other 4xx (or unexpected) answer, from the gRPC status body `{code, message}`.
    #[error("Divar rejected the call with HTTP {status}{}: {message}", code_text(*.code))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// gRPC status code of the body, if any.
        code: Option<i64>,
        /// Divar's message, or an excerpt of the body.
        message: String,
    },
    /// A 5xx or 408 answer, a timeout, or an answer that could not be read.
    #[error("Divar is unavailable{}: {reason}", status_text(*.status))]
    Transient {
        /// The HTTP status, when Divar answered.
        status: Option<u16>,
        /// Divar's `Retry-After`, unclamped, when it answered with one.
        retry_after: Option<Duration>,
        /// What went wrong.
        reason: String,
    },
    /// No connection could be made, so the request was never sent.
    #[error("Divar cannot be reached: {reason}")]
    Unreachable {
        /// What went wrong.
        reason: String,
    },
    /// A request that is not safe to repeat (a chat message, a registration, a subscription)
    /// may have reached Divar, but no answer confirmed it: it timed out after it was sent,
    /// Divar answered a 5xx other than a 503 with `Retry-After`, or the answer broke off. It
    /// was not sent again.
    #[error(
        "outcome unknown: Divar may have received the request but did not confirm it \
         ({}{reason}); it was not sent again. Check whether it took effect (for a message, look \
         in the conversation) before sending it again",
        status_prefix(*.status)
    )]
    OutcomeUnknown {
        /// The HTTP status, when Divar answered.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
    /// Our own check refused the request before sending it.
    #[error("invalid request: {0}")]
    Validation(#[from] ValidationError),
    /// The client lacks a setting, for example the API key.
    #[error("the Divar client is not configured: {0}")]
    NotConfigured(String),
}

/// A request refused by our own checks, before any HTTP call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// More than 3 rows.
    #[error("{field} has {rows} rows; at most 3 are allowed")]
    TooManyRows {
        /// The grid.
        field: &'static str,
        /// How many rows it has.
        rows: usize,
    },
    /// More than 3 buttons in a row.
    #[error("{field} row {row} has {buttons} buttons; at most 3 are allowed")]
    TooManyButtons {
        /// The grid.
        field: &'static str,
        /// The row, from 1.
        row: usize,
        /// How many buttons it has.
        buttons: usize,
    },
    /// A button without an action, or with several.
    #[error("{field} row {row} button {button} has {actions} actions; exactly one is required")]
    ActionCount {
        /// The grid.
        field: &'static str,
        /// The row, from 1.
        row: usize,
        /// The button, from 1.
        button: usize,
        /// How many action keys are set.
        actions: usize,
    },
    /// A button with an empty caption.
    #[error("{field} row {row} button {button} has an empty caption")]
    EmptyCaption {
        /// The grid or legacy button.
        field: &'static str,
        /// The row, from 1.
        row: usize,
        /// The button, from 1.
        button: usize,
    },
    /// A required field is empty.
    #[error("{0} must not be empty")]
    EmptyField(&'static str),
    /// A field has an unusable value.
    #[error("{field} is invalid: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Neither text nor a media token.
    #[error("a message needs text or a media token")]
    NoContent,
    /// The body could not be turned into JSON.
    #[error("the body cannot be serialized: {0}")]
    Unserializable(String),
}

impl DivarError {
    /// Process exit code for a CLI: 2 for our own mistakes (validation, configuration),
    /// 3 when Divar refused, 4 when Divar stayed unavailable after the retries, 5 when a
    /// request that is not safe to repeat may have reached Divar unconfirmed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Validation(_) | Self::NotConfigured(_) => 2,
            Self::RecipientRestricted { .. }
            | Self::Unauthorized { .. }
            | Self::Forbidden { .. }
            | Self::Rejected { .. } => 3,
            Self::RateLimited { .. } | Self::Transient { .. } | Self::Unreachable { .. } => 4,
            Self::OutcomeUnknown { .. } => 5,
        }
    }

    /// The error of a non-2xx answer.
    pub(super) fn from_response(
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> Self {
        let rpc = serde_json::from_slice::<RpcStatus>(body).unwrap_or_default();
        let code = rpc.code;
        let message = rpc.message.unwrap_or_else(|| excerpt(status, body));
        match status.as_u16() {
            412 if code == Some(9) => Self::RecipientRestricted { message },
            401 => Self::Unauthorized { code, message },
            403 => Self::Forbidden { code, message },
            429 => Self::RateLimited {
                retry_after,
                message: Some(message),
            },
            // A 408 says the request did not arrive in time; sending it again is safe.
            408 => Self::Transient {
                status: Some(408),
                retry_after,
                reason: message,
            },
            s if status.is_server_error() => Self::Transient {
                status: Some(s),
                retry_after,
                reason: message,
            },
            s => Self::Rejected {
                status: s,
                code,
                message,
            },
        }
    }

    /// The error of a request that got no answer.
    pub(super) fn from_transport(error: &reqwest::Error) -> Self {
        let reason = crate::divar::transport_failure(error);
        if error.is_connect() {
            return Self::Unreachable { reason };
        }
        Self::Transient {
            status: None,
            retry_after: None,
            reason,
        }
    }
}

/// `googleRpcStatus`: `{code, message, details}`.
#[derive(Debug, Default, Deserialize)]
struct RpcStatus {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    code: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    message: Option<String>,
}

fn excerpt(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("no message").to_owned();
    }
    let mut out: String = text.chars().take(BODY_EXCERPT).collect();
    if text.chars().count() > BODY_EXCERPT {
        out.push('…');
    }
    out
}

fn retry_after_text(d: Option<Duration>) -> String {
    d.map(|d| format!("; retry after {} s", d.as_secs_f64()))
        .unwrap_or_default()
}

fn code_text(code: Option<i64>) -> String {
    code.map(|c| format!(" (code {c})")).unwrap_or_default()
}

fn status_text(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

fn status_prefix(status: Option<u16>) -> String {
    status.map(|s| format!("HTTP {s}: ")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_412_with_code_9_is_a_restriction_and_other_412s_are_rejections() {
        let body = br#"{"code": 9, "message": "restricted"}"#;
        let e = DivarError::from_response(StatusCode::PRECONDITION_FAILED, None, body);
        assert!(
            matches!(e, DivarError::RecipientRestricted { ref message } if message == "restricted")
        );
        let e = DivarError::from_response(StatusCode::PRECONDITION_FAILED, None, b"{\"code\":3}");
        assert!(matches!(
            e,
            DivarError::Rejected {
                status: 412,
                code: Some(3),
                ..
            }
        ));
    }

    #[test]
    fn a_non_json_body_is_kept_as_a_short_excerpt() {
        let body = "x".repeat(1000);
        let e = DivarError::from_response(StatusCode::BAD_REQUEST, None, body.as_bytes());
        let DivarError::Rejected { message, code, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(code, None);
        assert_eq!(message.chars().count(), BODY_EXCERPT + 1);
    }

    #[test]
    fn exit_codes_follow_the_error_class() {
        let v = DivarError::Validation(ValidationError::NoContent);
        let r = DivarError::from_response(StatusCode::FORBIDDEN, None, b"");
        let t = DivarError::from_response(StatusCode::BAD_GATEWAY, None, b"");
        let l = DivarError::from_response(StatusCode::TOO_MANY_REQUESTS, None, b"");
        let u = DivarError::Unreachable {
            reason: "connection failed".to_owned(),
        };
        let o = DivarError::from_response(StatusCode::BAD_GATEWAY, None, b"").for_unrepeatable();
        assert_eq!(
            [v, r, t, l, u, o].map(|e| (e.exit_code(), e.is_retryable())),
            [
                (2, false),
                (3, false),
                (4, true),
                (4, true),
                (4, true),
                (5, false)
            ]
        );
    }
}
