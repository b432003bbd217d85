//! The binary as an operator runs it: `config check`, waiting for the database at start-up,
//! exit codes naming the real cause, logs meant for files and collectors, and metrics as
//! Prometheus expects them.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_kenar-hook");

/// The binary in a fresh folder, with no settings from the test's own environment.
fn kenar_hook(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir.path()).env_remove("DATABASE_URL");
    for (key, _) in std::env::vars() {
        if key.starts_with("KENAR_HOOK__") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

/// `serve` on `port` with the test key, metrics off.
fn serving(dir: &tempfile::TempDir, port: u16) -> Command {
    let mut command = kenar_hook(dir);
    command
        .env("KENAR_HOOK__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KENAR_HOOK__METRICS__ENABLED", "false")
        .env("KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS", KEY);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn status_of(url: &str) -> Option<u16> {
    // Generous: the machine may be busy compiling while these run.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn wait_for_status(url: &str, want: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if status_of(url).await == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer {want} within {within:?}");
}

fn stop(mut child: Child) -> (Option<i32>, String) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    (status.code(), stderr)
}

#[test]
fn config_check_prints_every_setting_with_its_layer_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keys"),
        "identification-key-0123456789-abcd\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kh.toml"),
        "[server]\nlisten = \"0.0.0.0:8080\"\n[divar]\nidentification_keys_file = \"keys\"\n",
    )
    .unwrap();
    let output = kenar_hook(&dir)
        .args(["config", "check", "--config", "kh.toml"])
        .env(
            "KENAR_HOOK__API__TOKENS",
            "api-secret-token-0123456789abcdefgh",
        )
        .env("DATABASE_URL", "postgres://kh:db-password@db:5432/kh")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("{key} in {stdout}"))
            .to_owned()
    };
    assert!(line("server.listen").contains("\"0.0.0.0:8080\""));
    assert!(line("server.listen").ends_with("# file kh.toml"));
    assert!(line("api.tokens").ends_with("# env KENAR_HOOK__API__TOKENS"));
    assert!(line("database.url").contains("postgres://kh:********@db:5432/kh"));
    assert!(line("ingest.batch_max").ends_with("# default"));
    for secret in [
        "api-secret-token-0123456789abcdefgh",
        "db-password",
        "identification-key-0123456789-abcd",
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown"
        );
    }
}

#[test]
fn config_check_exits_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let output = kenar_hook(&dir)
        .args(["config", "check"])
        .env("KENAR_HOOK__INGEST__BATCH_MAXX", "64")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "nothing printed as if valid");
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("did you mean ingest.batch_max?"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_settings_file_passes_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");
    let output = kenar_hook(&dir)
        .args(["config", "check", "--config", shipped])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    // It repeats the defaults, so nothing is reported as set by it.
    assert!(stdout.lines().all(|l| l.ends_with("# default")), "{stdout}");
}

