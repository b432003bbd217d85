//! The webhook's rules: authentication, rejections, idempotency, faithful storage, back
//! pressure and shutdown.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::*;

const TEXT_FIXTURE: &str = "event_new_message_text.json";

fn text_message(id: &str, text: &str) -> String {
    let mut body: Value = serde_json::from_slice(&fixture(TEXT_FIXTURE)).unwrap();
    body["new_message"]["id"] = json!(id);
    body["new_message"]["text"] = json!(text);
    body.to_string()
}

async fn missing_or_wrong_key_is_401_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for key in [
        None,
        Some("wrong"),
        Some(""),
        Some("TEST-IDENTIFICATION-KEY-1"),
    ] {
        let response = app.post_webhook_with_key(key, fixture(TEXT_FIXTURE)).await;
        let (status, code, _) = error_of(response).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{key:?}");
    }
    // Authentication comes before any look at the body.
    let response = app.post_webhook_with_key(Some("wrong"), "not json").await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.counts().await, (0, 0, 0));
}

async fn both_rotated_keys_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app
        .post_webhook_with_key(Some(KEY), text_message("rot-1", "a"))
        .await;
    let b = app
        .post_webhook_with_key(Some(OTHER_KEY), text_message("rot-2", "b"))
        .await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    assert_eq!(app.counts().await.1, 2);
}

async fn body_that_is_not_json_is_400_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        b"{\"type\": ".to_vec(),
        b"hello".to_vec(),
        b"".to_vec(),
        vec![b'"', 0xff, 0xfe, b'"'],
    ] {
        let (status, code, message) = error_of(app.post_webhook(body.clone()).await).await;
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{body:?}");
        assert!(message.contains("not valid JSON"), "{message}");
    }
    assert_eq!(app.counts().await, (0, 0, 0));
}

async fn json_missing_a_required_field_is_422_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body: Value = serde_json::from_slice(&fixture(TEXT_FIXTURE)).unwrap();
    body["new_message"].as_object_mut().unwrap().remove("id");
    let (status, code, message) = error_of(app.post_webhook(body.to_string()).await).await;
    assert_eq!((status, code.as_str()), (422, "unprocessable_entity"));
    assert!(message.contains("new_message.id"), "{message}");

    let mut body: Value = serde_json::from_slice(&fixture("event_new_message_image.json")).unwrap();
    body["new_message"]
        .as_object_mut()
        .unwrap()
        .remove("image_data");
    let (status, _, message) = error_of(app.post_webhook(body.to_string()).await).await;
    assert_eq!(status, 422);
    assert!(message.contains("new_message.image_data"), "{message}");

    let cases = [
        (
            json!({"type": "USER_ACCESS_REVOCATION", "user_access_revocation": {}}),
            "user_access_revocation.user_id",
        ),
        (
            json!({"type": "POST_UPDATE", "post_update": {"type": "RETIRE"}}),
            "post_update.post",
        ),
        (
            json!({"type": "PAYMENT_TRANSACTION", "transaction": {"state": 2}}),
            "transaction.id",
        ),
        (
            json!({"type": "NEW_MESSAGE", "new_message": {"id": "x", "sent_at": "soon",
            "conversation": {"id": "c"}, "text": "t"}}),
            "new_message.sent_at",
        ),
    ];
    for (body, field) in cases {
        let (status, _, message) = error_of(app.post_webhook(body.to_string()).await).await;
        assert_eq!(status, 422, "{body}");
        assert!(message.contains(field), "{message} should name {field}");
    }
    assert_eq!(app.counts().await, (0, 0, 0));
}

async fn body_over_the_limit_is_413_and_stores_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.server.body_limit_bytes = 1024).await;
    let body = text_message("big", &"x".repeat(2048));
    let (status, code, message) = error_of(app.post_webhook(body).await).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    assert!(message.contains("1024"), "{message}");
    assert_eq!(app.counts().await, (0, 0, 0));
}

async fn default_limit_is_256_kib(backend: Backend) {
    let app = spawn_app(backend).await;
    let just_over = text_message("big", &"x".repeat(256 * 1024));
    assert_eq!(app.post_webhook(just_over).await.status(), 413);
    let under = text_message("fits", &"x".repeat(200 * 1024));
    assert_eq!(app.post_webhook(under).await.status(), 200);
}

