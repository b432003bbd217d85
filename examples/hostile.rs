//! The hostile cases of docs/reliability.md, run against a kenar-hook started by
//! `scripts/hostile.sh` on 127.0.0.1. Each case prints one line: what was answered, how long
//! it took and the server's resident memory (sampled from /proc every 20 ms).
//!
//! ```text
//! cargo run --release --example hostile -- CASE --addr 127.0.0.1:18181 --pid PID \
//!     [--key KEY] [--tokens T1,T2] [--metrics 127.0.0.1:19191]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    case: String,
    addr: SocketAddr,
    pid: u32,
    key: String,
    tokens: Vec<String>,
    metrics: Option<SocketAddr>,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let case = it.next().expect("a case");
    let mut args = Args {
        case,
        addr: "127.0.0.1:18181".parse().unwrap(),
        pid: 0,
        key: String::new(),
        tokens: Vec::new(),
        metrics: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().expect("a value after each flag");
        match flag.as_str() {
            "--addr" => args.addr = value.parse().expect("--addr"),
            "--pid" => args.pid = value.parse().expect("--pid"),
            "--key" => args.key = value,
            "--tokens" => args.tokens = value.split(',').map(str::to_owned).collect(),
            "--metrics" => args.metrics = Some(value.parse().expect("--metrics")),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(args.addr.ip().is_loopback(), "loopback only");
    args
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Samples a process's RSS every 20 ms until dropped; remembers the peak.
struct RssProbe {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    start: u64,
}

impl RssProbe {
    fn start(pid: u32) -> RssProbe {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssProbe {
            start: peak.load(Ordering::Relaxed),
            peak,
            stop,
        }
    }

    fn mib(kib: u64) -> String {
        format!("{:.1}", kib as f64 / 1024.0)
    }

    /// `rss_before_mib=… rss_peak_mib=…`
    fn report(&self) -> String {
        format!(
            "rss_before_mib={} rss_peak_mib={}",
            Self::mib(self.start),
            Self::mib(self.peak.load(Ordering::Relaxed))
        )
    }
}

impl Drop for RssProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends raw bytes and reads the status code of the answer (0 when the connection closed
/// without one).
async fn raw_status(addr: SocketAddr, head: &str, body: &[u8]) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return 0;
    };
    if s.write_all(head.as_bytes()).await.is_err() {
        return read_status(&mut s).await;
    }
    // The server may answer and close before the body is sent: that is the point.
    let _ = s.write_all(body).await;
    read_status(&mut s).await
}

async fn read_status(s: &mut TcpStream) -> u16 {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn post_head(path: &str, key: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: kenar-hook\r\nauthorization: {key}\r\n\
         content-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    )
}

fn legacy(id: &str, text: &str) -> String {
    serde_json::json!({
        "type": "CHAT_MESSAGE", "timestamp": 1741508067,
        "payload": {"id": id, "type": "TEXT", "data": {"text": text},
            "sender": {"id": "u-1", "is_supply": false},
            "receiver": {"id": "u-2", "is_supply": true},
            "metadata": {"post_token": "AZx7Kp2Q", "category": "light", "title": "t"},
            "sent_at": 1741508067315u64}
    })
    .to_string()
}

fn tally(statuses: &[u16]) -> String {
    let mut by: BTreeMap<u16, usize> = BTreeMap::new();
    for s in statuses {
        *by.entry(*s).or_default() += 1;
    }
    by.iter()
        .map(|(s, n)| format!("{s}x{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

async fn webhook_latencies(a: &Args, n: usize, rate: f64, tag: &str) -> (Vec<f64>, Vec<u16>) {
    let client = reqwest::Client::new();
    let url = format!("http://{}/webhooks/divar", a.addr);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, key) = (client.clone(), url.clone(), a.key.clone());
        let body = legacy(&format!("{tag}-{i}"), "سلام");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("authorization", key)
                .body(body)
                .send()
                .await;
            let ms = due.elapsed().as_secs_f64() * 1000.0;
            (ms, r.map(|r| r.status().as_u16()).unwrap_or(0))
        }));
    }
    let mut ms = Vec::new();
    let mut statuses = Vec::new();
    for t in tasks {
        let (m, s) = t.await.unwrap();
        ms.push(m);
        statuses.push(s);
    }
    ms.sort_by(f64::total_cmp);
    (ms, statuses)
}

