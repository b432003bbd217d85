//! Deliveries with a good key that could not be stored are kept, listed, and run through
//! ingestion again by `kenar-hook rejected reprocess`.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::*;

const TOKEN: &str = "rejected-test-api-token";
const BIN: &str = env!("CARGO_BIN_EXE_kenar-hook");

async fn rejected(app: &TestApp) -> Vec<Value> {
    let page: Value = app
        .client
        .get(app.url("/api/v1/rejected"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn refused_deliveries_are_kept_listed_and_reprocessed(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.api.tokens = vec![SecretString::from(TOKEN)]).await;
    let missing_conversation =
        r#"{"type":"NEW_MESSAGE","new_message":{"id":"x1","type":"TEXT","text":"hi"}}"#;
    for _ in 0..2 {
        let r = app.post_webhook(missing_conversation).await;
        assert_eq!(r.status(), 422);
    }
    assert_eq!(app.post_webhook("not json {").await.status(), 400);
    let r = app
        .post_webhook_with_key(Some("not-a-key-of-this-app"), "not json either")
        .await;
    assert_eq!(r.status(), 401);

    let kept = rejected(&app).await;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0]["body"], missing_conversation);
    assert_eq!(kept[0]["deliveries"], 2);
    assert!(
        kept[0]["reason"].as_str().unwrap().contains("conversation"),
        "{kept:?}"
    );
    assert_eq!(kept[1]["body"], "not json {");
    assert!(!kept.iter().any(|k| k["body"] == "not json either"));

    // As if an older version had refused a delivery this one accepts.
    let earlier = chrono::DateTime::parse_from_rfc3339("2025-03-09T08:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let good = message("kept-1", "c-kept", "POSTA", "TEXT", 1_741_508_247_515_000);
    app.store
        .insert_rejected(good.as_bytes(), "an old reason", earlier)
        .await
        .unwrap();
    assert_eq!(rejected(&app).await.len(), 3);

    // On the blocking pool: the app shares this runtime and must go on answering.
    let mut command = std::process::Command::new(BIN);
    command
        .args(["rejected", "reprocess", "--json"])
        .current_dir(app._dir.path())
        .env(
            "KENAR_HOOK__DATABASE__URL",
            app.settings.database.url.expose_secret(),
        )
        .env("KENAR_HOOK__LOG__LEVEL", "warn")
        .env_remove("DATABASE_URL");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["stored"], 1, "{summary}");
    assert_eq!(summary["still_rejected"], 2, "{summary}");

    let left = rejected(&app).await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|k| k["body"] != good.as_str()));
    let stored = app.store.message("kept-1").await.unwrap().expect("stored");
    assert_eq!(stored.message.received_at, earlier);
    assert_eq!(stored.message.raw_body, good.as_bytes());
}

on_both_backends!(refused_deliveries_are_kept_listed_and_reprocessed);
