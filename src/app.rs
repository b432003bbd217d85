//! Building the router and middleware stack; starting, serving and shutting down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::api::access::ApiAccess;
use crate::api::hub::Hub;
use crate::auth::{Failures, KeySet, RegistrationKeys};
use crate::config::Settings;
use crate::error::AppError;
use crate::ingest::breaker::Breaker;
use crate::ingest::writer::{Writer, WriterSettings};
use crate::notify::Changes;
use crate::store::Store;
use crate::telemetry::{self, REQUEST_ID};
use crate::{api, auth, callback, health, ingest, server};

pub use crate::state::{AppState, Shared};

/// Every route of the HTTP API, in one place, with the middleware stack.
pub fn router(state: AppState) -> Router {
    let settings = &state.settings.server;
    let request_timeout = Duration::from_millis(settings.request_timeout_ms);
    Router::new()
        .merge(ingest::routes().merge(callback::routes()).route_layer(
            middleware::from_fn_with_state(state.clone(), auth::divar_only),
        ))
        .merge(crate::oauth::routes::routes(state.clone()))
        .merge(api::routes(state.clone()))
        .merge(crate::inbox::routes(&state))
        .merge(health::routes())
        .fallback(|method: axum::http::Method| async move {
            telemetry::count_unmatched(&method);
            AppError::NotFound("no such route".to_owned())
        })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .route_layer(middleware::from_fn(telemetry::track_http))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            request_deadline(request_timeout, request, next)
        }))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_response(telemetry::log_response),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

/// Answers 408 in the error shape of the route (a legacy click gets its own) when a request
/// takes longer than `limit`, body reading included.
async fn request_deadline(limit: Duration, request: Request, next: Next) -> Response {
    let legacy_click = callback::Shaped::legacy_click(request.uri().path(), request.headers());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let error = AppError::RequestTimeout {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            };
            callback::Shaped::new(legacy_click, error).into_response()
        }
    }
}

/// A running service: its address, its store, and the means to stop it.
#[derive(Debug)]
pub struct RunningApp {
    /// The address the HTTP API listens on.
    pub addr: SocketAddr,
    /// The database the service writes to.
    pub store: Store,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    /// A token that stops the service when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the service has stopped (after its shutdown token is cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }

