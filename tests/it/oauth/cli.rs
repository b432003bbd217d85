//! `kenar-hook oauth …` and `--user-id` with the vault on: the binary against the app's
//! database and the mock. No output ever holds a token.

use secrecy::ExposeSecret;

use super::*;
use crate::cli::{Cli, Output};

/// The binary with the app's database and sign-in settings.
pub fn cli(app: &TestApp, mock: &MockServer) -> Cli {
    Cli::new(&mock.uri())
        .env("KENAR_HOOK__DIVAR__API_KEY", API_KEY)
        .env(
            "KENAR_HOOK__DATABASE__URL",
            app.settings.database.url.expose_secret(),
        )
        .env("KENAR_HOOK__OAUTH__VAULT_KEYS", &vault_key(1))
        .env("KENAR_HOOK__OAUTH__CLIENT_ID", CLIENT_ID)
        .env("KENAR_HOOK__OAUTH__CLIENT_SECRET", CLIENT_SECRET)
        .env(
            "KENAR_HOOK__OAUTH__REDIRECT_URL",
            "http://127.0.0.1:9/oauth/divar/callback",
        )
        .env("KENAR_HOOK__OAUTH__BASE_URL", &mock.uri())
}

fn assert_no_tokens(out: &Output) {
    for secret in [at(1), rt(1), at(2), rt(2), CLIENT_SECRET.to_owned()] {
        assert!(!out.stdout.contains(&secret), "{out:#?}");
        assert!(!out.stderr.contains(&secret), "{out:#?}");
    }
}

async fn a_printed_url_signs_a_user_in_without_a_browser_cookie(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    let out = cli(&app, &mock)
        .run(&[
            "oauth",
            "url",
            "--scope",
            "CHAT_BOT_USER_MESSAGE_SEND",
            "--json",
        ])
        .await;
    out.assert_code(0);
    let url = url::Url::parse(out.json()["url"].as_str().unwrap()).unwrap();
    let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs["scope"],
        "CHAT_BOT_USER_MESSAGE_SEND USER_ID offline_access"
    );
    let response = callback(
        &app,
        &format!("code={GOOD_CODE}&state={}", pairs["state"]),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains(USER));
    assert!(row(&app).await.is_some());
}

async fn a_reply_is_sent_with_the_vault_token_of_a_user(backend: Backend) {
    let mock = mock_divar(3600).await;
    Mock::given(method("POST"))
        .and(path("/v2/open-platform/conversations/conv-1/messages"))
        .and(header(
            "authorization",
            format!("Bearer {}", at(1)).as_str(),
        ))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "200"})))
        .expect(1)
        .mount(&mock)
        .await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let cli = cli(&app, &mock);
    let args = [
        "send",
        "conversation",
        "--conversation-id",
        "conv-1",
        "--text",
        "سلام",
    ];
    let dry = cli
        .run(&[&args[..], &["--user-id", USER, "--dry-run"]].concat())
        .await;
    dry.assert_code(0);
    assert!(dry.stdout.contains("authorization: Bearer ***"), "{dry:#?}");
    assert_no_tokens(&dry);
    let sent = cli.run(&[&args[..], &["--user-id", USER]].concat()).await;
    sent.assert_code(0);
    assert_no_tokens(&sent);
    // The chatbot writing to the user, and the legacy send as the user, take the same token.
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1/open-platform/chat/bot/users/{USER}/messages"
        )))
        .and(header(
            "authorization",
            format!("Bearer {}", at(1)).as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/open-platform/chat/conversation"))
        .and(header("x-access-token", at(1).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "200"})))
        .expect(1)
        .mount(&mock)
        .await;
    let bot = cli
        .run(&["send", "bot", "--user-id", USER, "--text", "سلام"])
        .await;
    bot.assert_code(0);
    let legacy = cli
        .run(&[
            "send",
            "legacy",
            "--user-id",
            USER,
            "--post-token",
            "AZx7Kp2Q",
            "--peer-id",
            "peer-1",
            "--text",
            "سلام",
        ])
        .await;
    legacy.assert_code(0);
    assert_no_tokens(&legacy);
    let unknown = cli
        .run(&[&args[..], &["--user-id", "nobody"]].concat())
        .await;
    unknown.assert_code(2);
    assert!(
        unknown.stderr.contains("holds no token of user nobody"),
        "{unknown:#?}"
    );
}

