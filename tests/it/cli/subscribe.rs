//! `kenar-hook subscribe legacy | events` and `kenar-hook registrations`: the per-registration
//! key reaches Divar, only its digest is stored, and the webhook accepts it for its post only.

use kenar_hook::auth::digest;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use wiremock::matchers::{any, body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::helpers::{Backend, spawn_app};

const REGISTER_PATH: &str = "/v1/open-platform/notify/chat/post-conversations";
const ENDPOINT: &str = "https://hooks.example-app.ir/kenar/legacy/chat-message";

/// A mock Divar answering the legacy registration with `status`.
async fn divar_registering(status: u16) -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REGISTER_PATH))
        .and(header("x-api-key", API_KEY))
        .and(header("x-access-token", TOKEN))
        .respond_with(
            ResponseTemplate::new(status)
                .set_body_json(json_fixture("legacy_notify_register_response.json")),
        )
        .mount(&mock)
        .await;
    mock
}

/// The body of the one registration Divar received.
async fn received_registration(mock: &MockServer) -> Value {
    let received = mock.received_requests().await.unwrap();
    let requests: Vec<_> = received
        .iter()
        .filter(|r| r.url.path() == REGISTER_PATH)
        .collect();
    assert_eq!(requests.len(), 1, "one registration call");
    serde_json::from_slice(&requests[0].body).unwrap()
}

async fn subscribe_legacy(cli: &Cli, extra: &[&str]) -> Output {
    let token = cli.token_file(TOKEN);
    let mut args = vec![
        "subscribe",
        "legacy",
        "--post-token",
        POST,
        "--endpoint",
        ENDPOINT,
        "--access-token-file",
        &token,
    ];
    args.extend_from_slice(extra);
    cli.run(&args).await
}

#[tokio::test]
async fn legacy_subscription_stores_only_the_digest_of_the_key_divar_received() {
    let mock = divar_registering(200).await;
    let cli = Cli::new(&mock.uri());
    let out = subscribe_legacy(&cli, &["--json"]).await;
    out.assert_code(0);
    let sent = received_registration(&mock).await;
    assert_eq!(
        (sent["post_token"].as_str(), sent["endpoint"].as_str()),
        (Some(POST), Some(ENDPOINT))
    );
    let key = sent["identification_key"].as_str().unwrap();
    assert_eq!(key.len(), 43, "32 random bytes, base64url: {key}");
    let digest = hex::encode(digest(key.as_bytes()));
    out.assert_no_secrets(&[key, &digest]);
    let printed = out.json();
    assert_eq!(
        (printed["post_token"].as_str(), printed["endpoint"].as_str()),
        (Some(POST), Some(ENDPOINT))
    );

    let rows = cli.store().await.registrations().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, printed["id"].as_str().unwrap());
    assert_eq!(
        (rows[0].post_token.as_str(), rows[0].endpoint.as_str()),
        (POST, ENDPOINT)
    );
    assert_eq!(rows[0].key_digest, digest);
}