async fn metrics_text_len(a: &Args) -> usize {
    let Some(m) = a.metrics else { return 0 };
    match reqwest::get(format!("http://{m}/metrics")).await {
        Ok(r) => r.text().await.map(|t| t.len()).unwrap_or(0),
        Err(_) => 0,
    }
}

/// 10,000 requests with made-up methods: /metrics and RSS must not grow with them.
async fn methods(a: &Args) {
    let before_metrics = metrics_text_len(a).await;
    let before = rss_kib(a.pid);
    let mut statuses = Vec::new();
    for chunk in 0..100 {
        let mut tasks = Vec::new();
        for i in 0..100 {
            let head = format!(
                "MX{chunk:03}{i:03}Q /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            );
            tasks.push(tokio::spawn(async move {
                raw_status(a_addr(), &head, b"").await
            }));
        }
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(a.pid);
    let after_metrics = metrics_text_len(a).await;
    println!(
        "methods: 10000 made-up methods: {} metrics_growth_kib={:.1} rss_growth_mib={:.1}",
        tally(&statuses),
        (after_metrics as f64 - before_metrics as f64) / 1024.0,
        (after as f64 - before as f64) / 1024.0
    );
}

static ADDR: std::sync::OnceLock<SocketAddr> = std::sync::OnceLock::new();
fn a_addr() -> SocketAddr {
    *ADDR.get().unwrap()
}

/// 400 connections at a time sending 250 KB legacy-shaped bodies with a wrong key, 8 s.
async fn unauth_bodies(a: &Args) {
    let probe = RssProbe::start(a.pid);
    let body = Arc::new(legacy("guess", &"x".repeat(250_000)).into_bytes());
    let head = Arc::new(post_head(
        "/webhooks/divar",
        "a-guessed-key-000",
        body.len(),
    ));
    let stop = Instant::now() + Duration::from_secs(8);
    let mut tasks = Vec::new();
    for _ in 0..400 {
        let (body, head) = (body.clone(), head.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while Instant::now() < stop {
                statuses.push(raw_status(a_addr(), &head, &body).await);
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    println!(
        "unauth-bodies: 400 connections x 250 KB, wrong key, 8 s: {} {}",
        tally(&statuses),
        probe.report()
    );
}

/// A client sending one header line a second, and one that connects and sends nothing.
async fn slow_clients(a: &Args) {
    let started = Instant::now();
    let mut s = TcpStream::connect(a.addr).await.unwrap();
    let _ = s.write_all(b"POST /webhooks/divar HTTP/1.1\r\n").await;
    let mut lines = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if s.write_all(format!("x-{lines}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
        lines += 1;
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    println!(
        "slow-clients: header trickled a line a second: dropped after {:.1} s ({lines} lines)",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut idle = TcpStream::connect(a.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(120), idle.read(&mut buf)).await;
    println!(
        "slow-clients: connected and silent: closed after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Kept alive after one request, then silent.
    let started = Instant::now();
    let mut kept = TcpStream::connect(a.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(200) {
        match kept.read(&mut buf).await {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    println!(
        "slow-clients: kept alive after a request, then silent: closed={closed} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `n` silent connections, then a valid delivery.
async fn idle_sockets(a: &Args, n: usize) {
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..n {
        match TcpStream::connect(a.addr).await {
            Ok(s) => held.push(s),
            Err(_) => refused += 1,
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let status = reqwest::Client::new()
        .post(format!("http://{}/webhooks/divar", a.addr))
        .header("authorization", &a.key)
        .body(legacy("idle-check", "x"))
        .timeout(Duration::from_secs(90))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    println!(
        "idle-sockets: {n} silent connections ({refused} refused): a valid delivery answered {status} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(held);
}

/// 600 deliveries at once while the database does not answer (the script freezes it).
async fn outage(a: &Args, label: &str) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("http://{}/webhooks/divar", a.addr);
    let mut tasks = Vec::new();
    for i in 0..600 {
        let (client, url, key) = (client.clone(), url.clone(), a.key.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = client
                .post(url)
                .header("authorization", key)
                .body(legacy(&format!("outage-{i}-{}", std::process::id()), "x"))
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match r {
                Ok(r) => (
                    ms,
                    r.status().as_u16(),
                    r.headers().contains_key("retry-after"),
                ),
                Err(_) => (ms, 0, false),
            }
        }));
    }
    let mut ms = Vec::new();
    let mut statuses = Vec::new();
    let mut without_retry_after = 0;
    for t in tasks {
        let (m, s, ra) = t.await.unwrap();
        if s == 503 {
            ms.push(m);
            if !ra {
                without_retry_after += 1;
            }
        }
        statuses.push(s);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "outage-{label}: 600 deliveries at once: {} 503_p50_ms={:.0} 503_p99_ms={:.0} 503_max_ms={:.0} 503_without_retry_after={without_retry_after}",
        tally(&statuses),
        quantile(&ms, 0.5),
        quantile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

/// 8 clients reading `/api/v1/events?limit=500` over and over for 8 s.
async fn events_lists(a: &Args) {
    let probe = RssProbe::start(a.pid);
    let client = reqwest::Client::new();
    let stop = Instant::now() + Duration::from_secs(8);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (
            client.clone(),
            format!("http://{}/api/v1/events?limit=500", a.addr),
            a.tokens[0].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut statuses, mut items) = (Vec::new(), 0usize);
            while Instant::now() < stop {
                match client.get(&url).bearer_auth(&token).send().await {
                    Ok(r) => {
                        statuses.push(r.status().as_u16());
                        let page: serde_json::Value = r.json().await.unwrap_or_default();
                        items += page["items"].as_array().map_or(0, Vec::len);
                    }
                    Err(_) => statuses.push(0),
                }
            }
            (statuses, items)
        }));
    }
    let (mut statuses, mut items) = (Vec::new(), 0);
    for t in tasks {
        let (s, n) = t.await.unwrap();
        items += n;
        statuses.extend(s);
    }
    println!(
        "events-lists: 8 clients x /api/v1/events?limit=500, 8 s: {} items_per_page={:.1} {}",
        tally(&statuses),
        items as f64 / statuses.len().max(1) as f64,
        probe.report()
    );
}

/// 10 streams from position 0 whose readers never read, held 10 s.
async fn stalled_streams(a: &Args) {
    let probe = RssProbe::start(a.pid);
    let mut held = Vec::new();
    for i in 0..10 {
        let mut s = TcpStream::connect(a.addr).await.unwrap();
        let token = &a.tokens[i % a.tokens.len()];
        s.write_all(
            format!(
                "GET /api/v1/stream?include=events,clicks HTTP/1.1\r\nhost: x\r\n\
                 authorization: Bearer {token}\r\nlast-event-id: m0.e0.c0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!(
        "stalled-streams: 10 streams from position 0 never read, 10 s: {}",
        probe.report()
    );
    drop(held);
}

/// Webhook latency at 100 deliveries/s without streams, then with 1,000 streams open.
async fn many_streams(a: &Args) {
    let (quiet, s1) = webhook_latencies(a, 500, 100.0, "quiet").await;
    let client = reqwest::Client::new();
    let opened = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut streams = Vec::new();
    let mut refused = 0;
    for i in 0..1000 {
        let token = a.tokens[i % a.tokens.len()].clone();
        let r = client
            .get(format!("http://{}/api/v1/stream", a.addr))
            .bearer_auth(token)
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => {
                opened.fetch_add(1, Ordering::Relaxed);
                let (events, stop) = (events.clone(), stop.clone());
                streams.push(tokio::spawn(async move {
                    let mut r = r;
                    while !stop.load(Ordering::Relaxed) {
                        match r.chunk().await {
                            Ok(Some(c)) => {
                                events.fetch_add(
                                    c.windows(6).filter(|w| w == b"event:").count() as u64,
                                    Ordering::Relaxed,
                                );
                            }
                            _ => break,
                        }
                    }
                }));
            }
            _ => refused += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let probe = RssProbe::start(a.pid);
    let (busy, s2) = webhook_latencies(a, 500, 100.0, "streams").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    println!(
        "many-streams: webhook at 100/s: without streams {} p50_ms={:.2} p99_ms={:.2}; with {} streams open ({refused} refused) {} p50_ms={:.2} p99_ms={:.2}; stream events received={} {}",
        tally(&s1),
        quantile(&quiet, 0.5),
        quantile(&quiet, 0.99),
        opened.load(Ordering::Relaxed),
        tally(&s2),
        quantile(&busy, 0.5),
        quantile(&busy, 0.99),
        events.load(Ordering::Relaxed),
        probe.report()
    );
    for s in streams {
        s.abort();
    }
}

/// The earlier bad-input cases, with the app's key.
async fn bad_inputs(a: &Args) {
    let probe = RssProbe::start(a.pid);
    let key = &a.key;
    let send = |body: Vec<u8>| {
        let head = post_head("/webhooks/divar", key, body.len());
        async move { raw_status(a_addr(), &head, &body).await }
    };
    let mut rows = Vec::new();
    rows.push(("not JSON", send(b"{not json".to_vec()).await));
    rows.push((
        "10 MB body",
        send(legacy("big", &"x".repeat(10 << 20)).into_bytes()).await,
    ));
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    rows.push(("300-deep nesting", send(deep.into_bytes()).await));
    rows.push((
        "NUL in text and id",
        send(
            legacy("nul\\u0000id", "a\\u0000b")
                .replace("\\\\u0000", "\\u0000")
                .into_bytes(),
        )
        .await,
    ));
    let surrogate = legacy("surrogate-1", "PLACEHOLDER").replace("PLACEHOLDER", "a\\ud800b");
    rows.push(("lone surrogate", send(surrogate.into_bytes()).await));
    let huge = legacy("huge-number", "x").replace("1741508067315", &"9".repeat(400));
    rows.push(("400-digit number", send(huge.into_bytes()).await));
    // A body trickled 10 bytes a second: bounded by server.request_timeout_ms.
    let body = legacy("slow-body", "x");
    let head = post_head("/webhooks/divar", key, body.len());
    let started = Instant::now();
    let mut s = TcpStream::connect(a.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut status = 0;
    for chunk in body.as_bytes().chunks(10) {
        if s.write_all(chunk).await.is_err() {
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            status = String::from_utf8_lossy(&buf[..n])
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            break;
        }
    }
    for (what, status) in rows {
        println!("bad-input: {what}: {status}");
    }
    println!(
        "bad-input: body trickled 10 bytes a second: {status} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("bad-input: all of the above: {}", probe.report());
}

/// 600 events of about 200 KB each, for the list and stream cases.
async fn seed_events(a: &Args) {
    let client = reqwest::Client::new();
    let note = "ا".repeat(100_000);
    let mut statuses = Vec::new();
    for i in 0..600 {
        let body = serde_json::json!({
            "type": "POST_UPDATE",
            "post_update": {"type": "ONGOING",
                "post": {"token": format!("P{i}"), "data": {"title": "t", "note": note}}},
            "metadata": {"n": i}
        });
        let r = client
            .post(format!("http://{}/webhooks/divar", a.addr))
            .header("authorization", &a.key)
            .body(body.to_string())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        statuses.push(r);
    }
    println!("seed-events: 600 events of 200 KB: {}", tally(&statuses));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = parse_args();
    let _ = ADDR.set(a.addr);
    match a.case.as_str() {
        "methods" => methods(&a).await,
        "unauth-bodies" => unauth_bodies(&a).await,
        "slow-clients" => slow_clients(&a).await,
        "idle-sockets" => idle_sockets(&a, 300).await,
        "outage-postgres" => outage(&a, "postgres").await,
        "outage-sqlite" => outage(&a, "sqlite").await,
        "seed-events" => seed_events(&a).await,
        "events-lists" => events_lists(&a).await,
        "stalled-streams" => stalled_streams(&a).await,
        "many-streams" => many_streams(&a).await,
        "bad-inputs" => bad_inputs(&a).await,
        other => panic!("unknown case {other}"),
    }
}
