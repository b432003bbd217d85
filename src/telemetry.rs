//! Logging (tracing), request spans, and Prometheus metrics on a listener of their own.

use std::io::{BufWriter, IsTerminal};
use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Span;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global tracing subscriber. Call once, from `main`, and keep the guard until
/// the process ends: dropping it writes out what is left.
pub fn init_tracing(settings: &LogSettings) -> WorkerGuard {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    // A line per request written to stderr directly is a system call in every request's
    // path; under load those writes were a large share of the CPU. A thread of its own
    // writes the lines instead, many per call. It never drops a line: when 16k lines wait
    // (a few MB), logging waits too.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(16 * 1024)
        .thread_name("kenar-hook-log")
        .finish(BufWriter::new(std::io::stderr()));
    // Colour codes only for a person at a terminal, never into files or log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    guard
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let size_buckets = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &latency_buckets,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("kenar_batch_commit_seconds".into()),
                        &latency_buckets,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("kenar_batch_size".into()),
                        &size_buckets,
                    )
                })
                .expect("static bucket lists are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed; then ours renders nothing,
            // which is better than refusing to start.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The router of the metrics listener: `GET /metrics`.
pub fn metrics_router() -> Router {
    let handle = metrics_handle();
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                handle.run_upkeep();
                handle.render()
            }
        }),
    )
}

/// The `x-request-id` header set on every request and response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The span of one request: method, path, request id, and (recorded once routing has
/// happened) the matched route; a webhook delivery adds its type, key, outcome and masked
/// contact phone, so the one line logged per request says all of it. Header values are
/// never recorded.
pub fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        route = tracing::field::Empty,
        event_type = tracing::field::Empty,
        key = tracing::field::Empty,
        outcome = tracing::field::Empty,
        contact_phone = tracing::field::Empty,
    )
}

/// A metric label for a method from a fixed set: a label made from request data would let
/// any caller grow the metrics without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// Counts a request no route matched (answered 404), under the one route label
/// `unmatched`: the path itself never becomes a label.
pub fn count_unmatched(method: &Method) {
    Span::current().record("route", "unmatched");
    metrics::counter!("http_requests_total",
        "route" => "unmatched", "method" => method_label(method), "status" => "404")
    .increment(1);
}

/// Route-level middleware: records the matched route on the request span and counts the
/// request and its latency by route, method and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    Span::current().record("route", route.as_str());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total",
        "route" => route.clone(), "method" => method, "status" => status)
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
