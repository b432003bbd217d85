//! Requests that are not safe to repeat (every send, registration and subscription): tried
//! again only when they provably had no effect at Divar, otherwise ended as outcome unknown
//! after one attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

use super::*;

/// Every operation of the client, each a POST without an idempotency key.
const OPERATIONS: [&str; 6] = [
    "legacy send",
    "send v2",
    "bot to a conversation",
    "bot to a user",
    "legacy registration",
    "events subscription",
];

/// Calls `operation` once with a valid request.
async fn call(client: &DivarClient, operation: &str) -> Result<(), DivarError> {
    let bot = BotMessage::text("hi");
    match operation {
        "legacy send" => client
            .send_legacy_message(&token(), &parse("legacy_send_message_text_only.json"))
            .await
            .map(drop),
        "send v2" => send_text(client).await.map(drop),
        "bot to a conversation" => client
            .send_bot_message_to_conversation(None, CONVERSATION, &bot)
            .await
            .map(drop),
        "bot to a user" => client
            .send_bot_message_to_user(&token(), USER, &bot)
            .await
            .map(drop),
        "legacy registration" => {
            client
                .register_legacy_webhook(&token(), &parse("legacy_notify_register_request.json"))
                .await
        }
        "events subscription" => {
            client
                .subscribe_events(&token(), &parse("events_subscription_request_post.json"))
                .await
        }
        other => unreachable!("{other}"),
    }
}

/// A mock answering every request with `template`.
async fn divar_answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

async fn received(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// A mock answering `first` `times` times, then 200.
async fn divar_answering_then_200(first: ResponseTemplate, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(first)
        .up_to_n_times(times)
        .expect(times)
        .mount(&server)
        .await;
    answer(&server, &v2_path(), 200, json!({"status": 200}), 1).await;
    server
}

fn assert_outcome_unknown(error: &DivarError, status: Option<u16>) {
    let DivarError::OutcomeUnknown { status: got, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!(*got, status, "{error:?}");
    assert_eq!(error.exit_code(), 5);
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("look in the conversation"),
        "{error}"
    );
}

#[tokio::test]
async fn a_send_answered_after_the_timeout_is_sent_once_and_its_outcome_is_unknown() {
    let server = divar_answering(
        ResponseTemplate::new(200)
            .set_body_json(json!({"status": 200}))
            .set_delay(Duration::from_millis(600)),
    )
    .await;
    let client = DivarClient::new(DivarClientSettings {
        request_timeout_ms: 100,
        ..settings(&server)
    })
    .unwrap();
    let started = Instant::now();
    let error = send_text(&client).await.unwrap_err();
    // One attempt (counted below), not followed by a wait for another.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no second attempt was waited for: {:?}",
        started.elapsed()
    );
    assert_outcome_unknown(&error, None);
    let DivarError::OutcomeUnknown { reason, .. } = &error else {
        unreachable!()
    };
    assert!(reason.starts_with("timed out"), "{reason}");
    assert_eq!(received(&server).await, 1);
}

#[tokio::test]
async fn a_5xx_on_any_operation_is_sent_once_and_its_outcome_is_unknown() {
    for status in [500, 502, 503, 504] {
        for operation in OPERATIONS {
            let server = divar_answering(
                ResponseTemplate::new(status).set_body_json(json!({"code": 13, "message": "x"})),
            )
            .await;
            let error = call(&client(&server), operation).await.unwrap_err();
            assert_outcome_unknown(&error, Some(status));
            assert_eq!(received(&server).await, 1, "{operation} after {status}");
        }
    }
}

#[tokio::test]
async fn a_send_whose_answer_breaks_off_is_sent_once_and_its_outcome_is_unknown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = serve(
        listener,
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"sta",
    );
    let client = DivarClient::new(DivarClientSettings {
        open_api_base_url: url,
        ..settings_without_server()
    })
    .unwrap();
    let error = send_text(&client).await.unwrap_err();
    assert_outcome_unknown(&error, None);
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_connection_on_a_send_is_tried_again() {
    // Bound but not listening: connections are refused until `listen`, and no other process
    // can take the port meanwhile.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    let client = DivarClient::new(DivarClientSettings {
        open_api_base_url: url,
        retry_max_attempts: 50,
        retry_base_delay_ms: 40,
        retry_max_delay_ms: 40,
        ..settings_without_server()
    })
    .unwrap();
    let call = tokio::spawn(async move { send_text(&client).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let requests = serve(
        socket.listen(16).unwrap(),
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"status\": 200}",
    );
    let answer = call.await.unwrap().unwrap();
    assert_eq!(answer.status, Some(200));
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_lasting_refused_connection_ends_unreachable_after_every_attempt() {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let client = DivarClient::new(DivarClientSettings {
        open_api_base_url: format!("http://{}", socket.local_addr().unwrap()),
        retry_max_attempts: 3,
        retry_base_delay_ms: 1,
        ..settings_without_server()
    })
    .unwrap();
    let error = send_text(&client).await.unwrap_err();
    assert!(
        matches!(&error, DivarError::Unreachable { reason } if reason.starts_with("connection failed")),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), 4);
}

#[tokio::test]
async fn a_503_with_retry_after_on_a_send_is_tried_again() {
    let server = divar_answering_then_200(
        ResponseTemplate::new(503).insert_header("retry-after", "0"),
        2,
    )
    .await;
    assert_eq!(send_text(&client(&server)).await.unwrap().status, Some(200));
}

#[tokio::test]
async fn a_408_on_a_send_is_tried_again() {
    let server = divar_answering_then_200(ResponseTemplate::new(408), 2).await;
    assert_eq!(send_text(&client(&server)).await.unwrap().status, Some(200));
}

#[tokio::test]
async fn a_send_tried_again_after_a_429_is_not_repeated_after_a_500() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    answer(&server, &v2_path(), 500, json!({}), 1).await;
    let error = send_text(&client(&server)).await.unwrap_err();
    assert_outcome_unknown(&error, Some(500));
    assert_eq!(received(&server).await, 2);
}

/// The client settings of [`settings`] for tests that point the client elsewhere.
fn settings_without_server() -> DivarClientSettings {
    DivarClientSettings {
        api_key: Some(API_KEY.into()),
        request_timeout_ms: 2_000,
        retry_base_delay_ms: 10,
        retry_max_delay_ms: 40,
        retry_deadline_ms: 5_000,
        ..Default::default()
    }
}

/// Answers every connection with `response` once its request has been read, then closes it;
/// returns the count of requests read.
fn serve(listener: TcpListener, response: &'static [u8]) -> Arc<AtomicUsize> {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                if read_request(&mut stream).await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.write_all(response).await;
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
    requests
}

/// Reads one HTTP/1.1 request with a `content-length` body; false when the peer left first.
async fn read_request(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            if buffer.len() >= end + 4 + length {
                return true;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}
