//! Signing in to the inbox: `POST /inbox/session` with an API client's token opens a session
//! kept in the database (its digest only) and answers with an HttpOnly, SameSite=Strict
//! cookie; `DELETE` ends it. Requests carrying the cookie act as that client on `/api/v1`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::auth::{Client, Scope, stored_digest};
use crate::error::AppError;
use crate::state::AppState;

/// The session cookie.
const COOKIE: &str = "kenar_inbox";
/// A header no cross-site form can send, and a cross-site script only after a CORS
/// preflight that is never granted: every state-changing request of the inbox carries it.
const CSRF_HEADER: &str = "x-kenar-inbox";
/// A sign-in body holds one token.
const MAX_BODY: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: SecretString,
}

/// Who is signed in, as the page shows it.
#[derive(Serialize)]
struct Session {
    client: String,
    scopes: Vec<&'static str>,
    post_tokens: Option<Vec<String>>,
}

impl Session {
    fn of(client: &Client) -> Self {
        Session {
            client: client.name.clone(),
            scopes: Scope::ALL
                .iter()
                .filter(|s| client.has(**s))
                .map(|s| s.as_str())
                .collect(),
            post_tokens: client.posts().map(<[String]>::to_vec),
        }
    }
}

/// `POST /inbox/session`: `{"token": "..."}` of an API client.
pub(super) async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    match signed_in(&state, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn signed_in(state: &AppState, request: Request) -> Result<Response, AppError> {
    same_site(request.headers())?;
    let secure = secure(&request);
    // Signing in again replaces the browser's session: the old one ends here.
    let previous = cookie(request.headers())
        .filter(|id| crate::auth::is_random_token(id))
        .map(stored_digest);
    let ip = state
        .failures
        .client_ip(request.headers(), request.extensions());
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| AppError::PayloadTooLarge { limit: MAX_BODY })?;
    let SignIn { token } = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("expected {{\"token\": \"...\"}}: {e}")))?;
    let Some(client) = state.api.client_of_token(token.expose_secret().trim()) else {
        return Err(state.failures.fail_from(
            "inbox",
            ip,
            AppError::Unauthorized("not a token of api.tokens or api.clients".to_owned()),
        ));
    };
    state.api.admit(&client)?;
    if state.breaker.is_open() {
        return Err(AppError::database_unavailable());
    }
    let token_digest = state.api.token_digest(&client).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("client {} is not configured", client.index))
    })?;
    let id = crate::auth::random_token();
    let minutes = state.settings.inbox.session_minutes;
    let expires_at = Utc::now() + chrono::Duration::minutes(i64::from(minutes));
    state
        .store
        .insert_inbox_session(&stored_digest(&id), &token_digest, expires_at)
        .await?;
    if let Some(previous) = previous {
        state.store.delete_inbox_session(&previous).await?;
    }
    tracing::info!(client = %client.name, "inbox: signed in");
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        u64::from(minutes) * 60,
        if secure { "; Secure" } else { "" }
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(Session::of(&client))).into_response())
}

/// `GET /inbox/session`: who is signed in, or 401.
pub(super) async fn show(State(state): State<AppState>, request: Request) -> Response {
    match client_of_cookie(
        &state,
        request.headers(),
        request.extensions(),
        request.method(),
    )
    .await
    {
        Ok(Some(client)) => Json(Session::of(&client)).into_response(),
        Ok(None) => AppError::Unauthorized("not signed in".to_owned()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /inbox/session`: ends the session and clears the cookie.
pub(super) async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = same_site(&headers) {
        return e.into_response();
    }
    if let Some(id) = cookie(&headers).filter(|id| crate::auth::is_random_token(id)) {
        if let Err(e) = state.store.delete_inbox_session(&stored_digest(id)).await {
            return AppError::from(e).into_response();
        }
    }
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&clear).expect("ascii"),
        )],
    )
        .into_response()
}

/// The client a request's session cookie stands for: `None` without a cookie or with one
/// that is unknown or expired. A request that changes something must also come from the
/// page itself (403 otherwise).
pub(crate) async fn client_of_cookie(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
    method: &Method,
) -> Result<Option<Arc<Client>>, AppError> {
    let Some(id) = cookie(headers) else {
        return Ok(None);
    };
    if !crate::auth::is_random_token(id) {
        return Ok(None);
    }
    if !(method == Method::GET || method == Method::HEAD) {
        same_site(headers)?;
    }
    // Cheap refusals before the database, as for stream tickets: a made-up cookie costs a
    // statement.
    let ip = state.failures.client_ip(headers, extensions);
    state.api.sessions().admit(ip)?;
    if state.breaker.is_open() {
        return Err(AppError::database_unavailable());
    }
    let Some(token_digest) = state.store.inbox_session(&stored_digest(id)).await? else {
        return Ok(None);
    };
    Ok(state.api.client_of_digest(&token_digest))
}

/// 403 unless the request carries the inbox's header and, where the browser says, comes
/// from this origin.
fn same_site(headers: &HeaderMap) -> Result<(), AppError> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if headers.get(CSRF_HEADER).is_none() || site.is_some_and(|s| s != "same-origin") {
        return Err(AppError::Forbidden(format!(
            "a request with the inbox's session must come from the inbox page (header {CSRF_HEADER})"
        )));
    }
    Ok(())
}

/// The session id of the `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    crate::auth::cookie(headers, COOKIE)
}

/// The cookie is `Secure` unless the request came straight over loopback http: no proxy in
/// between (no forwarding headers), so the page is the operator's own machine.
fn secure(request: &Request) -> bool {
    let loopback = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| c.0.ip().is_loopback());
    let forwarded = ["x-forwarded-for", "x-forwarded-proto", "forwarded"]
        .iter()
        .any(|h| request.headers().contains_key(*h));
    !loopback || forwarded
}