async fn redelivery_is_answered_200_and_stored_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.post_webhook(fixture(TEXT_FIXTURE)).await;
    let second = app.post_webhook(fixture(TEXT_FIXTURE)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert_eq!(first.json::<Value>().await.unwrap()["outcome"], "stored");
    assert_eq!(
        second.json::<Value>().await.unwrap()["outcome"],
        "duplicate"
    );
    assert_eq!(app.counts().await, (1, 1, 0));
    let c = app
        .store
        .conversation("3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.message_count, 1, "a duplicate does not count");
}

async fn concurrent_identical_deliveries_store_one_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let sends = (0..8).map(|_| app.post_webhook(fixture(TEXT_FIXTURE)));
    let responses = futures_util::future::join_all(sends).await;
    let mut outcomes = Vec::new();
    for r in responses {
        assert_eq!(r.status(), 200);
        outcomes.push(r.json::<Value>().await.unwrap()["outcome"].clone());
    }
    assert_eq!(outcomes.iter().filter(|o| *o == "stored").count(), 1);
    assert_eq!(outcomes.iter().filter(|o| *o == "duplicate").count(), 7);
    assert_eq!(app.counts().await, (1, 1, 0));
}

async fn two_instances_on_one_database_store_a_race_once(backend: Backend) {
    // Two app instances share the database: only the unique key can keep them from both
    // inserting.
    let first = spawn_app(backend).await;
    let url = first.settings.database.url.clone();
    let second = spawn_app_with(backend, |s| s.database.url = url).await;
    let (a, b) = tokio::join!(
        first.post_webhook(fixture(TEXT_FIXTURE)),
        second.post_webhook(fixture(TEXT_FIXTURE)),
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let mut outcomes = vec![
        a.json::<Value>().await.unwrap()["outcome"].clone(),
        b.json::<Value>().await.unwrap()["outcome"].clone(),
    ];
    outcomes.sort_by_key(|o| o.to_string());
    assert_eq!(outcomes, vec![json!("duplicate"), json!("stored")]);
    assert_eq!(first.counts().await, (1, 1, 0));
}

async fn awkward_text_is_stored_faithfully(backend: Backend) {
    let app = spawn_app(backend).await;
    let emoji = "😀".repeat(10_000);
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "nul",
            text_message("nul", "a\u{0}b").into_bytes(),
            "a\u{fffd}b".to_owned(),
        ),
        (
            "surrogate",
            br#"{"type":"NEW_MESSAGE","new_message":{"id":"surrogate","conversation":{"id":"c1"},"type":"TEXT","sent_at":1741508247515000,"text":"x\ud800y\udc00z\ud83d\ude00"}}"#.to_vec(),
            "x\u{fffd}y\u{fffd}z😀".to_owned(),
        ),
        ("emoji", text_message("emoji", &emoji).into_bytes(), emoji.clone()),
    ];
    for (id, raw, text) in cases {
        let response = app.post_webhook(raw.clone()).await;
        assert_eq!(response.status(), 200, "{id}");
        let m = app.store.message(id).await.unwrap().unwrap().message;
        assert_eq!(m.text.as_deref(), Some(text.as_str()), "{id}");
        assert_eq!(m.raw_body, raw, "{id}: the raw body is byte-exact");
    }
}

/// U+0000 anywhere, not only in the text: in the ids, the sender and the metadata.
async fn nul_in_any_field_is_stored_as_replacement_character(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body: Value = serde_json::from_slice(&fixture(TEXT_FIXTURE)).unwrap();
    body["new_message"]["id"] = json!("nul\u{0}id");
    body["new_message"]["conversation"]["id"] = json!("conv\u{0}1");
    body["new_message"]["text"] = json!("a\u{0}b");
    body["metadata"] = json!({"note": "x\u{0}y"});
    let raw = serde_json::to_vec(&body).unwrap();
    let response = app.post_webhook(raw.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["outcome"],
        json!("stored")
    );
    let m = app
        .store
        .message("nul\u{fffd}id")
        .await
        .unwrap()
        .unwrap()
        .message;
    assert_eq!(m.conversation.id, "conv\u{fffd}1");
    assert_eq!(m.text.as_deref(), Some("a\u{fffd}b"));
    assert_eq!(
        m.metadata,
        Some(json!({"note": "x\u{0}y"})),
        "JSON keeps it escaped"
    );
    assert_eq!(m.raw_body, raw, "the raw body is byte-exact");
    // The same delivery again is a duplicate, not a second row.
    let again = app.post_webhook(raw).await;
    assert_eq!(
        again.json::<Value>().await.unwrap()["outcome"],
        json!("duplicate")
    );
}

on_both_backends!(
    nul_in_any_field_is_stored_as_replacement_character,
    missing_or_wrong_key_is_401_and_stores_nothing,
    both_rotated_keys_are_accepted,
    body_that_is_not_json_is_400_and_stores_nothing,
    json_missing_a_required_field_is_422_naming_it,
    body_over_the_limit_is_413_and_stores_nothing,
    default_limit_is_256_kib,
    redelivery_is_answered_200_and_stored_once,
    concurrent_identical_deliveries_store_one_row,
    two_instances_on_one_database_store_a_race_once,
    awkward_text_is_stored_faithfully,
    unavailable_database_is_503_with_retry_after,
);

