//! What the read API may cost: pages bounded by bytes as well as rows, raw bodies never read
//! for lists, live streams capped in all and per token, and a stream whose reader stopped
//! reading dropped.

use std::time::Duration;

use kenar_hook::store::NewRecord;
use kenar_hook::store::query::LogQuery;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::store_batch::{event, message};

const A: &str = "read-token-a-0123456789";
const B: &str = "read-token-b-0123456789";
const C: &str = "read-token-c-0123456789";

/// An event whose payload holds `bytes` bytes of text.
fn big_event(key: &str, bytes: usize) -> NewRecord {
    let NewRecord::Event(mut e) = event(key) else {
        unreachable!()
    };
    e.payload = json!({"post_token": "P1", "note": "x".repeat(bytes)});
    e.raw_body = vec![b'r'; bytes];
    NewRecord::Event(e)
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn a_page_stops_at_its_byte_budget_and_the_cursor_goes_on(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(A)];
        s.api.page_max_bytes = 8 * 1024;
    })
    .await;
    let records: Vec<NewRecord> = (0..7).map(|i| big_event(&format!("e{i}"), 3000)).collect();
    app.store.write_batch(&records).await.unwrap();

    let mut seen = Vec::new();
    let mut path = "/api/v1/events?limit=500".to_owned();
    let mut pages = 0;
    loop {
        let page: Value = get(&app, A, &path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        // 3 KB each: the third crosses 8 KB, so no page holds more than three.
        assert!(items.len() <= 3, "{} items", items.len());
        seen.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=500&cursor={cursor}"),
            None => break,
        }
    }
    assert!(pages >= 3);
    let expected: Vec<i64> = (1..=7).collect();
    assert_eq!(seen, expected, "every event once, in order");

    // Lists never read raw bodies; the tools that ask for them get them.
    let listed = app
        .store
        .list_events(
            &LogQuery {
                limit: 10,
                ..Default::default()
            },
            usize::MAX,
        )
        .await
        .unwrap();
    assert_eq!(listed.rows.len(), 7);
    assert!(listed.rows.iter().all(|e| e.event.raw_body.is_empty()));
    assert!(!listed.cut);
    let all = app.store.all_events().await.unwrap();
    assert!(all.iter().all(|e| e.event.raw_body.len() == 3000));
}

async fn live_streams_are_capped_in_all_and_per_token(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = [A, B, C].map(SecretString::from).to_vec();
        s.api.max_streams = 2;
        s.api.max_streams_per_token = 1;
    })
    .await;
    let first_a = get(&app, A, "/api/v1/stream").await;
    assert_eq!(first_a.status(), 200);
    let second_a = get(&app, A, "/api/v1/stream").await;
    assert_eq!(second_a.status(), 429);
    assert!(second_a.headers().contains_key("retry-after"));
    let first_b = get(&app, B, "/api/v1/stream").await;
    assert_eq!(first_b.status(), 200);
    // Two open in all: C is refused although it has none.
    assert_eq!(get(&app, C, "/api/v1/stream").await.status(), 429);
    // A stream that ends gives its place back.
    drop(first_a);
    let mut again = 0;
    for _ in 0..50 {
        again = get(&app, A, "/api/v1/stream").await.status().as_u16();
        if again == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(again, 200);
    drop(first_b);
}

async fn a_stream_whose_reader_stops_reading_is_dropped(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(A)];
        s.server.idle_timeout_ms = 300;
        s.server.request_timeout_ms = 300;
    })
    .await;
    // Far more than the socket buffers hold.
    for chunk in 0..10 {
        let records: Vec<NewRecord> = (0..500)
            .map(|i| {
                let NewRecord::Message(mut m) =
                    message(&format!("m{chunk}-{i}"), "c1", Some("P1"), None, 1_000 + i)
                else {
                    unreachable!()
                };
                m.text = Some("س".repeat(2000));
                NewRecord::Message(m)
            })
            .collect();
        app.store.write_batch(&records).await.unwrap();
    }
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket
        .write_all(
            format!(
                "GET /api/v1/stream HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {A}\r\n\
                 last-event-id: m0.e0.c0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Never read while the service writes; then see whether it hung up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stream was never dropped");
}

async fn a_misspelt_parameter_is_400_naming_it(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.api.tokens = vec![SecretString::from(A)]).await;
    // Unknown parameters are named with the known ones; a parameter given twice is ambiguous;
    // a bad value is named with what is wrong.
    let cases = "
        /api/v1/messages?post-token=AZx7Kp2Q | post-token | unknown
        /api/v1/conversations?limit=5&sort=desc | sort | known: post_token
        /api/v1/events?types=POST_UPDATE | types | unknown parameter
        /api/v1/clicks?post=1 | post | unknown parameter
        /api/v1/messages/m1?raw=1 | raw | known: include
        /api/v1/stream?since=2025-01-01T00:00:00Z | since | unknown
        /api/v1/registrations?x=1 | x | takes no parameters
        /api/v1/messages?limit=5&limit=6 | limit | given more than once
        /api/v1/events?cursor=a&cursor=a | cursor | given more than once
        /api/v1/clicks?limit=0 | limit | from 1 to 500
        /api/v1/messages?since=yesterday | since | RFC 3339
        /api/v1/messages?type=STICKER | type | unknown message type
        /api/v1/conversations?post_token= | post_token | must not be empty";
    let cases = cases.lines().filter(|l| !l.trim().is_empty()).map(|l| {
        let parts: Vec<&str> = l.split(" | ").map(str::trim).collect();
        (parts[0], parts[1], parts[2])
    });
    for (path, name, wrong) in cases {
        let (status, code, message) = error_of(get(&app, A, path).await).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_parameter"),
            "{path}"
        );
        assert!(
            message.starts_with(&format!("{name}: ")),
            "{path}: {message}"
        );
        assert!(message.contains(wrong), "{path}: {message}");
    }
    // The known ones still work.
    let ok = get(
        &app,
        A,
        "/api/v1/messages?post_token=AZx7Kp2Q&order=desc&limit=5",
    )
    .await;
    assert_eq!(ok.status(), 200);
}

async fn api_answers_are_never_cached_and_a_401_names_the_scheme(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.api.tokens = vec![SecretString::from(A)]).await;
    let ok = get(&app, A, "/api/v1/messages").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let refused = get(&app, "not-a-token-000000", "/api/v1/messages").await;
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
    );
    assert_eq!(refused.headers()["cache-control"], "no-store");
}

on_both_backends!(
    a_misspelt_parameter_is_400_naming_it,
    api_answers_are_never_cached_and_a_401_names_the_scheme,
);

on_both_backends!(
    a_page_stops_at_its_byte_budget_and_the_cursor_goes_on,
    live_streams_are_capped_in_all_and_per_token,
    a_stream_whose_reader_stops_reading_is_dropped,
);
