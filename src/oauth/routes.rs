//! `GET /oauth/divar/start` and `GET /oauth/divar/callback`: the browser side of sign-in.
//!
//! `start` makes a random `state`, stores its digest with the scopes and `return_to`, sets
//! it in a short-lived HttpOnly, SameSite=Lax cookie and redirects to Divar's consent page.
//! The callback takes the stored state (deleting it, so it works once), checks that the
//! browser holds the same state in its cookie (a sign-in cannot be forged from another
//! site), exchanges the code and stores the tokens. Whatever goes wrong, the browser gets a
//! short page saying what, and nothing is stored.

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{SignedIn, TokenError, Tokens};
use crate::auth::stored_digest;
use crate::divar::oauth::OAuthError;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::oauth::StateRow;

/// The cookie that binds a sign-in to the browser that started it.
pub const STATE_COOKIE: &str = "kenar_oauth_state";

/// The routes of this module.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/oauth/divar/start", get(start))
        .route("/oauth/divar/callback", get(callback))
        .route_layer(middleware::from_fn_with_state(state, admit))
}

/// Before anything else: the per-IP limit, and the breaker (these routes need no credential,
/// and each one writes to the database).
async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(tokens) = &state.oauth {
        let ip = state
            .failures
            .client_ip(request.headers(), request.extensions());
        if let Err(refused) = tokens.limiter().admit(ip) {
            return refused.into_response();
        }
        if state.breaker.is_open() {
            return AppError::database_unavailable().into_response();
        }
    }
    next.run(request).await
}

/// A sign-in that was begun: the state to check, and the URL to send the user to.
#[derive(Debug)]
pub struct Begun {
    /// The random state; secret until used.
    pub state: SecretString,
    /// Divar's consent page.
    pub url: url::Url,
}

impl Tokens {
    /// Begins a sign-in: a fresh state stored (by digest) with the scopes and `return_to`.
    /// `bound`: the callback demands the state's cookie (set by `start`; a URL printed by
    /// `oauth url` is opened without one).
    pub async fn begin_sign_in(
        &self,
        asked: &[String],
        return_to: Option<String>,
        bound: bool,
    ) -> Result<Begun, TokenError> {
        let scopes = self.settings().scopes(asked);
        let state = crate::auth::random_token();
        let ttl = chrono::Duration::seconds(
            i64::try_from(self.settings().state_ttl_secs).unwrap_or(i64::MAX / 1_000_000),
        );
        let row = StateRow {
            bound,
            scope: scopes.join(" "),
            return_to,
            expires_at: Utc::now() + ttl,
        };
        let max = self.settings().max_pending_sign_ins;
        if !self
            .store()
            .put_state(&stored_digest(&state), &row, max)
            .await?
        {
            return Err(TokenError::TooManySignIns);
        }
        let url = self.oauth().authorize_url(&scopes, &state);
        Ok(Begun {
            state: SecretString::from(state),
            url,
        })
    }
}

/// Query of `start`.
#[derive(Debug, Deserialize)]
pub struct StartParams {
    /// Scopes, space- or comma-separated; `oauth.default_scopes` when absent.
    scope: Option<String>,
    /// Where to send the browser after sign-in; must be on `callback.allowed_hosts`.
    return_to: Option<String>,
}

fn tokens(state: &AppState) -> Result<&Tokens, AppError> {
    state.oauth.as_ref().ok_or_else(|| {
        AppError::NotFound(
            state
                .settings
                .oauth
                .why_off()
                .unwrap_or("OAuth sign-in is off")
                .to_owned(),
        )
    })
}

