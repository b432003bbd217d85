//! Logging (tracing), request spans, and Prometheus metrics on a listener of their own.

use std::io::{BufWriter, IsTerminal};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tracing::Span;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};
use crate::store;

/// Installs the global tracing subscriber. Call once, from `main`, and keep the guard until
/// the process ends: dropping it writes out what is left. `RUST_LOG`, when set, replaces
/// `log.level` (it is checked with the settings, so a bad filter stops start-up).
pub fn init_tracing(settings: &LogSettings) -> WorkerGuard {
    let filter = log_filter(&settings.level, std::env::var("RUST_LOG").ok().as_deref());
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
        // One list of the spans an event is in, outermost first; not also the innermost
        // span again under `span`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    guard
}

/// The filter in force: `RUST_LOG` when set and not empty, else `log.level`. PostgreSQL's
/// notices (such as a migration table that "already exists, skipping" on every start) are
/// shown only when the filter asks for debug, or names the database library itself
/// ([`store::LOG_TARGET`]).
pub fn log_filter(level: &str, rust_log: Option<&str>) -> EnvFilter {
    let text = match rust_log.map(str::trim) {
        Some(v) if !v.is_empty() => v,
        _ => level,
    };
    let filter = EnvFilter::try_new(text).unwrap_or_else(|_| EnvFilter::new("info"));
    let wants_debug = filter
        .max_level_hint()
        .is_some_and(|max| max >= tracing::level_filters::LevelFilter::DEBUG);
    if wants_debug || text.contains(store::LOG_TARGET) {
        return filter;
    }
    filter.add_directive(store::QUIET_NOTICES.parse().expect("a valid directive"))
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            // A delivery's stages take from microseconds (a wake-up) to seconds (a stall).
            let stage_buckets = [
                0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0, 2.5, 5.0,
            ];
            let size_buckets = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
            let buckets: [(&str, &[f64]); 5] = [
                ("http_request_duration_seconds", &latency_buckets),
                ("kenar_batch_commit_seconds", &latency_buckets),
                ("kenar_sqlite_log_restart_seconds", &latency_buckets),
                ("kenar_ingest_stage_seconds", &stage_buckets),
                ("kenar_batch_size", &size_buckets),
            ];
            let recorder = buckets
                .into_iter()
                .try_fold(PrometheusBuilder::new(), |builder, (name, list)| {
                    builder.set_buckets_for_metric(Matcher::Full(name.into()), list)
                })
                .expect("static bucket lists are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed; then ours renders nothing,
            // which is better than refusing to start.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            metrics::gauge!("kenar_hook_build_info", "version" => env!("CARGO_PKG_VERSION"))
                .set(1.0);
            handle
        })
        .clone()
}

/// The process collector: resident memory, open descriptors, CPU time, threads.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    })
}

/// `# HELP` and `# TYPE` lines for every metric kenar-hook records.
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "kenar_hook_build_info",
        "Always 1; the version label names the running build"
    );
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by matched route (unmatched for 404s), method and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time from routing a request to its answer, by route and method"
    );
    describe_counter!(
        "kenar_webhook_deliveries_total",
        "Divar deliveries by event type, outcome (stored, duplicate, rejected, ...) and reason"
    );
    describe_counter!(
        "kenar_clicks_total",
        "Button clicks answered, by callback version and outcome"
    );
    describe_counter!(
        "kenar_auth_failures_total",
        "Requests refused for a missing or wrong key or token (401) or for too many such failures (429)"
    );
    describe_counter!(
        "kenar_stream_refusals_total",
        "Live streams refused because a stream limit was reached, by the limit's setting"
    );
    describe_counter!(
        "kenar_accept_errors_total",
        "Errors accepting a TCP connection (such as running out of file descriptors)"
    );
    describe_gauge!(
        "kenar_ingest_queue_depth",
        "Deliveries waiting for the batch writer"
    );
    describe_histogram!(
        "kenar_batch_commit_seconds",
        Unit::Seconds,
        "Time to store and commit one batch of deliveries"
    );
    describe_histogram!("kenar_batch_size", "Deliveries committed in one batch");
    describe_histogram!(
        "kenar_ingest_stage_seconds",
        Unit::Seconds,
        "Each delivery's time per stage: prepare (checks and normalisation), queue (until its \
         batch begins), commit (its batch's write), answer (until the handler runs again)"
    );
    describe_counter!(
        "kenar_source_refusals_total",
        "Requests to the routes Divar calls refused for a client outside divar.allowed_sources"
    );
    describe_histogram!(
        "kenar_sqlite_log_restart_seconds",
        Unit::Seconds,
        "Each time the SQLite log was brought back to its beginning: how long batches waited \
         for the checkpoint on the writer's connection"
    );
    describe_counter!(
        "kenar_crowded_total",
        "Times every connection slot (server.max_connections) was taken while a client \
         waited, and kept-alive connections with no request in flight were asked to close"
    );
    describe_counter!(
        "kenar_ingest_slow_commits_total",
        "Times a commit took longer than ingest.write_timeout_ms while the database answered, \
         and was waited for"
    );
    describe_gauge!(
        "kenar_database_breaker_open",
        "1 while the database is unavailable and deliveries are answered 503 at once"
    );
    describe_counter!(
        "kenar_database_breaker_trips_total",
        "Times the database breaker opened"
    );
}

/// The Prometheus text format's content type, version included, as scrapers expect.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The router of the metrics listener: `GET /metrics`, for `authorization: Bearer <token>`
/// only when a token is set.
pub fn metrics_router(token: Option<SecretString>) -> Router {
    let handle = metrics_handle();
    let token = token.map(|t| Arc::new(t.expose_secret().as_bytes().to_vec()));
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let handle = handle.clone();
            let token = token.clone();
            async move {
                if let Some(want) = token {
                    let given = headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "));
                    if !given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(want.as_slice()))) {
                        let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
                        return (
                            StatusCode::UNAUTHORIZED,
                            challenge,
                            "metrics.token is set: send authorization: Bearer <token>\n",
                        )
                            .into_response();
                    }
                }
                process_collector().collect();
                handle.run_upkeep();
                (
                    [(header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// The `x-request-id` header set on every request and response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The span of one request: method, path, request id, and (recorded once routing has
/// happened) the matched route and the read API's client by name; a webhook delivery adds its type, key, outcome and masked
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
        client = tracing::field::Empty,
        event_type = tracing::field::Empty,
        record_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        contact_phone = tracing::field::Empty,
    )
}

/// The one line logged per request, in its span: the status and the latency as numbers
/// (milliseconds, fractional), so collectors can compare and sum them.
pub fn log_response(response: &Response, latency: std::time::Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_micros() as f64 / 1000.0,
        "finished processing request"
    );
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
