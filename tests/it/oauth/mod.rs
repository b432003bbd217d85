//! The token vault against a mock OAuth server and Divar API (one wiremock for both): the
//! sign-in routes ([`flow`]), refresh, rotation and re-subscription ([`refresh`]), what is at
//! rest, key rotation and revocation ([`vault`]), the command line ([`cli`]) and the
//! settings ([`settings`]).

mod cli;
mod flow;
mod refresh;
mod settings;
mod vault;

use std::time::{Duration, Instant};

use base64::Engine as _;
use kenar_hook::config::Settings;
use kenar_hook::oauth::Tokens;
use kenar_hook::store::oauth::TokenRow;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// The app-scoped user id of the fixtures.
pub const USER: &str = "pR3xN8vK2mQ7sT1wY5zA9bC4dE6fG0hJ2kL8nP3qR5s=";
pub const CLIENT_ID: &str = "example-app-slug";
pub const CLIENT_SECRET: &str = "cs_live_SECRET_7d1f";
pub const API_KEY: &str = "oauth-api-key-SECRET-2c9a";
pub const GOOD_CODE: &str = "c87sDtaqmWwgis7dYyukMqy6KAArNUFkukAPW8O90Gmi";
pub const SCOPE: &str = "CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q USER_ID offline_access";
pub const RETURN_TO: &str = "https://app.example.ir/signed-in";
pub const TOKEN_PATH: &str = "/oauth2/token";
pub const USERS_PATH: &str = "/v1/open-platform/users";
pub const SUBSCRIPTIONS_PATH: &str = "/v1/open-platform/events/subscriptions";

/// The n-th access and refresh token the mock hands out.
pub fn at(n: u32) -> String {
    format!("ory_at_PLAIN{n}_vV8nGHSkMumIEqojmUrq4Jdc8Zyi")
}
pub fn rt(n: u32) -> String {
    format!("ory_rt_PLAIN{n}_R9MRLXX9vY_AHmzvxTNrw80Mdk")
}

/// A vault key of one repeated byte, base64.
pub fn vault_key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

pub fn token_answer(n: u32, expires_in: u64) -> serde_json::Value {
    json!({
        "access_token": at(n),
        "refresh_token": rt(n),
        "expires_in": expires_in,
        "scope": SCOPE,
        "token_type": "bearer",
    })
}

/// The mock: the code exchange of [`GOOD_CODE`] grants token 1 living `first_lifetime`
/// seconds; the users lookup names [`USER`] for any bearer token; subscriptions answer `{}`.
/// Refreshes are mounted by each test.
pub async fn mock_divar(first_lifetime: u64) -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains(format!("code={GOOD_CODE}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_answer(1, first_lifetime)))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "the code is not valid"}),
        ))
        .with_priority(10)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(USERS_PATH))
        .and(header("x-api-key", API_KEY))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"phone_number": "09121234567", "user_id": USER})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path(SUBSCRIPTIONS_PATH))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .with_priority(10)
        .mount(&mock)
        .await;
    mock
}

/// Mounts the refresh of token `n`: it grants token `n + 1` living `lifetime` seconds.
pub async fn mount_refresh(mock: &MockServer, n: u32, lifetime: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(format!("refresh_token={}", rt(n))))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_answer(n + 1, lifetime)))
        .mount(mock)
        .await;
}

/// Sign-in on, against `mock`, with a fast refresher: tokens refresh at half their life,
/// checked every 100 ms; a failed refresh waits 50 ms, then 100, ...
pub fn oauth_on(settings: &mut Settings, mock: &MockServer) {
    settings.oauth.client_id = Some(CLIENT_ID.to_owned());
    settings.oauth.client_secret = Some(SecretString::from(CLIENT_SECRET));
    settings.oauth.redirect_url = Some("http://127.0.0.1:9/oauth/divar/callback".to_owned());
    settings.oauth.base_url = mock.uri();
    settings.oauth.vault_keys = vec![SecretString::from(vault_key(1))];
    settings.oauth.default_scopes = vec!["CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q".to_owned()];
    settings.oauth.allowed_scopes = vec!["CONVERSATION_SEND_MESSAGE.*".to_owned()];
    // The tests call these routes often; the limit itself is tested on its own.
    settings.oauth.rate_limit_per_minute = 100_000;
    settings.oauth.refresh_at_fraction = 0.5;
    settings.oauth.refresh_check_ms = 100;
    settings.oauth.refresh_retry_base_ms = 50;
    settings.divar.client.api_key = Some(SecretString::from(API_KEY));
    settings.divar.client.open_api_base_url = mock.uri();
    settings.divar.client.base_url = mock.uri();
    settings.callback.allowed_hosts = vec!["app.example.ir".to_owned()];
}

pub async fn spawn_oauth_app(backend: Backend, mock: &MockServer) -> TestApp {
    spawn_app_with(backend, |s| oauth_on(s, mock)).await
}

/// A client that shows redirects instead of following them.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What `start` answered: the consent URL, the state in it, and the cookie to send back.
pub struct Started {
    pub location: url::Url,
    pub state: String,
    pub cookie: String,
    pub set_cookie: String,
}

pub async fn start(app: &TestApp, query: &str) -> Started {
    let response = browser()
        .get(app.url(&format!("/oauth/divar/start{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "{:?}", response.text().await);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let state = location
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state");
    Started {
        location,
        state,
        cookie,
        set_cookie,
    }
}

/// GETs the callback with `query` and, when given, the cookie.
pub async fn callback(app: &TestApp, query: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = browser().get(app.url(&format!("/oauth/divar/callback?{query}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// Signs [`USER`] in through `start` and the callback.
pub async fn sign_in(app: &TestApp) {
    let started = start(app, "").await;
    let response = callback(
        app,
        &format!("code={GOOD_CODE}&state={}", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// The vault of the app's settings over its database (as a program embedding it would).
pub fn tokens(app: &TestApp) -> Tokens {
    Tokens::new(&app.settings, app.store.clone()).expect("the vault opens")
}

/// The user's token row.
pub async fn row(app: &TestApp) -> Option<TokenRow> {
    app.store.token(USER).await.expect("token row")
}

/// Waits (up to 10 s) until `done` holds of the user's token row.
pub async fn wait_for_row(app: &TestApp, what: &str, done: impl Fn(&TokenRow) -> bool) -> TokenRow {
    let started = Instant::now();
    loop {
        if let Some(row) = row(app).await {
            if done(&row) {
                return row;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}: {:?}",
            row(app).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The requests the mock received on `path` whose body holds `needle`.
pub async fn requests(mock: &MockServer, on: &str, needle: &str) -> Vec<Request> {
    mock.received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == on && String::from_utf8_lossy(&r.body).contains(needle))
        .collect()
}

/// The form fields of a request body.
pub fn form(request: &Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}