async fn unavailable_database_is_503_with_retry_after(backend: Backend) {
    let app = spawn_app(backend).await;
    // Closing the app's own pool makes every database call fail.
    app.app.as_ref().unwrap().store.close().await;
    let response = app.post_webhook(fixture(TEXT_FIXTURE)).await;
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (503, "unavailable"));
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(app.counts().await, (0, 0, 0));
}

/// Holds SQLite's write lock from another connection until dropped or released.
struct WriteLock(sqlx::SqliteConnection);

impl WriteLock {
    async fn take(app: &TestApp) -> WriteLock {
        use secrecy::ExposeSecret;
        let mut conn = sqlx::SqliteConnection::connect(app.settings.database.url.expose_secret())
            .await
            .unwrap();
        sqlx::query("begin immediate")
            .execute(&mut conn)
            .await
            .unwrap();
        WriteLock(conn)
    }

    async fn release(mut self) {
        sqlx::query("commit").execute(&mut self.0).await.unwrap();
    }
}

#[tokio::test]
async fn full_queue_is_503_with_retry_after_and_nothing_is_lost() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.ingest.queue_capacity = 1;
        s.ingest.batch_max = 1;
        // The lock below is held longer than the default write timeout.
        s.ingest.write_timeout_ms = 10_000;
    })
    .await;
    let lock = WriteLock::take(&app).await;
    // The writer takes one delivery and waits for the lock; one more fills the queue; the
    // rest find it full. Which ones is a matter of timing: every answer is checked.
    let sent: Vec<_> = (0..6)
        .map(|i| {
            let (client, url) = (app.client.clone(), app.url("/webhooks/divar"));
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("authorization", KEY)
                    .body(text_message(&format!("q{i}"), &i.to_string()))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let message = if status == 503 {
                    error_of(response).await.2
                } else {
                    String::new()
                };
                (i, status, retry_after, message)
            })
        })
        .collect();
    // At most two can be taken while the lock is held: the others are answered at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sent.iter().filter(|t| t.is_finished()).count() < 4 {
        assert!(Instant::now() < deadline, "the full queue did not answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lock.release().await;
    let mut stored = 0;
    for task in sent {
        let (i, status, retry_after, message) = task.await.unwrap();
        let row = app.store.message(&format!("q{i}")).await.unwrap();
        match status {
            200 => {
                assert!(row.is_some(), "q{i} answered 200 is stored");
                stored += 1;
            }
            503 => {
                assert_eq!(retry_after.as_deref(), Some("5"), "q{i}");
                assert_eq!(
                    message,
                    "the ingest queue is full; nothing was stored, retry later"
                );
                assert!(row.is_none(), "q{i} answered 503 is not stored");
            }
            other => panic!("q{i}: {other}"),
        }
    }
    assert!(
        (1..=2).contains(&stored),
        "{stored} taken while the lock was held"
    );
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    // The write below waits for a lock longer than the default write timeout.
    let mut app = spawn_app_with(Backend::Sqlite, |s| s.ingest.write_timeout_ms = 10_000).await;
    let lock = WriteLock::take(&app).await;
    let in_flight = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/webhooks/divar"));
        async move {
            client
                .post(url)
                .header("authorization", KEY)
                .body(text_message("late", "x"))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let running = app.app.take().unwrap();
    let started = Instant::now();
    let stopping = tokio::spawn(running.stop());
    // Once shutdown has begun the listener is closed: new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(app.addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "new connections still accepted 5 s after shutdown began"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    lock.release().await;
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    stopping.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(app.store.message("late").await.unwrap().is_some());
}

#[tokio::test]
async fn a_bearer_prefixed_key_is_refused_with_a_hint_that_divar_sends_the_raw_key() {
    let app = spawn_app(Backend::Sqlite).await;
    let good = format!("Bearer {KEY}");
    for value in [good.as_str(), "bearer wrong", "BEARER x"] {
        let response = app
            .post_webhook_with_key(Some(value), fixture(TEXT_FIXTURE))
            .await;
        let (status, code, message) = error_of(response).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{value}");
        assert!(
            message.contains("raw identification key") && message.contains("without `Bearer `"),
            "{value}: {message}"
        );
        assert!(!message.contains(KEY), "{message}");
    }
    let (_, _, message) = error_of(
        app.post_webhook_with_key(Some("wrong"), fixture(TEXT_FIXTURE))
            .await,
    )
    .await;
    assert!(!message.contains("Bearer"), "{message}");
    assert_eq!(app.counts().await, (0, 0, 0));
}
