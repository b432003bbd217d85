//! Processes: a kill -9 in the middle of deliveries loses nothing; two instances on one
//! PostgreSQL forward each record once, and the second takes over when the first stops.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use super::*;

const BIN: &str = env!("CARGO_BIN_EXE_kenar-hook");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary serving `database_url` on `port`, forwarding to `receiver`.
fn start_binary(dir: &std::path::Path, port: u16, database_url: &str, receiver: &str) -> Child {
    let config = dir.join(format!("forward-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"
[database]
url = "{database_url}"
[divar]
identification_keys = ["{KEY}"]
[metrics]
enabled = false
[log]
level = "warn"
[forward]
allow_private_http = true
retry_base_delay_ms = 50
retry_max_delay_ms = 400
[[forward.endpoints]]
name = "backend"
url = "{receiver}"
secret = "{SECRET}"
max_in_flight = 4
"#,
            data = dir.display()
        ),
    )
    .unwrap();
    Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Each conversation's message ids in the order they were first delivered.
fn first_deliveries(got: &[Got]) -> BTreeMap<String, Vec<String>> {
    let mut seen = BTreeSet::new();
    let firsts: Vec<Got> = got
        .iter()
        .filter(|g| seen.insert(g.header("webhook-id").to_owned()))
        .cloned()
        .collect();
    ids_by_conversation(&firsts)
}

async fn a_kill_9_in_the_middle_of_deliveries_loses_nothing(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.slow(Duration::from_millis(40));
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(backend, &dir).await;
    let url = settings.database.url.expose_secret().to_owned();
    let port = free_port();
    let mut child = start_binary(dir.path(), port, &url, &receiver.url);
    wait_until_ready(port).await;
    let client = reqwest::Client::new();
    for i in 0..150 {
        let body = message(
            &format!("m-{i}"),
            &format!("c{}", i % 6),
            "POSTA",
            "TEXT",
            1_741_508_247_515_000 + i,
        );
        let r = client
            .post(format!("http://127.0.0.1:{port}/webhooks/divar"))
            .header("authorization", KEY)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    receiver.wait_delivered(20, Duration::from_secs(20)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = receiver.delivered().len();
    assert!(before < 150, "killed in the middle ({before} delivered)");

    let port = free_port();
    let mut child = start_binary(dir.path(), port, &url, &receiver.url);
    wait_until_ready(port).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let ids = loop {
        let ids: BTreeSet<String> = receiver
            .delivered()
            .iter()
            .map(|g| g.json()["id"].as_str().unwrap().to_owned())
            .collect();
        if ids.len() == 150 || Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ids.len(), 150, "every record delivered after the restart");
    for (conversation, ids) in first_deliveries(&receiver.delivered()) {
        let c: i64 = conversation[1..].parse().unwrap();
        let expected: Vec<String> = (0..150)
            .filter(|i| i % 6 == c)
            .map(|i| format!("m-{i}"))
            .collect();
        assert_eq!(ids, expected, "order of {conversation}");
    }
}

on_both_backends!(a_kill_9_in_the_middle_of_deliveries_loses_nothing);

#[tokio::test]
async fn two_instances_on_one_postgres_forward_each_record_once_and_take_over() {
    let receiver = Receiver::start().await;
    let first = spawn_app_with(Backend::Postgres, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    // The first instance holds the endpoint before the second starts.
    post_messages(&first, "warm", 1, 1).await;
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = kenar_hook::app::start(first.settings.clone(), listener)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for i in 0..100 {
        let addr = if i % 2 == 0 { first.addr } else { second.addr };
        let r = client
            .post(format!("http://{addr}/webhooks/divar"))
            .header("authorization", KEY)
            .body(message(
                &format!("m-{i}"),
                &format!("c{}", i % 7),
                "POSTA",
                "TEXT",
                i,
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    receiver.wait_delivered(101, Duration::from_secs(20)).await;
    // Once forwarding has caught up, a record sent by both instances would have been.
    wait_caught_up(&first).await;
    let ids: Vec<String> = receiver
        .delivered()
        .iter()
        .map(|g| g.header("webhook-id").to_owned())
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 101, "each record forwarded by one instance only");
    assert_eq!(unique.len(), 101);

    let mut first = first;
    first.app.take().unwrap().stop().await.unwrap();
    let stopped = Instant::now();
    for i in 0..10 {
        let r = client
            .post(format!("http://{}/webhooks/divar", second.addr))
            .header("authorization", KEY)
            .body(message(
                &format!("after-{i}"),
                "c-after",
                "POSTA",
                "TEXT",
                i,
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    receiver.wait_delivered(111, Duration::from_secs(10)).await;
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "taken over within seconds"
    );
    second.stop().await.unwrap();
}

#[tokio::test]
async fn when_the_forwarding_instance_is_killed_another_takes_over_within_seconds() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(Backend::Postgres, &dir).await;
    let url = settings.database.url.expose_secret().to_owned();
    let client = reqwest::Client::new();
    let post = |port: u16, id: String| {
        let client = client.clone();
        async move {
            let r = client
                .post(format!("http://127.0.0.1:{port}/webhooks/divar"))
                .header("authorization", KEY)
                .body(message(&id, "c-takeover", "POSTA", "TEXT", 1))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let (first_port, second_port) = (free_port(), free_port());
    let mut first = start_binary(dir.path(), first_port, &url, &receiver.url);
    wait_until_ready(first_port).await;
    // The first instance holds the endpoint before the second starts.
    post(first_port, "before".into()).await;
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let mut second = start_binary(dir.path(), second_port, &url, &receiver.url);
    wait_until_ready(second_port).await;

    first.kill().unwrap(); // SIGKILL: no goodbye, the lock goes with the connection
    first.wait().unwrap();
    let killed = Instant::now();
    for i in 0..5 {
        post(second_port, format!("after-{i}")).await;
    }
    receiver.wait_delivered(6, Duration::from_secs(15)).await;
    let took = killed.elapsed();
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(took < Duration::from_secs(5), "taken over in {took:?}");
    let ids: Vec<String> = receiver
        .delivered()
        .iter()
        .map(|g| g.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            "before", "after-0", "after-1", "after-2", "after-3", "after-4"
        ]
    );
}
