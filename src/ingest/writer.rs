//! The batch writer: tasks that take parsed deliveries from a bounded queue, commit as many
//! as are waiting in one transaction, and only then answer each waiting request.
//!
//! Batching turns many small commits (each an fsync) into one, and the store writes a batch
//! with a fixed number of statements, so a batch of 100 costs little more than a batch of
//! one. No timer waits for a batch to fill: a writer takes what is queued the moment it is
//! free, so a lone delivery is committed at once. With several writers one gathers the next
//! batch while another commits. Handlers never answer 200 before the commit: the answer
//! travels back on a oneshot channel after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::breaker::Breaker;
use crate::notify::Changes;
use crate::store::{NewIds, NewRecord, Store, WriteOutcome};

/// Why a record could not be stored. Either way nothing was stored and the sender should
/// retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The queue is full.
    #[error("the ingest queue is full")]
    QueueFull,
    /// The database failed or the writer has stopped.
    #[error("the database is unavailable")]
    Unavailable,
}

struct Job {
    record: NewRecord,
    reply: oneshot::Sender<Answer>,
    queued: Instant,
}

/// What a writer sends back, and when it sent it.
type Answer = (Result<WriteOutcome, WriteError>, Instant);

/// The time of one stage of a delivery's way through ingestion (docs/storage.md):
/// `prepare` (handler: checks and normalisation), `queue` (queued until its batch begins),
/// `commit` (its batch's write), `answer` (the batch answered until the handler runs again).
pub(crate) fn stage(name: &'static str, took: Duration) {
    metrics::histogram!("kenar_ingest_stage_seconds", "stage" => name).record(took.as_secs_f64());
}

/// The sending side of the batch writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    breaker: Arc<Breaker>,
}

/// How the writers reach the database.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Queued records at most.
    pub capacity: usize,
    /// Records per batch at most.
    pub batch_max: usize,
    /// Writer tasks.
    pub writers: usize,
    /// A batch not committed within this time has the database checked on a connection of
    /// its own (again each time this passes): no answer opens the breaker and answers the
    /// batch 503; an answer means the commit is slow, and it is waited for.
    pub write_timeout: Duration,
    /// How long a slow commit is waited for while the database answers: within the
    /// request's own deadline, so the sender gets a 503 rather than a dropped request.
    pub deadline: Duration,
}

/// What every writer task shares.
struct Shared {
    store: Store,
    jobs: Mutex<mpsc::Receiver<Job>>,
    batch_max: usize,
    write_timeout: Duration,
    deadline: Duration,
    breaker: Arc<Breaker>,
    changes: Changes,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    /// Starts the writer tasks (at least one). They end when every [`Writer`] clone is
    /// dropped and the queue is drained.
    pub fn spawn(
        store: Store,
        settings: WriterSettings,
        breaker: Arc<Breaker>,
        changes: Changes,
    ) -> (Writer, JoinHandle<()>) {
        let (queue, jobs) = mpsc::channel(settings.capacity);
        let shared = Arc::new(Shared {
            store,
            jobs: Mutex::new(jobs),
            batch_max: settings.batch_max,
            write_timeout: settings.write_timeout,
            deadline: settings.deadline,
            breaker: breaker.clone(),
            changes,
        });
        let tasks: Vec<_> = (0..settings.writers.max(1))
            .map(|_| tokio::spawn(run(shared.clone())))
            .collect();
        let task = tokio::spawn(async move {
            for task in tasks {
                let _ = task.await;
            }
        });
        (Writer { queue, breaker }, task)
    }

    /// Queues a record and waits until it is committed (or refused). Never waits for queue
    /// space: a full queue is answered at once.
    pub async fn submit(&self, record: NewRecord) -> Result<WriteOutcome, WriteError> {
        if !self.breaker.admit() {
            return Err(WriteError::Unavailable);
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job {
                record,
                reply,
                queued: Instant::now(),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WriteError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => WriteError::Unavailable,
            })?;
        metrics::gauge!("kenar_ingest_queue_depth").set(self.depth() as f64);
        let (result, sent) = answer
            .await
            .unwrap_or((Err(WriteError::Unavailable), Instant::now()));
        stage("answer", sent.elapsed());
        result
    }

