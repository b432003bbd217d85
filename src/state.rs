//! What every handler can reach: the service's settings, database, writer, keys and
//! limits, built once at start-up and shared by every request.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::api::access::ApiAccess;
use crate::api::hub::Hub;
use crate::auth::{Failures, KeySet, RegistrationKeys};
use crate::config::Settings;
use crate::ingest::breaker::Breaker;
use crate::ingest::writer::Writer;
use crate::notify::Changes;
use crate::store::Store;

/// What every handler can reach; cloned for every request, so one shared allocation.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of a service made of these parts.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// The validated settings.
    pub settings: Arc<Settings>,
    /// The database.
    pub store: Store,
    /// The batch writer's queue.
    pub writer: Writer,
    /// The accepted Divar identification keys.
    pub keys: Arc<KeySet>,
    /// The legacy registrations' keys, kept in memory.
    pub registrations: Arc<RegistrationKeys>,
    /// Failed authentications per client IP, on every route.
    pub failures: Arc<Failures>,
    /// Open while the database is unavailable.
    pub breaker: Arc<Breaker>,
    /// New rows for the live streams, read once for all of them.
    pub hub: Hub,
    /// The read API's tokens and rate limits.
    pub api: Arc<ApiAccess>,
    /// Bumped whenever something new is stored (live stream wake-ups).
    pub changes: Changes,
    /// Cancelled when the service shuts down (ends live streams).
    pub shutdown: CancellationToken,
    /// The token vault; `None` while sign-in is off.
    pub oauth: Option<crate::oauth::Tokens>,
}
