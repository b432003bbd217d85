//! Divar's protocol only: wire types and tolerant parsing of what Divar sends, the client for
//! what we send to Divar, and OAuth scope strings. Nothing here knows about our HTTP server
//! or database.

pub(crate) mod inbound;
pub(crate) mod json;
pub(crate) mod lenient;
pub(crate) mod oauth;
pub mod outbound;
pub mod scope;
pub(crate) mod time;

/// The HTTP client builder of every call kenar-hook makes: redirects are never followed (one
/// could carry a credential to another host, and a 3xx is an answer, not a detour), and
/// `User-Agent` names kenar-hook and its version.
pub(crate) fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("kenar-hook/", env!("CARGO_PKG_VERSION")))
}

/// A request that got no answer, as one line: what failed, then each error beneath it. The
/// URL is left out (a query may hold a token); the errors beneath are hyper's and io's, none
/// of them holds a header. A connect timeout is a connection that failed: the request was
/// never sent.
pub(crate) fn transport_failure(error: &reqwest::Error) -> String {
    let mut line = if error.is_connect() {
        "connection failed"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}
