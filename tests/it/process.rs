//! The binary itself: start-up without a key, logs, signals, subcommands and exit codes.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_kenar-hook");

/// The binary in `dir` with nothing configured but its address, logs on a pipe.
fn spawn_fresh(dir: &std::path::Path, port: u16) -> std::process::Child {
    Command::new(BIN)
        .current_dir(dir)
        .env("KENAR_HOOK__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KENAR_HOOK__METRICS__ENABLED", "false")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and waits for the exit, at most 10 s.
async fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "exits within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn fresh_start_generates_a_private_key_logs_its_path_and_masks_phones() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = spawn_fresh(dir.path(), port);
    wait_until_ready(port).await;

    let key_path = dir.path().join("data/identification_key");
    let key = std::fs::read_to_string(&key_path)
        .unwrap()
        .trim()
        .to_owned();
    assert!(key.len() >= 43, "a 256-bit key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(dir.path().join("data/kenar-hook.db").exists());

    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://127.0.0.1:{port}/webhooks/divar"))
        .header("authorization", &key)
        .body(fixture("event_new_message_contact.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    assert!(terminate(&mut child).await.success());

    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("data/identification_key"), "{logs}");
    assert!(!logs.contains(&key), "the key is never logged");
    assert!(
        logs.contains("+989*******67"),
        "masked phone logged: {logs}"
    );
    assert!(
        !logs.contains("+989121234567"),
        "the phone number is never logged"
    );
}

/// A stop while deliveries keep arriving: every task that reads the database ends before the
/// pool closes, or notices the stop, so nothing warns of a closed pool.
#[tokio::test]
async fn a_stop_under_deliveries_warns_of_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = spawn_fresh(dir.path(), port);
    // Read as it is written: a full pipe would hold the logger back and lose lines.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut logs = String::new();
        stderr.read_to_string(&mut logs).unwrap();
        logs
    });
    wait_until_ready(port).await;
    let key = std::fs::read_to_string(dir.path().join("data/identification_key")).unwrap();
    let template = String::from_utf8(fixture("event_new_message_text.json")).unwrap();
    let url = format!("http://127.0.0.1:{port}/webhooks/divar");
    let senders: Vec<_> = (0..8)
        .map(|task| {
            let (url, key, template) = (url.clone(), key.trim().to_owned(), template.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut stored = 0;
                for i in 0.. {
                    let body = template.replace(
                        "f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f",
                        &format!("stop-{task}-{i}"),
                    );
                    match client
                        .post(&url)
                        .header("authorization", &key)
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => stored += 1,
                        _ => return stored,
                    }
                }
                stored
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(terminate(&mut child).await.success());
    let mut stored = 0;
    for sender in senders {
        stored += sender.await.unwrap();
    }
    assert!(stored > 0, "deliveries were stored before the stop");
    let logs = reader.join().unwrap();
    let stopping = logs.find("shutting down").expect("the stop is logged");
    let after = &logs[stopping..];
    assert!(
        !after.contains("WARN") && !after.contains("ERROR"),
        "{after}"
    );
}

#[tokio::test]
async fn the_read_apis_log_lines_name_the_client_never_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let token = "crm-client-token-0123456789abcdefghij";
    std::fs::write(
        dir.path().join("kh.toml"),
        format!("[[api.clients]]\nname = \"crm\"\ntoken = \"{token}\"\nscopes = [\"messages\"]\n"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--config", "kh.toml"])
        .env("KENAR_HOOK__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KENAR_HOOK__METRICS__ENABLED", "false")
        .env("KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS", KEY)
        .env("KENAR_HOOK__LOG__FORMAT", "json")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_ready(port).await;
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/conversations"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("/api/v1/conversations") && l.contains("finished processing"))
        .unwrap_or_else(|| panic!("no line for the request: {logs}"));
    assert!(line.contains("\"client\":\"crm\""), "{line}");
    assert!(!logs.contains(token), "the token is never logged");
}

#[test]
fn invalid_settings_stop_start_up_with_one_line_naming_the_key() {
    let output = Command::new(BIN)
        .env("KENAR_HOOK__SERVER__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("server.listen"), "{stderr}");
}

// Multi-threaded: the blocking child process must not stall the app it checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_healthy_and_1_when_not() {
    let app = spawn_app(Backend::Sqlite).await;
    let ok = Command::new(BIN)
        .args(["healthcheck", &app.url("/healthz")])
        .status()
        .unwrap();
    assert_eq!(ok.code(), Some(0));
    let port = free_port();
    let down = Command::new(BIN)
        .args(["healthcheck", &format!("http://127.0.0.1:{port}/healthz")])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(down.code(), Some(1));
}

/// The tables every schema has (`message_scoped` of SQLite is renamed `message`).
const TABLES: &[&str] = &[
    "click",
    "conversation",
    "event",
    "forward_attempt",
    "forward_cursor",
    "forward_dead",
    "forward_endpoint",
    "forward_pending",
    "inbox_session",
    "installation",
    "message",
    "oauth_state",
    "oauth_subscription",
    "oauth_token",
    "outbox",
    "registration",
    "rejected",
    "stream_ticket",
];

async fn migrate_creates_the_schema_and_exits_0(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m/kh.db");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", db.display()),
        Backend::Postgres => fresh_postgres_url().await,
    };
    let status = Command::new(BIN)
        .arg("migrate")
        .env("KENAR_HOOK__DATABASE__URL", &url)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let tables_query = match backend {
        Backend::Sqlite => {
            assert!(db.exists());
            "select name from sqlite_master where type = 'table'"
        }
        Backend::Postgres => "select tablename::text from pg_tables where schemaname = 'public'",
    };
    let migrations_dir: std::path::PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "migrations",
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
    ]
    .iter()
    .collect();
    let mut versions: Vec<i64> = std::fs::read_dir(&migrations_dir)
        .unwrap()
        .map(|f| {
            let name = f.unwrap().file_name().into_string().unwrap();
            name.split('_').next().unwrap().parse().unwrap()
        })
        .collect();
    versions.sort();

    let (tables, applied, indexes): (Vec<String>, Vec<(i64, bool)>, Vec<String>) = {
        use sqlx::Connection;
        let applied_query = "select version, success from _sqlx_migrations order by version";
        match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                (
                    sqlx::query_scalar(tables_query)
                        .fetch_all(&mut conn)
                        .await
                        .unwrap(),
                    sqlx::query_as(applied_query)
                        .fetch_all(&mut conn)
                        .await
                        .unwrap(),
                    sqlx::query_scalar("select name from sqlite_master where type = 'index'")
                        .fetch_all(&mut conn)
                        .await
                        .unwrap(),
                )
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                (
                    sqlx::query_scalar(tables_query)
                        .fetch_all(&mut conn)
                        .await
                        .unwrap(),
                    sqlx::query_as(applied_query)
                        .fetch_all(&mut conn)
                        .await
                        .unwrap(),
                    sqlx::query_scalar(
                        "select indexname::text from pg_indexes where schemaname = 'public'",
                    )
                    .fetch_all(&mut conn)
                    .await
                    .unwrap(),
                )
            }
        }
    };
    // Each new sign-in purges expired ones along this index.
    assert!(
        indexes.iter().any(|i| i == "oauth_state_expires_at"),
        "{indexes:?}"
    );
    for table in TABLES.iter().chain(&["_sqlx_migrations"]) {
        assert!(
            tables.iter().any(|t| t == table),
            "table {table} missing: {tables:?}"
        );
    }
    assert!(!tables.iter().any(|t| t == "message_scoped"), "{tables:?}");
    let expected: Vec<(i64, bool)> = versions.iter().map(|v| (*v, true)).collect();
    assert_eq!(applied, expected, "every migration applied once");
}

