//! Who may read: bearer tokens from `api.tokens`, compared in constant time, rate-limited per
//! token; failed authentications rate-limited per client IP.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::KeySet;
use crate::config::ApiSettings;
use crate::error::AppError;
use crate::state::AppState;

/// The API's tokens and rate limiters.
#[derive(Debug)]
pub struct ApiAccess {
    tokens: KeySet,
    per_token: DefaultKeyedRateLimiter<usize>,
    streams: Arc<Semaphore>,
    streams_per_token: Vec<Arc<Semaphore>>,
}

/// Which configured token a request presented (its position in `api.tokens`).
#[derive(Debug, Clone, Copy)]
pub struct TokenId(pub usize);

/// A live stream's places in the global and the per-token limit, given back when it ends.
#[derive(Debug)]
pub struct StreamSlot {
    _global: OwnedSemaphorePermit,
    _token: OwnedSemaphorePermit,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl ApiAccess {
    /// Access as configured.
    pub fn new(settings: &ApiSettings) -> Arc<Self> {
        let per_token = Quota::per_second(non_zero(settings.rate_limit_per_second))
            .allow_burst(non_zero(settings.rate_limit_burst));
        Arc::new(ApiAccess {
            tokens: KeySet::new(&settings.tokens),
            per_token: RateLimiter::keyed(per_token),
            streams: Arc::new(Semaphore::new(settings.max_streams)),
            streams_per_token: settings
                .tokens
                .iter()
                .map(|_| Arc::new(Semaphore::new(settings.max_streams_per_token)))
                .collect(),
        })
    }

    /// The hex digest of a token, as stored with its stream tickets.
    pub fn token_digest(&self, token: TokenId) -> Option<String> {
        self.tokens.digest_hex(token.0)
    }

    /// A place for one more live stream of `token`, or 429 naming the limit that is full.
    pub fn open_stream(&self, token: TokenId) -> Result<StreamSlot, AppError> {
        let full = |setting: &str| {
            metrics::counter!("kenar_stream_refusals_total", "limit" => setting.to_owned())
                .increment(1);
            AppError::RateLimited {
                retry_after_secs: 5,
            }
        };
        let token = self
            .streams_per_token
            .get(token.0)
            .ok_or_else(|| full("api.max_streams_per_token"))?
            .clone()
            .try_acquire_owned()
            .map_err(|_| full("api.max_streams_per_token"))?;
        let global = self
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| full("api.max_streams"))?;
        Ok(StreamSlot {
            _global: global,
            _token: token,
        })
    }
}

/// Route middleware of every `/api/v1` route: every answer is `Cache-Control: no-store`
/// (they hold users' messages), and a 401 says which scheme it wants (RFC 6750).
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = checked(state, request, next).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"kenar-hook\""),
        );
    }
    response
}

async fn checked(state: AppState, request: Request, next: Next) -> Response {
    let access = &state.api;
    if access.tokens.is_empty() {
        return AppError::Unauthorized(
            "the read API is disabled: set api.tokens (KENAR_HOOK__API__TOKENS) to enable it"
                .to_owned(),
        )
        .into_response();
    }
    if request.headers().get(header::AUTHORIZATION).is_none() {
        if let Some(ticket) = stream_ticket(&request) {
            return match redeem(&state, &ticket).await {
                Ok(Some(token)) => {
                    let mut request = request;
                    request.extensions_mut().insert(token);
                    next.run(request).await
                }
                Ok(None) => state
                    .failures
                    .fail(
                        "api",
                        request.headers(),
                        request.extensions(),
                        AppError::Unauthorized(
                            "the stream ticket is unknown, expired or already used; ask for a new one with POST /api/v1/stream/tickets".to_owned(),
                        ),
                    )
                    .into_response(),
                Err(e) => e.into_response(),
            };
        }
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match access.tokens.position(bearer.map(str::as_bytes)) {
        Some(token) => match access.per_token.check_key(&token) {
            // While the database is known to be down, a read would only wait for its timeout.
            Ok(()) if state.breaker.is_open() => AppError::Unavailable {
                message: "the database is unavailable; retry later".to_owned(),
                retry_after_secs: crate::error::DATABASE_RETRY_AFTER_SECS,
            }
            .into_response(),
            Ok(()) => {
                let mut request = request;
                request.extensions_mut().insert(TokenId(token));
                next.run(request).await
            }
            Err(not_until) => crate::auth::rate_limited(not_until).into_response(),
        },
        None => state
            .failures
            .fail(
                "api",
                request.headers(),
                request.extensions(),
                AppError::Unauthorized("missing or invalid bearer token".to_owned()),
            )
            .into_response(),
    }
}

/// The `ticket` query parameter of a `GET /api/v1/stream`; tickets open streams only.
fn stream_ticket(request: &Request) -> Option<String> {
    if request.uri().path() != "/api/v1/stream" {
        return None;
    }
    url::form_urlencoded::parse(request.uri().query()?.as_bytes())
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
}

/// The token a ticket was issued to, once.
async fn redeem(state: &AppState, ticket: &str) -> Result<Option<TokenId>, AppError> {
    // A ticket is 43 characters; anything far longer is not one and is not looked up.
    if ticket.is_empty() || ticket.len() > 128 {
        return Ok(None);
    }
    let digest = super::tickets::digest(ticket);
    Ok(state
        .store
        .redeem_stream_ticket(&digest)
        .await?
        .and_then(|token| state.api.tokens.position_of_digest(&token))
        .map(TokenId))
}
