//! What the CLI and the read API do with forwarding: status, pause and resume, replay.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::record::{self, Filter, READ_BATCH};
use super::settings::EndpointSettings;
use crate::items::rfc3339;
use crate::store::forward::Pending;
use crate::store::{RecordKind, Store};

/// The most records one replay adds: their bodies are held in memory until delivered.
pub const REPLAY_MAX: usize = 100_000;

/// An endpoint as `forward status` and `GET /api/v1/forwarding/endpoints` show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointStatus {
    /// The endpoint's name.
    pub name: String,
    /// `active`, `paused` or `disabled` (the receiver answered 410; `resume` re-enables).
    pub state: String,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// Records not yet delivered: read and waiting, plus not yet read.
    pub lag_records: i64,
    /// Seconds since the oldest record not yet delivered arrived (0 when none waits).
    pub lag_seconds: f64,
    /// Records read and waiting for delivery (some may be retrying).
    pub pending: i64,
    /// Records given up on (`GET /api/v1/forwarding/dead`).
    pub dead: i64,
    /// The last delivery answered 2xx (RFC 3339).
    pub last_success_at: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339).
    pub last_error_at: Option<String>,
}

/// The status of each configured endpoint.
pub async fn status(
    store: &Store,
    endpoints: &[EndpointSettings],
) -> Result<Vec<EndpointStatus>, crate::store::Error> {
    let now = Utc::now();
    let high = store.high_water_marks().await?;
    let mut out = Vec::new();
    for e in endpoints {
        let Some(state) = store.forward_state(&e.name).await? else {
            continue;
        };
        let (pending, mut oldest) = store.forward_pending_summary(&e.name).await?;
        let dead = store.forward_dead_count(&e.name).await?;
        let cursors = store.forward_cursors(&e.name).await?;
        let mut unread = 0;
        for kind in RecordKind::ALL {
            let (high, cursor) = (high.get(kind), cursors.get(kind));
            if !record::included(e, kind) || high <= cursor {
                continue;
            }
            unread += high - cursor;
            if let Some(at) = store.forward_first_after(kind, cursor).await? {
                oldest = Some(oldest.map_or(at, |o: DateTime<Utc>| o.min(at)));
            }
        }
        let lag_seconds =
            oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        out.push(EndpointStatus {
            name: e.name.clone(),
            state: if state.disabled_reason.is_some() {
                "disabled"
            } else if state.paused {
                "paused"
            } else {
                "active"
            }
            .to_owned(),
            disabled_reason: state.disabled_reason,
            lag_records: pending + unread,
            lag_seconds,
            pending,
            dead,
            last_success_at: state.last_success_at.map(rfc3339),
            last_error: state.last_error,
            last_error_at: state.last_error_at.map(rfc3339),
        });
    }
    Ok(out)
}

/// Pauses an endpoint, or resumes it (which also re-enables one disabled by a 410). False
/// when no endpoint has this name.
pub async fn set_paused(
    store: &Store,
    name: &str,
    paused: bool,
) -> Result<bool, crate::store::Error> {
    store.forward_set_paused(name, paused).await
}

fn again(mut p: Pending, now: DateTime<Utc>) -> Pending {
    p.attempts = 0;
    p.next_at = now;
    p
}

/// Sends an endpoint's dead letters again; how many.
pub async fn replay_dead(store: &Store, name: &str) -> Result<u64, crate::store::Error> {
    let now = Utc::now();
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = store.forward_dead(Some(name), after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.1.id);
        rows.extend(page.into_iter().map(|(_, d)| again(d.pending, now)));
        if rows.len() >= REPLAY_MAX {
            break;
        }
    }
    store.forward_replay(name, &rows).await
}

/// Sends again every record the endpoint wants that arrived at or after `since`; how many.
/// Refused above [`REPLAY_MAX`] records.
pub async fn replay_since(
    store: &Store,
    endpoint: &EndpointSettings,
    since: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let now = Utc::now();
    let filter = Filter::new(endpoint);
    let mut rows = Vec::new();
    for kind in RecordKind::ALL {
        if !record::included(endpoint, kind) {
            continue;
        }
        let mut after = 0;
        loop {
            let (read, last, more) =
                record::read(store, kind, after, READ_BATCH, &filter, now).await?;
            rows.extend(read.into_iter().filter(|p| p.received_at >= since));
            anyhow::ensure!(
                rows.len() <= REPLAY_MAX,
                "more than {REPLAY_MAX} records arrived since then; replay a later time first"
            );
            if !more || last == after {
                break;
            }
            after = last;
        }
    }
    Ok(store.forward_replay(&endpoint.name, &rows).await?)
}

/// Sends records again by their `webhook-id` (`message_<installation>_12`, or the short
/// `message_12` of earlier versions), whatever the endpoint's filters; how many were found.
pub async fn replay_ids(store: &Store, name: &str, ids: &[String]) -> anyhow::Result<u64> {
    let now = Utc::now();
    let installation = store.installation().await?;
    let mut rows = Vec::new();
    for id in ids {
        let wanted = record::parse_webhook_id(installation, id)
            .map_err(|why| anyhow::anyhow!("--id {id}: {why}"))?;
        let (read, _, _) = record::read(
            store,
            wanted.kind,
            wanted.seq - 1,
            1,
            &Filter::everything(),
            now,
        )
        .await?;
        match read.into_iter().next().filter(|p| p.record == wanted) {
            Some(p) => rows.push(p),
            None => anyhow::bail!("--id {id}: no such record"),
        }
    }
    Ok(store.forward_replay(name, &rows).await?)
}
