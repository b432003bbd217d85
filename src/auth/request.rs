//! What Divar's routes receive: [`DivarRequest`], a request whose identification key was
//! checked before a byte of its body was read, then its body read and parsed as JSON.

use std::marker::PhantomData;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use crate::auth;
use crate::divar::inbound::Delivery;
use crate::divar::json::{parse_as, parse_json};
use crate::error::AppError;
use crate::state::AppState;

/// Who vouched for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voucher {
    /// One of the app's `divar.identification_keys`.
    App,
    /// A legacy registration's key, good for the messages of this post only.
    Registration(String),
}

/// Which keys a route takes: [`AppKeys`] (the app's own) or [`AnyKey`] (also a legacy
/// registration's, for its post).
pub trait Keys: Send + Sync + 'static {
    /// Whether a registration's key is taken.
    const REGISTRATIONS: bool;
}

/// Only the app's own identification keys.
#[derive(Debug)]
pub struct AppKeys;

/// The app's keys, and a legacy registration's key for the messages of its post.
#[derive(Debug)]
pub struct AnyKey;

impl Keys for AppKeys {
    const REGISTRATIONS: bool = false;
}

impl Keys for AnyKey {
    const REGISTRATIONS: bool = true;
}

/// A request from Divar, authenticated and parsed.
#[derive(Debug)]
pub struct DivarRequest<K: Keys = AppKeys> {
    /// The request's headers.
    pub headers: HeaderMap,
    /// The body as received.
    pub body: Bytes,
    /// The body parsed as JSON.
    pub value: Value,
    /// Who vouched for it.
    pub voucher: Voucher,
    /// The client's address (the proxy's `X-Forwarded-For` entry when trusted).
    pub ip: IpAddr,
    keys: PhantomData<K>,
}

/// The 401 detail for an `authorization` value that starts with `Bearer `.
pub const BEARER_DETAIL: &str = "invalid authorization header: Divar sends the raw identification key, \
     without `Bearer `";

/// Why a [`DivarRequest`] was refused, and the error to answer.
#[derive(Debug)]
pub struct Refused {
    /// The answer: 401 or 429 before the key is known to be good, else 400 or 413.
    pub error: AppError,
    /// What went wrong, as a metric reason: `unauthorized`, `too_large`, `unreadable` or
    /// `not_json`.
    pub reason: &'static str,
    /// The body, when the key was good and the body was read but is not JSON.
    pub body: Option<Bytes>,
    /// The request's headers (for routes whose error shape depends on them).
    pub headers: HeaderMap,
}

// Routes take `Result<DivarRequest, Refused>` and shape the answer themselves; taken alone,
// a refusal is the standard error.
impl axum::response::IntoResponse for Refused {
    fn into_response(self) -> axum::response::Response {
        self.error.into_response()
    }
}

impl<K: Keys> FromRequest<AppState> for DivarRequest<K> {
    type Rejection = Refused;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Refused> {
        let (mut parts, body) = request.into_parts();
        let ip = state.failures.client_ip(&parts.headers, &parts.extensions);
        let route = if K::REGISTRATIONS {
            "webhook"
        } else {
            "callback"
        };
        // Until a key is known to be good, every problem is answered 401 (429 when this
        // client has failed too often), so an unauthenticated caller learns nothing about
        // what the body would have done.
        // A `Bearer ` prefix is a common mistake when testing by hand: the answer says so,
        // which tells nothing about the key itself, and the value is refused all the same.
        let bearer = auth::authorization(&parts.headers)
            .and_then(|value| value.get(..7))
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"bearer "));
        let unauthorized = |headers: HeaderMap| {
            tracing::warn!(
                route,
                bearer,
                "a request with a missing or unknown authorization key"
            );
            let detail = if bearer {
                BEARER_DETAIL
            } else {
                "missing or invalid authorization header"
            };
            Refused {
                error: state.failures.fail_from(
                    route,
                    ip,
                    AppError::Unauthorized(detail.to_owned()),
                ),
                reason: "unauthorized",
                body: None,
                headers,
            }
        };
        let presented = auth::authorization(&parts.headers);
        // A key that is neither the app's nor a registration's is refused before a byte of
        // the body is read.
        let posts = if state.keys.verify(presented) {
            Ok(None)
        } else {
            presented
                .filter(|_| K::REGISTRATIONS)
                .and_then(|key| state.registrations.posts(key))
                .map(Some)
                .ok_or(())
        };
        // Reading the body needs only the body and the extensions: the headers move out
        // rather than being copied.
        let headers = std::mem::take(&mut parts.headers);
        let Ok(posts) = posts else {
            return Err(unauthorized(headers));
        };
        let body = match Bytes::from_request(Request::from_parts(parts, body), state).await {
            Ok(body) => body,
            Err(_) if posts.is_some() => return Err(unauthorized(headers)),
            Err(rejection) => {
                let error =
                    AppError::unreadable_body(&rejection, state.settings.server.body_limit_bytes);
                let reason = match error {
                    AppError::PayloadTooLarge { .. } => "too_large",
                    _ => "unreadable",
                };
                return Err(Refused {
                    error,
                    reason,
                    body: None,
                    headers,
                });
            }
        };
        // A registration's key: only the post token is read until the key is known to fit
        // this post.
        let voucher = match posts {
            None => Voucher::App,
            Some(posts) => match parse_as::<PostOf>(&body)
                .ok()
                .and_then(|p| p.payload?.metadata?.post_token)
                .filter(|post| posts.contains(post))
            {
                Some(post) => Voucher::Registration(post),
                None => return Err(unauthorized(headers)),
            },
        };
        let value = match parse_json(&body) {
            Ok(value) => value,
            Err(_) if voucher != Voucher::App => return Err(unauthorized(headers)),
            Err(e) => {
                return Err(Refused {
                    error: AppError::not_json(e),
                    reason: "not_json",
                    body: Some(body),
                    headers,
                });
            }
        };
        Ok(DivarRequest {
            headers,
            body,
            value,
            voucher,
            ip,
            keys: PhantomData,
        })
    }
}

impl<K: Keys> DivarRequest<K> {
    /// Whether this request's key vouches for `delivery` (`None`: the body is no delivery
    /// kenar-hook knows). The app's keys vouch for anything; a registration's key only for
    /// the legacy chat messages of its post (the post was matched before the body was
    /// parsed). Anything else is answered as an unknown key is.
    pub fn vouch_for(&self, state: &AppState, delivery: Option<&Delivery>) -> Result<(), AppError> {
        match (&self.voucher, delivery) {
            (Voucher::App, _)
            | (Voucher::Registration(_), Some(Delivery::LegacyChatMessage(_))) => Ok(()),
            (Voucher::Registration(_), _) => Err(self.unauthorized(state)),
        }
    }

    /// The answer for a delivery a registration's key may not vouch for: the same 401 (or
    /// 429) as for an unknown key, counted as a failed authentication.
    fn unauthorized(&self, state: &AppState) -> AppError {
        tracing::warn!("a registration's key used for something other than its post's messages");
        state.failures.fail_from(
            "webhook",
            self.ip,
            AppError::Unauthorized("missing or invalid authorization header".to_owned()),
        )
    }
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