/// Begins a sign-in: redirects to Divar's consent page.
#[utoipa::path(get, path = "/oauth/divar/start", tag = "oauth",
    params(
        ("scope" = Option<String>, Query, description = "Scopes, space- or comma-separated; USER_ID and offline_access are always added"),
        ("return_to" = Option<String>, Query, description = "Where the browser goes after sign-in; on callback.allowed_hosts"),
    ),
    responses(
        (status = 302, description = "To Divar's consent page, with the state cookie set"),
        (status = 400, description = "A scope or return_to that is not allowed; nothing stored", body = crate::error::ErrorBody),
        (status = 404, description = "Sign-in is off (no oauth.vault_keys); the message says why", body = crate::error::ErrorBody),
        (status = 429, description = "Too many requests from this address (oauth.rate_limit_per_minute)", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable, or oauth.max_pending_sign_ins sign-ins are under way", body = crate::error::ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    Query(params): Query<StartParams>,
) -> Result<Response, AppError> {
    let tokens = tokens(&state)?;
    let return_to = match params.return_to.filter(|r| !r.is_empty()) {
        Some(r) => Some(
            tokens
                .checked_return_to(&r)
                .map_err(|message| AppError::InvalidParameter {
                    name: "return_to".into(),
                    message: format!("return_to: {message}"),
                })?
                .to_string(),
        ),
        None => None,
    };
    let asked = asked_scopes(tokens, params.scope.unwrap_or_default())?;
    let begun = tokens
        .begin_sign_in(&asked, return_to, true)
        .await
        .map_err(internal)?;
    let secure = if tokens
        .settings()
        .redirect_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https:"))
    {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{STATE_COOKIE}={}; Max-Age={}; Path=/oauth/divar; HttpOnly; SameSite=Lax{secure}",
        begun.state.expose_secret(),
        tokens.settings().state_ttl_secs
    );
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, header_value(begun.url.as_str())?);
    headers.insert(header::SET_COOKIE, header_value(&cookie)?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The longest `scope` a sign-in link may carry.
const MAX_SCOPE_CHARS: usize = 2000;

/// The scopes a link asks for, each one of Divar's and allowed by the settings; nothing is
/// stored for a link that asks for anything else.
fn asked_scopes(tokens: &Tokens, scope: String) -> Result<Vec<String>, AppError> {
    let refuse = |message: String| AppError::InvalidParameter {
        name: "scope".into(),
        message,
    };
    if scope.len() > MAX_SCOPE_CHARS {
        return Err(refuse(format!(
            "scope: longer than {MAX_SCOPE_CHARS} characters"
        )));
    }
    let asked: Vec<String> = scope
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for s in &asked {
        crate::divar::scope::check_known(s).map_err(|why| refuse(format!("scope: {why}")))?;
        if !tokens.settings().allows(s) {
            return Err(refuse(format!(
                "scope: {s} is not allowed; the app allows oauth.default_scopes and \
                 oauth.allowed_scopes"
            )));
        }
    }
    Ok(asked)
}

fn header_value(text: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(text).map_err(|e| AppError::Internal(anyhow::anyhow!("header: {e}")))
}

fn internal(e: TokenError) -> AppError {
    match e {
        TokenError::Store(e) => AppError::from(e),
        TokenError::TooManySignIns => AppError::Unavailable {
            message: e.to_string(),
            retry_after_secs: 60,
        },
        other => AppError::Internal(anyhow::anyhow!("{other}")),
    }
}

/// Query of the callback.
#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    // A credential until it is exchanged: never in Debug output.
    code: Option<SecretString>,
    state: Option<String>,
    error: Option<String>,
}

/// Ends a sign-in: checks the state, exchanges the code, stores the tokens.
#[utoipa::path(get, path = "/oauth/divar/callback", tag = "oauth",
    params(
        ("code" = Option<String>, Query, description = "The authorization code; absent when consent was denied"),
        ("state" = Option<String>, Query, description = "The state of the sign-in"),
    ),
    responses(
        (status = 200, description = "A page saying the user is signed in", content_type = "text/html"),
        (status = 302, description = "To the sign-in's return_to"),
        (status = 400, description = "Consent denied, or a missing, unknown, reused or forged state: a page with the reason; nothing stored", content_type = "text/html"),
        (status = 404, description = "Sign-in is off (no oauth.vault_keys); the message says why", body = crate::error::ErrorBody),
        (status = 502, description = "The code exchange or the user lookup failed: a page with the reason; nothing stored", content_type = "text/html"),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Result<Response, AppError> {
    let tokens = tokens(&state)?;
    let Some(given) = params.state.filter(|s| !s.is_empty()) else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The answer from Divar carries no state. Start the sign-in again.",
        ));
    };
    // A state is 32 random bytes in URL-safe base64: anything else is refused before the
    // database is asked.
    let well_formed = crate::auth::is_random_token(&given);
    let cookie = crate::auth::cookie(&headers, STATE_COOKIE);
    let cookie_matches = cookie.is_some_and(|c| bool::from(c.as_bytes().ct_eq(given.as_bytes())));
    let stored = match well_formed {
        true => {
            tokens
                .store()
                .take_state(&stored_digest(&given), cookie_matches)
                .await?
        }
        false => None,
    };
    let Some(stored) = stored else {
        if well_formed && cookie.is_some() && !cookie_matches {
            tracing::warn!("OAuth callback with a state this browser did not start; refused");
            return Ok(page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "This sign-in was not started in this browser. Start the sign-in again.",
            ));
        }
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "This sign-in is unknown, has expired or was already used. Start the sign-in again.",
        ));
    };
    if stored.expires_at <= Utc::now() {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "This sign-in has expired. Start the sign-in again.",
        ));
    }
    let Some(code) = params.code.filter(|c| !c.expose_secret().is_empty()) else {
        let reason = params.error.unwrap_or_else(|| "no code".to_owned());
        tracing::info!(reason = %reason, "OAuth consent denied");
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Sign-in cancelled",
            &format!("Access was not granted ({reason}). Nothing was stored."),
        ));
    };
    let grant = match tokens.oauth().exchange_code(&code).await {
        Ok(grant) => grant,
        Err(e) => {
            tracing::warn!(error = %e, "OAuth code exchange failed");
            return Ok(failed(&format!(
                "The code could not be exchanged for a token: {}",
                shown(&e.into())
            )));
        }
    };
    let (user_id, kept) = match tokens.sign_in(&grant).await {
        Ok(SignedIn::Stored(user_id)) => (user_id, false),
        Ok(SignedIn::KeptBroader(user_id)) => (user_id, true),
        Err(TokenError::Store(e)) => return Err(AppError::from(e)),
        Err(e) => {
            tracing::warn!(error = %e, "signing the user in failed");
            return Ok(failed(&shown(&e)));
        }
    };
    let mut response = match stored.return_to {
        Some(to) => {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(header::LOCATION, header_value(&to)?);
            r
        }
        None if kept => page(
            StatusCode::OK,
            "Signed in",
            &format!(
                "You are signed in (user {user_id}). Your earlier sign-in granted more than this \
                 one asked for, so it is kept. You can close this window."
            ),
        ),
        None => page(
            StatusCode::OK,
            "Signed in",
            &format!("You are signed in (user {user_id}). You can close this window."),
        ),
    };
    let clear = format!("{STATE_COOKIE}=; Max-Age=0; Path=/oauth/divar; HttpOnly; SameSite=Lax");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, header_value(&clear)?);
    Ok(response)
}

/// A failed sign-in as its page, which anyone may see, says it: that a server could not be
/// used, or what refused and why. Addresses and network errors beneath stay in the log.
fn shown(e: &TokenError) -> String {
    let server = match e {
        TokenError::OAuth(OAuthError::Unavailable(_)) => "the OAuth server",
        // Unavailable after the retries, or no answer confirmed (exit codes 4 and 5).
        TokenError::Divar(d) if d.exit_code() >= 4 => "the Divar API",
        e => return e.to_string(),
    };
    format!("{server} could not be used; start the sign-in again later")
}

/// The page of a sign-in that failed at Divar (502): why, and that nothing was stored.
fn failed(why: &str) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "Sign-in failed",
        &format!("{why}. Nothing was stored."),
    )
}

/// A small HTML page; the URL held the code, so it is neither cached nor sent on as a referrer.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>\n",
        t = escape(title),
        m = escape(message)
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
