//! The forwarder of one endpoint while this process holds its lease: reads new records into
//! pending ones (position and pending rows move in one transaction), sends those the queue
//! lets go, and writes what the answers changed in small batches.
//!
//! After `FAILING_AFTER` failed answers in a row, of more than one record (one record that
//! fails alone keeps its own schedule), the endpoint is probed: one record at a time, one
//! request every `retry_base_delay_ms` (at most `PROBE_EVERY`), instead of every conversation
//! retrying on its own. The first delivery after that wakes every waiting record, so the
//! backlog goes at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff;
use super::deliver::{self, Answer, Verdict};
use super::queue::Queue;
use super::record::{self, Filter, READ_BATCH};
use super::settings::{EndpointSettings, ForwardSettings};
use super::sign::Signer;
use crate::store::forward::{
    Attempt, AttemptOutcome, Dead, EndpointState, Pending, Progress, Retry,
};
use crate::store::outbox::OutboxStatus;
use crate::store::{Positions, RecordKind, RecordRef, Store};

/// Answers are written at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// ... or once this many are waiting.
const FLUSH_MAX: usize = 500;
/// How often the stored state (pause, replay) is read, and metrics are set.
const STATE_EVERY: Duration = Duration::from_secs(1);
/// The longest `Retry-After` obeyed.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);
/// Without a wake-up, the logs are read this often.
const POLL: Duration = Duration::from_secs(2);
/// Failed answers in a row, of more than one record, after which the endpoint is probed.
const FAILING_AFTER: u32 = 3;
/// While probed, one request at least this often.
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// What one endpoint's forwarder needs.
#[derive(Clone)]
pub struct Endpoint {
    pub store: Store,
    pub settings: Arc<EndpointSettings>,
    pub forward: Arc<ForwardSettings>,
    pub client: reqwest::Client,
    pub signer: Signer,
    pub filter: Filter,
    /// The database's installation id, part of every `webhook-id`.
    pub installation: Arc<str>,
    /// Sends the replies the endpoint answers with.
    pub outbox: crate::outbox::send::Sender,
}

/// A record's answer, and whether it went before its own time (a probe, or woken).
type Done = (Pending, Answer, bool);

struct Run<'a> {
    e: &'a Endpoint,
    name: &'a str,
    queue: Queue,
    cursors: Positions,
    state: EndpointState,
    progress: Progress,
    waiting: usize,
    hold_until: Option<Instant>,
    in_flight: JoinSet<Done>,
    /// Failed answers since the last delivery, the first of them, and whether another
    /// record failed too.
    failures: u32,
    first_failed: Option<RecordRef>,
    others_failed: bool,
    /// Whether the endpoint is being probed, and when its last answer came.
    probing: bool,
    last_answer: Instant,
}

impl Endpoint {
    /// Forwards until `stop` or `lost` is cancelled, or the database fails.
    pub async fn lead(
        &self,
        changes: &mut watch::Receiver<u64>,
        stop: &CancellationToken,
        lost: &CancellationToken,
    ) -> anyhow::Result<()> {
        let name = self.settings.name.as_str();
        let state = self
            .store
            .forward_state(name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("endpoint {name} is not registered"))?;
        let mut cursors = self.store.forward_cursors(name).await?;
        // A kind the endpoint does not take keeps up with its log, so that including it
        // later starts from then, not from when the endpoint was added.
        let high = self.store.high_water_marks().await?;
        for kind in RecordKind::ALL {
            let high = high.get(kind);
            if !record::included(&self.settings, kind) && high > cursors.get(kind) {
                if !self
                    .store
                    .forward_take(name, kind, cursors.get(kind), high, &[])
                    .await?
                {
                    anyhow::bail!("another process moved the read position of {kind}s");
                }
                cursors.set(kind, high);
            }
        }
        let mut run = Run {
            e: self,
            name,
            queue: Queue::default(),
            cursors,
            state,
            progress: Progress::default(),
            waiting: 0,
            hold_until: None,
            in_flight: JoinSet::new(),
            failures: 0,
            first_failed: None,
            others_failed: false,
            probing: false,
            last_answer: Instant::now(),
        };
        // Only the lease holder sends an endpoint's replies: once this process's own calls
        // are written, one left `sending` was cut off.
        self.outbox.idle(name).await;
        let orphans = self.store.outbox_orphans(name).await?;
        if orphans > 0 {
            tracing::warn!(
                endpoint = name,
                replies = orphans,
                "replies cut off during their call are marked unknown, not sent again"
            );
        }
        run.send_pending_replies().await?;
        let mut retried = 0;
        for p in self.store.forward_pending(name).await? {
            retried += usize::from(p.attempts > 0);
            run.queue.insert(p);
        }
        // Records waiting after failures were left by a process that saw the endpoint
        // failing: it is probed at once, and the waiting go as soon as it answers.
        run.probing = retried > 1;
        if run.probing {
            run.last_answer = Instant::now()
                .checked_sub(run.probe_every())
                .unwrap_or(run.last_answer);
        }
        tracing::info!(endpoint = name, pending = run.queue.len(), "forwarding");
        let result = run.drive(changes, stop, lost).await;
        // What was answered is kept; what is still in flight is sent again by whoever
        // forwards next (at least once).
        run.in_flight.abort_all();
        if let Err(e) = run.flush().await {
            tracing::warn!(endpoint = name, error = %e, "could not record the last answers");
        }
        super::metrics::in_flight(name, 0);
        result
    }
}

