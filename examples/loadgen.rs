//! An open-loop HTTP load generator for the benchmarks in docs/benchmarks.md.
//!
//! Sends requests at a constant rate (not "as fast as answers come back"), and measures each
//! latency from the moment the request was due, so a slow server cannot hide its queueing
//! (coordinated omission). Targets loopback only.
//!
//! ```text
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080/callbacks/divar \
//!     --rate 200 --seconds 60 --header authorization:KEY --body-file tests/fixtures/legacy_button_click.json
//! ```
//!
//! `--body-file` may be given several times (bodies are used in turn); `--paths-file` gives one
//! path per line, appended to `--url` in turn, for GET benchmarks. `--unique RUN` makes every
//! body unique: `{n}` in a body becomes `RUN-0-<request number>`, and `{c}` and `{p}` a
//! conversation number and its post's (one post per conversation; scripts/ingest/*.json).
//!
//! `--record FILE` writes one line per request as it ends: the id `{n}` stood for (else the
//! request number), when it was due (Unix ms), its latency (ms) and its status (0: no
//! answer). `--stop-file PATH` ends the run early once PATH exists (for a load that lasts as
//! long as something else does).
//!
//! It shares the machine with the server it measures, so it is built to take little of it:
//! one runtime thread, HTTP/1.1 keep-alive connections driven by hyper directly (a general
//! client's per-request layers took about a fifth more CPU), and a pacing thread.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

struct Args {
    url: String,
    rate: f64,
    seconds: f64,
    warmup_seconds: f64,
    headers: HeaderMap,
    bodies: Vec<Bytes>,
    paths: Vec<String>,
    method: Method,
    unique: Option<String>,
    record: Option<String>,
    stop_file: Option<std::path::PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: String::new(),
        rate: 100.0,
        seconds: 30.0,
        warmup_seconds: 5.0,
        headers: HeaderMap::new(),
        bodies: Vec::new(),
        paths: Vec::new(),
        method: Method::GET,
        unique: None,
        record: None,
        stop_file: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value(),
            "--rate" => args.rate = value().parse().expect("--rate"),
            "--seconds" => args.seconds = value().parse().expect("--seconds"),
            "--warmup-seconds" => args.warmup_seconds = value().parse().expect("--warmup-seconds"),
            "--header" => {
                let v = value();
                let (k, v) = v.split_once(':').expect("--header NAME:VALUE");
                args.headers.append(
                    HeaderName::try_from(k.trim()).expect("--header name"),
                    HeaderValue::try_from(v.trim()).expect("--header value"),
                );
            }
            "--body-file" => args
                .bodies
                .push(std::fs::read(value()).expect("--body-file").into()),
            "--paths-file" => {
                let text = std::fs::read_to_string(value()).expect("--paths-file");
                args.paths = text
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--unique" => args.unique = Some(value()),
            "--record" => args.record = Some(value()),
            "--stop-file" => args.stop_file = Some(value().into()),
            "--method" => args.method = value().parse().expect("--method"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.url.is_empty(), "--url is required");
    if !args.bodies.is_empty() && args.method == Method::GET {
        args.method = Method::POST;
    }
    args
}

/// The loopback address and port of an `http://` URL, and its path (without a trailing `/`).
fn target(url: &str) -> (SocketAddr, String, String) {
    let uri: Uri = url.parse().expect("--url");
    assert_eq!(uri.scheme_str(), Some("http"), "--url must be http://");
    let authority = uri.authority().expect("--url needs a host").clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        other => other
            .parse()
            .expect("--url host must be an IP address or localhost"),
    };
    assert!(ip.is_loopback(), "loadgen targets loopback only");
    let addr = SocketAddr::new(ip, authority.port_u16().unwrap_or(80));
    let path = uri.path().trim_end_matches('/').to_owned();
    (addr, authority.to_string(), path)
}

type Sender = SendRequest<Full<Bytes>>;

/// Idle keep-alive connections; a request takes one or opens a new one.
struct Connections {
    addr: SocketAddr,
    idle: Mutex<Vec<Sender>>,
}

impl Connections {
    async fn take(&self) -> Result<Sender, Box<dyn std::error::Error + Send + Sync>> {
        loop {
            let idle = self.idle.lock().expect("idle list").pop();
            match idle {
                Some(s) if s.is_closed() => continue,
                Some(s) => return Ok(s),
                None => break,
            }
        }
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }

    fn put(&self, sender: Sender) {
        self.idle.lock().expect("idle list").push(sender);
    }

    /// Sends one request and reads the whole answer: its status.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
        let mut sender = self.take().await?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        self.put(sender);
        Ok(status)
    }
}

struct Sample {
    index: u64,
    /// When it was due, from the start.
    due: Duration,
    warm: bool,
    latency: Duration,
    /// 0 when no answer came: `error` says why.
    status: u16,
    error: Option<String>,
}

