//! Forwarding to the app's own endpoint: a capture receiver in the test (an axum app on
//! 127.0.0.1:0) that verifies every signature with a Standard Webhooks library, answers as
//! the test tells it, and keeps what it got. Delivery format and filters ([`delivery`]),
//! retries, dead letters and replay ([`retries`]), ordering through an outage
//! ([`ordering`]), processes and replicas ([`replicas`]), the read API and CLI ([`manage`]);
//! refused deliveries kept and reprocessed ([`rejected`]); replies in the answer and the
//! outbox ([`replies`]); `webhook-id` unique per
//! installation ([`webhook_ids`]).

mod delivery;
mod manage;
mod ordering;
mod rejected;
mod replicas;
mod replies;
mod retries;
mod settings;
mod webhook_ids;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use kenar_hook::config::Settings;
use kenar_hook::forward::settings::EndpointSettings;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::*;

/// The endpoint's secret (24 random bytes).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Another secret, for rotation.
pub const NEW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
    /// What the receiver answered.
    pub status: u16,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// What the receiver answers: each scripted answer once, then `status`.
#[derive(Debug)]
pub struct Plan {
    pub status: u16,
    pub retry_after: Option<String>,
    pub script: VecDeque<(u16, Option<String>)>,
    /// Waited before answering.
    pub delay: Duration,
}

/// A capture receiver.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Got>>>,
    pub plan: Arc<Mutex<Plan>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let plan = Arc::new(Mutex::new(Plan {
            status: 200,
            retry_after: None,
            script: VecDeque::new(),
            delay: Duration::ZERO,
        }));
        let (g, p) = (got.clone(), plan.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (g, p) = (g.clone(), p.clone());
                async move {
                    let (status, retry_after, delay) = {
                        let mut plan = p.lock().unwrap();
                        let delay = plan.delay;
                        match plan.script.pop_front() {
                            Some((s, r)) => (s, r, delay),
                            None => (plan.status, plan.retry_after.clone(), delay),
                        }
                    };
                    tokio::time::sleep(delay).await;
                    g.lock().unwrap().push(Got {
                        headers,
                        body: body.to_vec(),
                        at: Instant::now(),
                        status,
                    });
                    let mut response =
                        (StatusCode::from_u16(status).unwrap(), "ok").into_response();
                    if let Some(r) = retry_after {
                        response
                            .headers_mut()
                            .insert("retry-after", r.parse().unwrap());
                    }
                    if (300..400).contains(&status) {
                        // Followed, the POST would be answered 404 by this app.
                        response
                            .headers_mut()
                            .insert("location", "/elsewhere".parse().unwrap());
                    }
                    response
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got, plan }
    }

    /// Answers `status` from now on.
    pub fn answer(&self, status: u16, retry_after: Option<&str>) {
        let mut plan = self.plan.lock().unwrap();
        plan.status = status;
        plan.retry_after = retry_after.map(str::to_owned);
    }

    /// Waits this long before each answer.
    pub fn slow(&self, delay: Duration) {
        self.plan.lock().unwrap().delay = delay;
    }

    /// Answers these first, once each.
    pub fn script(&self, answers: &[(u16, Option<&str>)]) {
        let mut plan = self.plan.lock().unwrap();
        plan.script
            .extend(answers.iter().map(|(s, r)| (*s, r.map(str::to_owned))));
    }

    pub fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Got> {
        self.all()
            .into_iter()
            .filter(|g| (200..300).contains(&g.status))
            .collect()
    }

    /// Waits until `n` requests were answered 2xx.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Got> {
        let deadline = Instant::now() + within;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} delivered within {within:?}; got {:?}",
                delivered.len(),
                self.all().iter().map(|g| g.status).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` requests came, whatever was answered.
    pub async fn wait_requests(&self, n: usize, within: Duration) -> Vec<Got> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests within {within:?}",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Verifies a request with the Standard Webhooks library.
pub fn verify(secret: &str, got: &Got) -> Result<(), String> {
    standardwebhooks::Webhook::new(secret)
        .map_err(|e| e.to_string())?
        .verify(&got.body, &got.headers)
        .map_err(|e| e.to_string())
}

/// An endpoint to `url` with fast retries allowed on 127.0.0.1.
pub fn endpoint(name: &str, url: &str) -> EndpointSettings {
    EndpointSettings {
        name: name.to_owned(),
        url: url.to_owned(),
        secret: SecretString::from(SECRET),
        previous_secrets: Vec::new(),
        include: vec!["messages".to_owned()],
        post_tokens: Vec::new(),
        types: Vec::new(),
        timeout_ms: 2_000,
        max_attempts: 12,
        max_in_flight: 16,
    }
}

/// Settings that forward to the given endpoints, retrying after 50 ms, 150 ms, ... at most
/// 400 ms.
pub fn forwarding(settings: &mut Settings, endpoints: Vec<EndpointSettings>) {
    settings.forward.allow_private_http = true;
    settings.forward.retry_base_delay_ms = 50;
    settings.forward.retry_max_delay_ms = 400;
    settings.forward.endpoints = endpoints;
}

/// A NEW_MESSAGE delivery.
pub fn message(id: &str, conversation: &str, post: &str, kind: &str, sent_at_us: i64) -> String {
    let mut body = json!({
        "type": "NEW_MESSAGE",
        "new_message": {
            "id": id,
            "conversation": {"id": conversation, "type": "POST", "post_token": post},
            "sender": {"side": "BUYER", "type": "HUMAN"},
            "type": kind,
            "sent_at": sent_at_us,
        }
    });
    let m = &mut body["new_message"];
    if kind == "TEXT" {
        m["text"] = json!(format!("text of {id}"));
    } else {
        m["image_data"] = json!({"link": "https://s100.divarcdn.com/static/chat/photo/1.jpg"});
    }
    body.to_string()
}

/// Posts `n` text messages spread over `conversations` conversations of post `POSTA`; the
/// ids are `{prefix}-{i}`, conversation `c{i % conversations}`.
pub async fn post_messages(app: &TestApp, prefix: &str, n: usize, conversations: usize) {
    for i in 0..n {
        let body = message(
            &format!("{prefix}-{i}"),
            &format!("c{}", i % conversations),
            "POSTA",
            "TEXT",
            1_741_508_247_515_000 + i as i64,
        );
        let response = app.post_webhook(body).await;
        assert_eq!(response.status(), 200, "message {i} stored");
    }
}

/// The message ids of delivered requests, in arrival order, per conversation.
pub fn ids_by_conversation(got: &[Got]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for g in got {
        let v = g.json();
        out.entry(v["conversation_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(v["id"].as_str().unwrap().to_owned());
    }
    out
}

/// Waits until `n` delivery attempts are stored (answers are written in small batches, after
/// the receiver has seen the request); the newest first.
pub async fn wait_attempts_stored(
    app: &TestApp,
    n: usize,
) -> Vec<kenar_hook::store::forward::Attempt> {
    let query = kenar_hook::store::forward::AttemptQuery {
        limit: 500,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempts = app.store.forward_attempts(&query).await.unwrap();
        if attempts.len() >= n {
            return attempts;
        }
        assert!(
            Instant::now() < deadline,
            "{n} attempts never stored: {attempts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no endpoint has anything left to send: each has read past every stored
/// record it could take and none waits for delivery. Whatever was to be sent has been by
/// then, so a record sent wrongly would show.
pub async fn wait_caught_up(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status =
            kenar_hook::forward::manage::status(&app.store, &app.settings.forward.endpoints)
                .await
                .unwrap();
        if status.iter().all(|s| s.lag_records == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "forwarding never caught up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