    /// How many records wait in the queue.
    pub fn depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

async fn run(shared: Arc<Shared>) {
    let mut batch: Vec<Job> = Vec::with_capacity(shared.batch_max);
    loop {
        // The queue is held only while taking a batch, so the next writer can gather while
        // this one commits.
        {
            let mut jobs = shared.jobs.lock().await;
            if jobs.recv_many(&mut batch, shared.batch_max).await == 0 {
                return;
            }
            metrics::gauge!("kenar_ingest_queue_depth").set(jobs.len() as f64);
        }
        // A caller that has gone (its request timed out) was not answered 200, and will
        // deliver again: storing its record now would only cost the others time.
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let begun = Instant::now();
        for job in &batch {
            stage("queue", begun.saturating_duration_since(job.queued));
        }
        // Queued before the database failed: answered at once, not after another timeout.
        if shared.breaker.is_open() {
            for job in batch.drain(..) {
                let _ = job
                    .reply
                    .send((Err(WriteError::Unavailable), Instant::now()));
            }
            continue;
        }
        commit(&shared, std::mem::take(&mut batch)).await;
    }
}

/// Writes a batch, telling the breaker how the database did. Slow is not down: a commit
/// that takes longer than the write timeout is waited for as long as the database answers a
/// check on a connection of its own, up to the deadline; only a database that does not
/// answer opens the breaker.
async fn write(
    shared: &Shared,
    records: &[NewRecord],
) -> Result<(Vec<WriteOutcome>, NewIds), Failure> {
    let started = Instant::now();
    let write = shared.store.write_batch(records);
    tokio::pin!(write);
    let result = loop {
        let check_at = (Instant::now() + shared.write_timeout).min(started + shared.deadline);
        tokio::select! {
            result = &mut write => break result,
            _ = tokio::time::sleep_until(check_at.into()) => {}
        }
        if started.elapsed() >= shared.deadline {
            tracing::error!(
                waited_ms = started.elapsed().as_millis() as u64,
                size = records.len(),
                "the database answers but did not commit a batch within the deadline"
            );
            return Err(Failure::Unavailable);
        }
        // The commit is slow. The write goes on while the database is checked.
        let check = shared.store.alive(shared.write_timeout);
        tokio::pin!(check);
        let alive = tokio::select! {
            result = &mut write => break result,
            alive = &mut check => alive,
        };
        if !alive {
            tracing::error!(
                waited_ms = started.elapsed().as_millis() as u64,
                size = records.len(),
                "the database did not commit a batch and does not answer"
            );
            shared.breaker.failed("no answer");
            return Err(Failure::Unavailable);
        }
        metrics::counter!("kenar_ingest_slow_commits_total").increment(1);
        tracing::warn!(
            waited_ms = started.elapsed().as_millis() as u64,
            size = records.len(),
            "a commit is slow; the database answers, so it is waited for"
        );
    };
    match result {
        Ok(written) => {
            shared.breaker.succeeded();
            if written.1.any() {
                shared.changes.notify();
            }
            Ok(written)
        }
        Err(err) if err.is_unavailable() => {
            tracing::error!(error = %err, size = records.len(), "the database is unavailable");
            shared.breaker.failed("database error");
            Err(Failure::Unavailable)
        }
        Err(err) => Err(Failure::Refused(err)),
    }
}

enum Failure {
    /// Nothing can be stored now.
    Unavailable,
    /// The database refused something in the batch.
    Refused(crate::store::Error),
}

async fn commit(shared: &Shared, jobs: Vec<Job>) {
    let (records, replies): (Vec<NewRecord>, Vec<_>) =
        jobs.into_iter().map(|j| (j.record, j.reply)).unzip();
    let started = Instant::now();
    let result = write(shared, &records).await;
    let took = started.elapsed();
    metrics::histogram!("kenar_batch_commit_seconds").record(took.as_secs_f64());
    metrics::histogram!("kenar_batch_size").record(records.len() as f64);
    for _ in &records {
        stage("commit", took);
    }
    match result {
        Ok((outcomes, _)) => {
            let now = Instant::now();
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send((Ok(outcome), now));
            }
        }
        Err(Failure::Refused(err)) if records.len() > 1 => {
            // One bad record must not fail the others: retry each in its own transaction.
            tracing::warn!(error = %err, size = records.len(), "batch failed; retrying one by one");
            for (record, reply) in records.iter().zip(replies) {
                let outcome = if shared.breaker.is_open() {
                    Err(WriteError::Unavailable)
                } else {
                    match write(shared, std::slice::from_ref(record)).await {
                        Ok((mut outcomes, _)) => Ok(outcomes.remove(0)),
                        Err(Failure::Refused(err)) => {
                            tracing::error!(error = %err, "storing a record failed");
                            Err(WriteError::Unavailable)
                        }
                        Err(Failure::Unavailable) => Err(WriteError::Unavailable),
                    }
                };
                let _ = reply.send((outcome, Instant::now()));
            }
        }
        Err(failure) => {
            if let Failure::Refused(err) = failure {
                tracing::error!(error = %err, "storing a record failed");
            }
            let now = Instant::now();
            for reply in replies {
                let _ = reply.send((Err(WriteError::Unavailable), now));
            }
        }
    }
}
