//! What a hostile caller can make the service do: requests without a good key cost no body
//! and no database, and fail into 401 and then 429.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Sends `head` (request line and headers, ending in a blank line) and a part of a body that
/// is never finished, and returns the status line the service answers within `within`.
async fn answer_to_unfinished_body(app: &TestApp, head: &str, within: Duration) -> String {
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[b'{'; 1000]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            let n = socket.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within {within:?}");
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or_default().to_owned()
}

async fn a_wrong_key_is_refused_before_the_body_arrives(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/webhooks/divar", "/callbacks/divar"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: guess\r\n\
             content-type: application/json\r\ncontent-length: 200000\r\n\r\n"
        );
        let started = Instant::now();
        let status = answer_to_unfinished_body(&app, &head, Duration::from_secs(3)).await;
        assert!(status.contains(" 401 "), "{path}: {status}");
        assert!(started.elapsed() < Duration::from_secs(2), "{path}");
    }
    // With the app's key the service waits for the body as it should.
    let head = format!(
        "POST /webhooks/divar HTTP/1.1\r\nhost: x\r\nauthorization: {KEY}\r\n\
         content-type: application/json\r\ncontent-length: 200000\r\n\r\n"
    );
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buf)).await;
    assert!(waited.is_err(), "answered before the body arrived");
}

async fn an_unauthenticated_caller_gets_401_while_the_database_is_down(backend: Backend) {
    use kenar_hook::store::Registration;
    let app = spawn_app(backend).await;
    // A registration exists, so registration keys are in use.
    app.store
        .insert_registration(&Registration {
            id: "r1".into(),
            post_token: "AZx7Kp2Q".into(),
            endpoint: "https://hooks.example-app.ir/kenar".into(),
            key_digest: hex::encode(kenar_hook::auth::digest(b"lk_7Yq2vN9sLm4xR8tBw3ZcQ6pH")),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    app.app.as_ref().unwrap().store.close().await;
    let legacy = fixture("legacy_chat_message_text.json");
    let answer = app
        .post_webhook_with_key(Some("a-guessed-key-0000"), legacy)
        .await;
    assert_eq!(answer.status(), 401);
}

async fn failed_keys_are_limited_per_client_and_good_keys_never_are(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.api.auth_failures_per_minute = 3).await;
    let legacy = fixture("legacy_chat_message_text.json");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = app
            .post_webhook_with_key(Some("wrong-key-0000000"), legacy.clone())
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait >= 1);
            assert_eq!(error_of(r).await.1, "rate_limited");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    // The same client's failures count on the click route too.
    let click = app
        .client
        .post(app.url("/callbacks/divar"))
        .header("authorization", "wrong-key-0000000")
        .body(json!({"post_token": "AZx7Kp2Q"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), 429);
    // The app's key is never limited.
    assert_eq!(app.post_webhook(legacy).await.status(), 200);
    let metrics = kenar_hook::telemetry::metrics_handle().render();
    assert!(
        metrics.contains(r#"kenar_auth_failures_total{route="webhook",answer="429"}"#),
        "{metrics}"
    );
}

on_both_backends!(
    a_wrong_key_is_refused_before_the_body_arrives,
    an_unauthenticated_caller_gets_401_while_the_database_is_down,
    failed_keys_are_limited_per_client_and_good_keys_never_are,
);
