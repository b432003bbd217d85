//! Every command that writes waits its turn on a SQLite file the service is busy writing:
//! while the service ingests under load and forwards to a local receiver, each writing
//! command runs 50 times, exits 0 every time and does what it says: forward pause, resume and
//! replay, rejected reprocess, oauth rekey, subscribe legacy and registrations remove.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::ExposeSecret;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::cli::{Cli, Output, TOKEN, json_fixture};
use crate::forward::{Receiver, SECRET, endpoint, forwarding, message};
use crate::helpers::*;
use crate::oauth::{CLIENT_ID, CLIENT_SECRET, mock_divar, oauth_on, sign_in, vault_key};

const RUNS: usize = 50;
const SUBSCRIBERS: usize = 10;
const LOADERS: usize = 8;
const REGISTER_PATH: &str = "/v1/open-platform/notify/chat/post-conversations";

/// The CLI over the app's database, forwarding endpoint and vault keys (in `order`).
fn cli_for(app: &TestApp, mock: &str, receiver: &str, keys: [&str; 2]) -> Cli {
    let cli = Cli::new(mock);
    let config = cli.file(
        "busy.toml",
        &format!(
            "[forward]\nallow_private_http = true\n[[forward.endpoints]]\nname = \"backend\"\n\
             url = \"{receiver}\"\nsecret = \"{SECRET}\"\n"
        ),
    );
    cli.env("KENAR_HOOK_CONFIG", &config)
        .env(
            "KENAR_HOOK__DATABASE__URL",
            app.settings.database.url.expose_secret(),
        )
        .env("KENAR_HOOK__LOG__LEVEL", "warn")
        .env("KENAR_HOOK__OAUTH__VAULT_KEYS", &keys.join(","))
        .env("KENAR_HOOK__OAUTH__CLIENT_ID", CLIENT_ID)
        .env("KENAR_HOOK__OAUTH__CLIENT_SECRET", CLIENT_SECRET)
        .env(
            "KENAR_HOOK__OAUTH__REDIRECT_URL",
            "http://127.0.0.1:9/oauth/divar/callback",
        )
}

fn ok(out: &Output, what: &str) -> Value {
    assert_eq!(out.code, 0, "{what}: {out:#?}");
    out.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_commands_wait_their_turn_while_the_service_ingests_and_forwards() {
    let mock = mock_divar(3600).await;
    Mock::given(method("POST"))
        .and(path(REGISTER_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json_fixture("legacy_notify_register_response.json")),
        )
        .mount(&mock)
        .await;
    let receiver = Receiver::start().await;
    let app = Arc::new(
        spawn_app_with(Backend::Sqlite, |s| {
            oauth_on(s, &mock);
            forwarding(s, vec![endpoint("backend", &receiver.url)]);
        })
        .await,
    );
    sign_in(&app).await;
    let (k1, k2) = (vault_key(1), vault_key(2));

    // The load: deliveries as fast as LOADERS connections take them, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut loaders = Vec::new();
    for l in 0..LOADERS {
        let (app, stop) = (app.clone(), stop.clone());
        let (sent, refused) = (sent.clone(), refused.clone());
        loaders.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = message(
                    &format!("load-{l}-{i}"),
                    &format!("c{}", i % 50),
                    "POSTA",
                    "TEXT",
                    1_741_508_247_515_000 + i as i64,
                );
                let status = app.post_webhook(body).await.status();
                if status == 200 {
                    sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    // A record still waiting for delivery is not added twice: each run replays one of
    // the first deliveries, long answered by the time the receiver has seen 10 times as many.
    let delivered = receiver
        .wait_delivered(10 * RUNS, Duration::from_secs(60))
        .await;
    let replayable: Vec<String> = delivered[..RUNS]
        .iter()
        .map(|g| g.header("webhook-id").to_owned())
        .collect();

    let cli = |keys| cli_for(&app, &mock.uri(), &receiver.url, keys);
    let plain = cli([k1.as_str(), k2.as_str()]);
    // Each command's runs follow one another; the commands run at the same time.
    let pause_resume = async {
        for run in 0..RUNS {
            plain
                .run(&["forward", "pause", "backend"])
                .await
                .assert_code(0);
            let state = app.store.forward_state("backend").await.unwrap().unwrap();
            assert!(state.paused, "run {run}: paused");
            plain
                .run(&["forward", "resume", "backend"])
                .await
                .assert_code(0);
            let state = app.store.forward_state("backend").await.unwrap().unwrap();
            assert!(!state.paused, "run {run}: resumed");
        }
    };
    let replay = async {
        for (run, id) in replayable.iter().enumerate() {
            let out = plain
                .run(&[
                    "forward",
                    "replay",
                    "--endpoint",
                    "backend",
                    "--id",
                    id,
                    "--json",
                ])
                .await;
            assert_eq!(ok(&out, "replay")["replayed"], 1, "run {run}");
        }
    };
    let reprocess = async {
        for run in 0..RUNS {
            let kept = message(
                &format!("kept-{run}"),
                "c-kept",
                "POSTA",
                "TEXT",
                1_741_508_247_515_000,
            );
            app.store
                .insert_rejected(kept.as_bytes(), "an old reason", chrono::Utc::now())
                .await
                .unwrap();
            let out = plain.run(&["rejected", "reprocess", "--json"]).await;
            assert_eq!(ok(&out, "reprocess")["stored"], 1, "run {run}");
            assert!(
                app.store
                    .message(&format!("kept-{run}"))
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    };
    let rekey = async {
        for run in 0..RUNS {
            // Each run seals the vault under the other key first.
            let keys = if run % 2 == 0 {
                [k2.as_str(), k1.as_str()]
            } else {
                [k1.as_str(), k2.as_str()]
            };
            let out = cli(keys).run(&["oauth", "rekey", "--json"]).await;
            assert_eq!(ok(&out, "rekey")["resealed"], 1, "run {run}");
        }
    };
    // Each registration made is removed again. A registration waits for running services
    // to learn its key (seconds), so these run SUBSCRIBERS at a time.
    let subscribe = futures_util::stream::iter(0..RUNS)
        .map(|run| {
            let cli = &plain;
            async move {
                let token = cli.file(&format!("token-{run}"), TOKEN);
                let out = cli
                    .run(&[
                        "subscribe",
                        "legacy",
                        "--post-token",
                        &format!("POST{run}"),
                        "--endpoint",
                        "https://hooks.example-app.ir/kenar/legacy/chat-message",
                        "--access-token-file",
                        &token,
                        "--json",
                    ])
                    .await;
                let id = ok(&out, "subscribe legacy")["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let out = cli.run(&["registrations", "remove", &id, "--json"]).await;
                ok(&out, "registrations remove");
            }
        })
        .buffer_unordered(SUBSCRIBERS)
        .collect::<Vec<()>>();
    tokio::join!(pause_resume, replay, reprocess, rekey, subscribe);

    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.await.unwrap();
    }
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "deliveries refused while commands ran (of {} stored)",
        sent.load(Ordering::Relaxed)
    );
    let registrations = app.store.registrations().await.unwrap();
    assert!(registrations.is_empty(), "each removed: {registrations:?}");
    assert!(app.store.list_rejected(None, 10).await.unwrap().is_empty());
    let stored = app.counts().await.1 as usize;
    assert_eq!(
        stored,
        sent.load(Ordering::Relaxed) + RUNS,
        "every delivery answered 200 is stored, and every reprocessed one"
    );
}