#[tokio::test]
async fn a_refused_legacy_subscription_is_deleted_again() {
    let mock = divar_registering(403).await;
    let cli = Cli::new(&mock.uri());
    let out = subscribe_legacy(&cli, &[]).await;
    out.assert_code(3).assert_no_secrets(&[]);
    let key = received_registration(&mock).await["identification_key"].clone();
    out.assert_no_secrets(&[key.as_str().unwrap()]);
    assert!(cli.store().await.registrations().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_legacy_subscription_left_unanswered_keeps_its_registration_and_exits_4() {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .expect(3)
        .mount(&mock)
        .await;
    let cli = Cli::new(&mock.uri());
    subscribe_legacy(&cli, &[])
        .await
        .assert_code(4)
        .assert_no_secrets(&[]);
    assert_eq!(cli.store().await.registrations().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_legacy_subscription_of_unknown_outcome_is_sent_once_keeps_its_registration_and_exits_5()
{
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&mock)
        .await;
    let cli = Cli::new(&mock.uri());
    let out = subscribe_legacy(&cli, &[]).await;
    out.assert_code(5).assert_no_secrets(&[]);
    assert!(out.stderr.contains("is kept"), "{out:?}");
    assert_eq!(cli.store().await.registrations().await.unwrap().len(), 1);
}

#[tokio::test]
async fn legacy_subscription_dry_run_masks_the_key_and_stores_nothing() {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&mock)
        .await;
    let cli = Cli::new(&mock.uri());
    let out = subscribe_legacy(&cli, &["--dry-run"]).await;
    out.assert_code(0).assert_no_secrets(&[]);
    let (headers, body) = listing(&out.stdout, &format!("POST {}{REGISTER_PATH}", mock.uri()));
    assert!(
        headers.iter().any(|h| h == "x-access-token: ***"),
        "{headers:?}"
    );
    assert_eq!(
        body,
        json!({"post_token": POST, "endpoint": ENDPOINT, "identification_key": "***"})
    );
    assert!(!cli.database_path().exists(), "a dry run opens no database");
}

#[tokio::test]
async fn registrations_lists_a_subscription_without_its_key() {
    let mock = divar_registering(200).await;
    let cli = Cli::new(&mock.uri());
    subscribe_legacy(&cli, &[]).await.assert_code(0);
    let key = received_registration(&mock).await["identification_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = hex::encode(digest(key.as_bytes()));

    let table = cli.run(&["registrations"]).await;
    table.assert_code(0).assert_no_secrets(&[&key, &digest]);
    assert!(
        table.stdout.contains(POST) && table.stdout.contains(ENDPOINT),
        "{table:?}"
    );
    let listed = cli.run(&["registrations", "--json"]).await;
    listed.assert_code(0).assert_no_secrets(&[&key, &digest]);
    let items = listed.json();
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["post_token"], POST);
    assert_eq!(items[0]["endpoint"], ENDPOINT);
}

#[tokio::test]
async fn events_subscription_sends_type_resource_and_metadata() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/open-platform/events/subscriptions"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("x-api-key", API_KEY))
        .and(body_json(json_fixture(
            "events_subscription_request_post.json",
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&mock)
        .await;
    let out = Cli::new(&mock.uri())
        .env("KENAR_HOOK_ACCESS_TOKEN", TOKEN)
        .run(&[
            "subscribe",
            "events",
            "--event-type",
            "NEW_MESSAGE_ON_POST",
            "--resource-id",
            POST,
            "--metadata",
            "tenant=garage-42",
            "--metadata",
            "subscription=post-AZx7Kp2Q",
            "--json",
        ])
        .await;
    out.assert_code(0).assert_no_secrets(&[]);
    assert_eq!(out.json()["subscribed"], true);
}

#[tokio::test]
async fn events_dry_run_takes_several_metadata_pairs_after_one_flag() {
    let mock = MockServer::start().await;
    let out = Cli::new(&mock.uri())
        .env("KENAR_HOOK_ACCESS_TOKEN", TOKEN)
        .run(&[
            "subscribe",
            "events",
            "--event-type",
            "POST_UPDATE",
            "--metadata",
            "a=1",
            "b=x=y",
            "--dry-run",
            "--json",
        ])
        .await;
    out.assert_code(0).assert_no_secrets(&[]);
    let request = &out.json()["request"];
    assert_eq!(
        request["url"],
        format!("{}/v1/open-platform/events/subscriptions", mock.uri())
    );
    assert_eq!(request["headers"]["authorization"], "Bearer ***");
    assert_eq!(
        request["body"],
        json!({"event_type": "POST_UPDATE", "metadata": {"a": "1", "b": "x=y"}})
    );
    assert!(mock.received_requests().await.unwrap().is_empty());
}

on_both_backends!(a_subscribed_key_is_accepted_for_its_post_and_refused_for_another);

async fn a_subscribed_key_is_accepted_for_its_post_and_refused_for_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let mock = divar_registering(200).await;
    let cli = Cli::new(&mock.uri()).env(
        "KENAR_HOOK__DATABASE__URL",
        app.settings.database.url.expose_secret(),
    );
    subscribe_legacy(&cli, &[]).await.assert_code(0);
    let key = received_registration(&mock).await["identification_key"]
        .as_str()
        .unwrap()
        .to_owned();

    let own = fixture_for_post(POST);
    let response = app.post_webhook_with_key(Some(&key), own).await;
    assert_eq!(response.status(), 200);
    let other = fixture_for_post("QQother9");
    let response = app.post_webhook_with_key(Some(&key), other).await;
    assert_eq!(response.status(), 401);
}

/// The legacy text message fixture, moved to `post_token`.
fn fixture_for_post(post_token: &str) -> Vec<u8> {
    let mut message = json_fixture("legacy_chat_message_text.json");
    message["payload"]["metadata"]["post_token"] = json!(post_token);
    serde_json::to_vec(&message).unwrap()
}

#[tokio::test]
async fn an_unreachable_divar_gets_no_registration_and_says_why() {
    let port = crate::helpers::free_port();
    let cli = Cli::new(&format!("http://127.0.0.1:{port}"));
    let out = subscribe_legacy(&cli, &[]).await;
    out.assert_code(4).assert_no_secrets(&[]);
    assert!(out.stderr.contains("waiting 2.5 s"), "{out:#?}");
    assert!(
        out.stderr.contains("the registration was not made"),
        "{out:#?}"
    );
    assert!(!out.stderr.contains("unknown"), "{out:#?}");
    assert!(cli.store().await.registrations().await.unwrap().is_empty());
}

#[tokio::test]
async fn removing_an_unknown_registration_is_a_usage_error() {
    let cli = Cli::new("http://127.0.0.1:9");
    let out = cli.run(&["registrations", "remove", "no-such-id"]).await;
    out.assert_code(2);
    assert!(out.stderr.contains("no registration with id"), "{out:#?}");
}

on_both_backends!(a_removed_registrations_key_is_refused_by_a_running_service);

async fn a_removed_registrations_key_is_refused_by_a_running_service(backend: Backend) {
    let app = spawn_app(backend).await;
    let mock = divar_registering(200).await;
    let cli = Cli::new(&mock.uri()).env(
        "KENAR_HOOK__DATABASE__URL",
        app.settings.database.url.expose_secret(),
    );
    let out = subscribe_legacy(&cli, &["--json"]).await;
    out.assert_code(0);
    let id = out.json()["id"].as_str().unwrap().to_owned();
    let key = received_registration(&mock).await["identification_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Accepted once the service has read the new registration (every 2 s; on a busy
    // machine its tick can come after the command's own wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = app
            .post_webhook_with_key(Some(&key), fixture_for_post(POST))
            .await;
        if response.status() == 200 {
            break;
        }
        // Refused meanwhile (429 once refusals from this address add up).
        assert!(matches!(response.status().as_u16(), 401 | 429));
        assert!(std::time::Instant::now() < deadline, "never accepted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let removed = cli.run(&["registrations", "remove", &id, "--json"]).await;
    removed.assert_code(0).assert_no_secrets(&[&key]);
    assert_eq!(removed.json()["removed"], json!(true));
    assert!(cli.run(&["registrations", "--json"]).await.json() == json!([]));

    // Refused once the service has read the registrations again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = app
            .post_webhook_with_key(Some(&key), fixture_for_post(POST))
            .await;
        if matches!(response.status().as_u16(), 401 | 429) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still accepted: {}",
            response.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