/// A body template with `{n}` replaced by an id unique to this run and request, and `{c}` and
/// `{p}` by one of 5,000 conversation numbers (the same scheme as scripts/ingest/wrk.lua with
/// a post per conversation).
fn unique_body(template: &Bytes, run: &str, i: u64) -> Bytes {
    let text = std::str::from_utf8(template).expect("--unique bodies are UTF-8");
    let conversation = format!("{:06}", (i * 7) % 5000);
    text.replace("{n}", &format!("{run}-0-{i}"))
        .replace("{c}", &conversation)
        .replace("{p}", &conversation)
        .into()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = parse_args();
    let (addr, authority, base_path) = target(&args.url);
    let mut headers = args.headers.clone();
    headers.insert(HOST, HeaderValue::try_from(authority).expect("host header"));
    // Every request's target, parsed once: a --paths-file path appended to --url's path.
    let uris: Vec<Uri> = match args.paths.is_empty() {
        true => vec![base_path.clone()],
        false => args
            .paths
            .iter()
            .map(|p| format!("{base_path}{p}"))
            .collect(),
    }
    .into_iter()
    .map(|path| {
        if path.is_empty() {
            "/".to_owned()
        } else {
            path
        }
    })
    .map(|path| path.parse().expect("request path"))
    .collect();
    let connections = Arc::new(Connections {
        addr,
        idle: Mutex::new(Vec::new()),
    });
    let total = ((args.seconds + args.warmup_seconds) * args.rate).round() as u64;
    let warmup = (args.warmup_seconds * args.rate).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let started = Instant::now();
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        * 1e3;
    let mut record = args
        .record
        .as_ref()
        .map(|path| std::io::BufWriter::new(std::fs::File::create(path).expect("--record file")));
    let stop_file = args.stop_file.clone();
    // Tokio's timer rounds every deadline up to a whole millisecond: paced by it, requests
    // went out in bursts up to 1 ms late, and that lateness was counted as the server's.
    // A thread of its own sleeps to each due time instead (to within the kernel's timer
    // slack, about 50 µs) and hands the request to the runtime.
    let (pace_tx, mut pace_rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    std::thread::spawn(move || {
        for i in 0..total {
            if stop_file.as_ref().is_some_and(|p| p.exists()) {
                break;
            }
            let due = started + interval.mul_f64(i as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if pace_tx.send((i, due)).is_err() {
                break;
            }
        }
    });
    while let Some((i, due)) = pace_rx.recv().await {
        let body = match (args.bodies.is_empty(), &args.unique) {
            (true, _) => Bytes::new(),
            (false, None) => args.bodies[i as usize % args.bodies.len()].clone(),
            (false, Some(run)) => unique_body(&args.bodies[i as usize % args.bodies.len()], run, i),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = args.method.clone();
        *request.uri_mut() = uris[i as usize % uris.len()].clone();
        *request.headers_mut() = headers.clone();
        let connections = connections.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let status: (u16, Option<String>) = match tokio::time::timeout(
                Duration::from_secs(10),
                connections.send(request),
            )
            .await
            {
                Ok(Ok(status)) => (status, None),
                Ok(Err(e)) => (0, Some(e.to_string())),
                Err(_) => (0, Some("no answer within 10 s".to_owned())),
            };
            let _ = tx.send(Sample {
                index: i,
                due: due - started,
                warm: i >= warmup,
                latency: due.elapsed(),
                status: status.0,
                error: status.1,
            });
        });
    }
    drop(tx);
    let mut latencies = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    while let Some(s) = rx.recv().await {
        if let Some(out) = record.as_mut() {
            use std::io::Write;
            let id = match &args.unique {
                Some(run) => format!("{run}-0-{}", s.index),
                None => s.index.to_string(),
            };
            writeln!(
                out,
                "{id} {:.3} {:.3} {}",
                started_unix_ms + s.due.as_secs_f64() * 1e3,
                s.latency.as_secs_f64() * 1e3,
                s.status
            )
            .expect("--record write");
        }
        if s.warm {
            latencies.push(s.latency);
            *statuses.entry(s.status).or_default() += 1;
            if let Some(e) = s.error {
                *errors.entry(e).or_default() += 1;
            }
        }
    }
    if let Some(mut out) = record {
        use std::io::Write;
        out.flush().expect("--record write");
    }
    let wall = started.elapsed().as_secs_f64() - args.warmup_seconds;
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    println!(
        "requests        {} (after {} s warm-up)",
        latencies.len(),
        args.warmup_seconds
    );
    println!(
        "target rate     {:.0}/s, achieved {:.0}/s",
        args.rate,
        latencies.len() as f64 / wall
    );
    println!("statuses        {statuses:?}");
    if !errors.is_empty() {
        println!("no answer       {errors:?}");
    }
    println!(
        "latency ms      p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
}
