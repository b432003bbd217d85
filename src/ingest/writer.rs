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
use std::time::Instant;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::notify::Changes;
use crate::store::{NewRecord, Store, WriteOutcome};

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
    reply: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

/// The sending side of the batch writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    /// Starts `writers` writer tasks (at least one). They end when every [`Writer`] clone is
    /// dropped and the queue is drained.
    pub fn spawn(
        store: Store,
        capacity: usize,
        batch_max: usize,
        writers: usize,
        changes: Changes,
    ) -> (Writer, JoinHandle<()>) {
        let (queue, jobs) = mpsc::channel(capacity);
        let jobs = Arc::new(Mutex::new(jobs));
        let tasks: Vec<_> = (0..writers.max(1))
            .map(|_| tokio::spawn(run(store.clone(), jobs.clone(), batch_max, changes.clone())))
            .collect();
        let task = tokio::spawn(async move {
            for task in tasks {
                let _ = task.await;
            }
        });
        (Writer { queue }, task)
    }

    /// Queues a record and waits until it is committed (or refused). Never waits for queue
    /// space: a full queue is answered at once.
    pub async fn submit(&self, record: NewRecord) -> Result<WriteOutcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job { record, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WriteError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => WriteError::Unavailable,
            })?;
        metrics::gauge!("kenar_ingest_queue_depth").set(self.depth() as f64);
        answer.await.unwrap_or(Err(WriteError::Unavailable))
    }

    /// How many records wait in the queue.
    pub fn depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

async fn run(
    store: Store,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    batch_max: usize,
    changes: Changes,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(batch_max);
    loop {
        // The queue is held only while taking a batch, so the next writer can gather while
        // this one commits.
        {
            let mut jobs = jobs.lock().await;
            if jobs.recv_many(&mut batch, batch_max).await == 0 {
                return;
            }
            metrics::gauge!("kenar_ingest_queue_depth").set(jobs.len() as f64);
        }
        // A caller that has gone (its request timed out) was not answered 200, and will
        // deliver again: storing its record now would only cost the others time.
        batch.retain(|job| !job.reply.is_closed());
        if !batch.is_empty() {
            commit(&store, std::mem::take(&mut batch), &changes).await;
        }
    }
}

async fn commit(store: &Store, jobs: Vec<Job>, changes: &Changes) {
    let (records, replies): (Vec<NewRecord>, Vec<_>) =
        jobs.into_iter().map(|j| (j.record, j.reply)).unzip();
    let started = Instant::now();
    let result = store.write_batch(&records).await;
    metrics::histogram!("kenar_batch_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("kenar_batch_size").record(records.len() as f64);
    match result {
        Ok((outcomes, new_ids)) => {
            if new_ids.any() {
                changes.notify();
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(err) if records.len() > 1 && !is_connection_error(&err) => {
            // One bad record must not fail the others: retry each in its own transaction.
            tracing::warn!(error = %err, size = records.len(), "batch failed; retrying one by one");
            for (record, reply) in records.iter().zip(replies) {
                let outcome = store
                    .write_batch(std::slice::from_ref(record))
                    .await
                    .map(|(mut o, new_ids)| {
                        if new_ids.any() {
                            changes.notify();
                        }
                        o.remove(0)
                    })
                    .map_err(|err| {
                        tracing::error!(error = %err, "storing a record failed");
                        WriteError::Unavailable
                    });
                let _ = reply.send(outcome);
            }
        }
        Err(err) => {
            tracing::error!(error = %err, size = records.len(), "storing a batch failed");
            for reply in replies {
                let _ = reply.send(Err(WriteError::Unavailable));
            }
        }
    }
}

fn is_connection_error(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    )
}
