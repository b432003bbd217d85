//! Retention: expired records deleted in small batches, within a minute of start-up and then
//! every `retention.interval_minutes`, by the service; `kenar-hook prune` runs the same
//! rounds by hand (docs/operations.md).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::config::forward::EndpointSettings;
use crate::store::lifecycle::{Keep, Log, Removed, Walk};
use crate::store::{Error, Store};

/// The longest pause between two batches.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// How long after start-up the first round comes.
const FIRST_ROUND: Duration = Duration::from_secs(5);

/// How many days `log` is kept for (0: for ever).
pub fn days(settings: &Settings, log: Log) -> u32 {
    let r = &settings.retention;
    match log {
        Log::Messages => r.messages_days,
        Log::Events => r.events_days,
        Log::Clicks => r.clicks_days,
        Log::Rejected => r.rejected_days,
    }
}

/// What retention keeps of `log`: the records the configured endpoints that take it have
/// not delivered yet, unless `force`.
pub fn keep(endpoints: &[EndpointSettings], log: Log, force: bool) -> Keep {
    let endpoints = match log.record_kind() {
        Some(kind) => endpoints
            .iter()
            .filter(|e| crate::forward::record::included(e, kind))
            .map(|e| e.name.clone())
            .collect(),
        None => Vec::new(),
    };
    Keep { endpoints, force }
}

/// Deletes the rows of `log` older than `before` and not kept, `batch` at a time, until none
/// is left or `stop` is cancelled between two batches; `each` sees every batch removed.
pub async fn prune(
    store: &Store,
    log: Log,
    before: DateTime<Utc>,
    keep: &Keep,
    batch: u32,
    stop: &CancellationToken,
    mut each: impl FnMut(Removed),
) -> Result<Removed, Error> {
    let mut total = Removed::default();
    let mut walk = Walk::default();
    let mut pause = Duration::ZERO;
    while !stop.is_cancelled() {
        // After each batch, a pause a third as long as it took: pruning takes at most three
        // quarters of the database's time from the deliveries arriving meanwhile.
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
        let started = std::time::Instant::now();
        let removed = store
            .prune_batch(log, before, keep, i64::from(batch), &mut walk)
            .await?;
        pause = (started.elapsed() / 3).min(MAX_PAUSE);
        if removed.rows == 0 {
            break;
        }
        metrics::counter!("kenar_retention_pruned_total", "kind" => log.as_str())
            .increment(removed.rows);
        total += removed;
        each(removed);
    }
    Ok(total)
}

/// Starts the retention rounds until `stop`.
pub fn spawn(store: Store, settings: &Settings, stop: CancellationToken) {
    let settings = settings.clone();
    tokio::spawn(async move {
        let every = Duration::from_secs(u64::from(settings.retention.interval_minutes) * 60);
        let mut wait = FIRST_ROUND;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = every;
            if let Err(e) = round(&store, &settings, &stop).await {
                tracing::warn!(error = %e, "pruning expired records failed; trying again in the next round");
            }
        }
    });
}

/// One round: every log with a retention, then the age of each log's oldest row.
async fn round(store: &Store, settings: &Settings, stop: &CancellationToken) -> Result<(), Error> {
    let now = Utc::now();
    for log in Log::ALL {
        let days = days(settings, log);
        if days == 0 {
            continue;
        }
        let before = now - chrono::Duration::days(i64::from(days));
        let keep = keep(&settings.forward.endpoints, log, settings.retention.force);
        let removed = prune(
            store,
            log,
            before,
            &keep,
            settings.retention.batch_size,
            stop,
            |_| {},
        )
        .await?;
        if removed.rows > 0 {
            tracing::info!(
                kind = %log,
                rows = removed.rows,
                conversations = removed.conversations,
                forwarding = removed.forwarding,
                %before,
                "pruned expired records"
            );
        }
    }
    for log in Log::ALL {
        let age = match store.oldest(log).await? {
            Some(t) => (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0,
            None => 0.0,
        };
        metrics::gauge!("kenar_retention_oldest_age_seconds", "kind" => log.as_str()).set(age);
    }
    Ok(())
}
