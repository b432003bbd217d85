//! What is at rest, key rotation, and revocation.

use secrecy::ExposeSecret;
use sqlx::{Connection, Row};

use super::*;
use crate::cli::Cli;
use crate::helpers::fixture;

/// Every plaintext token the mock handed out in a sign-in and one refresh, with the client
/// secret.
fn secrets() -> Vec<String> {
    vec![at(1), rt(1), at(2), rt(2), CLIENT_SECRET.to_owned()]
}

async fn the_database_holds_no_token_in_clear_text(backend: Backend) {
    let mock = mock_divar(2).await;
    mount_refresh(&mock, 1, 3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    start(&app, "").await;
    let first = row(&app).await.unwrap();
    wait_for_row(&app, "the rotation", |r| {
        r.generation == first.generation + 1
    })
    .await;
    let vault = tokens(&app);
    let subscription = kenar_hook::divar::outbound::EventSubscription {
        event_type: "POST_UPDATE".into(),
        event_resource_id: None,
        metadata: None,
    };
    vault
        .record_subscription(USER, &subscription, 2)
        .await
        .unwrap();
    // The vault does hold the tokens: they open with the key.
    assert_eq!(
        vault.access_token(USER).await.unwrap().expose_secret(),
        at(2)
    );

    let haystack: Vec<u8> = match backend {
        Backend::Sqlite => {
            let db = app.settings.server.data_dir.join("test.db");
            let mut bytes = std::fs::read(&db).unwrap();
            let wal = db.with_extension("db-wal");
            bytes.extend(std::fs::read(wal).unwrap_or_default());
            assert!(bytes.len() > 4096, "read the database file");
            bytes
        }
        Backend::Postgres => {
            let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut text = String::new();
            for table in ["oauth_token", "oauth_subscription", "oauth_state"] {
                let rows = sqlx::query(&format!("select t::text as row from {table} t"))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                assert!(!rows.is_empty(), "{table} has rows");
                for r in rows {
                    text.push_str(&r.get::<String, _>("row"));
                }
            }
            text.into_bytes()
        }
    };
    for secret in secrets() {
        if let Some(form) = found_in(&haystack, &secret) {
            panic!("{secret} is in the database in clear ({form})");
        }
    }
}

/// Every text a secret may be stored as without encryption: itself, hex, and base64 in the
/// standard and URL-safe alphabets, with and without padding. Base64 inside a longer encoded
/// value depends on where the secret starts, so the part of each of the three alignments
/// that only the secret decides is looked for too. PostgreSQL shows `bytea` as hex, so each
/// form is also looked for in hex.
fn clear_forms(secret: &str) -> Vec<(String, Vec<u8>)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = secret.as_bytes();
    let mut forms = vec![
        ("clear".to_owned(), bytes.to_vec()),
        ("hex".to_owned(), hex::encode(bytes).into_bytes()),
        ("HEX".to_owned(), hex::encode_upper(bytes).into_bytes()),
    ];
    for (name, engine) in [
        ("base64", STANDARD),
        ("base64 unpadded", STANDARD_NO_PAD),
        ("base64url", URL_SAFE),
        ("base64url unpadded", URL_SAFE_NO_PAD),
    ] {
        forms.push((name.to_owned(), engine.encode(bytes).into_bytes()));
    }
    for (name, engine) in [("base64", STANDARD_NO_PAD), ("base64url", URL_SAFE_NO_PAD)] {
        for shift in 0..3usize {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(bytes);
            let text = engine.encode(&shifted);
            // Characters holding bits of the bytes before or after the secret vary.
            let head = (8 * shift).div_ceil(6);
            let tail = usize::from(shifted.len() % 3 != 0);
            let inner = &text[head..text.len() - tail];
            forms.push((
                format!("{name} at offset {shift}"),
                inner.as_bytes().to_vec(),
            ));
        }
    }
    let hexed: Vec<(String, Vec<u8>)> = forms
        .iter()
        .skip(1)
        .map(|(name, form)| (format!("hex of {name}"), hex::encode(form).into_bytes()))
        .collect();
    forms.extend(hexed);
    forms
}

