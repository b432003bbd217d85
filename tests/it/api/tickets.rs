//! The live stream from a browser: single-use tickets instead of the Authorization header,
//! and where a stream starts (`from=start`, `Last-Event-ID`).

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::stream::SseReader;
use crate::helpers::*;

use super::TOKEN;
const OTHER_TOKEN: &str = "api-token-2-0123456789abcdefghijklmnop";

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN), SecretString::from(OTHER_TOKEN)];
    })
    .await
}

async fn ticket(app: &TestApp) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/stream/tickets"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .expect("expires_at is RFC 3339");
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((50..=61).contains(&left), "about a minute left: {left}");
    body["ticket"].as_str().unwrap().to_owned()
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

async fn a_ticket_opens_one_stream_without_a_header(backend: Backend) {
    let app = app(backend).await;
    let t = ticket(&app).await;
    let mut stream = SseReader::of(get(&app, &format!("/api/v1/stream?ticket={t}")).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.post_webhook(fixture("event_new_message_text.json"))
            .await
            .status(),
        200
    );
    let event = stream
        .next(Duration::from_secs(10))
        .await
        .expect("the stored message arrives");
    assert_eq!(event.event, "message");

    // Used once: the same ticket is refused, with the JSON error and the Bearer challenge.
    let again = get(&app, &format!("/api/v1/stream?ticket={t}")).await;
    assert_eq!(again.status(), 401);
    assert!(
        again.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (_, code, message) = error_of(again).await;
    assert_eq!(code, "unauthorized");
    assert!(message.contains("ticket"), "{message}");

    // Made up, or of the right shape but never issued.
    for bogus in ["nope", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let response = get(&app, &format!("/api/v1/stream?ticket={bogus}")).await;
        assert_eq!(response.status(), 401, "{bogus}");
    }
}

async fn a_ticket_opens_the_stream_only(backend: Backend) {
    let app = app(backend).await;
    let t = ticket(&app).await;
    for path in ["/api/v1/messages", "/api/v1/conversations"] {
        let response = get(&app, &format!("{path}?ticket={t}")).await;
        assert_eq!(response.status(), 401, "{path}");
    }
    // Still good for the stream afterwards: the refusals above did not redeem it.
    SseReader::of(get(&app, &format!("/api/v1/stream?ticket={t}")).await);
    // Asking for a ticket needs the bearer token itself.
    let response = app
        .client
        .post(app.url("/api/v1/stream/tickets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn an_expired_ticket_is_refused(backend: Backend) {
    let app = app(backend).await;
    let ticket = "expired-ticket-for-the-test";
    let token_digest = hex::encode(kenar_hook::auth::digest(TOKEN.as_bytes()));
    app.store
        .insert_stream_ticket(
            &kenar_hook::api::tickets::digest(ticket),
            &token_digest,
            "{}",
            chrono::Utc::now() - chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    let response = get(&app, &format!("/api/v1/stream?ticket={ticket}")).await;
    assert_eq!(response.status(), 401);
    // The database holds digests only, never a ticket itself.
    let t = self::ticket(&app).await;
    assert_eq!(
        app.store
            .redeem_stream_ticket(&kenar_hook::api::tickets::digest(&t))
            .await
            .unwrap()
            .map(|(token, _)| token),
        Some(token_digest),
        "stored under its digest, for the token it was issued to"
    );
    assert_eq!(
        app.store.redeem_stream_ticket(&t).await.unwrap(),
        None,
        "not under the ticket itself"
    );
}

async fn open(app: &TestApp, path: &str, last_event_id: Option<&str>) -> SseReader {
    let mut request = app.client.get(app.url(path)).bearer_auth(TOKEN);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    SseReader::of(request.send().await.unwrap())
}

async fn from_start_replays_everything_and_last_event_id_wins(backend: Backend) {
    let app = app(backend).await;
    for fixture_name in [
        "event_new_message_text.json",
        "legacy_chat_message_text.json",
    ] {
        assert_eq!(app.post_webhook(fixture(fixture_name)).await.status(), 200);
    }
    let wait = Duration::from_secs(5);
    // Without a position, only what is stored from now on.
    let mut now_on = open(&app, "/api/v1/stream", None).await;
    assert!(now_on.next(Duration::from_millis(700)).await.is_none());
    // from=start: both stored messages, in commit order.
    let mut replay = open(&app, "/api/v1/stream?from=start", None).await;
    let first = replay.next(wait).await.expect("first");
    let second = replay.next(wait).await.expect("second");
    assert_eq!(
        (first.event.as_str(), second.event.as_str()),
        ("message", "message")
    );
    // The same URL reconnecting with Last-Event-ID continues after it, as EventSource does.
    let mut resumed = open(&app, "/api/v1/stream?from=start", Some(&first.id)).await;
    let next = resumed.next(wait).await.expect("the second again");
    assert_eq!(next.id, second.id);
    // m0.e0.c0 is the beginning too.
    let mut beginning = open(&app, "/api/v1/stream", Some("m0.e0.c0")).await;
    assert_eq!(beginning.next(wait).await.expect("first").id, first.id);
    // A bad position is 400 naming the parameter.
    let response = app
        .client
        .get(app.url("/api/v1/stream?from=yesterday"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "invalid_parameter"));
    assert!(message.starts_with("from:"), "{message}");
}

async fn tickets_tried_from_one_address_are_limited_before_the_database(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        // Failed authentications alone would not stop these.
        s.api.auth_failures_per_minute = 1_000_000;
    })
    .await;
    // The limit refills as time passes (2 a second), so count up to the first refusal.
    // Each ticket is well-formed (43 characters of URL-safe base64) and unknown.
    let app = &app;
    let refused_after =
        refused_after(
            |i| async move { get(app, &format!("/api/v1/stream?ticket={i:0>43}")).await },
        )
        .await;
    assert!(
        refused_after >= kenar_hook::api::TICKETS_PER_MINUTE,
        "{refused_after}"
    );
}

on_both_backends!(
    tickets_tried_from_one_address_are_limited_before_the_database,
    a_ticket_opens_one_stream_without_a_header,
    a_ticket_opens_the_stream_only,
    an_expired_ticket_is_refused,
    from_start_replays_everything_and_last_event_id_wins,
);
