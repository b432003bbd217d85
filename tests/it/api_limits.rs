//! What the read API may cost: pages bounded by bytes as well as rows, raw bodies never read
//! for lists, live streams capped in all and per token, a stream whose reader stopped
//! reading dropped, request rates limited per token and failed authentications per client
//! address.

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

/// Sends GETs with `token` until one is refused; returns how many passed first.
async fn passed_before_429(app: &TestApp, token: &str) -> usize {
    for passed in 0..30 {
        match get(app, token, "/api/v1/events").await.status().as_u16() {
            200 => {}
            429 => return passed,
            other => panic!("unexpected status {other}"),
        }
    }
    panic!("never limited");
}

async fn each_token_has_a_rate_budget_of_its_own(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = [A, B].map(SecretString::from).to_vec();
        s.api.rate_limit_per_second = 1;
        s.api.rate_limit_burst = 10;
    })
    .await;
    let started = std::time::Instant::now();
    let a = passed_before_429(&app, A).await;
    assert!((10..=11).contains(&a), "A passed {a} before its 429");
    // A is used up; B's whole burst is still there. A shared budget refills one request a
    // second: B would be refused at once, and could not pass 10 in under 10 s.
    let b = passed_before_429(&app, B).await;
    let elapsed = started.elapsed();
    assert!(
        b >= 10 && elapsed < Duration::from_secs(9),
        "B passed {b} before its 429, {elapsed:?} after A began"
    );
}

/// A client whose connections come from `ip` (any of 127.0.0.0/8 is this machine).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

async fn failed_authentications_are_limited_per_client_address(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(A)];
        s.api.auth_failures_per_minute = 2;
    })
    .await;
    let wrong = |client: reqwest::Client| {
        let url = app.url("/api/v1/events");
        async move {
            client
                .get(url)
                .bearer_auth("wrong-token-0123456789")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let first = client_from([127, 0, 0, 1]);
    let second = client_from([127, 0, 0, 2]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(wrong(first.clone()).await);
    }
    assert_eq!(statuses, [401, 401, 429], "127.0.0.1 used its budget");
    // Another address has its own budget.
    assert_eq!(wrong(second.clone()).await, 401, "127.0.0.2 is not limited");
    assert_eq!(wrong(second.clone()).await, 401);
    assert_eq!(wrong(second.clone()).await, 429);
    // A good token is never limited, from either address.
    for client in [first, second] {
        let ok = client
            .get(app.url("/api/v1/events"))
            .bearer_auth(A)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
}

on_both_backends!(
    each_token_has_a_rate_budget_of_its_own,
    failed_authentications_are_limited_per_client_address,
);

on_both_backends!(
    a_misspelt_parameter_is_400_naming_it,
    api_answers_are_never_cached_and_a_401_names_the_scheme,
);

on_both_backends!(
    a_page_stops_at_its_byte_budget_and_the_cursor_goes_on,
    live_streams_are_capped_in_all_and_per_token,
    a_stream_whose_reader_stops_reading_is_dropped,
);