/// The name of the first form of `secret` found in `haystack`.
fn found_in(haystack: &[u8], secret: &str) -> Option<String> {
    clear_forms(secret).into_iter().find_map(|(name, needle)| {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_slice())
            .then_some(name)
    })
}

#[test]
fn the_clear_text_scan_finds_encoded_secrets_anywhere() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let secret = at(1);
    for prefix in ["", "x", "xy", "{\"access_token\":\""] {
        let wrapped = format!("{prefix}{secret}\"}}");
        for text in [
            STANDARD.encode(&wrapped),
            URL_SAFE_NO_PAD.encode(&wrapped),
            hex::encode(&wrapped),
            hex::encode(STANDARD.encode(&wrapped)),
        ] {
            let haystack = format!("row(1,'{text}',2)");
            assert!(
                found_in(haystack.as_bytes(), &secret).is_some(),
                "{prefix:?}: {text}"
            );
        }
    }
    assert_eq!(found_in(b"nothing of it here", &secret), None);
    assert_eq!(found_in(STANDARD.encode(at(2)).as_bytes(), &secret), None);
}

/// The vault over the app's database as a replica with `keys` would open it.
fn vault_with_keys(app: &TestApp, keys: &[String]) -> Tokens {
    let mut settings = app.settings.clone();
    settings.oauth.vault_keys = keys
        .iter()
        .map(|k| SecretString::from(k.as_str()))
        .collect();
    Tokens::new(&settings, app.store.clone()).unwrap()
}

async fn rekey_seals_every_token_under_the_first_key(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let with_keys = |keys: &[String]| vault_with_keys(&app, keys);
    let (old, new) = (vault_key(1), vault_key(2));
    assert!(
        with_keys(std::slice::from_ref(&new))
            .access_token(USER)
            .await
            .is_err()
    );
    let rotated = with_keys(&[new.clone(), old.clone()]);
    assert_eq!(
        rotated.access_token(USER).await.unwrap().expose_secret(),
        at(1)
    );

    let cli = Cli::new(&mock.uri())
        .env(
            "KENAR_HOOK__DATABASE__URL",
            app.settings.database.url.expose_secret(),
        )
        .env("KENAR_HOOK__OAUTH__VAULT_KEYS", &format!("{new},{old}"))
        .env("KENAR_HOOK__OAUTH__CLIENT_ID", CLIENT_ID)
        .env("KENAR_HOOK__OAUTH__CLIENT_SECRET", CLIENT_SECRET)
        .env(
            "KENAR_HOOK__OAUTH__REDIRECT_URL",
            "http://127.0.0.1:9/oauth/divar/callback",
        );
    let out = cli.run(&["oauth", "rekey", "--json"]).await;
    out.assert_code(0);
    assert_eq!(out.json()["resealed"], 1);
    let again = cli.run(&["oauth", "rekey", "--json"]).await;
    assert_eq!(
        again.json()["resealed"],
        0,
        "nothing left under the old key"
    );

    let only_new = with_keys(&[new]);
    assert_eq!(
        only_new.access_token(USER).await.unwrap().expose_secret(),
        at(1)
    );
    let error = with_keys(&[old]).access_token(USER).await.unwrap_err();
    assert!(error.to_string().contains("no longer holds"), "{error}");
}

