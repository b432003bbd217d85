//! Who may read: the clients of `api.tokens` and `api.clients`, known by their bearer
//! tokens (compared in constant time), each held to its scopes and rate-limited; failed
//! authentications rate-limited per client IP.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::{Client, KeySet, Scope};
use crate::config::ApiSettings;
use crate::error::AppError;
use crate::state::AppState;

/// The API's clients, their tokens and rate limiters.
#[derive(Debug)]
pub struct ApiAccess {
    tokens: KeySet,
    clients: Vec<Arc<Client>>,
    per_token: DefaultKeyedRateLimiter<usize>,
    streams: Arc<Semaphore>,
    streams_per_token: Vec<Arc<Semaphore>>,
    /// Stream tickets tried per client IP: each costs a database statement.
    redemptions: Arc<crate::auth::PerClient>,
    /// Inbox session cookies looked up per client IP: each costs a database statement.
    sessions: Arc<crate::auth::PerClient>,
}

/// Stream tickets a client IP may try a minute (a browser redeems one per stream it opens).
pub const TICKETS_PER_MINUTE: u32 = 120;

/// Requests with an inbox session cookie a client IP may make a minute (a page makes one
/// per list, page of a thread or tab it shows).
pub const SESSION_LOOKUPS_PER_MINUTE: u32 = 600;

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
        let clients = crate::config::clients::effective(&settings.tokens, &settings.clients);
        let tokens: Vec<_> = clients.iter().map(|c| c.token.clone()).collect();
        Arc::new(ApiAccess {
            tokens: KeySet::new(&tokens),
            clients: clients
                .iter()
                .enumerate()
                .map(|(i, c)| Arc::new(Client::new(i, c)))
                .collect(),
            per_token: RateLimiter::keyed(per_token),
            streams: Arc::new(Semaphore::new(settings.max_streams)),
            streams_per_token: clients
                .iter()
                .map(|_| Arc::new(Semaphore::new(settings.max_streams_per_token)))
                .collect(),
            redemptions: crate::auth::PerClient::per_minute(TICKETS_PER_MINUTE),
            sessions: crate::auth::PerClient::per_minute(SESSION_LOOKUPS_PER_MINUTE),
        })
    }

    /// The per-IP limit of ticket redemptions.
    pub fn redemptions(&self) -> &Arc<crate::auth::PerClient> {
        &self.redemptions
    }

    /// The per-IP limit of inbox session lookups.
    pub fn sessions(&self) -> &Arc<crate::auth::PerClient> {
        &self.sessions
    }

    /// One more request of `client` within its rate limit, or 429.
    pub(crate) fn admit(&self, client: &Client) -> Result<(), AppError> {
        self.per_token
            .check_key(&client.index)
            .map_err(crate::auth::rate_limited)
    }

    /// The hex digest of a client's token, as stored with its stream tickets.
    pub fn token_digest(&self, client: &Client) -> Option<String> {
        self.tokens.digest_hex(client.index)
    }

    /// The client whose token this is (compared in constant time).
    pub(crate) fn client_of_token(&self, token: &str) -> Option<Arc<Client>> {
        let i = self.tokens.position(Some(token.as_bytes()))?;
        self.clients.get(i).cloned()
    }

    /// The client whose token has this hex digest.
    pub(crate) fn client_of_digest(&self, digest: &str) -> Option<Arc<Client>> {
        let i = self.tokens.position_of_digest(digest)?;
        self.clients.get(i).cloned()
    }

    /// A place for one more live stream of `client`, or 429 naming the limit that is full.
    pub fn open_stream(&self, client: &Client) -> Result<StreamSlot, AppError> {
        let full = |setting: &str| {
            metrics::counter!("kenar_stream_refusals_total", "limit" => setting.to_owned())
                .increment(1);
            AppError::RateLimited {
                retry_after_secs: 5,
            }
        };
        let token = self
            .streams_per_token
            .get(client.index)
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
            "the read API is disabled: set api.tokens (KENAR_HOOK__API__TOKENS) or api.clients to enable it"
                .to_owned(),
        )
        .into_response();
    }
    if request.headers().get(header::AUTHORIZATION).is_none() {
        if let Some(ticket) = stream_ticket(&request) {
            // Cheap refusals first: a ticket is looked up (and used up) in the database only
            // when well-formed, within the client's limit, and while the database answers.
            let ip = state
                .failures
                .client_ip(request.headers(), request.extensions());
            if let Err(limited) = access.redemptions.admit(ip) {
                return limited.into_response();
            }
            if state.breaker.is_open() {
                return AppError::database_unavailable().into_response();
            }
            return match redeem(&state, &ticket).await {
                Ok(Some((client, filters))) => {
                    if let Err(e) = in_scope(&client, &request) {
                        return e.into_response();
                    }
                    let mut request = request;
                    request.extensions_mut().insert(client);
                    request.extensions_mut().insert(filters);
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
    let client = match bearer {
        // The web inbox's session cookie stands for the client that signed in with it.
        None if state.settings.inbox.enabled => {
            match crate::inbox::client_of_cookie(
                &state,
                request.headers(),
                request.extensions(),
                request.method(),
            )
            .await
            {
                Ok(client) => client,
                Err(e) => return e.into_response(),
            }
        }
        _ => access
            .tokens
            .position(bearer.map(str::as_bytes))
            .and_then(|i| access.clients.get(i).cloned()),
    };
    match client {
        Some(client) => match access.admit(&client) {
            // While the database is known to be down, a read would only wait for its timeout.
            Ok(()) if state.breaker.is_open() => AppError::database_unavailable().into_response(),
            Ok(()) => {
                if let Err(e) = in_scope(&client, &request) {
                    return e.into_response();
                }
                let mut request = request;
                request.extensions_mut().insert(client);
                next.run(request).await
            }
            Err(limited) => limited.into_response(),
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

/// Names the client on the request's log line, and refuses a route outside its scopes.
fn in_scope(client: &Client, request: &Request) -> Result<(), AppError> {
    tracing::Span::current().record("client", client.name.as_str());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(request.uri().path(), |p| p.as_str());
    match route_scope(route) {
        Some(scope) => client.require(scope, route),
        None => Ok(()),
    }
}

/// The scope a route needs; `None` for the OpenAPI document.
pub fn route_scope(route: &str) -> Option<Scope> {
    let rest = route.strip_prefix("/api/v1/")?;
    let first = rest.split('/').next().unwrap_or(rest);
    match first {
        "conversations" | "messages" | "registrations" | "stream" => Some(Scope::Messages),
        "events" => Some(Scope::Events),
        "clicks" => Some(Scope::Clicks),
        "forwarding" | "outbox" => Some(Scope::Forwarding),
        "rejected" => Some(Scope::Rejected),
        _ => None,
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

/// The client a ticket was issued to and the filters it was issued with, once.
async fn redeem(
    state: &AppState,
    ticket: &str,
) -> Result<Option<(Arc<Client>, super::tickets::TicketFilters)>, AppError> {
    // A ticket is 32 random bytes in URL-safe base64: anything else is not one and is
    // not looked up.
    if !crate::auth::is_random_token(ticket) {
        return Ok(None);
    }
    let digest = super::tickets::digest(ticket);
    let Some((token, filters)) = state.store.redeem_stream_ticket(&digest).await? else {
        return Ok(None);
    };
    let Some(client) = state.api.client_of_digest(&token) else {
        return Ok(None);
    };
    Ok(Some((
        client,
        super::tickets::TicketFilters::read(filters.as_deref()),
    )))
}
