//! A receiver for the forwarding benchmark (scripts/bench.sh forward): answers 200 to every
//! `POST /hook` (or 503 while told to be down) and keeps figures: how late each record
//! arrived (its `received_at` to now), duplicates, and whether each conversation's records
//! came in `seq` order; after a time down, how long after its return the last record that
//! arrived before it was delivered. Listens on loopback only.
//!
//! With `--reply` it answers each push `{"reply": {"text": "re: <message id> <received_at>"}}`
//! (the reply benchmark), and stands in for Divar's chatbot send as well
//! (`POST /v1/open-platform/chat/bot/conversations/{id}/messages`, answered 200): it counts the
//! sends, duplicates among them, and how late each came after kenar-hook received the message
//! it answers.
//!
//! ```text
//! cargo run --release --example receiver -- --listen 127.0.0.1:18181
//! curl -s -X POST 127.0.0.1:18181/down?seconds=60   # answer 503 for a minute
//! curl -s 127.0.0.1:18181/stats                     # the figures as JSON
//! curl -s -X POST 127.0.0.1:18181/reset             # start counting again
//! ```

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(Default)]
struct Figures {
    requests: u64,
    refused: u64,
    seen: HashSet<String>,
    duplicates: u64,
    // Last seq delivered per conversation, and how often a smaller one came after it.
    last_seq: HashMap<String, i64>,
    out_of_order: u64,
    lag_ms: Vec<f64>,
    first: Option<Instant>,
    last: Option<Instant>,
    // Records kenar-hook received before the end of the time down, delivered; the last one.
    backlog: u64,
    backlog_last: Option<DateTime<Utc>>,
    // Replies sent to the stand-in for Divar: by the message answered, and how late.
    sends: u64,
    sent: HashSet<String>,
    send_duplicates: u64,
    send_lag_ms: Vec<f64>,
}

#[derive(Default)]
struct Shared {
    reply: bool,
    figures: Mutex<Figures>,
    down_until: Mutex<Option<Instant>>,
    up_at: Mutex<Option<DateTime<Utc>>>,
}

type AppState = Arc<Shared>;

async fn hook(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let status = take(&s, &headers, &body);
    if status != StatusCode::OK || !s.reply {
        return status.into_response();
    }
    let item: Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = format!(
        "re: {} {}",
        item["id"].as_str().unwrap_or_default(),
        item["received_at"].as_str().unwrap_or_default()
    );
    Json(json!({"reply": {"text": text}})).into_response()
}

/// The stand-in for Divar's chatbot send: counts each reply, and how late it came.
async fn divar_send(State(s): State<AppState>, body: Bytes) -> Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = body["text_message"].as_str().unwrap_or_default();
    let mut words = text.split(' ').skip(1);
    let (id, received) = (words.next().unwrap_or_default(), words.next());
    let mut f = s.figures.lock().unwrap();
    f.sends += 1;
    if !f.sent.insert(id.to_owned()) {
        f.send_duplicates += 1;
    }
    if let Some(received) = received.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
        let lag = Utc::now() - received.with_timezone(&Utc);
        f.send_lag_ms
            .push(lag.num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    Json(json!({"conversation_id": null}))
}

fn take(s: &Shared, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let now = Instant::now();
    let mut f = s.figures.lock().unwrap();
    f.requests += 1;
    if s.down_until
        .lock()
        .unwrap()
        .is_some_and(|until| now < until)
    {
        f.refused += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !f.seen.insert(id.clone()) {
        f.duplicates += 1;
        return StatusCode::OK;
    }
    f.first.get_or_insert(now);
    f.last = Some(now);
    let Ok(item) = serde_json::from_slice::<Value>(body) else {
        return StatusCode::BAD_REQUEST;
    };
    if let Some(received) = item["received_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        let received = received.with_timezone(&Utc);
        if s.up_at.lock().unwrap().is_some_and(|up| received < up) {
            f.backlog += 1;
            f.backlog_last = Some(Utc::now());
        }
        let lag = Utc::now() - received;
        f.lag_ms
            .push(lag.num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    let seq: i64 = id
        .rsplit_once('_')
        .and_then(|(_, s)| s.parse().ok())
        .unwrap_or(0);
    if let Some(conversation) = item["conversation_id"].as_str() {
        let last = f.last_seq.entry(conversation.to_owned()).or_insert(0);
        if seq < *last {
            f.out_of_order += 1;
        } else {
            *last = seq;
        }
    }
    StatusCode::OK
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn stats(State(s): State<AppState>) -> Json<Value> {
    let f = s.figures.lock().unwrap();
    let mut lag = f.lag_ms.clone();
    lag.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut send_lag = f.send_lag_ms.clone();
    send_lag.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let span = match (f.first, f.last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let delivered = f.seen.len();
    let up_at = *s.up_at.lock().unwrap();
    let backlog_cleared = match (up_at, f.backlog_last) {
        (Some(up), Some(last)) => Some((last - up).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    Json(json!({
        "requests": f.requests,
        "refused_503": f.refused,
        "delivered": delivered,
        "duplicates": f.duplicates,
        "out_of_order": f.out_of_order,
        "conversations": f.last_seq.len(),
        "seconds_first_to_last": span,
        "delivered_per_second": if span > 0.0 { delivered as f64 / span } else { 0.0 },
        "backlog_delivered": f.backlog,
        "backlog_last_seconds_after_up": backlog_cleared,
        "lag_ms": {
            "p50": percentile(&lag, 0.50),
            "p99": percentile(&lag, 0.99),
            "max": lag.last().copied().unwrap_or(0.0),
        },
        "divar": {
            "sends": f.sends,
            "messages_answered": f.sent.len(),
            "duplicates": f.send_duplicates,
            "received_to_sent_ms": {
                "p50": percentile(&send_lag, 0.50),
                "p99": percentile(&send_lag, 0.99),
                "max": send_lag.last().copied().unwrap_or(0.0),
            },
        },
    }))
}

async fn down(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> StatusCode {
    let seconds: u64 = q.get("seconds").and_then(|v| v.parse().ok()).unwrap_or(60);
    *s.down_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(seconds));
    *s.up_at.lock().unwrap() = Some(Utc::now() + chrono::Duration::seconds(seconds as i64));
    StatusCode::NO_CONTENT
}

async fn reset(State(s): State<AppState>) -> StatusCode {
    *s.figures.lock().unwrap() = Figures::default();
    *s.up_at.lock().unwrap() = None;
    StatusCode::NO_CONTENT
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut listen: SocketAddr = "127.0.0.1:18181".parse().unwrap();
    let mut reply = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .expect("--listen ADDR")
                    .parse()
                    .expect("an address")
            }
            "--reply" => reply = true,
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        listen.ip().is_loopback(),
        "the receiver listens on loopback only"
    );
    let state: AppState = Arc::new(Shared {
        reply,
        ..Shared::default()
    });
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .route("/stats", get(stats))
        .route("/down", post(down))
        .route("/reset", post(reset))
        .route(
            "/v1/open-platform/chat/bot/conversations/{id}/messages",
            post(divar_send),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
