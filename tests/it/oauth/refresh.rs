//! The refresher: rotation, retries within the overlap, refusal, re-subscription, replicas.

use secrecy::ExposeSecret;

use super::cli::cli;
use super::*;
use crate::helpers::fresh_postgres_url;

async fn a_refresh_stores_both_rotated_tokens_and_the_next_one_uses_the_new_refresh_token(
    backend: Backend,
) {
    // Token 1 lives 2 s (refreshed after 1 s), token 2 lives 2 s, token 3 an hour.
    let mock = mock_divar(2).await;
    mount_refresh(&mock, 1, 2).await;
    mount_refresh(&mock, 2, 3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let first = row(&app).await.unwrap();
    let third = wait_for_row(&app, "two rotations", |r| {
        r.generation == first.generation + 2
    })
    .await;

    let refreshes = requests(&mock, TOKEN_PATH, "grant_type=refresh_token").await;
    assert_eq!(refreshes.len(), 2, "one refresh per token");
    let (one, two) = (form(&refreshes[0]), form(&refreshes[1]));
    assert_eq!(one["refresh_token"], rt(1));
    assert_eq!(one["code"], at(1));
    assert_eq!(one["client_id"], CLIENT_ID);
    assert_eq!(one["client_secret"], CLIENT_SECRET);
    assert_eq!(
        one["redirect_uri"],
        "http://127.0.0.1:9/oauth/divar/callback"
    );
    // The second refresh used what the first stored: the rotated refresh token.
    assert_eq!(
        (two["refresh_token"].as_str(), two["code"].as_str()),
        (rt(2).as_str(), at(2).as_str())
    );
    assert_eq!(third.failures, 0);
    assert!(third.refresh_due_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(29));
    let token = tokens(&app).access_token(USER).await.unwrap();
    assert_eq!(token.expose_secret(), at(3));
}

async fn a_failed_refresh_is_tried_again_with_the_same_refresh_token_within_the_overlap(
    backend: Backend,
) {
    let mock = mock_divar(2).await;
    // The first refresh fails on Divar's side; the refresh token stays valid for two minutes
    // after any rotation, so the retry may use it again.
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains(format!("refresh_token={}", rt(1))))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    mount_refresh(&mock, 1, 3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let failed = wait_for_row(&app, "a failed refresh", |r| r.failures == 1).await;
    assert!(
        failed.last_error.as_deref().unwrap().contains("HTTP 503"),
        "{failed:?}"
    );
    let rotated = wait_for_row(&app, "the retry", |r| r.generation == failed.generation + 1).await;
    assert_eq!((rotated.failures, rotated.last_error.as_deref()), (0, None));
    let attempts = requests(&mock, TOKEN_PATH, &format!("refresh_token={}", rt(1))).await;
    assert_eq!(attempts.len(), 2);
    let token = tokens(&app).access_token(USER).await.unwrap();
    assert_eq!(token.expose_secret(), at(2));
}

async fn a_refused_refresh_marks_the_token_dead(backend: Backend) {
    let refused_before = refused_count();
    let mock = mock_divar(2).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "the refresh token was revoked"}),
        ))
        .mount(&mock)
        .await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let dead = wait_for_row(&app, "the token to die", |r| r.status.as_str() == "dead").await;
    assert!(dead.last_error.unwrap().contains("invalid_grant"));
    assert_eq!(dead.refresh_due_at, None, "never tried again");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        requests(&mock, TOKEN_PATH, "grant_type=refresh_token")
            .await
            .len(),
        1
    );
    let error = tokens(&app).access_token(USER).await.unwrap_err();
    assert!(error.to_string().contains("is dead"), "{error}");
    let listed = cli(&app, &mock).run(&["oauth", "tokens", "--json"]).await;
    assert_eq!(listed.json()[0]["health"], "dead");
    assert!(
        listed.json()[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
    assert!(
        refused_count() > refused_before,
        "counted in kenar_oauth_refreshes_total"
    );
}

/// `kenar_oauth_refreshes_total{outcome="refused"}` of this process.
fn refused_count() -> f64 {
    kenar_hook::telemetry::metrics_handle()
        .render()
        .lines()
        .find(|l| l.starts_with("kenar_oauth_refreshes_total{outcome=\"refused\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn a_recorded_subscription_is_made_again_with_each_new_token(backend: Backend) {
    let mock = mock_divar(2).await;
    mount_refresh(&mock, 1, 3600).await;
    // The first renewal is refused; a later round tries again.
    Mock::given(method("POST"))
        .and(path(SUBSCRIPTIONS_PATH))
        .and(header(
            "authorization",
            format!("Bearer {}", at(2)).as_str(),
        ))
        .respond_with(ResponseTemplate::new(403))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    let vault = tokens(&app);
    let subscription = kenar_hook::divar::outbound::EventSubscription {
        event_type: "NEW_MESSAGE_ON_POST".into(),
        event_resource_id: Some("AZx7Kp2Q".into()),
        metadata: Some(serde_json::from_value(json!({"tenant": "garage-42"})).unwrap()),
    };
    let generation = row(&app).await.unwrap().generation;
    vault
        .record_subscription(USER, &subscription, generation)
        .await
        .unwrap();
    // Recording it twice keeps one record.
    vault
        .record_subscription(USER, &subscription, generation)
        .await
        .unwrap();

    let started = Instant::now();
    let renewed = loop {
        let subs = app.store.subscriptions().await.unwrap();
        assert_eq!(subs.len(), 1);
        if subs[0].made_generation == generation + 1 {
            break subs[0].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not renewed: {subs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((renewed.failures, renewed.last_error), (0, None));
    let made = requests(&mock, SUBSCRIPTIONS_PATH, "").await;
    assert_eq!(made.len(), 2, "one refused attempt, one retry");
    for request in &made {
        assert_eq!(
            request.headers["authorization"],
            format!("Bearer {}", at(2)).as_str()
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({"event_type": "NEW_MESSAGE_ON_POST", "event_resource_id": "AZx7Kp2Q",
                   "metadata": {"tenant": "garage-42"}})
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        requests(&mock, SUBSCRIPTIONS_PATH, "").await.len(),
        2,
        "not made again"
    );
}

/// Two instances on one PostgreSQL, both refreshing every 100 ms: the token is refreshed
/// once, and both then use the new one.
#[tokio::test]
async fn two_instances_on_one_postgresql_refresh_a_token_once() {
    let mock = mock_divar(2).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains(format!("refresh_token={}", rt(1))))
        // Slow, so the other replica's rounds come while the refresh is under way.
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_answer(2, 3600))
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&mock)
        .await;
    let url = fresh_postgres_url().await;
    let one = spawn_app_with(Backend::Postgres, |s| {
        oauth_on(s, &mock);
        s.database.url = SecretString::from(url.clone());
    })
    .await;
    let two = spawn_app_with(Backend::Postgres, |s| {
        oauth_on(s, &mock);
        s.database.url = SecretString::from(url.clone());
    })
    .await;
    sign_in(&one).await;
    let first = row(&two).await.expect("the replicas share the vault");
    wait_for_row(&two, "the rotation", |r| {
        r.generation == first.generation + 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        requests(&mock, TOKEN_PATH, "grant_type=refresh_token")
            .await
            .len(),
        1,
        "refreshed once"
    );
    for app in [&one, &two] {
        let token = tokens(app).access_token(USER).await.unwrap();
        assert_eq!(token.expose_secret(), at(2));
    }
}

on_both_backends!(
    a_refresh_stores_both_rotated_tokens_and_the_next_one_uses_the_new_refresh_token,
    a_failed_refresh_is_tried_again_with_the_same_refresh_token_within_the_overlap,
    a_refused_refresh_marks_the_token_dead,
    a_recorded_subscription_is_made_again_with_each_new_token,
);
