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

/// Reads until the peer closes the connection or `within` passes; true when it closed.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Sends one `GET /healthz` on `socket` and returns the status line of the answer.
async fn healthz_on(socket: &mut TcpStream) -> String {
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    status_line(socket).await
}

async fn a_client_trickling_its_headers_is_dropped_on_time(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.server.header_read_timeout_ms = 500).await;
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    socket
        .write_all(b"POST /webhooks/divar HTTP/1.1\r\n")
        .await
        .unwrap();
    // One header line every 200 ms, for longer than the deadline allows.
    let mut dropped = false;
    for i in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if socket
            .write_all(format!("x-trickle-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            dropped = true;
            break;
        }
        if closed_within(&mut socket, Duration::from_millis(1)).await {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "still connected after {:?}", started.elapsed());
    // Well before the trickle's own 3 s end.
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

/// Waiting for the next request on a kept-alive connection counts against the header
/// deadline; nothing else closes a silent connection that has no request in flight sooner.
async fn idle_connections_are_closed(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.server.header_read_timeout_ms = 400).await;
    // Kept alive after a request, then silent.
    let mut kept = TcpStream::connect(app.addr).await.unwrap();
    assert!(healthz_on(&mut kept).await.contains(" 200 "));
    let started = Instant::now();
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    // Connected and never a byte sent.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
}

/// Opens a connection and sends the head of a delivery and half its body: a request in
/// flight until the rest comes.
async fn half_sent_delivery(addr: std::net::SocketAddr, body: &[u8]) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhooks/divar HTTP/1.1\r\nhost: x\r\nauthorization: {KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body[..body.len() / 2]).await.unwrap();
    socket
}

/// The status line of the answer on `socket`, once its headers have come.
async fn status_line(socket: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

async fn at_the_connection_cap_busy_connections_keep_their_slots_and_idle_ones_give_them_up(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| s.server.max_connections = 2).await;
    let body = fixture("legacy_chat_message_text.json");
    // Both slots hold a request in flight: a new client waits in the kernel's queue.
    let mut first = half_sent_delivery(app.addr, &body).await;
    let mut second = half_sent_delivery(app.addr, &body).await;
    let addr = app.addr;
    let third = tokio::spawn(async move {
        let mut third = TcpStream::connect(addr).await.unwrap();
        let status = healthz_on(&mut third).await;
        (status, third)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "served beyond the cap");
    // The busy connections keep working: the first delivery is finished and answered.
    first.write_all(&body[body.len() / 2..]).await.unwrap();
    assert!(status_line(&mut first).await.contains(" 200 "));
    // Now idle, the first gives its slot up to the waiting client.
    let (status, mut third) = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once an idle connection gave its slot up")
        .unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        closed_within(&mut first, Duration::from_secs(5)).await,
        "the idle connection was closed"
    );
    // The second, still in flight all along, kept its slot.
    second.write_all(&body[body.len() / 2..]).await.unwrap();
    let answered = status_line(&mut second).await;
    assert!(answered.contains(" 200 "), "{answered}");
    // Without a client waiting, idle connections stay open.
    assert!(healthz_on(&mut third).await.contains(" 200 "));
}

on_both_backends!(
    a_client_trickling_its_headers_is_dropped_on_time,
    idle_connections_are_closed,
    at_the_connection_cap_busy_connections_keep_their_slots_and_idle_ones_give_them_up,
);

/// Sends `head` and a first part of the body, then nothing; returns the whole answer.
async fn answer_to_stalled_body(app: &TestApp, head: &str) -> String {
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(b"{\"post_token\":").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn a_request_over_its_deadline_gets_408_in_its_routes_error_shape(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.server.request_timeout_ms = 300).await;
    let head = |path: &str, extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: {KEY}\r\n{extra}\
             content-type: application/json\r\ncontent-length: 500\r\nconnection: close\r\n\r\n"
        )
    };
    let webhook = answer_to_stalled_body(&app, &head("/webhooks/divar", "")).await;
    assert!(webhook.starts_with("HTTP/1.1 408"), "{webhook}");
    assert!(webhook.contains(r#""code":"request_timeout""#), "{webhook}");
    // A legacy click is answered in its own shape.
    let legacy = answer_to_stalled_body(&app, &head("/callbacks/divar", "")).await;
    assert!(legacy.starts_with("HTTP/1.1 408"), "{legacy}");
    assert!(legacy.contains(r#""status":"408""#), "{legacy}");
    let v2 = answer_to_stalled_body(&app, &head("/callbacks/divar", "api_version: 2\r\n")).await;
    assert!(v2.contains(r#""code":"request_timeout""#), "{v2}");
}

on_both_backends!(a_request_over_its_deadline_gets_408_in_its_routes_error_shape);