impl Run<'_> {
    fn active(&self) -> bool {
        !self.state.paused && self.state.disabled_reason.is_none()
    }

    /// Whether a read is worth its query: room for a whole batch, or nothing waiting.
    fn can_read(&self) -> bool {
        let max = self.e.forward.max_pending;
        let room = max.saturating_sub(self.queue.len());
        self.active()
            && room > 0
            && (room >= (READ_BATCH as usize).min(max) || self.queue.is_empty())
    }

    async fn drive(
        &mut self,
        changes: &mut watch::Receiver<u64>,
        stop: &CancellationToken,
        lost: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut read_more = true;
        let mut last_read = Instant::now();
        let mut last_flush = Instant::now();
        let mut last_state = Instant::now();
        loop {
            if read_more && self.can_read() {
                changes.borrow_and_update();
                read_more = self.read().await?;
                last_read = Instant::now();
            }
            self.dispatch();
            if self.waiting > 0
                && (self.waiting >= FLUSH_MAX || last_flush.elapsed() >= FLUSH_EVERY)
            {
                self.flush().await?;
                last_flush = Instant::now();
            }
            if last_state.elapsed() >= STATE_EVERY {
                self.refresh().await?;
                last_state = Instant::now();
                read_more = true;
            }
            let mut wake = (last_state + STATE_EVERY).min(last_read + POLL);
            if read_more && self.can_read() {
                wake = Instant::now();
            }
            if self.waiting > 0 {
                wake = wake.min(last_flush + FLUSH_EVERY);
            }
            if let Some(mut due) = self.next_send() {
                if let Some(hold) = self.hold_until {
                    due = due.max(hold);
                }
                wake = wake.min(due);
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = lost.cancelled() => return Ok(()),
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    if let Ok(done) = done {
                        self.answered(done).await?;
                    }
                    while let Some(Ok(done)) = self.in_flight.try_join_next() {
                        self.answered(done).await?;
                    }
                }
                changed = changes.changed() => {
                    if changed.is_ok() {
                        read_more = true;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if last_read.elapsed() >= POLL {
                        read_more = true;
                    }
                }
            }
        }
    }

    /// Reads each included log after its position; whether a log may hold more.
    async fn read(&mut self) -> anyhow::Result<bool> {
        let mut more = false;
        for kind in RecordKind::ALL {
            if !record::included(&self.e.settings, kind) {
                continue;
            }
            let room = self.e.forward.max_pending.saturating_sub(self.queue.len());
            if room == 0 {
                return Ok(true);
            }
            let limit = READ_BATCH.min(room as i64);
            let from = self.cursors.get(kind);
            let (rows, to, full) =
                record::read(&self.e.store, kind, from, limit, &self.e.filter, Utc::now()).await?;
            if to == from {
                continue;
            }
            if !self
                .e
                .store
                .forward_take(self.name, kind, from, to, &rows)
                .await?
            {
                anyhow::bail!("another process moved the read position of {kind}s");
            }
            self.cursors.set(kind, to);
            for p in rows {
                self.queue.insert(p);
            }
            more |= full;
        }
        Ok(more)
    }

    fn probe_every(&self) -> Duration {
        Duration::from_millis(self.e.forward.retry_base_delay_ms).min(PROBE_EVERY)
    }

    /// When the next record may be sent: while probed, a probe's time once nothing is in
    /// flight.
    fn next_send(&self) -> Option<Instant> {
        if self.probing {
            return (self.in_flight.is_empty() && !self.queue.is_empty())
                .then_some(self.last_answer + self.probe_every());
        }
        let at = self.queue.next_wake()?;
        Some(Instant::now() + (at - Utc::now()).to_std().unwrap_or_default())
    }

    fn dispatch(&mut self) {
        if !self.active() || self.hold_until.is_some_and(|h| Instant::now() < h) {
            return;
        }
        self.hold_until = None;
        let now = Utc::now();
        if self.probing {
            if self.in_flight.is_empty() && self.last_answer.elapsed() >= self.probe_every() {
                if let Some(p) = self.queue.take_first() {
                    self.send(p, now);
                }
            }
        } else {
            while self.in_flight.len() < self.e.settings.max_in_flight {
                let Some(p) = self.queue.take_ready(now) else {
                    break;
                };
                self.send(p, now);
            }
        }
        super::metrics::in_flight(self.name, self.in_flight.len());
    }

    fn send(&mut self, p: Pending, now: DateTime<Utc>) {
        let (client, signer) = (self.e.client.clone(), self.e.signer.clone());
        let url = self.e.settings.url.clone();
        let id = record::webhook_id(&self.e.installation, p.record);
        let early = p.next_at > now;
        self.in_flight.spawn(async move {
            let answer = deliver::attempt(&client, &url, &signer, &id, &p.body).await;
            (p, answer, early)
        });
    }

    async fn answered(&mut self, (p, answer, early): Done) -> anyhow::Result<()> {
        let now = Utc::now();
        self.last_answer = Instant::now();
        let id = p.record;
        let attempts = p.attempts + 1;
        let max = i64::from(self.e.settings.max_attempts);
        if answer.verdict == Verdict::Delivered {
            self.failures = 0;
            self.first_failed = None;
            self.others_failed = false;
            if self.probing {
                self.probing = false;
                self.queue.wake(now);
                tracing::info!(
                    endpoint = self.name,
                    "answering again; the waiting records go now"
                );
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            match &self.first_failed {
                None => self.first_failed = Some(id),
                Some(first) => self.others_failed |= *first != id,
            }
            if !self.probing && self.failures >= FAILING_AFTER && self.others_failed {
                self.probing = true;
                tracing::warn!(
                    endpoint = self.name,
                    failures = self.failures,
                    "failing; probing it with one record every {} ms",
                    self.probe_every().as_millis()
                );
            }
        }
        let forgotten = self.queue.is_forgotten(id);
        let outcome = match &answer.verdict {
            Verdict::Delivered => {
                if let Some(reply) = answer
                    .json
                    .as_ref()
                    .and_then(|b| crate::outbox::read(&p, b))
                {
                    if reply.status != OutboxStatus::Sending {
                        tracing::warn!(
                            endpoint = self.name,
                            reason = reply.answer.as_deref().unwrap_or(""),
                            "a reply in an answer is refused"
                        );
                    }
                    self.progress.replies.push(reply);
                }
                self.queue.done(id);
                self.progress.done.push(id);
                self.progress.success_at = Some(now);
                AttemptOutcome::Delivered
            }
            Verdict::Gone => {
                // The record stays pending, first in line when the endpoint is resumed.
                if self.queue.retry(id, attempts, now) {
                    self.progress.retries.push(Retry {
                        record: id,
                        attempts,
                        next_at: now,
                    });
                }
                let reason = format!("the receiver answered 410 Gone at {}", now.to_rfc3339());
                tracing::warn!(
                    endpoint = self.name,
                    "{reason}; endpoint disabled until resumed"
                );
                self.e.store.forward_disable(self.name, &reason).await?;
                self.state.disabled_reason = Some(reason);
                AttemptOutcome::Gone
            }
            // Erased or pruned while in flight: there is nothing left to retry or to keep.
            Verdict::Failed { .. } if forgotten => {
                self.queue.done(id);
                AttemptOutcome::Failed
            }
            // Before its own time the record was only a probe: its failure is not counted,
            // and its own schedule stands.
            Verdict::Failed { retry_after } if early => {
                if let Some(asked) = retry_after {
                    self.hold_until = Some(Instant::now() + (*asked).min(RETRY_AFTER_MAX));
                }
                self.queue.retry(id, p.attempts, p.next_at);
                AttemptOutcome::Probe
            }
            Verdict::Failed { .. } if attempts >= max => {
                self.queue.done(id);
                self.progress.done.push(id);
                self.progress.dead.push(Dead {
                    id: 0,
                    pending: Pending {
                        attempts,
                        ..p.clone()
                    },
                    last_error: answer.error.clone().unwrap_or_default(),
                    dead_at: now,
                });
                super::metrics::dead(self.name);
                AttemptOutcome::Dead
            }
            Verdict::Failed { retry_after } => {
                let wait = match retry_after {
                    Some(asked) => {
                        let asked = (*asked).min(RETRY_AFTER_MAX);
                        // The receiver asked everyone to wait, not only this record.
                        self.hold_until = Some(Instant::now() + asked);
                        asked
                    }
                    None => backoff::jittered(
                        self.e.forward.retry_base_delay_ms,
                        self.e.forward.retry_max_delay_ms,
                        u32::try_from(attempts).unwrap_or(u32::MAX),
                    ),
                };
                let next_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                if self.queue.retry(id, attempts, next_at) {
                    self.progress.retries.push(Retry {
                        record: id,
                        attempts,
                        next_at,
                    });
                }
                AttemptOutcome::Failed
            }
        };
        if let Some(error) = &answer.error {
            self.progress.error = Some((error.clone(), now));
        }
        super::metrics::attempt(self.name, outcome.as_str());
        self.progress.attempts.push(Attempt {
            id: 0,
            endpoint: self.name.to_owned(),
            record: id,
            attempt: attempts,
            outcome,
            status_code: answer.status.map(i64::from),
            latency_ms: i64::try_from(answer.latency.as_millis()).unwrap_or(i64::MAX),
            error: answer.error,
            response: answer.response,
            at: now,
        });
        self.waiting += 1;
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.waiting == 0 {
            return Ok(());
        }
        let progress = std::mem::take(&mut self.progress);
        self.waiting = 0;
        let recorded = self.e.store.forward_progress(self.name, &progress).await?;
        // A reply recorded already for its record (a push retried or replayed) is neither
        // counted nor sent again.
        for (reply, _) in progress
            .replies
            .into_iter()
            .zip(recorded)
            .filter(|(_, r)| *r)
        {
            if reply.status == OutboxStatus::Sending {
                self.e
                    .outbox
                    .send(self.name, reply.record, reply.json, reply.target);
            } else {
                crate::outbox::send::counted(reply.status);
            }
        }
        Ok(())
    }

    /// Sends the replies waiting (left by a stop before their call, or retried by hand).
    async fn send_pending_replies(&self) -> anyhow::Result<()> {
        for record in self.e.store.outbox_pending(self.name).await? {
            self.e.outbox.send_pending(self.name, record);
        }
        Ok(())
    }

    /// Reads the stored state; after a change from the CLI, picks up added pending records.
    async fn refresh(&mut self) -> anyhow::Result<()> {
        let Some(state) = self.e.store.forward_state(self.name).await? else {
            return Ok(());
        };
        if state.revision != self.state.revision {
            // Answers are written first, so a record delivered a moment ago is not read
            // back as pending.
            self.flush().await?;
            let stored = self.e.store.forward_pending(self.name).await?;
            let kept: std::collections::HashSet<_> = stored.iter().map(|p| p.record).collect();
            // Erased or pruned records leave the queue too: they must not be sent.
            for id in self.queue.ids() {
                if !kept.contains(&id) {
                    self.queue.forget(id);
                }
            }
            for p in stored {
                if !self.queue.contains(p.record) {
                    self.queue.insert(p);
                }
            }
            self.send_pending_replies().await?;
        }
        self.state = state;
        let lag = lag_seconds(self.queue.oldest_received(), Utc::now());
        super::metrics::lag(self.name, lag);
        super::metrics::pending(self.name, self.queue.len());
        Ok(())
    }
}

fn lag_seconds(oldest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
    oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
}
