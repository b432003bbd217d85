//! The Divar client against wiremock: exact requests compared with the fixtures
//! ([`requests`]), error classes, retries and their timing ([`failures`]), sends never
//! repeated after they may have reached Divar ([`sends`]), secrets kept out of every output and
//! validation before any call ([`safety`]). No database.

mod failures;
mod requests;
mod safety;
mod sends;

use std::time::{Duration, Instant};

use kenar_hook::divar::outbound::*;
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use wiremock::matchers::{any, body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::fixture;

pub const API_KEY: &str = "api-key-SECRET-1f2e";
pub const TOKEN: &str = "access-token-SECRET-9a8b";
pub const CONVERSATION: &str = "b6e41d2a-93c7-4f05-8a1e-7c2d9f3b5a60";
pub const USER: &str = "0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d";
pub const PEER: &str = "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
pub const POST: &str = "AZx7Kp2Q";

pub fn json_fixture(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

pub fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_value(json_fixture(name)).expect("fixture parses")
}

pub fn token() -> SecretString {
    SecretString::from(TOKEN)
}

/// Fast retries: at most 4 attempts, waits of at most 10, 20 and 40 ms.
pub fn settings(server: &MockServer) -> DivarClientSettings {
    DivarClientSettings {
        api_key: Some(API_KEY.into()),
        base_url: server.uri(),
        open_api_base_url: server.uri(),
        request_timeout_ms: 2_000,
        retry_base_delay_ms: 10,
        retry_max_delay_ms: 40,
        retry_deadline_ms: 5_000,
        ..Default::default()
    }
}

pub fn client(server: &MockServer) -> DivarClient {
    DivarClient::new(settings(server)).expect("client")
}

pub fn data(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).into(), json!(v))).collect()
}

/// A mock of `POST path` answering `status` with `body`, expected `times` times.
pub async fn answer(
    server: &MockServer,
    route: &str,
    status: u16,
    body: Value,
    times: impl Into<wiremock::Times>,
) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(times)
        .mount(server)
        .await;
}

pub async fn send_text(client: &DivarClient) -> Result<SendMessageResponse, DivarError> {
    client
        .send_message(&token(), CONVERSATION, &SendMessage::text("hi"))
        .await
}

pub fn v2_path() -> String {
    format!("/v2/open-platform/conversations/{CONVERSATION}/messages")
}
