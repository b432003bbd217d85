//! One attempt: POST the body with the Standard Webhooks headers, and judge the answer.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::backoff;
use super::sign::Signer;
use crate::divar::transport_failure;

/// Bytes of an answer kept in the attempt log.
const RESPONSE_KEPT: usize = 1024;
/// The largest JSON answer read for a reply.
pub const REPLY_MAX: usize = 64 * 1024;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Delivered,
    /// 410: the receiver wants no more.
    Gone,
    /// Anything else.
    Failed {
        /// When a 429 or 503 said when to come back.
        retry_after: Option<Duration>,
    },
}

/// An attempt's result, as the attempt log records it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub verdict: Verdict,
    /// The status, when an answer came.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// The first KiB of the answer.
    pub response: Option<String>,
    /// Time from sending to the end of the answer (or the error).
    pub latency: Duration,
    /// The body of a `200` answer with `content-type: application/json`, which may hold a
    /// reply.
    pub json: Option<JsonBody>,
}

/// The JSON body of a `200` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonBody {
    /// Read whole.
    Whole(Vec<u8>),
    /// Longer than [`REPLY_MAX`]: not read.
    TooLarge,
}

/// Whether an answer's body may hold a reply: a `200` with a JSON content type.
fn may_reply(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::OK
        && response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The HTTP client of an endpoint: redirects are never followed (a 3xx is a failure).
pub fn client(timeout: Duration) -> reqwest::Client {
    crate::divar::http_client()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(64)
        .build()
        .expect("the HTTP client builds")
}

/// POSTs `body` to `url` as record `id`.
pub async fn attempt(
    client: &reqwest::Client,
    url: &str,
    signer: &Signer,
    id: &str,
    body: &str,
) -> Answer {
    let started = Instant::now();
    let timestamp = Utc::now().timestamp();
    let result = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signer.signature(id, timestamp, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                verdict: Verdict::Failed { retry_after: None },
                status: None,
                error: Some(transport_failure(&e)),
                response: None,
                latency: started.elapsed(),
                json: None,
            };
        }
    };
    let status = response.status();
    let retry_after = matches!(status.as_u16(), 429 | 503)
        .then(|| response.headers().get(reqwest::header::RETRY_AFTER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| backoff::retry_after(v, Utc::now()));
    // A body that may hold a reply is read whole (up to REPLY_MAX); any other, its first KiB.
    let limit = if may_reply(&response) {
        REPLY_MAX + 1
    } else {
        RESPONSE_KEPT
    };
    let mut read = Vec::new();
    let mut read_error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - read.len();
                read.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if read.len() >= limit {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                read_error = Some(transport_failure(&e));
                break;
            }
        }
    }
    let json = (limit > RESPONSE_KEPT && read_error.is_none()).then(|| {
        if read.len() > REPLY_MAX {
            JsonBody::TooLarge
        } else {
            JsonBody::Whole(read.clone())
        }
    });
    let kept = &read[..read.len().min(RESPONSE_KEPT)];
    let text = (!kept.is_empty()).then(|| String::from_utf8_lossy(kept).into_owned());
    let (verdict, error) = if status.is_success() {
        (Verdict::Delivered, None)
    } else if status.as_u16() == 410 {
        (
            Verdict::Gone,
            Some("410 Gone: the endpoint is disabled".to_owned()),
        )
    } else if status.is_redirection() {
        let error = format!("answered {status}; redirects are not followed");
        (Verdict::Failed { retry_after: None }, Some(error))
    } else {
        let error = format!("answered {status}");
        (Verdict::Failed { retry_after }, Some(error))
    };
    Answer {
        verdict,
        status: Some(status.as_u16()),
        error: error.or(read_error.filter(|_| !status.is_success())),
        response: text,
        latency: started.elapsed(),
        json,
    }
}
