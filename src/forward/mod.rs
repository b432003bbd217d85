//! Pushing stored records to the app's own endpoints: signed the Standard Webhooks way,
//! retried with backoff, in order per conversation, with each endpoint's progress kept in
//! the database (docs/forwarding.md).

mod backoff;
pub(crate) mod deliver;
pub mod manage;
mod metrics;
mod queue;
pub(crate) mod record;
pub use crate::config::forward as settings;
pub(crate) mod sign;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use settings::{ForwardSettings, secret_bytes};
use sign::Signer;
use worker::Endpoint;

/// How often old attempts are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The signer of an endpoint's current and previous secrets (checked at start-up).
pub fn signer(endpoint: &settings::EndpointSettings) -> Signer {
    let keys = std::iter::once(&endpoint.secret)
        .chain(&endpoint.previous_secrets)
        .map(|s| secret_bytes(s).expect("secrets are checked at start-up"))
        .collect();
    Signer::new(keys)
}

/// Registers the configured endpoints and starts one forwarder for each, and the pruning of
/// old attempts, until `stop`.
pub async fn spawn(
    store: Store,
    forward: &ForwardSettings,
    outbox: crate::outbox::send::Sender,
    changes: watch::Receiver<u64>,
    stop: CancellationToken,
) -> Result<Vec<JoinHandle<()>>, crate::store::Error> {
    if forward.endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = forward.endpoints.iter().map(|e| e.name.clone()).collect();
    store.forward_register(&names).await?;
    let installation: Arc<str> = store.installation().await?.into();
    let shared = Arc::new(forward.clone());
    let mut tasks = Vec::new();
    for settings in &forward.endpoints {
        let endpoint = Endpoint {
            store: store.clone(),
            settings: Arc::new(settings.clone()),
            forward: shared.clone(),
            client: deliver::client(Duration::from_millis(settings.timeout_ms)),
            signer: signer(settings),
            filter: record::Filter::new(settings),
            installation: installation.clone(),
            outbox: outbox.clone(),
        };
        tasks.push(tokio::spawn(run(endpoint, changes.clone(), stop.clone())));
    }
    tasks.push(tokio::spawn(prune(
        store,
        forward.attempts_retention_days,
        stop,
    )));
    Ok(tasks)
}

/// Takes the endpoint's lease, forwards while holding it, and starts over after a failure.
async fn run(endpoint: Endpoint, mut changes: watch::Receiver<u64>, stop: CancellationToken) {
    let name = endpoint.settings.name.clone();
    loop {
        let Some(lease) = endpoint.store.forward_lease(&name, &stop).await else {
            return;
        };
        let lost = CancellationToken::new();
        let done = CancellationToken::new();
        let holder = tokio::spawn(lease.hold(lost.clone(), done.clone()));
        let result = endpoint.lead(&mut changes, &stop, &lost).await;
        done.cancel();
        let _ = holder.await;
        if stop.is_cancelled() {
            return;
        }
        if let Err(e) = result {
            tracing::warn!(endpoint = %name, error = %e, "forwarding stopped; starting over in 1 s");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn prune(store: Store, days: u32, stop: CancellationToken) {
    loop {
        let before = Utc::now() - chrono::Duration::days(i64::from(days));
        match store.forward_prune(before).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned old forwarding attempts"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning forwarding attempts failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}