on_both_backends!(migrate_creates_the_schema_and_exits_0);

/// A data folder of its own: the key file is what two starts share.
fn without_a_configured_key(s: &mut kenar_hook::config::Settings, data: &std::path::Path) {
    s.divar.identification_keys = Vec::new();
    s.server.data_dir = data.to_path_buf();
}

#[tokio::test]
async fn a_restart_keeps_accepting_the_generated_key() {
    let data = tempfile::tempdir().unwrap();
    let mut first = spawn_app_with(Backend::Sqlite, |s| {
        without_a_configured_key(s, data.path())
    })
    .await;
    let key_path = data.path().join("identification_key");
    let key = std::fs::read_to_string(&key_path)
        .unwrap()
        .trim()
        .to_owned();
    let delivery = || fixture("event_new_message_contact.json");
    let answer = first.post_webhook_with_key(Some(&key), delivery()).await;
    assert_eq!(answer.status(), 200);
    first.app.take().unwrap().stop().await.unwrap();

    let second = spawn_app_with(Backend::Sqlite, |s| {
        without_a_configured_key(s, data.path())
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap().trim(),
        key,
        "the file is kept"
    );
    let answer = second.post_webhook_with_key(Some(&key), delivery()).await;
    assert_eq!(answer.status(), 200, "the first start's key is accepted");
    let answer = second.post_webhook_with_key(Some(KEY), delivery()).await;
    assert_eq!(answer.status(), 401, "only the file's key");
}

#[test]
fn a_weak_key_in_the_key_file_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/identification_key"), "short-key\n").unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env(
            "KENAR_HOOK__SERVER__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("KENAR_HOOK__METRICS__ENABLED", "false")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A binary that accepted the key would serve until stopped.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after 20 s: the weak key was accepted");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    // The line for a person (the log line says the same).
    let said = stderr
        .lines()
        .find(|l| l.starts_with("kenar-hook: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(said.contains("data/identification_key"), "{said}");
    assert!(
        said.contains("a key of 9 characters is too easy to guess"),
        "{stderr}"
    );
    assert!(!stderr.contains("short-key"), "the key is never shown");
}

/// The binary on SQLite in `dir`, with the test key and metrics on `metrics_port`, healthy.
async fn spawn_with_metrics(
    dir: &tempfile::TempDir,
    port: u16,
    metrics_port: u16,
    extra: &[(&str, &str)],
) -> std::process::Child {
    let child = Command::new(BIN)
        .envs(extra.iter().copied())
        .current_dir(dir.path())
        .env("KENAR_HOOK__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "KENAR_HOOK__METRICS__LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS", KEY)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_ready(port).await;
    child
}

#[tokio::test]
async fn with_metrics_token_set_metrics_answer_only_its_bearer() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let token = "metrics-token-5e0c1d9a7b3f42d8a6e1c0b9";
    let mut child = spawn_with_metrics(
        &dir,
        port,
        metrics_port,
        &[("KENAR_HOOK__METRICS__TOKEN", token)],
    )
    .await;
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let client = reqwest::Client::new();
    let get = |auth: Option<String>| {
        let mut request = client.get(&url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let none = get(None).await.unwrap();
    let wrong = get(Some("Bearer metrics-token-wrong".into()))
        .await
        .unwrap();
    let raw = get(Some(token.to_owned())).await.unwrap();
    let good = get(Some(format!("Bearer {token}"))).await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    for refused in [none, wrong, raw] {
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        assert!(!refused.text().await.unwrap().contains("kenar_"));
    }
    assert_eq!(good.status(), 200);
    assert!(good.text().await.unwrap().contains("kenar_"));
}

/// The value of one series in a Prometheus text page (0 when absent).
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .filter_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .sum()
}

/// A process of its own has a recorder of its own, so the counts below are exact.
#[tokio::test]
async fn metrics_count_deliveries_by_type_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = spawn_with_metrics(&dir, port, metrics_port, &[]).await;
    let client = reqwest::Client::new();
    let post = |key: &'static str, body: Vec<u8>| {
        client
            .post(format!("http://127.0.0.1:{port}/webhooks/divar"))
            .header("authorization", key)
            .body(body)
            .send()
    };
    let event = fixture("event_new_message_text.json");
    assert_eq!(post(KEY, event.clone()).await.unwrap().status(), 200);
    assert_eq!(post(KEY, event.clone()).await.unwrap().status(), 200);
    // The same message id in another conversation.
    let mut elsewhere: serde_json::Value = serde_json::from_slice(&event).unwrap();
    elsewhere["new_message"]["conversation"]["id"] = serde_json::json!("another-conversation");
    let conflict = post(KEY, elsewhere.to_string().into_bytes()).await.unwrap();
    assert_eq!(conflict.status(), 409);
    assert_eq!(post("wrong", b"{}".to_vec()).await.unwrap().status(), 401);
    // The API listener does not serve metrics; what no route matches is counted under one
    // label, whatever its path.
    let api = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    let nope = reqwest::get(format!("http://127.0.0.1:{port}/no/such/path"))
        .await
        .unwrap();
    assert_eq!(nope.status(), 404);

    let page = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let counts = [
        (
            r#"kenar_webhook_deliveries_total{event_type="NEW_MESSAGE",outcome="stored",reason=""}"#,
            1.0,
        ),
        (
            r#"kenar_webhook_deliveries_total{event_type="NEW_MESSAGE",outcome="duplicate",reason=""}"#,
            1.0,
        ),
        (
            r#"kenar_webhook_deliveries_total{event_type="NEW_MESSAGE",outcome="conflict",reason=""}"#,
            1.0,
        ),
        (
            r#"kenar_webhook_deliveries_total{event_type="UNKNOWN",outcome="rejected",reason="unauthorized"}"#,
            1.0,
        ),
        (
            r#"kenar_auth_failures_total{route="webhook",answer="401"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{route="/webhooks/divar",method="POST",status="200"}"#,
            2.0,
        ),
        (
            r#"http_requests_total{route="/webhooks/divar",method="POST",status="409"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{route="/webhooks/divar",method="POST",status="401"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{route="unmatched",method="GET",status="404"}"#,
            2.0,
        ),
        ("kenar_batch_size_count", 3.0),
        // Each of the three deliveries that reached the writer, through every stage.
        (r#"kenar_ingest_stage_seconds_count{stage="prepare"}"#, 3.0),
        (r#"kenar_ingest_stage_seconds_count{stage="queue"}"#, 3.0),
        (r#"kenar_ingest_stage_seconds_count{stage="commit"}"#, 3.0),
        (r#"kenar_ingest_stage_seconds_count{stage="answer"}"#, 3.0),
    ];
    for (series, expected) in counts {
        assert_eq!(metric(&page, series), expected, "{series}\n{page}");
    }
    for present in [
        "http_request_duration_seconds_bucket",
        "kenar_batch_commit_seconds_bucket",
        "kenar_ingest_queue_depth",
    ] {
        assert!(page.contains(present), "metrics lack {present}:\n{page}");
    }
}

/// 10,000 made-up methods: the metrics page of a process of its own grows by no more than a
/// few series, whatever the methods were.
#[tokio::test]
async fn ten_thousand_made_up_methods_leave_the_metrics_page_small() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = spawn_with_metrics(&dir, port, metrics_port, &[]).await;
    let page = || async {
        reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = page().await.len();
    let client = reqwest::Client::new();
    for chunk in 0..100 {
        let sends = (0..100).map(|i| {
            let method = reqwest::Method::from_bytes(format!("MX{chunk:03}{i:03}Q").as_bytes());
            client
                .request(method.unwrap(), format!("http://127.0.0.1:{port}/healthz"))
                .send()
        });
        for response in futures_util::future::join_all(sends).await {
            assert_eq!(response.unwrap().status(), 405);
        }
    }
    let after = page().await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(!after.contains("MX00"), "a made-up method became a label");
    assert!(
        after.len() < before + 64 * 1024,
        "the page grew by {} bytes",
        after.len() - before
    );
}

#[test]
fn a_healthcheck_url_that_is_no_url_is_a_usage_error() {
    for bad in ["not-a-url", "ftp://127.0.0.1/healthz", "http://"] {
        let output = Command::new(BIN)
            .args(["healthcheck", bad])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(bad), "{bad}: {stderr}");
        assert!(stderr.contains("http://127.0.0.1:8080/healthz"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn a_data_folder_that_cannot_be_made_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let data_dir = blocker.join("data");
    let output = Command::new(BIN)
        .arg("migrate")
        .current_dir(dir.path())
        .env("KENAR_HOOK__SERVER__DATA_DIR", &data_dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&*data_dir.to_string_lossy()),
        "names the path: {stderr}"
    );
}

#[test]
fn forward_status_without_endpoints_says_so_and_names_the_files_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kh.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:8080\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["forward", "status"])
        .arg("--config")
        .arg(&file)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("no forwarding endpoint is configured"),
        "{stdout}"
    );
    assert!(stdout.contains(&*file.to_string_lossy()), "{stdout}");
    assert!(!stdout.contains("ENDPOINT"), "no empty table: {stdout}");
}
