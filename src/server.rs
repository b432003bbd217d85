//! Serving HTTP/1.1 connections with the limits `axum::serve` lacks: a deadline for a
//! request's headers, an idle timeout for kept-alive connections, a cap on open connections,
//! and a back-off when accepting fails (out of file descriptors).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ServerSettings;

/// The connection limits, from `server.*`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's whole header block within this time of connecting or
    /// of the answer to its previous request, so a silent kept-alive connection is closed
    /// after it too.
    pub header_read_timeout: Duration,
    /// A connection with no bytes read or written for this long is closed: at once when no
    /// request is in flight, else once the request ends or `request_timeout` more has passed.
    pub idle_timeout: Duration,
    /// Connections open at once; further clients wait in the listen queue.
    pub max_connections: usize,
    /// How long an idle connection's request in flight may still take before the
    /// connection is dropped (a live stream whose reader stopped reading never ends).
    pub request_timeout: Duration,
}

impl Limits {
    /// The limits as configured.
    pub fn new(settings: &ServerSettings) -> Self {
        Limits {
            header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
            max_connections: settings.max_connections,
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`; then stops accepting, lets every open
/// connection finish its request and returns when all are closed.
pub async fn serve(
    listener: impl std::borrow::Borrow<TcpListener>,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // At the cap, kept-alive connections with no request in flight are asked to close, so
    // a client waiting in the listen queue gets a slot: otherwise clients that keep many
    // idle connections (as after a burst) would hold every slot until the idle timeout.
    let open = Arc::new(Open::default());
    let mut next_id: u64 = 0;
    let connections = TaskTracker::new();
    let epoch = Instant::now();
    let mut backoff = Duration::ZERO;
    loop {
        // At the cap, the next client waits in the kernel's listen queue, not in memory.
        let acquire = slots.clone().acquire_owned();
        tokio::pin!(acquire);
        let slot = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break None,
                slot = &mut acquire => break Some(slot.expect("the semaphore is never closed")),
                _ = tokio::time::sleep(CROWDED_EVERY) => {
                    metrics::counter!("kenar_crowded_total").increment(1);
                    open.close_idle();
                }
            }
        };
        let Some(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.borrow().accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(e) => {
                    // EMFILE and friends: retrying at once only spins and floods the log.
                    metrics::counter!("kenar_accept_errors_total").increment(1);
                    if backoff.is_zero() {
                        tracing::warn!(error = %e, "accepting a connection failed; backing off");
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        let id = next_id;
        next_id += 1;
        let conn = Conn {
            // Its own token (a child of shutdown): polling it touches no lock shared with
            // the other connections.
            close: shutdown.child_token(),
            in_flight: Arc::new(AtomicU64::new(0)),
        };
        open.insert(id, &conn);
        let open = open.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, router, limits, epoch, shutdown, conn).await;
            open.remove(id);
            drop(slot);
        });
    }
    // New clients are refused from here on, not left waiting in the listen queue (when the
    // listener is ours to close).
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    epoch: Instant,
    shutdown: CancellationToken,
    conn: Conn,
) {
    let last_active = Arc::new(AtomicU64::new(0));
    let io = Watched {
        inner: stream,
        epoch,
        last_active: last_active.clone(),
    };
    io.touch();
    let handling = conn.in_flight.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        let handling = InFlight::begin(&handling);
        async move {
            let response = router.oneshot(request.map(Body::new)).await;
            drop(handling);
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut closing = false;
    let mut idle_deadline: Option<Instant> = None;
    loop {
        let idle_since = epoch + Duration::from_millis(last_active.load(Ordering::Relaxed));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            // Shutdown, or asked to give up its slot while idle (a request that began since
            // is finished first, and its answer sent: hyper closes after it).
            _ = conn.close.cancelled(), if !closing => {
                closing = true;
                if !shutdown.is_cancelled() {
                    idle_deadline = Some(Instant::now() + limits.request_timeout);
                }
                connection.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(idle_since + limits.idle_timeout), if !closing => {
                let last = epoch + Duration::from_millis(last_active.load(Ordering::Relaxed));
                if last + limits.idle_timeout <= Instant::now() {
                    // Closes at once when idle; a request in flight is finished first.
                    closing = true;
                    idle_deadline = Some(Instant::now() + limits.request_timeout);
                    connection.as_mut().graceful_shutdown();
                }
            }
            // Nothing moved for the whole idle timeout and the request in flight still does
            // not end: a reader that stopped reading. Dropped, socket and all.
            _ = tokio::time::sleep_until(idle_deadline.unwrap_or_else(Instant::now)), if idle_deadline.is_some() => {
                tracing::debug!(%peer, "dropping a connection whose reader stopped reading");
                return;
            }
        }
    }
}

/// How often, while every connection slot is taken, kept-alive connections with no request
/// in flight are asked to close.
const CROWDED_EVERY: Duration = Duration::from_millis(50);

/// An open connection as the accept loop sees it.
#[derive(Clone)]
struct Conn {
    /// Cancelled to close the connection gracefully.
    close: CancellationToken,
    /// Requests being handled on it.
    in_flight: Arc<AtomicU64>,
}

/// The open connections, so that at the cap the idle ones can be asked to close.
#[derive(Default)]
struct Open(Mutex<HashMap<u64, Conn>>);

impl Open {
    fn insert(&self, id: u64, conn: &Conn) {
        self.0
            .lock()
            .expect("not poisoned")
            .insert(id, conn.clone());
    }

    fn remove(&self, id: u64) {
        self.0.lock().expect("not poisoned").remove(&id);
    }

    /// Asks every connection with no request in flight to close.
    fn close_idle(&self) {
        for conn in self.0.lock().expect("not poisoned").values() {
            if conn.in_flight.load(Ordering::Relaxed) == 0 {
                conn.close.cancel();
            }
        }
    }
}

/// Counts a request as in flight on its connection until its handler has answered.
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn begin(count: &Arc<AtomicU64>) -> InFlight {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that notes when bytes last moved through it.
struct Watched {
    inner: tokio::net::TcpStream,
    epoch: Instant,
    last_active: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
