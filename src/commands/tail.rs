//! `kenar-hook tail`: follows the live stream of a running service (`GET /api/v1/stream`),
//! one readable line per record on a terminal and JSON lines otherwise. A dropped connection
//! is made again with the last event's id as `Last-Event-ID`, so nothing is missed or
//! printed twice.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::output::print;
use crate::config::Settings;

/// The environment variable read for the API token when no `--token-file` is given.
pub const API_TOKEN_ENV: &str = "KENAR_HOOK_API_TOKEN";
/// The longest wait before connecting again.
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// `tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The running service, e.g. http://127.0.0.1:8080 (default: `server.listen` of the
    /// settings, on loopback when it listens on every address).
    #[arg(long)]
    pub url: Option<String>,
    /// Read the API client token from FILE; else KENAR_HOOK_API_TOKEN; else the first of
    /// api.tokens (or api.clients) in the settings.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Only this post's records.
    #[arg(long)]
    pub post_token: Option<String>,
    /// Only this conversation's records.
    #[arg(long)]
    pub conversation_id: Option<String>,
    /// Also these records: events, clicks (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = ["events", "clicks"])]
    pub include: Vec<String>,
    /// `start` to print everything stored first, or an event id (`m12.e0.c3`) to continue
    /// after; default: only what arrives from now on.
    #[arg(long)]
    pub from: Option<String>,
    /// Print JSON lines (the default when stdout is not a terminal).
    #[arg(long)]
    pub json: bool,
}

/// Follows the stream until Ctrl-C (exit 0), or until the service refuses it (exit 2).
pub async fn run(settings: &Settings, args: TailArgs) -> ExitCode {
    match follow(settings, &args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("kenar-hook tail: {message}");
            ExitCode::from(2)
        }
    }
}

async fn follow(settings: &Settings, args: &TailArgs) -> Result<ExitCode, String> {
    let token = token(settings, args)?;
    let url = stream_url(settings, args)?;
    let lines = args.json || !std::io::stdout().is_terminal();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("kenar-hook/", env!("CARGO_PKG_VERSION"), " tail"))
        .build()
        .map_err(|e| e.to_string())?;
    let mut last_id: Option<String> = None;
    let mut wait = Duration::from_millis(500);
    loop {
        let mut request = client
            .get(url.clone())
            .bearer_auth(token.expose_secret())
            .header("accept", "text/event-stream");
        if let Some(id) = &last_id {
            request = request.header("last-event-id", id);
        }
        let outcome = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            outcome = read(request, lines, &mut last_id) => outcome,
        };
        match outcome {
            Read::Refused(message) => return Err(message),
            Read::Closed => return Ok(ExitCode::SUCCESS),
            Read::Dropped(why) => {
                eprintln!(
                    "kenar-hook tail: {why}; connecting again in {} ms{}",
                    wait.as_millis(),
                    last_id
                        .as_deref()
                        .map(|id| format!(" (after {id})"))
                        .unwrap_or_default()
                );
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(RECONNECT_MAX);
            }
            Read::Received => wait = Duration::from_millis(500),
        }
    }
}

enum Read {
    /// The service answered with an error that another try would not change.
    Refused(String),
    /// stdout was closed.
    Closed,
    /// The connection failed or ended, before or after records came.
    Dropped(String),
    /// Records came, then the connection ended.
    Received,
}

async fn read(request: reqwest::RequestBuilder, lines: bool, last_id: &mut Option<String>) -> Read {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Read::Dropped(format!("cannot reach the service: {e}")),
    };
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or_default();
        let message = body["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the service answered {status}"));
        return if status.is_server_error() || status.as_u16() == 429 {
            Read::Dropped(message)
        } else {
            Read::Refused(format!("{status}: {message}"))
        };
    }
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut received = false;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Read::Dropped(format!("the stream broke off: {e}")),
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(event) = parse(&block) else {
                continue;
            };
            if print(&render(&event, lines)).is_err() {
                return Read::Closed;
            }
            received = true;
            *last_id = event.id;
        }
    }
    if received {
        Read::Received
    } else {
        Read::Dropped("the stream ended".into())
    }
}