#[test]
fn a_named_settings_file_replaces_the_working_directorys() {
    // A settings file planted in the working directory (writable by the service in a
    // container) must not become a layer when the deployment names its own file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/default.toml"),
        "[server]\nlisten = \"127.0.0.1:18999\"\n",
    )
    .unwrap();
    let named = dir.path().join("named.toml");
    std::fs::write(&named, "[log]\nlevel = \"debug\"\n").unwrap();
    let check = |args: &[&str], env: Option<&std::path::Path>| {
        let mut command = kenar_hook(&dir);
        command
            .env_remove("KENAR_HOOK_CONFIG")
            .args(["config", "check"])
            .args(args);
        if let Some(file) = env {
            command.env("KENAR_HOOK_CONFIG", file);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let named_arg = named.display().to_string();
    for stdout in [
        check(&["--config", &named_arg], None),
        check(&[], Some(&named)),
    ] {
        assert!(!stdout.contains("18999"), "{stdout}");
        assert!(stdout.contains("\"debug\""), "{stdout}");
    }
    // Without a named file the working directory's is read, as before.
    assert!(check(&[], None).contains("18999"));
}

#[test]
fn migrate_exits_4_with_the_real_cause_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let output = kenar_hook(&dir)
        .arg("migrate")
        .env(
            "DATABASE_URL",
            format!("postgres://kh:hidden-pw@127.0.0.1:{port}/kh"),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = text(&output.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("kenar-hook:"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("connection refused"), "{stderr}");
    assert!(said[0].contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    assert!(!stderr.contains("hidden-pw"), "{stderr}");
}

#[test]
fn a_wrong_database_password_is_said_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let mut url = url::Url::parse(&admin_database_url()).unwrap();
    url.set_password(Some("certainly-wrong")).unwrap();
    let output = kenar_hook(&dir)
        .arg("migrate")
        .env("DATABASE_URL", url.as_str())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("certainly-wrong"), "{stderr}");
}

/// Forwards every connection on `port` to PostgreSQL, from when it is called.
async fn forward_to_postgres(port: u16) {
    let target = url::Url::parse(&admin_database_url()).unwrap();
    let target = format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port().unwrap_or(5432)
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_a_database_that_starts_later() {
    let dir = tempfile::tempdir().unwrap();
    let database = url::Url::parse(&fresh_postgres_url().await).unwrap();
    let db_port = free_port();
    let mut url = database.clone();
    url.set_port(Some(db_port)).unwrap();
    let port = free_port();
    let child = serving(&dir, port)
        .env("DATABASE_URL", url.as_str())
        .env("KENAR_HOOK__DATABASE__STARTUP_WAIT_SECS", "30")
        .env("KENAR_HOOK__DATABASE__ACQUIRE_TIMEOUT_MS", "500")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // Alive but not ready while the database is away.
    wait_for_status(&format!("{base}/healthz"), 200, Duration::from_secs(10)).await;
    assert_eq!(status_of(&format!("{base}/readyz")).await, Some(503));
    let response = reqwest::Client::new()
        .post(format!("{base}/webhooks/divar"))
        .header("authorization", KEY)
        .body(fixture("event_new_message_text.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "a delivery waits for the database");
    assert!(response.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    forward_to_postgres(db_port).await;
    wait_for_status(&format!("{base}/readyz"), 200, Duration::from_secs(15)).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/webhooks/divar"))
        .header("authorization", KEY)
        .body(fixture("event_new_message_text.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (code, stderr) = stop(child);
    assert_eq!(code, Some(0), "{stderr}");
    let waiting: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("waiting for the database"))
        .collect();
    assert_eq!(waiting.len(), 1, "one line per cause: {stderr}");
    assert!(waiting[0].contains("connection refused"), "{stderr}");
}

#[test]
fn serve_gives_up_after_startup_wait_secs_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = serving(&dir, free_port())
        .env(
            "DATABASE_URL",
            format!("postgres://kh:pw@127.0.0.1:{}/kh", free_port()),
        )
        .env("KENAR_HOOK__DATABASE__STARTUP_WAIT_SECS", "2")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", text(&output.stderr));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_hold_one_span_list_numeric_latency_and_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = serving(&dir, port)
        .env("KENAR_HOOK__LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_status(
        &format!("http://127.0.0.1:{port}/readyz"),
        200,
        Duration::from_secs(20),
    )
    .await;
    let (code, stderr) = stop(child);
    assert_eq!(code, Some(0));
    assert!(!stderr.contains('\u{1b}'), "no ANSI codes into a pipe");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let answered = lines
        .iter()
        .find(|l| l["message"] == "finished processing request")
        .unwrap_or_else(|| panic!("the request line in {stderr}"));
    assert!(answered["latency_ms"].is_f64(), "{answered}");
    assert_eq!(answered["status"], 200);
    assert!(answered["spans"].is_array(), "{answered}");
    assert_eq!(answered["spans"][0]["name"], "request");
    assert!(
        answered.get("span").is_none(),
        "the span once, in spans: {answered}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_logs_into_a_pipe_have_no_colour_and_rust_log_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let start = |rust_log: Option<&str>| {
        let mut command = serving(&dir, port);
        command.stderr(Stdio::piped());
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        command.spawn().unwrap()
    };
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let child = start(None);
    wait_for_status(&ready, 200, Duration::from_secs(20)).await;
    let (_, stderr) = stop(child);
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI codes into a pipe: {stderr:?}"
    );

    let child = start(Some("warn"));
    wait_for_status(&ready, 200, Duration::from_secs(20)).await;
    let (_, stderr) = stop(child);
    assert!(
        !stderr.contains("INFO"),
        "RUST_LOG=warn replaces log.level: {stderr}"
    );
}

#[test]
fn postgres_notices_stay_out_of_info_logs() {
    let dir = tempfile::tempdir().unwrap();
    let url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(fresh_postgres_url());
    let migrate = || -> Output {
        kenar_hook(&dir)
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    assert_eq!(migrate().status.code(), Some(0));
    let again = migrate();
    assert_eq!(again.status.code(), Some(0));
    let stderr = text(&again.stderr);
    assert!(!stderr.contains("already exists"), "{stderr}");
    assert!(stderr.contains("migrations applied"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_prometheus_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let child = kenar_hook(&dir)
        .env("KENAR_HOOK__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "KENAR_HOOK__METRICS__LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS", KEY)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_for_status(&format!("{base}/readyz"), 200, Duration::from_secs(20)).await;
    assert_eq!(
        status_of(&format!("{base}/no/such/route")).await,
        Some(404),
        "no route"
    );
    let response = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    stop(child);
    for line in [
        "# TYPE http_requests_total counter",
        "# TYPE kenar_hook_build_info gauge",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
        "# TYPE process_cpu_seconds_total counter",
    ] {
        assert!(page.contains(line), "{line} in {page}");
    }
    assert!(page.contains("# HELP http_requests_total "), "{page}");
    assert!(
        page.contains(&format!(
            "kenar_hook_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{page}"
    );
    assert!(
        page.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains("route=\"unmatched\"")
            && l.contains("status=\"404\"")),
        "404s counted under one label: {page}"
    );
    let resident = page
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("resident memory");
    assert!(resident > 1e6, "{resident}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_ready_checks_the_database_too() {
    let app = spawn_app(Backend::Sqlite).await;
    let ready = Command::new(BIN)
        .args(["healthcheck", "--ready", "--config"])
        .arg({
            let path = app._dir.path().join("hc.toml");
            std::fs::write(&path, format!("[server]\nlisten = \"{}\"\n", app.addr)).unwrap();
            path
        })
        .env_remove("DATABASE_URL")
        .status()
        .unwrap();
    assert_eq!(ready.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = serving(&dir, port)
        .env(
            "DATABASE_URL",
            format!("postgres://kh:pw@127.0.0.1:{}/kh", free_port()),
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_status(
        &format!("http://127.0.0.1:{port}/healthz"),
        200,
        Duration::from_secs(10),
    )
    .await;
    let check = |ready: bool| {
        let mut command = kenar_hook(&dir);
        command.arg("healthcheck");
        if ready {
            command.arg("--ready");
        }
        command
            .env("KENAR_HOOK__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(check(false), Some(0), "alive");
    assert_eq!(check(true), Some(1), "not ready while the database is away");
    stop(child);
}

/// Posts a NEW_MESSAGE with id `id` to the service on `port`.
async fn post_message(port: u16, id: &str) {
    let body = crate::forward::message(id, "conv-tail", "AZx7Kp2Q", "TEXT", 1_741_508_247_515_000);
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/divar"))
        .header("authorization", KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Waits until `lines` holds messages `ids`, in this order; returns the message ids seen.
async fn tailed(lines: &std::sync::Mutex<Vec<String>>, ids: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen: Vec<String> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["event"] == "message")
            .map(|v| v["item"]["id"].as_str().unwrap().to_owned())
            .collect();
        if seen.len() >= ids.len() {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "tail printed {seen:?}, waiting for {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tail_follows_the_stream_and_resumes_after_a_restart_without_gaps() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tail.toml");
    std::fs::write(
        &config,
        "[api]\ntokens = [\"tail-api-token-5f0d2c8e9a7b3c1d4e6f\"]\n",
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let start = || {
        serving(&dir, port)
            .arg("--config")
            .arg(&config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let server = start();
    wait_for_status(&format!("{base}/readyz"), 200, Duration::from_secs(15)).await;
    post_message(port, "before-tail").await;

    // The token comes from the same settings file.
    let mut tail = kenar_hook(&dir)
        .arg("--config")
        .arg(&config)
        .args([
            "tail",
            "--url",
            &base,
            "--conversation-id",
            "conv-tail",
            "--from",
            "start",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (out, kept) = (tail.stdout.take().unwrap(), lines.clone());
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            kept.lock().unwrap().push(line.unwrap());
        }
    });
    post_message(port, "m1").await;
    assert_eq!(
        tailed(&lines, &["before-tail", "m1"]).await,
        ["before-tail", "m1"]
    );

    // The service restarts; messages arrive before and after tail connects again.
    let (code, stderr) = stop(server);
    assert_eq!(code, Some(0), "{stderr}");
    let server = start();
    wait_for_status(&format!("{base}/readyz"), 200, Duration::from_secs(15)).await;
    post_message(port, "m2").await;
    post_message(port, "m3").await;
    let seen = tailed(&lines, &["before-tail", "m1", "m2", "m3"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen,
        ["before-tail", "m1", "m2", "m3"],
        "no gap, nothing twice"
    );
    let printed = lines.lock().unwrap().clone();
    let first: serde_json::Value = serde_json::from_str(&printed[0]).unwrap();
    assert!(first["id"].as_str().unwrap().starts_with('m'), "{first}");
    assert_eq!(first["item"]["conversation_id"], "conv-tail");

    tail.kill().unwrap();
    tail.wait().unwrap();
    let mut err = String::new();
    tail.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("connecting again"), "{err}");
    assert!(
        !err.contains("tail-api-token"),
        "the token is never printed: {err}"
    );
    let (code, stderr) = stop(server);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn tail_without_a_token_exits_2_saying_how_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = kenar_hook(&dir)
        .env_remove("KENAR_HOOK_API_TOKEN")
        .args(["tail", "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no API token"),
        "{}",
        text(&out.stderr)
    );
}
