//! One forwarder per endpoint among all replicas. On PostgreSQL a replica forwards an
//! endpoint while it holds a session advisory lock named after it, on a connection of its
//! own: when the replica dies its connection closes, the lock is freed, and another replica
//! that tries every [`TRY_EVERY`] takes over. SQLite serves one process, which always holds
//! it.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::store::backend::Db;

/// How often a replica tries to take an endpoint over, and checks that it still holds it.
pub const TRY_EVERY: Duration = Duration::from_secs(1);

/// The lock of an endpoint: a 64-bit number from its name.
fn lock_id(name: &str) -> i64 {
    let digest = Sha256::digest(format!("kenar-hook forward {name}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The right to forward an endpoint.
pub enum Lease {
    /// SQLite: one process.
    Sole,
    /// PostgreSQL: held while this connection lives.
    Locked(PgConnection),
}

impl Store {
    /// Waits until this process may forward endpoint `name`; `None` when `stop` came first.
    pub async fn forward_lease(&self, name: &str, stop: &CancellationToken) -> Option<Lease> {
        crate::store::dispatch!(self, db => db.forward_lease(name, stop).await)
    }
}

impl Db<sqlx::Sqlite> {
    /// One process serves a SQLite file.
    async fn forward_lease(&self, _name: &str, _stop: &CancellationToken) -> Option<Lease> {
        Some(Lease::Sole)
    }
}

impl Db<sqlx::Postgres> {
    async fn forward_lease(&self, name: &str, stop: &CancellationToken) -> Option<Lease> {
        let options = self.pool.connect_options();
        // One connection tries every time, while it works.
        let mut conn: Option<PgConnection> = None;
        loop {
            let attempt = async {
                let mut c = match conn.take() {
                    Some(c) => c,
                    None => PgConnection::connect_with(&options).await?,
                };
                let held: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
                    .bind(lock_id(name))
                    .fetch_one(&mut c)
                    .await?;
                Ok::<_, sqlx::Error>((held, c))
            };
            match attempt.await {
                Ok((true, c)) => return Some(Lease::Locked(c)),
                Ok((false, c)) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(endpoint = name, error = %e, "cannot try the forwarding lock")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(TRY_EVERY) => {}
            }
        }
    }
}

impl Lease {
    /// Keeps the lease until `done` is cancelled, and cancels `lost` (then `done` too) as
    /// soon as the lock's connection fails.
    pub async fn hold(self, lost: CancellationToken, done: CancellationToken) {
        let Lease::Locked(mut conn) = self else {
            done.cancelled().await;
            return;
        };
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tokio::time::sleep(TRY_EVERY) => {}
            }
            let alive = tokio::time::timeout(TRY_EVERY, conn.ping()).await;
            if !matches!(alive, Ok(Ok(()))) {
                tracing::warn!("lost the forwarding lock's connection; stopping");
                lost.cancel();
                return;
            }
        }
        // Closing the connection frees the lock at once.
        let _ = conn.close().await;
    }
}
