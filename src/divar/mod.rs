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
