//! The read API: access, every list and filter, keyset pagination, errors, the live stream
//! (and its tickets) and the OpenAPI document. Shared here: the app with a token, and
//! records to store directly.

mod access;
mod lists;
mod openapi;
mod scopes;
mod stream;
mod tickets;

use chrono::{DateTime, Utc};
use kenar_hook::store::{ConversationFacts, MessageSource, NewMessage, NewRecord};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

pub(super) const TOKEN: &str = "api-token-1";

pub(super) async fn api_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| s.api.tokens = vec![SecretString::from(TOKEN)]).await
}

impl TestApp {
    pub(super) async fn api(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request")
    }

    pub(super) async fn api_json(&self, path: &str) -> Value {
        let response = self.api(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

pub(super) fn at(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap()
}

/// A text message of conversation `conv` (post `post`) sent at `us` microseconds.
pub(super) fn text_message(
    id: &str,
    conv: &str,
    post: &str,
    us: i64,
    text: &str,
    side: &str,
) -> NewRecord {
    NewRecord::Message(NewMessage {
        id: id.into(),
        origin: String::new(),
        source: MessageSource::Events,
        event_type: "NEW_MESSAGE".into(),
        conversation: ConversationFacts {
            id: conv.into(),
            kind: "POST".into(),
            post_token: Some(post.into()),
            supply_user_id: None,
            demand_user_id: None,
        },
        message_type: "TEXT".into(),
        text: Some(text.into()),
        sender_side: Some(side.into()),
        sender_type: Some("HUMAN".into()),
        sender_id: None,
        receiver_side: None,
        receiver_id: None,
        sent_at: at(us),
        sent_at_raw: Some(us.to_string()),
        received_at: Utc::now(),
        data: None,
        metadata: None,
        raw_body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
    })
}

pub(super) async fn store(app: &TestApp, records: Vec<NewRecord>) {
    app.store.write_batch(&records).await.unwrap();
}

pub(super) fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}
