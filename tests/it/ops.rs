//! Health, readiness, request ids, fallbacks and metrics.

use secrecy::ExposeSecret;
use sqlx::Connection;

use crate::helpers::*;

async fn health_and_readiness_answer_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

on_both_backends!(health_and_readiness_answer_200);

#[tokio::test]
async fn unknown_routes_and_methods_get_the_json_error_shape() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, code, _) = error_of(app.client.get(app.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, code, _) = error_of(
        app.client
            .get(app.url("/webhooks/divar"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

/// Methods made up by a caller are counted under `OTHER`: no label comes from request data,
/// so no one can grow the metrics.
#[tokio::test]
async fn made_up_methods_share_one_metric_label() {
    let app = spawn_app(Backend::Sqlite).await;
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("MX{i:05}Q").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
    }
    let text = kenar_hook::telemetry::metrics_handle().render();
    assert!(!text.contains("MX00"), "a made-up method became a label");
    assert!(
        text.lines()
            .any(|l| l.starts_with("http_requests_total") && l.contains("method=\"OTHER\"")),
        "counted under OTHER"
    );
}

/// The start-up advice follows the database's own setting: on PostgreSQL it is given exactly
/// when `wal_compression` is off; SQLite has none.
async fn setting_advice_follows_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let advice = app.store.setting_advice().await;
    match backend {
        Backend::Sqlite => assert_eq!(advice, None),
        Backend::Postgres => {
            let url = app.settings.database.url.expose_secret().to_owned();
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let value: String = sqlx::query_scalar("show wal_compression")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(
                advice.is_some(),
                value == "off",
                "wal_compression = {value}"
            );
            if let Some(text) = advice {
                assert!(text.contains("wal_compression is off"), "{text}");
            }
        }
    }
}

on_both_backends!(setting_advice_follows_the_database);
