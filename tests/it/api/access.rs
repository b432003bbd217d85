//! Who may read: tokens, rate limits, and parameters that are refused.

use super::*;

async fn without_configured_tokens_every_request_is_401_naming_the_setting(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.api("/api/v1/messages").await;
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    assert!(message.contains("api.tokens"), "{message}");
}

async fn a_wrong_token_is_401_and_writes_are_405(backend: Backend) {
    let app = api_app(backend).await;
    let wrong = app
        .client
        .get(app.url("/api/v1/messages"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong).await.0, 401);
    let missing = app
        .client
        .get(app.url("/api/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await.0, 401);
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .client
            .request(method.clone(), app.url("/api/v1/messages"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (405, "method_not_allowed"),
            "{method}"
        );
    }
    let head = app
        .client
        .head(app.url("/api/v1/messages"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

async fn bad_parameters_are_400_naming_the_parameter(backend: Backend) {
    let app = api_app(backend).await;
    store(
        &app,
        (0..3)
            .map(|i| text_message(&format!("m{i}"), "conv", "P", 1_000_000 + i, "t", "BUYER"))
            .collect(),
    )
    .await;
    let page = app.api_json("/api/v1/messages?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let events_cursor = {
        app.post_webhook(fixture("event_user_access_revocation.json"))
            .await;
        app.post_webhook(fixture("event_post_update_retire.json"))
            .await;
        let e = app.api_json("/api/v1/events?limit=1").await;
        e["next_cursor"].as_str().unwrap().to_owned()
    };
    let cases = [
        ("/api/v1/messages?limit=0", "limit"),
        ("/api/v1/messages?limit=501", "limit"),
        ("/api/v1/messages?limit=ten", "limit"),
        ("/api/v1/messages?type=STICKER", "type"),
        ("/api/v1/messages?since=yesterday", "since"),
        ("/api/v1/conversations?until=2025-13-01", "until"),
        ("/api/v1/messages?sender_side=BOTH", "sender_side"),
        ("/api/v1/messages?order=sideways", "order"),
        ("/api/v1/messages?cursor=garbage", "cursor"),
        (
            &format!("/api/v1/messages?cursor={events_cursor}") as &str,
            "cursor",
        ),
        (&format!("/api/v1/clicks?cursor={events_cursor}"), "cursor"),
        (
            &format!("/api/v1/messages?post_token=Q&cursor={cursor}"),
            "cursor",
        ),
        ("/api/v1/events?type=not-a-type", "type"),
        ("/api/v1/stream?include=everything", "include"),
    ];
    for (path, name) in cases {
        let (status, code, message) = error_of(app.api(path).await).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_parameter"),
            "{path}"
        );
        assert!(message.starts_with(name), "{path}: {message}");
    }
    let next = app
        .api_json(&format!("/api/v1/messages?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(ids(&next), ["m1"]);
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        s.api.rate_limit_per_second = 1;
        s.api.rate_limit_burst = 2;
        s.api.auth_failures_per_minute = 2;
    })
    .await;
    // Burst 2 and one more a second: of 6 requests sent at once, at most 3 pass unless they
    // take over a second to arrive, and every refusal says when to come back.
    let responses = futures_util::future::join_all((0..6).map(|_| app.api("/api/v1/events"))).await;
    let limited: Vec<&reqwest::Response> = responses.iter().filter(|r| r.status() == 429).collect();
    assert!(limited.len() >= 3, "{} of 6 refused", limited.len());
    assert!(
        responses
            .iter()
            .all(|r| matches!(r.status().as_u16(), 200 | 429))
    );
    for r in limited {
        let retry_after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1);
    }
    let bad = || async {
        app.client
            .get(app.url("/api/v1/events"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
    };
    assert_eq!(bad().await.status(), 401);
    assert_eq!(bad().await.status(), 401);
    let third = bad().await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
}

on_both_backends!(
    without_configured_tokens_every_request_is_401_naming_the_setting,
    a_wrong_token_is_401_and_writes_are_405,
    bad_parameters_are_400_naming_the_parameter,
    rate_limits_answer_429_with_retry_after,
);
