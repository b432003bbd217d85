//! Seeing and repairing: the read API's forwarding lists, the CLI's status, pause, resume
//! and replay, and the metrics.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::*;

const TOKEN: &str = "forward-manage-api-token";
const BIN: &str = env!("CARGO_BIN_EXE_kenar-hook");

/// Waits until the API shows `n` attempts (answers are written in small batches).
async fn wait_attempts(app: &TestApp, n: usize) {
    for _ in 0..100 {
        let (_, page) = app
            .get_as(TOKEN, "/api/v1/forwarding/attempts?limit=500")
            .await;
        if page["items"].as_array().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{n} attempts never showed");
}

async fn the_api_shows_endpoints_attempts_and_dead_letters(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script(&[(500, None), (500, None)]);
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        let mut e = endpoint("backend", &receiver.url);
        e.max_attempts = 2;
        forwarding(s, vec![e]);
    })
    .await;
    post_messages(&app, "m", 2, 1).await;
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    wait_attempts(&app, 3).await;

    let (status, page) = app.get_as(TOKEN, "/api/v1/forwarding/endpoints").await;
    assert_eq!(status, 200);
    let e = &page["items"][0];
    assert_eq!(e["name"], "backend");
    assert_eq!(e["state"], "active");
    assert_eq!(e["lag_records"], 0);
    assert_eq!(e["last_error"], "answered 500 Internal Server Error");
    assert!(e["last_success_at"].is_string());

    let (_, failed) = app
        .get_as(
            TOKEN,
            "/api/v1/forwarding/attempts?endpoint=backend&status=failed",
        )
        .await;
    let failed = failed["items"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attempt"], 1);
    assert_eq!(failed[0]["status_code"], 500);
    assert_eq!(failed[0]["response"], "ok");
    let first_request = &receiver.all()[0];
    assert_eq!(failed[0]["record"], first_request.header("webhook-id"));

    let (_, first) = app
        .get_as(TOKEN, "/api/v1/forwarding/attempts?limit=2")
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = app
        .get_as(
            TOKEN,
            &format!("/api/v1/forwarding/attempts?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let ids: Vec<i64> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let (_, dead) = app
        .get_as(TOKEN, "/api/v1/forwarding/dead?endpoint=backend")
        .await;
    let dead = dead["items"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["attempts"], 2);
    assert_eq!(dead[0]["body"]["kind"], "message");
    assert_eq!(dead[0]["body"]["id"], "m-0");
    assert_eq!(dead[0]["record"], first_request.header("webhook-id"));

    let (status, _) = app
        .get_as(TOKEN, "/api/v1/forwarding/attempts?status=lost")
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .get_as(TOKEN, "/api/v1/forwarding/dead?endpont=backend")
        .await;
    assert_eq!(status, 400);
}

/// Runs the binary against the app's database with its endpoint configured, on the blocking
/// pool: the app under test shares this runtime and must go on answering (and committing)
/// while the command waits for the database.
pub(super) async fn cli(app: &TestApp, receiver: &str, args: &[&str]) -> (i32, String, String) {
    let config = app._dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[log]\nlevel = \"warn\"\n[forward]\nallow_private_http = true\n\
             [[forward.endpoints]]\nname = \"backend\"\nurl = \"{receiver}\"\nsecret = \"{SECRET}\"\n",
            app.settings.database.url.expose_secret()
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(args)
        .current_dir(app._dir.path())
        .env_remove("DATABASE_URL");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn the_cli_pauses_resumes_shows_and_replays(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    post_messages(&app, "m", 1, 1).await;
    let got = receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let first_id = got[0].header("webhook-id").to_owned();

    let (code, out, err) = cli(&app, &receiver.url, &["forward", "pause", "backend"]).await;
    assert_eq!(code, 0, "{out}{err}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    post_messages(&app, "later", 1, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.all().len(), 1, "nothing is sent while paused");
    let (code, out, _) = cli(&app, &receiver.url, &["forward", "status", "--json"]).await;
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0]["state"], "paused");
    assert_eq!(status[0]["lag_records"], 1);

    let (code, _, _) = cli(&app, &receiver.url, &["forward", "resume", "backend"]).await;
    assert_eq!(code, 0);
    receiver.wait_delivered(2, Duration::from_secs(10)).await;

    let (code, out, err) = cli(
        &app,
        &receiver.url,
        &[
            "forward",
            "replay",
            "--endpoint",
            "backend",
            "--id",
            &first_id,
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["replayed"], 1);
    let got = receiver.wait_delivered(3, Duration::from_secs(10)).await;
    assert_eq!(got[2].header("webhook-id"), first_id);
    verify(SECRET, &got[2]).unwrap();

    let (code, _, err) = cli(
        &app,
        &receiver.url,
        &["forward", "replay", "--endpoint", "nope", "--dead"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no endpoint named \"nope\""), "{err}");
    let (code, _, _) = cli(
        &app,
        &receiver.url,
        &["forward", "replay", "--endpoint", "backend"],
    )
    .await;
    assert_eq!(code, 2, "one of --dead, --since, --id is required");
}

async fn replay_since_sends_what_arrived_from_then(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    post_messages(&app, "old", 2, 1).await;
    receiver.wait_delivered(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = chrono::Utc::now();
    post_messages(&app, "new", 2, 1).await;
    receiver.wait_delivered(4, Duration::from_secs(10)).await;
    // A record still pending is not added twice: wait until the last answers are written.
    wait_attempts_stored(&app, 4).await;
    let endpoint = &app.settings.forward.endpoints[0];
    let n = kenar_hook::forward::manage::replay_since(&app.store, endpoint, since)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let got = receiver.wait_delivered(6, Duration::from_secs(10)).await;
    let again: Vec<&str> = got[4..].iter().map(|g| g.header("webhook-id")).collect();
    let originals: Vec<&str> = got[2..4].iter().map(|g| g.header("webhook-id")).collect();
    assert_eq!(again, originals);
}

on_both_backends!(
    the_api_shows_endpoints_attempts_and_dead_letters,
    the_cli_pauses_resumes_shows_and_replays,
    replay_since_sends_what_arrived_from_then,
);

#[tokio::test]
async fn metrics_count_per_endpoint() {
    let receiver = Receiver::start().await;
    receiver.script(&[(500, None), (500, None)]);
    let name = format!(
        "metrics-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let app = spawn_app_with(Backend::Sqlite, |s| {
        let mut e = endpoint(&name, &receiver.url);
        e.max_attempts = 2;
        forwarding(s, vec![e]);
    })
    .await;
    post_messages(&app, "m", 3, 1).await;
    receiver.wait_delivered(2, Duration::from_secs(10)).await;
    // The endpoint's name is this test's own, so its series are exact; they settle once the
    // third record has died and the gauges have been set again.
    let expected = [
        ("forward_delivered_total", "", 2.0),
        ("forward_attempts_total", "outcome=\"failed\"", 1.0),
        ("forward_attempts_total", "outcome=\"dead\"", 1.0),
        ("forward_dead_letters_total", "", 1.0),
        ("forward_in_flight", "", 0.0),
        ("forward_lag_seconds", "", 0.0),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = kenar_hook::telemetry::metrics_handle().render();
        let value = |metric: &str, extra: &str| -> Option<f64> {
            text.lines()
                .find(|l| {
                    l.starts_with(metric)
                        && l.contains(&format!("endpoint=\"{name}\""))
                        && l.contains(extra)
                })
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
        };
        let got: Vec<Option<f64>> = expected.iter().map(|(m, e, _)| value(m, e)).collect();
        if got
            .iter()
            .zip(&expected)
            .all(|(g, (_, _, want))| *g == Some(*want))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "for {name}, {expected:?} never held; last {got:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