async fn a_replica_without_the_new_key_leaves_the_token_alive_and_tries_again(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    mount_refresh(&mock, 1, 3600).await;
    let with_keys = |keys: &[String]| vault_with_keys(&app, keys);
    // The token is sealed under key 1; a replica that was started with key 2 only (the
    // rotation reached it first, or its settings lag) meets it.
    let lagging = with_keys(&[vault_key(2)]);
    let outcome = lagging.refresh(&row(&app).await.unwrap()).await.unwrap();
    assert_eq!(outcome, kenar_hook::oauth::Refreshed::Retrying);
    let after = row(&app).await.unwrap();
    assert_ne!(
        after.status,
        kenar_hook::store::oauth::TokenStatus::Dead,
        "the token stays alive"
    );
    assert!(after.refresh_due_at.is_some(), "and is tried again");
    // The app's own refresher holds the key and refreshes it as usual (it is due again
    // after the backoff, 50 ms here).
    let rotated = wait_for_row(&app, "a rotation by a replica with the key", |r| {
        r.generation == after.generation + 1
    })
    .await;
    assert_ne!(rotated.status, kenar_hook::store::oauth::TokenStatus::Dead);
    assert_eq!(
        tokens(&app)
            .access_token(USER)
            .await
            .unwrap()
            .expose_secret(),
        at(2)
    );
}

async fn a_revocation_event_deletes_the_users_tokens_and_subscriptions(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let subscription = kenar_hook::divar::outbound::EventSubscription {
        event_type: "NEW_MESSAGE_ON_POST".into(),
        event_resource_id: Some("AZx7Kp2Q".into()),
        metadata: None,
    };
    tokens(&app)
        .record_subscription(USER, &subscription, 1)
        .await
        .unwrap();

    let response = app
        .post_webhook(fixture("event_user_access_revocation.json"))
        .await;
    assert_eq!(response.status(), 200);
    let stored = Instant::now();
    while row(&app).await.is_some() {
        assert!(
            stored.elapsed() < Duration::from_secs(10),
            "tokens deleted once the revocation is stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.store.subscriptions().await.unwrap().is_empty());
    let error = tokens(&app).access_token(USER).await.unwrap_err();
    assert!(error.to_string().contains("holds no token"), "{error}");

    // Signing in again after the revocation keeps the new tokens, also across a restart of
    // the watch (it reads every stored revocation again).
    sign_in(&app).await;
    let mut app = app;
    app.app.take().unwrap().stop().await.unwrap();
    let settings = app.settings.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let restarted = kenar_hook::app::start(settings, listener).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        row(&app).await.is_some(),
        "a later sign-in survives the old revocation"
    );
    restarted.stop().await.unwrap();
}

on_both_backends!(
    the_database_holds_no_token_in_clear_text,
    rekey_seals_every_token_under_the_first_key,
    a_replica_without_the_new_key_leaves_the_token_alive_and_tries_again,
    a_revocation_event_deletes_the_users_tokens_and_subscriptions,
);

/// Writes every log line of this thread into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sign-in, a refresh and a revocation logged at `trace` leave no token, code or secret in
/// the logs. The test's runtime has one thread, so every task of the app logs through the
/// subscriber set here.
#[tokio::test]
async fn no_token_code_or_secret_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    // While it knows of one scoped subscriber only, tracing decides whether a log site is
    // of interest by the default subscriber of the thread that reaches it first; another
    // test's thread (none set) would then switch this test's sites off for good. A second
    // subscriber makes it ask every subscriber, this one included.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());

    let mock = mock_divar(2).await;
    mount_refresh(&mock, 1, 3600).await;
    let app = spawn_oauth_app(Backend::Sqlite, &mock).await;
    sign_in(&app).await;
    let first = row(&app).await.unwrap();
    wait_for_row(&app, "a rotation", |r| r.generation == first.generation + 1).await;
    let refreshes = requests(&mock, TOKEN_PATH, "grant_type=refresh_token").await;
    assert_eq!(refreshes.len(), 1, "the refresh happened while captured");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("finished processing request"),
        "the app's lines were captured"
    );
    for secret in [
        at(1),
        rt(1),
        at(2),
        rt(2),
        GOOD_CODE.to_owned(),
        CLIENT_SECRET.to_owned(),
        API_KEY.to_owned(),
        vault_key(1),
    ] {
        assert!(!logs.contains(&secret), "{secret} logged");
    }
}
