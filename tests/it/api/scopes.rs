//! Clients with scopes and posts: what a route outside the scopes answers, what a client
//! limited to some posts sees, tickets that try to widen, and masked phone numbers.

use std::time::Duration;

use chrono::Utc;
use kenar_hook::config::ClientSettings;
use kenar_hook::store::{NewEvent, NewRecord};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::stream::SseReader;
use super::*;

const EVENTS_ONLY: &str = "events-only-token";
const POST_A: &str = "post-a-token";
const MESSAGES_RAW: &str = "messages-raw-token";

fn client(name: &str, token: &str, scopes: &[&str], posts: Option<&[&str]>) -> ClientSettings {
    ClientSettings {
        name: name.into(),
        token: SecretString::from(token),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        post_tokens: posts.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
    }
}

async fn scoped_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        s.api.clients = vec![
            client("events-only", EVENTS_ONLY, &["events"], None),
            client(
                "post-a",
                POST_A,
                &["messages", "events", "clicks"],
                Some(&["A"]),
            ),
            client("messages-raw", MESSAGES_RAW, &["messages", "raw"], None),
        ];
    })
    .await
}

impl TestApp {
    async fn as_client(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn json_as(&self, token: &str, path: &str) -> Value {
        let response = self.as_client(token, path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    async fn ticket_as(&self, token: &str, query: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/v1/stream/tickets{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

fn contact(id: &str, conv: &str, post: &str, us: i64) -> NewRecord {
    let NewRecord::Message(mut m) = text_message(id, conv, post, us, "", "BUYER") else {
        unreachable!()
    };
    m.message_type = "CONTACT".into();
    m.text = None;
    m.data = Some(json!({"phone": "+989121234567", "name": "Ali Rezaei"}));
    NewRecord::Message(m)
}

fn event(key: &str, kind: &str, post: Option<&str>) -> NewRecord {
    NewRecord::Event(NewEvent {
        dedupe_key: key.into(),
        event_type: kind.into(),
        subtype: None,
        subject_id: None,
        post_token: post.map(str::to_owned),
        payload: json!({"kind": kind}),
        metadata: None,
        raw_body: b"{}".to_vec(),
        received_at: Utc::now(),
    })
}

/// Messages of posts A and B, an event of each and one of no post.
async fn two_posts(app: &TestApp) {
    store(
        app,
        vec![
            text_message("ma", "ca", "A", 1_000_000, "hello a", "BUYER"),
            text_message("mb", "cb", "B", 2_000_000, "hello b", "BUYER"),
            event("e1", "POST_UPDATE", Some("A")),
            event("e2", "POST_UPDATE", Some("B")),
            event("e3", "USER_ACCESS_REVOCATION", None),
        ],
    )
    .await;
}

async fn a_route_outside_the_scopes_is_403_naming_the_scope(backend: Backend) {
    let app = scoped_app(backend).await;
    two_posts(&app).await;
    for (path, scope) in [
        ("/api/v1/conversations", "messages"),
        ("/api/v1/conversations/ca", "messages"),
        ("/api/v1/conversations/ca/messages", "messages"),
        ("/api/v1/messages", "messages"),
        ("/api/v1/messages/ma", "messages"),
        ("/api/v1/registrations", "messages"),
        ("/api/v1/stream", "messages"),
        ("/api/v1/clicks", "clicks"),
        ("/api/v1/forwarding/endpoints", "forwarding"),
        ("/api/v1/forwarding/attempts", "forwarding"),
        ("/api/v1/forwarding/dead", "forwarding"),
        ("/api/v1/outbox", "forwarding"),
        ("/api/v1/rejected", "rejected"),
    ] {
        let (status, code, message) = error_of(app.as_client(EVENTS_ONLY, path).await).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{path}");
        assert!(
            message.contains(&format!("\"{scope}\"")),
            "{path}: {message}"
        );
    }
    let (status, _, message) = error_of(app.ticket_as(EVENTS_ONLY, "").await).await;
    assert_eq!(status, 403);
    assert!(message.contains("\"messages\""), "{message}");
    assert_eq!(
        app.json_as(EVENTS_ONLY, "/api/v1/events").await["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        app.as_client(EVENTS_ONLY, "/api/v1/openapi.json")
            .await
            .status(),
        200
    );

    // include= needs its scopes: raw needs raw and pii, the stream's events and clicks theirs.
    for (token, path, scope) in [
        (POST_A, "/api/v1/messages/ma?include=raw", "raw"),
        (MESSAGES_RAW, "/api/v1/messages/ma?include=raw", "pii"),
        (MESSAGES_RAW, "/api/v1/stream?include=events", "events"),
        (MESSAGES_RAW, "/api/v1/stream?include=clicks", "clicks"),
    ] {
        let (status, code, message) = error_of(app.as_client(token, path).await).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{path}");
        assert!(
            message.contains(&format!("\"{scope}\"")),
            "{path}: {message}"
        );
    }
    // api.tokens entries have every scope.
    let raw = app.json_as(TOKEN, "/api/v1/messages/ma?include=raw").await;
    assert!(raw["raw"].is_string());
}

async fn a_client_limited_to_posts_sees_only_them(backend: Backend) {
    let app = scoped_app(backend).await;
    two_posts(&app).await;
    assert_eq!(
        ids(&app.json_as(POST_A, "/api/v1/conversations").await),
        ["ca"]
    );
    assert_eq!(ids(&app.json_as(POST_A, "/api/v1/messages").await), ["ma"]);
    assert_eq!(
        ids(&app.json_as(TOKEN, "/api/v1/messages").await),
        ["ma", "mb"]
    );
    for path in [
        "/api/v1/messages?post_token=B",
        "/api/v1/conversations?post_token=B",
        "/api/v1/messages?conversation_id=cb",
        "/api/v1/clicks?post_token=B",
    ] {
        let page = app.json_as(POST_A, path).await;
        assert!(
            page["items"].as_array().unwrap().is_empty(),
            "{path}: {page}"
        );
    }
    // Another post's record is exactly like one that does not exist.
    for (path, missing) in [
        ("/api/v1/conversations/cb", "/api/v1/conversations/nope"),
        (
            "/api/v1/conversations/cb/messages",
            "/api/v1/conversations/nope/messages",
        ),
        ("/api/v1/messages/mb", "/api/v1/messages/nope"),
    ] {
        let other = error_of(app.as_client(POST_A, path).await).await;
        let absent = error_of(app.as_client(POST_A, missing).await).await;
        assert_eq!((other.0, other.1.as_str()), (404, "not_found"), "{path}");
        assert_eq!((other.0, &other.1), (absent.0, &absent.1), "{path}");
    }
    // Events of another post, and of no post, are left out.
    let events = app.json_as(POST_A, "/api/v1/events").await;
    let posts: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["post_token"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(posts, ["A"]);

    // The stream too.
    let response = app
        .client
        .get(app.url("/api/v1/stream?from=start&include=events"))
        .bearer_auth(POST_A)
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::of(response);
    let wait = Duration::from_secs(5);
    let first = stream.next(wait).await.expect("post A's message");
    assert_eq!(first.data["id"], "ma");
    let second = stream.next(wait).await.expect("post A's event");
    assert_eq!(
        (second.event.as_str(), &second.data["post_token"]),
        ("event", &json!("A"))
    );
    store(
        &app,
        vec![
            text_message("mb2", "cb", "B", 3_000_000, "b", "BUYER"),
            text_message("ma2", "ca", "A", 4_000_000, "a", "BUYER"),
        ],
    )
    .await;
    let live = stream.next(wait).await.expect("post A's new message");
    assert_eq!(live.data["id"], "ma2", "post B's message is not sent");
}

async fn ticket(app: &TestApp, token: &str, query: &str) -> String {
    let response = app.ticket_as(token, query).await;
    assert_eq!(response.status(), 201, "{query}");
    let body: Value = response.json().await.unwrap();
    body["ticket"].as_str().unwrap().to_owned()
}

async fn a_ticket_serves_what_it_was_issued_for_and_nothing_wider(backend: Backend) {
    let app = scoped_app(backend).await;
    two_posts(&app).await;
    // Nothing may be given beside a ticket: not another post, not an earlier start.
    for extra in [
        "&post_token=B",
        "&from=start",
        "&include=events",
        "&conversation_id=cb",
    ] {
        let t = ticket(&app, POST_A, "").await;
        let response = app
            .client
            .get(app.url(&format!("/api/v1/stream?ticket={t}{extra}")))
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_parameter"),
            "{extra}"
        );
    }
    let t = ticket(&app, POST_A, "").await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/stream?ticket={t}")))
        .header("last-event-id", "m0.e0.c0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await.0,
        400,
        "Last-Event-ID beside a ticket"
    );
    // A ticket cannot be issued wider than its client.
    assert_eq!(
        error_of(app.ticket_as(POST_A, "?include=raw").await)
            .await
            .0,
        400
    );
    let (status, _, message) = error_of(app.ticket_as(MESSAGES_RAW, "?include=events").await).await;
    assert_eq!(status, 403);
    assert!(message.contains("\"events\""), "{message}");

    // Issued for post B by a client of post A: that stream shows nothing.
    let t = ticket(&app, POST_A, "?post_token=B&from=start").await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/stream?ticket={t}")))
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::of(response);
    assert!(stream.next(Duration::from_millis(700)).await.is_none());

    // Issued from now on, for every post of the client: post A's new messages only.
    let t = ticket(&app, POST_A, "").await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/stream?ticket={t}")))
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::of(response);
    assert!(
        stream.next(Duration::from_millis(700)).await.is_none(),
        "no replay"
    );
    store(
        &app,
        vec![
            text_message("mb2", "cb", "B", 3_000_000, "b", "BUYER"),
            text_message("ma2", "ca", "A", 4_000_000, "a", "BUYER"),
        ],
    )
    .await;
    let live = stream
        .next(Duration::from_secs(5))
        .await
        .expect("post A's message");
    assert_eq!(live.data["id"], "ma2");

    // Issued with from=start: the replay it was issued for.
    let t = ticket(&app, POST_A, "?from=start").await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/stream?ticket={t}")))
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::of(response);
    let first = stream.next(Duration::from_secs(5)).await.expect("replayed");
    assert_eq!(first.data["id"], "ma");
}

async fn phones_are_masked_without_pii_and_whole_with_it(backend: Backend) {
    let app = scoped_app(backend).await;
    store(&app, vec![contact("mc", "ca", "A", 1_000_000)]).await;
    let masked = json!({"phone": "+989*******67", "name": "A*********"});
    let whole = json!({"phone": "+989121234567", "name": "Ali Rezaei"});
    let list = app.json_as(POST_A, "/api/v1/messages").await;
    assert_eq!(list["items"][0]["data"], masked);
    assert_eq!(
        app.json_as(POST_A, "/api/v1/messages/mc").await["data"],
        masked
    );
    assert_eq!(
        app.json_as(TOKEN, "/api/v1/messages").await["items"][0]["data"],
        whole
    );
    assert_eq!(
        app.json_as(TOKEN, "/api/v1/messages/mc").await["data"],
        whole
    );
    // A text search does not find a masked phone.
    let found = app.json_as(POST_A, "/api/v1/messages?q=1234567").await;
    assert!(found["items"].as_array().unwrap().is_empty());

    let open = |token: &'static str| {
        let request = app
            .client
            .get(app.url("/api/v1/stream?from=start"))
            .bearer_auth(token);
        async move { SseReader::of(request.send().await.unwrap()) }
    };
    let wait = Duration::from_secs(5);
    let (mut without, mut with) = (open(POST_A).await, open(TOKEN).await);
    assert_eq!(without.next(wait).await.unwrap().data["data"], masked);
    assert_eq!(with.next(wait).await.unwrap().data["data"], whole);
    // Live rows come from the hub, which serialises each row once for every stream.
    store(&app, vec![contact("mc2", "ca", "A", 2_000_000)]).await;
    assert_eq!(without.next(wait).await.unwrap().data["data"], masked);
    assert_eq!(with.next(wait).await.unwrap().data["data"], whole);
}

on_both_backends!(
    a_route_outside_the_scopes_is_403_naming_the_scope,
    a_client_limited_to_posts_sees_only_them,
    a_ticket_serves_what_it_was_issued_for_and_nothing_wider,
    phones_are_masked_without_pii_and_whole_with_it,
);
