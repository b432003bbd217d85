//! The live stream: delivery, resumption without gaps, and across instances.

use std::time::Duration;

use futures_util::StreamExt;

use super::*;

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

on_both_backends!(the_stream_delivers_and_resumes_without_gaps_or_repeats,);
