//! The read API: access, every list and filter, keyset pagination, errors, the live stream
//! and the OpenAPI document.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use kenar_hook::store::{ConversationFacts, MessageSource, NewMessage, NewRecord};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "api-token-1";

async fn api_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| s.api.tokens = vec![SecretString::from(TOKEN)]).await
}

impl TestApp {
    async fn api(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request")
    }

    async fn api_json(&self, path: &str) -> Value {
        let response = self.api(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

fn at(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap()
}

/// A text message of conversation `conv` (post `post`) sent at `us` microseconds.
fn text_message(id: &str, conv: &str, post: &str, us: i64, text: &str, side: &str) -> NewRecord {
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

async fn store(app: &TestApp, records: Vec<NewRecord>) {
    app.store.write_batch(&records).await.unwrap();
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn without_configured_tokens_every_request_is_401_naming_the_setting(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.api("/api/v1/messages").await;
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    assert!(message.contains("api.tokens"), "{message}");
}

async fn a_wrong_token_is_401_and_writes_are_405(backend: Backend) {
    let app = api_app(backend).await;
    let wrong = app
        .client
        .get(app.url("/api/v1/messages"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong).await.0, 401);
    let missing = app
        .client
        .get(app.url("/api/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await.0, 401);
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .client
            .request(method.clone(), app.url("/api/v1/messages"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (405, "method_not_allowed"),
            "{method}"
        );
    }
    let head = app
        .client
        .head(app.url("/api/v1/messages"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

async fn conversations_list_newest_activity_first_with_filters(backend: Backend) {
    let app = api_app(backend).await;
    store(
        &app,
        vec![
            text_message("a1", "conv-a", "POST-A", 1_000_000, "a", "BUYER"),
            text_message("b1", "conv-b", "POST-B", 2_000_000, "b", "BUYER"),
            text_message("c1", "conv-c", "POST-A", 3_000_000, "c", "BUYER"),
            text_message("a2", "conv-a", "POST-A", 4_000_000, "a again", "SELLER"),
        ],
    )
    .await;
    let all = app.api_json("/api/v1/conversations").await;
    assert_eq!(ids(&all), ["conv-a", "conv-c", "conv-b"]);
    assert_eq!(all["next_cursor"], Value::Null);
    let a = &all["items"][0];
    assert_eq!(a["message_count"], 2);
    assert_eq!(a["first_message_at"], "1970-01-01T00:00:01.000000Z");
    assert_eq!(a["last_message_at"], "1970-01-01T00:00:04.000000Z");
    assert_eq!(a["type"], "POST");
    assert_eq!(a["post_token"], "POST-A");
    let post_a = app
        .api_json("/api/v1/conversations?post_token=POST-A")
        .await;
    assert_eq!(ids(&post_a), ["conv-a", "conv-c"]);
    let window = app
        .api_json("/api/v1/conversations?since=1970-01-01T00:00:02Z&until=1970-01-01T00:00:04Z")
        .await;
    assert_eq!(ids(&window), ["conv-c", "conv-b"]);
    let one = app.api_json("/api/v1/conversations/conv-b").await;
    assert_eq!(one["id"], "conv-b");
    assert_eq!(one["message_count"], 1);
    let (status, code, _) = error_of(app.api("/api/v1/conversations/nope").await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

async fn legacy_conversations_name_their_participants(backend: Backend) {
    let app = api_app(backend).await;
    app.post_webhook(fixture("legacy_chat_message_text.json"))
        .await;
    let list = app.api_json("/api/v1/conversations").await;
    let c = &list["items"][0];
    assert_eq!(c["source"], "legacy");
    assert_eq!(
        c["participants"],
        json!({"supply": "0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d", "demand": "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"})
    );
    let messages = app
        .api_json(&format!(
            "/api/v1/conversations/{}/messages",
            c["id"].as_str().unwrap()
        ))
        .await;
    let m = &messages["items"][0];
    assert_eq!(
        m["sender"],
        json!({"side": "BUYER", "type": null, "id": "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"})
    );
    assert_eq!(
        m["receiver"],
        json!({"side": "SELLER", "type": null, "id": "0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d"})
    );
    assert_eq!(m["source"], "legacy");
    assert_eq!(m["sent_at"], "2025-03-09T08:14:27.315000Z");
}

async fn conversation_messages_are_ordered_by_sent_at_not_arrival(backend: Backend) {
    let app = api_app(backend).await;
    // Arrival order differs from sending order; equal sent_at is ordered by id.
    for record in [
        text_message("m3", "conv", "P", 3_000_000, "third", "BUYER"),
        text_message("m1", "conv", "P", 1_000_000, "first", "BUYER"),
        text_message("m2b", "conv", "P", 2_000_000, "second b", "SELLER"),
        text_message("m2a", "conv", "P", 2_000_000, "second a", "BUYER"),
    ] {
        store(&app, vec![record]).await;
    }
    let asc = app.api_json("/api/v1/conversations/conv/messages").await;
    assert_eq!(ids(&asc), ["m1", "m2a", "m2b", "m3"]);
    let desc = app
        .api_json("/api/v1/conversations/conv/messages?order=desc")
        .await;
    assert_eq!(ids(&desc), ["m3", "m2b", "m2a", "m1"]);
    let sellers = app
        .api_json("/api/v1/conversations/conv/messages?sender_side=seller")
        .await;
    assert_eq!(ids(&sellers), ["m2b"]);
    let window = app
        .api_json("/api/v1/conversations/conv/messages?since=1970-01-01T00:00:02Z&until=1970-01-01T00:00:03Z")
        .await;
    assert_eq!(ids(&window), ["m2a", "m2b"]);
    let none = app
        .api_json("/api/v1/conversations/conv/messages?type=IMAGE")
        .await;
    assert_eq!(ids(&none), Vec::<String>::new());
    assert_eq!(
        error_of(app.api("/api/v1/conversations/nope/messages").await)
            .await
            .0,
        404
    );
}

async fn messages_filter_by_post_type_side_time_and_text(backend: Backend) {
    let app = api_app(backend).await;
    for name in [
        "event_new_message_text.json",
        "event_new_message_image.json",
        "event_new_message_contact.json",
        "legacy_chat_message_text.json",
        "event_new_chatbot_message_text.json",
    ] {
        assert_eq!(app.post_webhook(fixture(name)).await.status(), 200);
    }
    store(
        &app,
        vec![text_message(
            "latin",
            "conv-x",
            "POST-X",
            5_000_000,
            "Hello WORLD",
            "BUYER",
        )],
    )
    .await;
    let by_post = app.api_json("/api/v1/messages?post_token=AZx7Kp2Q").await;
    assert_eq!(by_post["items"].as_array().unwrap().len(), 4);
    let images = app.api_json("/api/v1/messages?type=image").await;
    assert_eq!(ids(&images), ["2026edf0-fcbf-11ef-9b3c-7a8b9c0d1e2f"]);
    let image = &images["items"][0];
    assert_eq!(image["text"], Value::Null);
    assert_eq!(image["data"]["size_bytes"], 348211);
    let contact = app.api_json("/api/v1/messages?type=CONTACT").await;
    assert_eq!(contact["items"][0]["data"]["phone"], "+989121234567");
    let persian = app
        .api_json(&format!("/api/v1/messages?q={}", urlencode("معاوضه")))
        .await;
    assert_eq!(ids(&persian), ["f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f"]);
    let latin = app.api_json("/api/v1/messages?q=hello%20world").await;
    assert_eq!(ids(&latin), ["latin"]);
    let wildcard = app.api_json("/api/v1/messages?q=%25").await;
    assert_eq!(
        ids(&wildcard),
        Vec::<String>::new(),
        "% is matched literally"
    );
    let by_conversation = app
        .api_json("/api/v1/messages?conversation_id=b6e41d2a-93c7-4f05-8a1e-7c2d9f3b5a60")
        .await;
    assert_eq!(
        by_conversation["items"][0]["event_type"],
        "NEW_CHATBOT_MESSAGE"
    );
    let buyers_after = app
        .api_json("/api/v1/messages?sender_side=BUYER&since=2025-03-09T08:16:00Z")
        .await;
    assert_eq!(
        ids(&buyers_after),
        [
            "f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f",
            "2026edf0-fcbf-11ef-9b3c-7a8b9c0d1e2f"
        ]
    );
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn one_message_with_its_raw_body(backend: Backend) {
    let app = api_app(backend).await;
    let raw = fixture("event_new_message_text.json");
    app.post_webhook(raw.clone()).await;
    let id = "f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f";
    let plain = app.api_json(&format!("/api/v1/messages/{id}")).await;
    assert!(plain.get("raw").is_none());
    assert_eq!(
        plain["conversation_id"],
        "3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58"
    );
    assert_eq!(
        plain["sender"],
        json!({"side": "BUYER", "type": "HUMAN", "id": null})
    );
    assert_eq!(plain["receiver"], Value::Null);
    assert_eq!(
        plain["metadata"],
        json!({"tenant": "garage-42", "subscription": "post-AZx7Kp2Q"})
    );
    let with_raw = app
        .api_json(&format!("/api/v1/messages/{id}?include=raw"))
        .await;
    assert_eq!(with_raw["raw"].as_str().unwrap().as_bytes(), raw.as_slice());
    assert_eq!(
        error_of(app.api("/api/v1/messages/nope").await).await.0,
        404
    );
    assert_eq!(
        error_of(
            app.api(&format!("/api/v1/messages/{id}?include=everything"))
                .await
        )
        .await
        .0,
        400
    );
}

async fn events_and_clicks_list_with_filters(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        s.callback.allowed_hosts = vec!["app.example-kenar.ir".into()];
        s.callback.fallback_url = Some("https://app.example-kenar.ir/start/{post_token}".into());
    })
    .await;
    for name in [
        "event_post_update_publish.json",
        "event_user_access_revocation.json",
        "event_post_update_archive.json",
    ] {
        app.post_webhook(fixture(name)).await;
    }
    let all = app.api_json("/api/v1/events").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let updates = app.api_json("/api/v1/events?type=post_update").await;
    let types: Vec<&str> = updates["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subtype"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PUBLISH", "ARCHIVE"]);
    assert_eq!(updates["items"][0]["payload"]["post"]["token"], "AZx7Kp2Q");
    let later = app
        .api_json("/api/v1/events?since=2999-01-01T00:00:00Z")
        .await;
    assert!(later["items"].as_array().unwrap().is_empty());

    for (name, post) in [
        ("legacy_button_click.json", "AZx7Kp2Q"),
        ("open_server_link_v2.json", "AZx7Kp2Q"),
    ] {
        let mut body: Value = serde_json::from_slice(&fixture(name)).unwrap();
        body["post_token"] = json!(post);
        let response = app
            .client
            .post(app.url("/callbacks/divar"))
            .header("authorization", KEY)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let clicks = app.api_json("/api/v1/clicks?post_token=AZx7Kp2Q").await;
    assert_eq!(clicks["items"].as_array().unwrap().len(), 2);
    assert_eq!(clicks["items"][0]["version"], "legacy");
    assert_eq!(
        clicks["items"][1]["url"],
        "https://app.example-kenar.ir/start/AZx7Kp2Q"
    );
    let by_conversation = app
        .api_json("/api/v1/clicks?conversation_id=3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58")
        .await;
    assert_eq!(by_conversation["items"].as_array().unwrap().len(), 1);
}

async fn pagination_walks_every_row_once_while_new_rows_arrive(backend: Backend) {
    let app = api_app(backend).await;
    let originals: Vec<String> = (0..23).map(|i| format!("m{i:02}")).collect();
    // Several rows share a sent_at, so the id tie-break matters.
    store(
        &app,
        originals
            .iter()
            .enumerate()
            .map(|(i, id)| {
                text_message(
                    id,
                    "conv",
                    "P",
                    1_000_000 + (i as i64 / 3) * 1_000,
                    "t",
                    "BUYER",
                )
            })
            .collect(),
    )
    .await;
    for path in [
        "/api/v1/conversations/conv/messages",
        "/api/v1/messages?post_token=P",
        "/api/v1/conversations/conv/messages?order=desc",
    ] {
        let mut seen: Vec<String> = Vec::new();
        let mut next = format!(
            "{path}{}limit=5",
            if path.contains('?') { "&" } else { "?" }
        );
        let mut extra = 0;
        loop {
            let page = app.api_json(&next).await;
            seen.extend(ids(&page));
            // New messages arrive between pages: later and earlier than everything seen.
            extra += 1;
            store(
                &app,
                vec![
                    text_message(
                        &format!("new-late-{path}-{extra}"),
                        "conv",
                        "P",
                        9_000_000 + extra,
                        "n",
                        "BUYER",
                    ),
                    text_message(
                        &format!("new-early-{path}-{extra}"),
                        "conv",
                        "P",
                        extra,
                        "n",
                        "BUYER",
                    ),
                ],
            )
            .await;
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    next = format!(
                        "{path}{}limit=5&cursor={cursor}",
                        if path.contains('?') { "&" } else { "?" }
                    )
                }
                None => break,
            }
        }
        for id in &originals {
            assert_eq!(
                seen.iter().filter(|s| *s == id).count(),
                1,
                "{path}: {id} seen once"
            );
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{path}: no row twice");
    }
}

async fn bad_parameters_are_400_naming_the_parameter(backend: Backend) {
    let app = api_app(backend).await;
    store(
        &app,
        (0..3)
            .map(|i| text_message(&format!("m{i}"), "conv", "P", 1_000_000 + i, "t", "BUYER"))
            .collect(),
    )
    .await;
    let page = app.api_json("/api/v1/messages?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let events_cursor = {
        app.post_webhook(fixture("event_user_access_revocation.json"))
            .await;
        app.post_webhook(fixture("event_post_update_retire.json"))
            .await;
        let e = app.api_json("/api/v1/events?limit=1").await;
        e["next_cursor"].as_str().unwrap().to_owned()
    };
    let cases = [
        ("/api/v1/messages?limit=0", "limit"),
        ("/api/v1/messages?limit=501", "limit"),
        ("/api/v1/messages?limit=ten", "limit"),
        ("/api/v1/messages?type=STICKER", "type"),
        ("/api/v1/messages?since=yesterday", "since"),
        ("/api/v1/conversations?until=2025-13-01", "until"),
        ("/api/v1/messages?sender_side=BOTH", "sender_side"),
        ("/api/v1/messages?order=sideways", "order"),
        ("/api/v1/messages?cursor=garbage", "cursor"),
        (
            &format!("/api/v1/messages?cursor={events_cursor}") as &str,
            "cursor",
        ),
        (&format!("/api/v1/clicks?cursor={events_cursor}"), "cursor"),
        (
            &format!("/api/v1/messages?post_token=Q&cursor={cursor}"),
            "cursor",
        ),
        ("/api/v1/events?type=not-a-type", "type"),
        ("/api/v1/stream?include=everything", "include"),
    ];
    for (path, name) in cases {
        let (status, code, message) = error_of(app.api(path).await).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_parameter"),
            "{path}"
        );
        assert!(message.starts_with(name), "{path}: {message}");
    }
    let next = app
        .api_json(&format!("/api/v1/messages?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(ids(&next), ["m1"]);
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        s.api.rate_limit_per_second = 1;
        s.api.rate_limit_burst = 2;
        s.api.auth_failures_per_minute = 2;
    })
    .await;
    // Burst 2 and one more a second: of 6 requests sent at once, at most 3 pass unless they
    // take over a second to arrive, and every refusal says when to come back.
    let responses = futures_util::future::join_all((0..6).map(|_| app.api("/api/v1/events"))).await;
    let limited: Vec<&reqwest::Response> = responses.iter().filter(|r| r.status() == 429).collect();
    assert!(limited.len() >= 3, "{} of 6 refused", limited.len());
    assert!(
        responses
            .iter()
            .all(|r| matches!(r.status().as_u16(), 200 | 429))
    );
    for r in limited {
        let retry_after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1);
    }
    let bad = || async {
        app.client
            .get(app.url("/api/v1/events"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
    };
    assert_eq!(bad().await.status(), 401);
    assert_eq!(bad().await.status(), 401);
    let third = bad().await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
}

on_both_backends!(
    without_configured_tokens_every_request_is_401_naming_the_setting,
    a_wrong_token_is_401_and_writes_are_405,
    conversations_list_newest_activity_first_with_filters,
    legacy_conversations_name_their_participants,
    conversation_messages_are_ordered_by_sent_at_not_arrival,
    messages_filter_by_post_type_side_time_and_text,
    one_message_with_its_raw_body,
    events_and_clicks_list_with_filters,
    pagination_walks_every_row_once_while_new_rows_arrive,
    bad_parameters_are_400_naming_the_parameter,
    rate_limits_answer_429_with_retry_after,
    the_stream_delivers_and_resumes_without_gaps_or_repeats,
    registrations_are_listed_without_keys,
);

/// Reads Server-Sent Events from a response.
pub struct SseReader {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub id: String,
    pub data: Value,
}

impl SseReader {
    async fn open(app: &TestApp, path: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = app.client.get(app.url(path)).bearer_auth(TOKEN);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        SseReader::of(request.send().await.unwrap())
    }

    /// Reads the events of a stream's answer (which must be 200).
    pub fn of(response: reqwest::Response) -> SseReader {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseReader {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event within `wait`, skipping keep-alive comments.
    pub async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().into();
                    }
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().into();
                    }
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(Sse {
                    event,
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??
                .ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn the_stream_delivers_and_resumes_without_gaps_or_repeats(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        s.callback.allowed_hosts = vec!["app.example-kenar.ir".into()];
        s.callback.fallback_url = Some("https://app.example-kenar.ir/start".into());
    })
    .await;
    store(
        &app,
        vec![text_message(
            "before", "conv", "AZx7Kp2Q", 1, "old", "BUYER",
        )],
    )
    .await;
    let mut stream = SseReader::open(&app, "/api/v1/stream?include=events,clicks", None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.post_webhook(fixture("event_new_message_text.json"))
        .await;
    app.post_webhook(fixture("event_post_update_retire.json"))
        .await;
    app.client
        .post(app.url("/callbacks/divar"))
        .header("authorization", KEY)
        .body(fixture("legacy_button_click.json"))
        .send()
        .await
        .unwrap();
    // Each kind arrives in its own commit order; across kinds the order may differ when
    // commits land while the stream is querying, so the three are taken by kind.
    let wait = Duration::from_secs(10);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(stream.next(wait).await.expect("three events"));
    }
    let of_kind = |kind: &str| {
        let found: Vec<_> = got.iter().filter(|e| e.event == kind).collect();
        assert_eq!(found.len(), 1, "one {kind}: {got:?}");
        found[0].clone()
    };
    let first = of_kind("message");
    assert_eq!(first.data["id"], "f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f");
    assert_eq!(
        first.data["text"],
        "سلام، قیمت نهایی چنده؟ امکان معاوضه هم هست؟"
    );
    let second = of_kind("event");
    assert_eq!(second.data["type"], "POST_UPDATE");
    of_kind("click");
    drop(stream);

    // While disconnected, more arrive; resuming from a position after the first message
    // (and before every event and click) replays exactly what came after it.
    app.post_webhook(fixture("event_new_message_image.json"))
        .await;
    let after_first = format!("{}.e0.c0", first.id.split('.').next().unwrap());
    let mut resumed = SseReader::open(
        &app,
        "/api/v1/stream?include=events,clicks",
        Some(&after_first),
    )
    .await;
    let mut kinds = Vec::new();
    while let Some(e) = resumed.next(Duration::from_secs(2)).await {
        kinds.push((e.event.clone(), e.data["id"].clone()));
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(kinds[0].0, "message");
    assert_eq!(kinds[0].1, "2026edf0-fcbf-11ef-9b3c-7a8b9c0d1e2f");
    assert_eq!(kinds[1], ("event".to_owned(), second.data["id"].clone()));
    assert_eq!(kinds[2].0, "click");

    // Filters: another conversation's messages are not delivered.
    let mut filtered = SseReader::open(
        &app,
        "/api/v1/stream?conversation_id=conv",
        Some("m0.e0.c0"),
    )
    .await;
    let only = filtered.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(only.data["id"], "before");
    assert!(filtered.next(Duration::from_secs(1)).await.is_none());
}

async fn registrations_are_listed_without_keys(backend: Backend) {
    let app = api_app(backend).await;
    app.store
        .insert_registration(&kenar_hook::store::Registration {
            id: "r1".into(),
            post_token: "AZx7Kp2Q".into(),
            endpoint: "https://hooks.example-app.ir/kenar".into(),
            key_digest: "ab".repeat(32),
            created_at: at(1_741_508_067_000_000),
        })
        .await
        .unwrap();
    let list = app.api_json("/api/v1/registrations").await;
    assert_eq!(
        list["items"],
        json!([{"id": "r1", "post_token": "AZx7Kp2Q",
        "endpoint": "https://hooks.example-app.ir/kenar", "created_at": "2025-03-09T08:14:27.000000Z"}])
    );
}

#[tokio::test]
async fn postgres_stream_delivers_messages_ingested_by_another_instance() {
    let first = api_app(Backend::Postgres).await;
    let url = first.settings.database.url.clone();
    let second = spawn_app_with(Backend::Postgres, |s| s.database.url = url).await;
    let mut stream = SseReader::open(&first, "/api/v1/stream", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        second
            .post_webhook(fixture("event_new_message_video.json"))
            .await
            .status(),
        200
    );
    // Well under the 5 s poll: the NOTIFY from the other instance woke this stream.
    let event = stream
        .next(Duration::from_secs(3))
        .await
        .expect("delivered across instances");
    assert_eq!(event.data["id"], "b61669d0-fcbf-11ef-aa7d-5e4f1c9a2b3d");
    assert_eq!(event.data["type"], "VIDEO");
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json is committed");
    let generated = kenar_hook::api::openapi::document();
    assert!(
        committed == generated,
        "openapi.json is stale: run `cargo run -- openapi > openapi.json`"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/webhooks/divar",
        "/callbacks/divar",
        "/callbacks/divar/dynamic-action",
        "/api/v1/conversations",
        "/api/v1/conversations/{id}",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/messages",
        "/api/v1/messages/{id}",
        "/api/v1/events",
        "/api/v1/clicks",
        "/api/v1/stream",
        "/api/v1/registrations",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
}

/// Every answer a route can give is listed, so generated clients handle them: the
/// middleware's too, and each query parameter's enum, format and bounds.
#[test]
fn the_openapi_document_lists_every_answer_and_parameter_shape() {
    let doc: Value = serde_json::from_str(&kenar_hook::api::openapi::document()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/openapi.json"));
    assert!(paths.contains_key("/api/v1/stream/tickets"));
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let mut expected = vec!["408"];
            if path.starts_with("/api/v1/") {
                expected.extend(["400", "401", "429", "503"]);
            }
            if path.starts_with("/webhooks/") || path.starts_with("/callbacks/") {
                expected.extend(["401", "413", "429"]);
            }
            for status in expected {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lists {status}"
                );
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                match parameter["name"].as_str().unwrap() {
                    "limit" => {
                        assert_eq!(schema["minimum"], 1, "{path}");
                        assert_eq!(schema["maximum"], 500, "{path}");
                    }
                    "since" | "until" => assert_eq!(schema["format"], "date-time", "{path}"),
                    "order" | "sender_side" => assert!(schema["enum"].is_array(), "{path}"),
                    "type" if !path.ends_with("/events") => {
                        assert!(schema["enum"].as_array().unwrap().contains(&json!("TEXT")))
                    }
                    _ => {}
                }
            }
        }
    }
}
