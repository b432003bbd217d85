//! A database that stops answering: PostgreSQL behind a proxy that freezes (connections stay
//! open, nothing passes), SQLite locked by another process. Deliveries get a quick 503 with
//! `Retry-After` and nothing else; once the database is back they are stored again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// A TCP proxy to PostgreSQL that can stop passing bytes without closing anything.
struct Freezer {
    addr: std::net::SocketAddr,
    frozen: Arc<AtomicBool>,
}

impl Freezer {
    async fn start(upstream: String) -> Freezer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    while flag.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pass(cr, sw, flag.clone()));
                    tokio::spawn(pass(sr, cw, flag));
                });
            }
        });
        Freezer { addr, frozen }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, Ordering::SeqCst);
    }
}

async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        // Frozen: the bytes are held, the connection stays open.
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn delivery(i: usize) -> String {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("legacy_chat_message_text.json")).unwrap();
    v["payload"]["id"] = json!(format!("outage-{i}"));
    v.to_string()
}

/// Sends `n` deliveries at once; returns (status, retry-after present, seconds taken) each.
async fn burst(app: &TestApp, from: usize, n: usize) -> Vec<(u16, bool, f64)> {
    futures_util::future::join_all((from..from + n).map(|i| async move {
        let started = Instant::now();
        let r = app.post_webhook(delivery(i)).await;
        (
            r.status().as_u16(),
            r.headers().contains_key("retry-after"),
            started.elapsed().as_secs_f64(),
        )
    }))
    .await
}

/// Whether a delivery is stored within ten seconds (the breaker's probe lets it through).
async fn stored_again(app: &TestApp) -> bool {
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if app.post_webhook(delivery(1000)).await.status() == 200 {
            return true;
        }
    }
    false
}

fn assert_quick_503s(answers: &[(u16, bool, f64)]) {
    for (status, retry_after, secs) in answers {
        assert_eq!(*status, 503, "{answers:?}");
        assert!(retry_after, "503 without Retry-After");
        // Far below the 10 s request timeout: nobody waits for a database that is gone.
        assert!(*secs < 3.0, "took {secs} s");
    }
}

#[tokio::test]
async fn postgres_that_stops_answering_gets_quick_503s_and_recovers() {
    let real = fresh_postgres_url().await;
    let mut url = url::Url::parse(&real).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let freezer = Freezer::start(upstream).await;
    url.set_port(Some(freezer.addr.port())).unwrap();
    let proxied = url.to_string();
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database.url = secrecy::SecretString::from(proxied);
    })
    .await;
    assert!(burst(&app, 0, 10).await.iter().all(|a| a.0 == 200));

    freezer.freeze(true);
    let answers = burst(&app, 100, 200).await;
    assert_quick_503s(&answers);
    // The read API and readiness say so too, at once.
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    freezer.freeze(false);
    let mut stored = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if app.post_webhook(delivery(1000)).await.status() == 200 {
            stored = true;
            break;
        }
    }
    assert!(
        stored,
        "deliveries are stored again once the database answers"
    );
    // The ten stored before and the one after; every delivery answered 503 stays unstored.
    assert_eq!(app.counts().await.1, 11);
    for i in [0, 9, 1000] {
        let id = format!("outage-{i}");
        assert!(app.store.message(&id).await.unwrap().is_some(), "{id}");
    }
}

async fn the_read_api_answers_503_when_the_database_is_gone(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![secrecy::SecretString::from("read-token-0123456789")];
    })
    .await;
    app.app.as_ref().unwrap().store.close().await;
    let r = app
        .client
        .get(app.url("/api/v1/messages"))
        .bearer_auth("read-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(error_of(r).await.1, "unavailable");
}

on_both_backends!(the_read_api_answers_503_when_the_database_is_gone);

#[tokio::test]
async fn sqlite_locked_by_another_process_gets_quick_503s_and_recovers() {
    let app = spawn_app(Backend::Sqlite).await;
    assert!(burst(&app, 0, 5).await.iter().all(|a| a.0 == 200));
    let path = app.settings.database.url.clone();
    let mut other = sqlx::SqliteConnection::connect(secrecy::ExposeSecret::expose_secret(&path))
        .await
        .unwrap();
    sqlx::query("begin exclusive")
        .execute(&mut other)
        .await
        .unwrap();
    let answers = burst(&app, 100, 40).await;
    assert_quick_503s(&answers);
    sqlx::query("commit").execute(&mut other).await.unwrap();
    drop(other);
    assert!(
        stored_again(&app).await,
        "deliveries are stored again once the lock is gone"
    );
    assert_eq!(app.counts().await.1, 6);
}

/// Holds the writers' advisory lock from another connection: every commit stalls while
/// PostgreSQL itself answers, as in a checkpoint's long fsync.
async fn stall_postgres_commits(app: &TestApp, hold: Duration) -> tokio::task::JoinHandle<()> {
    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("select pg_advisory_lock(7738712899516395371)")
        .execute(&mut conn)
        .await
        .unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        sqlx::query("select pg_advisory_unlock(7738712899516395371)")
            .execute(&mut conn)
            .await
            .unwrap();
    })
}

#[tokio::test]
async fn commits_stalled_while_postgres_answers_are_waited_for_not_refused() {
    let app = spawn_app(Backend::Postgres).await;
    assert!(burst(&app, 0, 5).await.iter().all(|a| a.0 == 200));
    let release = stall_postgres_commits(&app, Duration::from_millis(1500)).await;
    let answers = burst(&app, 100, 40).await;
    release.await.unwrap();
    assert!(
        answers.iter().all(|a| a.0 == 200),
        "slow is not down: {answers:?}"
    );
    assert!(
        answers.iter().any(|a| a.2 >= 1.0),
        "the commits did stall: {answers:?}"
    );
    assert_eq!(app.counts().await.1, 45, "every delivery stored");
}

#[tokio::test]
async fn a_short_write_of_another_process_on_sqlite_is_waited_for_not_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    assert!(burst(&app, 0, 5).await.iter().all(|a| a.0 == 200));
    let path = app.settings.database.url.clone();
    let mut other = sqlx::SqliteConnection::connect(secrecy::ExposeSecret::expose_secret(&path))
        .await
        .unwrap();
    sqlx::query("begin immediate")
        .execute(&mut other)
        .await
        .unwrap();
    // Longer than the write timeout (500 ms), shorter than it and the check after it.
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        sqlx::query("commit").execute(&mut other).await.unwrap();
    });
    let answers = burst(&app, 100, 40).await;
    release.await.unwrap();
    assert!(answers.iter().all(|a| a.0 == 200), "{answers:?}");
    assert_eq!(app.counts().await.1, 45, "every delivery stored");
}