async fn a_token_due_for_refresh_is_refreshed_before_a_call(backend: Backend) {
    // The refresher of the app is slow here; the command refreshes the due token itself.
    let mock = mock_divar(1).await;
    mount_refresh(&mock, 1, 3600).await;
    let app = spawn_app_with(backend, |s| {
        oauth_on(s, &mock);
        s.oauth.refresh_check_ms = 3_600_000;
    })
    .await;
    sign_in(&app).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let out = cli(&app, &mock)
        .run(&[
            "subscribe",
            "events",
            "--event-type",
            "POST_UPDATE",
            "--user-id",
            USER,
            "--json",
        ])
        .await;
    out.assert_code(0);
    assert_no_tokens(&out);
    assert_eq!(out.json()["recorded_for_user"], USER);
    let made = requests(&mock, SUBSCRIPTIONS_PATH, "POST_UPDATE").await;
    assert_eq!(made.len(), 1);
    assert_eq!(
        made[0].headers["authorization"],
        format!("Bearer {}", at(2)).as_str(),
        "the refreshed token, not the expired one"
    );
    let subs = app.store.subscriptions().await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].made_generation, row(&app).await.unwrap().generation);
}

async fn tokens_lists_users_and_health_and_revoke_deletes_them(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let cli = cli(&app, &mock);
    let text = cli.run(&["oauth", "tokens"]).await;
    text.assert_code(0);
    assert!(
        text.stdout.contains(USER) && text.stdout.contains(" ok "),
        "{text:#?}"
    );
    assert_no_tokens(&text);
    let json = cli.run(&["oauth", "tokens", "--json"]).await;
    let listed = json.json();
    assert_eq!(listed[0]["user_id"], USER);
    assert_eq!(listed[0]["health"], "ok");
    assert_eq!(listed[0]["scope"], SCOPE);
    assert_eq!(listed[0]["has_refresh_token"], true);
    assert_no_tokens(&json);

    let revoked = cli.run(&["oauth", "revoke", "--user-id", USER]).await;
    revoked.assert_code(0);
    assert!(row(&app).await.is_none());
    let again = cli.run(&["oauth", "revoke", "--user-id", USER]).await;
    again.assert_code(2);
    assert_eq!(
        cli.run(&["oauth", "tokens", "--json"]).await.json(),
        json!([])
    );
}

async fn a_subscription_that_cannot_be_made_again_is_shown_failing(backend: Backend) {
    let mock = mock_divar(2).await;
    mount_refresh(&mock, 1, 3600).await;
    Mock::given(method("POST"))
        .and(path(SUBSCRIPTIONS_PATH))
        .and(header(
            "authorization",
            format!("Bearer {}", at(2)).as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"code": 7, "message": "the token lacks the scope"})),
        )
        .with_priority(1)
        .mount(&mock)
        .await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let cli = cli(&app, &mock);
    let out = cli
        .run(&[
            "subscribe",
            "events",
            "--event-type",
            "NEW_MESSAGE_ON_POST",
            "--resource-id",
            "AZx7Kp2Q",
            "--user-id",
            USER,
        ])
        .await;
    out.assert_code(0);
    let started = Instant::now();
    loop {
        let subs = app.store.subscriptions().await.unwrap();
        if subs[0].failures >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not retried: {subs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = cli.run(&["oauth", "tokens", "--json"]).await;
    let subscription = &listed.json()[0]["subscriptions"][0];
    assert_eq!(subscription["event_type"], "NEW_MESSAGE_ON_POST");
    assert!(subscription["failures"].as_i64().unwrap() >= 2);
    assert!(
        subscription["last_error"].as_str().unwrap().contains("403"),
        "{subscription}"
    );
    let text = cli.run(&["oauth", "tokens"]).await;
    assert!(text.stdout.contains("(1 failing)"), "{text:#?}");
    assert!(
        text.stdout
            .contains("subscription NEW_MESSAGE_ON_POST AZx7Kp2Q failing"),
        "{text:#?}"
    );
    assert_no_tokens(&text);
}

on_both_backends!(
    a_printed_url_signs_a_user_in_without_a_browser_cookie,
    a_reply_is_sent_with_the_vault_token_of_a_user,
    a_token_due_for_refresh_is_refreshed_before_a_call,
    tokens_lists_users_and_health_and_revoke_deletes_them,
    a_subscription_that_cannot_be_made_again_is_shown_failing,
);