    /// Stops accepting, lets in-flight requests finish and commit, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Connects to the database, migrates it, and serves the API on `listener` until the
/// returned app's shutdown token is cancelled.
pub async fn start(settings: Settings, listener: TcpListener) -> anyhow::Result<RunningApp> {
    let store = Store::connect(&settings.database).await?;
    start_with(settings, listener, store).await
}

/// [`start`] with the database already connected.
async fn start_with(
    settings: Settings,
    listener: TcpListener,
    store: Store,
) -> anyhow::Result<RunningApp> {
    // Installed before the first request so no early count is lost.
    telemetry::metrics_handle();
    let keys = auth::identification_keys(&settings)?;
    store.migrate().await.context("applying migrations")?;
    if let Some(advice) = store.setting_advice().await {
        tracing::info!("{advice}");
    }
    // Kept by the store from here on: every webhook-id holds it.
    store
        .installation()
        .await
        .context("reading the installation id")?;
    let settings = Arc::new(settings);
    let changes = Changes::new();
    let shutdown = CancellationToken::new();
    store.spawn_upkeep(shutdown.clone());
    store.spawn_change_listener(changes.clone(), shutdown.clone());
    let writers = settings
        .ingest
        .writers
        .unwrap_or_else(|| store.default_writers());
    let write_timeout = Duration::from_millis(settings.ingest.write_timeout_ms);
    let breaker = Arc::new(Breaker::new(write_timeout * 2));
    let (writer, writer_task) = Writer::spawn(
        store.clone(),
        WriterSettings {
            capacity: settings.ingest.queue_capacity,
            batch_max: settings.ingest.batch_max,
            writers,
            write_timeout,
            // A 503 before the request's own deadline answers the 408.
            deadline: Duration::from_millis(settings.server.request_timeout_ms) * 4 / 5,
        },
        breaker.clone(),
        changes.clone(),
    );
    let registrations = Arc::new(RegistrationKeys::default());
    registrations
        .refresh(&store)
        .await
        .context("reading the registration keys")?;
    registrations.spawn_refresh(store.clone(), shutdown.clone());
    let failures = Failures::new(
        settings.api.auth_failures_per_minute,
        settings.server.trusted_proxies.clone(),
    );
    failures.spawn_cleanup(shutdown.clone());
    let hub = Hub::spawn(
        store.clone(),
        changes.subscribe(),
        crate::api::hub::stream_budget(settings.api.page_max_bytes),
        shutdown.clone(),
    )
    .await
    .context("reading where the live streams start")?;
    crate::retention::spawn(store.clone(), &settings, shutdown.clone());
    crate::oauth::revoke::spawn_revocation_watch(
        store.clone(),
        crate::oauth::revoke::Erase::of(&settings),
        changes.subscribe(),
        shutdown.clone(),
    );
    let oauth = match settings.oauth.why_off() {
        Some(why) => {
            tracing::info!("{why}");
            None
        }
        None => {
            let tokens = crate::oauth::Tokens::new(&settings, store.clone())
                .context("starting the token vault")?;
            tokens.spawn_refresher(shutdown.clone());
            tokens.limiter().spawn_cleanup(shutdown.clone());
            Some(tokens)
        }
    };
    // The vault's client when there is one: the replies share its connections to Divar.
    let divar = match &oauth {
        Some(tokens) => Ok(tokens.divar().clone()),
        None => crate::divar::outbound::DivarClient::new(settings.divar.client.clone())
            .map_err(|e| e.to_string()),
    };
    let outbox = crate::outbox::send::Sender::new(
        store.clone(),
        divar,
        oauth.clone(),
        settings.oauth.why_off().unwrap_or_default(),
    );
    let forwarders = crate::forward::spawn(
        store.clone(),
        &settings.forward,
        outbox,
        changes.subscribe(),
        shutdown.clone(),
    )
    .await
    .context("registering the forwarding endpoints")?;
    let api = ApiAccess::new(&settings.api);
    api.redemptions().spawn_cleanup(shutdown.clone());
    api.sessions().spawn_cleanup(shutdown.clone());
    let state = AppState::new(Shared {
        settings: settings.clone(),
        store: store.clone(),
        writer,
        keys: Arc::new(KeySet::new(&keys)),
        registrations,
        failures,
        breaker,
        hub,
        api: api.clone(),
        changes,
        shutdown: shutdown.clone(),
        oauth,
    });
    let addr = listener.local_addr()?;
    let app = router(state);
    let limits = server::Limits::new(&settings.server);
    let token = shutdown.clone();
    let grace = Duration::from_millis(settings.server.shutdown_timeout_ms);
    let task_store = store.clone();
    let task = tokio::spawn(async move {
        let server = server::serve(listener, app, limits, token.clone());
        tokio::pin!(server);
        tokio::select! {
            () = &mut server => {}
            _ = async { token.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("in-flight requests did not finish in time; stopping anyway");
            }
        }
        // The router (and with it every Writer clone) is gone, so the writer drains the
        // queue and ends.
        if tokio::time::timeout(Duration::from_secs(2), writer_task)
            .await
            .is_err()
        {
            tracing::warn!("the batch writer did not finish in time");
        }
        // Forwarders write what was answered before they end.
        let forwarders = futures_util::future::join_all(forwarders);
        if tokio::time::timeout(Duration::from_secs(2), forwarders)
            .await
            .is_err()
        {
            tracing::warn!("the forwarders did not finish in time");
        }
        task_store.close().await;
        Ok(())
    });
    tracing::info!(%addr, "listening");
    Ok(RunningApp {
        addr,
        store,
        shutdown,
        task,
    })
}

/// Serves until SIGTERM or Ctrl-C: the API on `server.listen` and, when enabled, metrics on
/// `metrics.listen`.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("binding server.listen {}", settings.server.listen))?;
    let metrics = if settings.metrics.enabled {
        let metrics_listener = TcpListener::bind(settings.metrics.listen)
            .await
            .with_context(|| format!("binding metrics.listen {}", settings.metrics.listen))?;
        tracing::info!(addr = %settings.metrics.listen, "metrics listening");
        Some(metrics_listener)
    } else {
        None
    };
    // Listened for from here on: a signal that comes while the service starts is kept for
    // the wait below or for the shutdown, never lost between the two.
    let mut signals = StopSignals::listen();
    let Some(store) = wait_for_database(&settings, &listener, &mut signals).await? else {
        return Ok(());
    };
    let metrics_router = telemetry::metrics_router(settings.metrics.token.clone());
    let app = start_with(settings, listener, store).await?;
    let token = app.shutdown_token();
    if let Some(listener) = metrics {
        let token = token.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, metrics_router)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
        });
    }
    tokio::spawn(async move {
        signals.recv().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    app.wait().await
}

/// Connects to the database, trying again with backoff for up to
/// `database.startup_wait_secs` (a database container often starts after this one). Each new
/// cause is logged once. Meanwhile `listener` answers `/healthz` 200 and everything else 503,
/// so an orchestrator sees a live process that is not ready yet. `None`: a signal asked the
/// process to stop while waiting.
async fn wait_for_database(
    settings: &Settings,
    listener: &TcpListener,
    signals: &mut StopSignals,
) -> Result<Option<Store>, crate::store::Unreachable> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(settings.database.startup_wait_secs);
    let connect = async {
        let mut delay = Duration::from_millis(250);
        let mut last_cause = String::new();
        loop {
            match Store::connect(&settings.database).await {
                Ok(store) => return Ok(store),
                Err(e) if tokio::time::Instant::now() + delay >= deadline => return Err(e),
                Err(e) => {
                    if e.0 != last_cause {
                        tracing::warn!(
                            cause = %e.0,
                            wait_secs = settings.database.startup_wait_secs,
                            "waiting for the database"
                        );
                        last_cause = e.0;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    };
    let stop_waiting = CancellationToken::new();
    let starting = server::serve(
        listener,
        starting_router(),
        server::Limits::new(&settings.server),
        stop_waiting.clone(),
    );
    tokio::pin!(starting);
    let outcome = tokio::select! {
        outcome = connect => outcome.map(Some),
        () = signals.recv() => Ok(None),
        () = &mut starting => Ok(None),
    };
    stop_waiting.cancel();
    // Open connections are asked to close; one that lingers is left to finish alone.
    let _ = tokio::time::timeout(Duration::from_secs(1), starting).await;
    outcome
}

/// What the listener answers while the database is awaited.
fn starting_router() -> Router {
    let starting = || AppError::Unavailable {
        message: "starting: waiting for the database".to_owned(),
        retry_after_secs: 5,
    };
    Router::new()
        .route("/healthz", axum::routing::get(health::healthz))
        .fallback(move || async move { starting() })
}

/// SIGTERM and SIGINT, listened for from the moment [`StopSignals::listen`] returns: one
/// that arrives before [`StopSignals::recv`] is awaited is kept, not lost.
struct StopSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StopSignals {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Returns when a signal to stop has come (at once when one came already).
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn one(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = one(&mut self.terminate) => {},
                () = one(&mut self.interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
