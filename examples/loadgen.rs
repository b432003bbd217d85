//! An open-loop HTTP load generator for the benchmarks in BENCHMARKS.md.
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
//! path per line, appended to `--url` in turn, for GET benchmarks.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

struct Args {
    url: String,
    rate: f64,
    seconds: f64,
    warmup_seconds: f64,
    headers: Vec<(String, String)>,
    bodies: Vec<Vec<u8>>,
    paths: Vec<String>,
    method: reqwest::Method,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: String::new(),
        rate: 100.0,
        seconds: 30.0,
        warmup_seconds: 5.0,
        headers: Vec::new(),
        bodies: Vec::new(),
        paths: Vec::new(),
        method: reqwest::Method::GET,
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
                args.headers
                    .push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "--body-file" => args
                .bodies
                .push(std::fs::read(value()).expect("--body-file")),
            "--paths-file" => {
                let text = std::fs::read_to_string(value()).expect("--paths-file");
                args.paths = text
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--method" => args.method = value().parse().expect("--method"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.url.is_empty(), "--url is required");
    let host = reqwest::Url::parse(&args.url).expect("--url");
    assert!(
        matches!(host.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        "loadgen targets loopback only"
    );
    if !args.bodies.is_empty() && args.method == reqwest::Method::GET {
        args.method = reqwest::Method::POST;
    }
    args
}

struct Sample {
    warm: bool,
    latency: Duration,
    status: u16,
}

// One thread: the generator shares the machine with the server it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = parse_args();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let total = ((args.seconds + args.warmup_seconds) * args.rate).round() as u64;
    let warmup = (args.warmup_seconds * args.rate).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let started = Instant::now();
    // Tokio's timer rounds every deadline up to a whole millisecond: paced by it, requests
    // went out in bursts up to 1 ms late, and that lateness was counted as the server's.
    // A thread of its own sleeps to each due time instead (to within the kernel's timer
    // slack, about 50 µs) and hands the request to the runtime.
    let (pace_tx, mut pace_rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    std::thread::spawn(move || {
        for i in 0..total {
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
        let url = match args.paths.is_empty() {
            true => args.url.clone(),
            false => format!("{}{}", args.url, args.paths[i as usize % args.paths.len()]),
        };
        let mut request = client.request(args.method.clone(), url);
        for (k, v) in &args.headers {
            request = request.header(k, v);
        }
        if !args.bodies.is_empty() {
            request = request.body(args.bodies[i as usize % args.bodies.len()].clone());
        }
        let tx = tx.clone();
        tokio::spawn(async move {
            let status = match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 0,
            };
            let _ = tx.send(Sample {
                warm: i >= warmup,
                latency: due.elapsed(),
                status,
            });
        });
    }
    drop(tx);
    let mut latencies = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    while let Some(s) = rx.recv().await {
        if s.warm {
            latencies.push(s.latency);
            *statuses.entry(s.status).or_default() += 1;
        }
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
    println!(
        "latency ms      p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
}
