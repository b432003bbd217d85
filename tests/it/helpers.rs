//! The test harness: `spawn_app` and friends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use kenar_hook::app::{self, RunningApp};
use kenar_hook::config::Settings;
use kenar_hook::store::Store;
use secrecy::SecretString;
use sqlx::Connection;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// The two accepted keys of every test app (rotation: both work).
pub const KEY: &str = "test-identification-key-1-5f0d2c8e9a7b";
pub const OTHER_KEY: &str = "test-identification-key-2-3b6e1a9c4d8f";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an `async fn name(backend: Backend)` once per backend, as `name::sqlite` and
/// `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

/// A running app and what a test needs to talk to it.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    /// A separate handle on the app's database, for checking what was stored.
    pub store: Store,
    pub settings: Settings,
    pub app: Option<RunningApp>,
    /// Holds the SQLite file and data folder until the test ends.
    pub _dir: TempDir,
}

/// The PostgreSQL server the tests create their databases on.
pub fn admin_database_url() -> String {
    std::env::var("KENAR_HOOK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://kenar_hook:kenar_hook@127.0.0.1:5432/postgres".to_owned())
}

/// The start of the name of every test database this machine makes: `kh_test_`, then the
/// first 8 characters of the machine's id.
fn test_database_prefix() -> String {
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let machine: String = machine.trim().chars().take(8).collect();
    format!("kh_test_{machine:0>8}_")
}

/// Drops the test databases that earlier runs on this machine left behind: those named by a
/// process that has ended. A database of a run still under way, or of another machine
/// sharing the server, is left alone.
async fn drop_left_behind(conn: &mut sqlx::PgConnection) {
    let prefix = test_database_prefix();
    let names: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where starts_with(datname, $1)")
            .bind(&prefix)
            .fetch_all(&mut *conn)
            .await
            .expect("list test databases");
    for name in names {
        let pid = name[prefix.len()..].split('_').next().unwrap_or_default();
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        // Another run may be dropping it at the same moment: that is no failure.
        let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut *conn)
            .await;
    }
}

/// Creates an empty database named by this machine, this process and a UUID, and returns its
/// URL. The first call of a process first drops what earlier runs left behind, so test runs
/// do not pile databases up. Panics (failing the test) when PostgreSQL is unreachable: these
/// tests never skip.
pub async fn fresh_postgres_url() -> String {
    let admin = admin_database_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for this test and is not reachable ({e}); \
             run scripts/test.sh or set KENAR_HOOK_TEST_DATABASE_URL"
            )
        });
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if !SWEPT.swap(true, Ordering::SeqCst) {
        drop_left_behind(&mut conn).await;
    }
    let name = format!(
        "{}{}_{}",
        test_database_prefix(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("admin url");
    url.set_path(&name);
    url.to_string()
}

/// Settings for a test app: both test keys, a fresh database, a temp data folder, metrics
/// off.
pub async fn test_settings(backend: Backend, dir: &TempDir) -> Settings {
    let mut settings = Settings::load_from(None, &HashMap::new()).expect("default settings");
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.data_dir = dir.path().to_path_buf();
    settings.metrics.enabled = false;
    settings.divar.identification_keys =
        vec![SecretString::from(KEY), SecretString::from(OTHER_KEY)];
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
        Backend::Postgres => fresh_postgres_url().await,
    };
    settings.database.url = SecretString::from(url);
    settings
}

/// Starts the app with default test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the app with test settings changed by `adjust`.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(backend, &dir).await;
    adjust(&mut settings);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let app = app::start(settings.clone(), listener)
        .await
        .expect("app starts");
    let store = Store::connect(&settings.database).await.expect("store");
    TestApp {
        addr: app.addr,
        client: reqwest::Client::new(),
        store,
        settings,
        app: Some(app),
        _dir: dir,
    }
}

impl TestApp {
    /// A read API GET with `token`: the status and the JSON body.
    pub async fn get_as(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a body to the webhook with the given `authorization` value (none when `None`).
    pub async fn post_webhook_with_key(
        &self,
        key: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/webhooks/divar"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.header("authorization", key);
        }
        request.send().await.expect("request")
    }

    /// POSTs a body to the webhook with the first test key.
    pub async fn post_webhook(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.post_webhook_with_key(Some(KEY), body).await
    }

    /// (conversations, messages, events) stored.
    pub async fn counts(&self) -> (i64, i64, i64) {
        self.store.counts().await.expect("counts")
    }
}

/// The bytes of a fixture from tests/fixtures (Divar examples; see docs/divar-protocol.md).
pub fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The error body's `code` and `message`.
pub async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    (
        status,
        body["error"]["code"].as_str().expect("code").to_owned(),
        body["error"]["message"]
            .as_str()
            .expect("message")
            .to_owned(),
    )
}

/// A loopback port for a process that binds it itself. Asking the system for a port (bind
/// to 0) and letting it go races with every other test doing the same: the system hands
/// the same ephemeral ports out again. These come from below the ephemeral range (32768 and
/// up on Linux), each handed out once in this test run, and are checked free.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Spread over 20000..32000 by process, so two test runs at once rarely meet.
    let base = 20_000 + (std::process::id() % 400) as u16 * 30;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base - 20_000 + offset) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until a binary started on `port` answers `/readyz` with 200: `/healthz` answers
/// 200 already while the database is still awaited.
pub async fn wait_until_ready(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the binary on port {port} did not become ready");
}

/// Microseconds since the epoch of a stored time.
pub fn us(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// Sends `request(0)`, `request(1)`, ... until one is answered 429: how many were answered
/// 401 before it. Panics on any other answer, or when 1,000 go by without a 429.
pub async fn refused_after<F, Fut>(mut request: F) -> u32
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    for i in 0..1_000u32 {
        match request(i).await.status().as_u16() {
            401 => {}
            429 => return i,
            other => panic!("answered {other}"),
        }
    }
    panic!("1,000 requests without a 429")
}

/// A database left by a process that has ended is dropped; one of a process still running is
/// kept.
#[tokio::test]
async fn test_databases_of_ended_runs_are_dropped_and_running_ones_kept() {
    let mut conn = sqlx::PgConnection::connect(&admin_database_url())
        .await
        .expect("PostgreSQL is required for this test");
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let ended = format!("{}{}_{suffix}", test_database_prefix(), pid_max + 1);
    let running = format!("{}{}_{suffix}", test_database_prefix(), std::process::id());
    for name in [&ended, &running] {
        sqlx::query(&format!("create database {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    drop_left_behind(&mut conn).await;
    let left: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where datname like '%' || $1")
            .bind(&suffix)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    sqlx::query(&format!("drop database {running}"))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, vec![running]);
}