/// One server-sent event.
#[derive(Debug, PartialEq)]
struct SseEvent {
    kind: String,
    id: Option<String>,
    data: String,
}

/// The event of one block of lines; `None` for a comment (keep-alive) or an empty block.
fn parse(block: &str) -> Option<SseEvent> {
    let (mut kind, mut id, mut data) = ("message".to_owned(), None, Vec::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = value.to_owned(),
            "id" => id = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| SseEvent {
        kind,
        id,
        data: data.join("\n"),
    })
}

/// A JSON line, or a readable one: time, kind, side, conversation, text (printed as is).
fn render(event: &SseEvent, lines: bool) -> String {
    let item: Value =
        serde_json::from_str(&event.data).unwrap_or(Value::String(event.data.clone()));
    if lines {
        return json!({"event": event.kind, "id": event.id, "item": item}).to_string();
    }
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    match event.kind.as_str() {
        "message" => {
            let body = match item["text"].as_str() {
                Some(t) => t.to_owned(),
                None => format!("[{}]", text(&item["type"])),
            };
            format!(
                "{}  {:<6}  {}  {}",
                text(&item["sent_at"]),
                text(&item["sender"]["side"]),
                text(&item["conversation_id"]),
                body
            )
        }
        "click" => format!(
            "{}  CLICK   {}  {}",
            text(&item["received_at"]),
            text(&item["conversation_id"]),
            text(&item["url"])
        ),
        kind => format!(
            "{}  {}  {}",
            text(&item["received_at"]),
            kind.to_uppercase(),
            text(&item["type"])
        ),
    }
}

fn token(settings: &Settings, args: &TailArgs) -> Result<SecretString, String> {
    if let Some(token) =
        super::call::token_from("--token-file", args.token_file.as_deref(), API_TOKEN_ENV)?
    {
        return Ok(token);
    }
    settings
        .api
        .tokens
        .first()
        .or_else(|| settings.api.clients.first().map(|c| &c.token))
        .cloned()
        .ok_or_else(|| {
            format!(
                "no API token: give --token-file FILE, set {API_TOKEN_ENV}, or configure api.tokens"
            )
        })
}

fn stream_url(settings: &Settings, args: &TailArgs) -> Result<reqwest::Url, String> {
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let mut listen = settings.server.listen;
            if listen.ip().is_unspecified() {
                listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{listen}")
        }
    };
    let mut url = reqwest::Url::parse(&format!("{base}/api/v1/stream"))
        .map_err(|e| format!("--url {base}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("--url {base}: not an http(s) URL"));
    }
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in [
            ("post_token", &args.post_token),
            ("conversation_id", &args.conversation_id),
            ("from", &args.from),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        if !args.include.is_empty() {
            query.append_pair("include", &args.include.join(","));
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_from_their_blocks_and_comments_skipped() {
        assert_eq!(parse(": keep-alive\n\n"), None);
        assert_eq!(
            parse("event: message\nid: m3.e0.c0\ndata: {\"a\":1}\n\n"),
            Some(SseEvent {
                kind: "message".into(),
                id: Some("m3.e0.c0".into()),
                data: "{\"a\":1}".into()
            })
        );
        assert_eq!(parse("data:x\ndata:y\n\n").unwrap().data, "x\ny");
    }

    #[test]
    fn a_message_line_keeps_persian_text_as_is() {
        let event = SseEvent {
            kind: "message".into(),
            id: Some("m1.e0.c0".into()),
            data: json!({"sent_at": "2025-03-09T08:17:27.515000Z", "conversation_id": "c1",
                "sender": {"side": "BUYER"}, "text": "سلام، قیمت؟ 120"})
            .to_string(),
        };
        assert_eq!(
            render(&event, false),
            "2025-03-09T08:17:27.515000Z  BUYER   c1  سلام، قیمت؟ 120"
        );
        let line: Value = serde_json::from_str(&render(&event, true)).unwrap();
        assert_eq!(line["id"], "m1.e0.c0");
        assert_eq!(line["item"]["text"], "سلام، قیمت؟ 120");
    }
}
