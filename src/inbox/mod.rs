//! The web inbox at `/inbox` (docs/inbox.md): a page of plain ES modules, embedded in the
//! binary, that reads the `/api/v1` lists and live stream as one API client. The operator
//! signs in once with that client's token; the browser then holds only an HttpOnly session
//! cookie, so the token is never in a URL or in storage a script can read.

mod session;

pub(crate) use session::client_of_cookie;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// Scripts, styles, images and connections from this origin only; no inline code, no
/// framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// The routes of the inbox; none while `inbox.enabled` is false.
pub fn routes(state: &AppState) -> Router<AppState> {
    if !state.settings.inbox.enabled {
        return Router::new();
    }
    Router::new()
        .route("/inbox", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route(
            "/inbox/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/inbox/app.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route(
            "/inbox/session",
            get(session::show)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .layer(middleware::from_fn(secure_headers))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Every inbox answer: the policy above, never framed, never sniffed, never cached, and no
/// referrer sent from the page.
async fn secure_headers(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}
