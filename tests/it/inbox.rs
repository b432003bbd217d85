//! The web inbox's server side: the page and its headers, signing in and out with a session
//! cookie, and what that cookie may do on `/api/v1`. The page itself is driven in Chromium by
//! tests/browser (docs/inbox.md).

use std::collections::HashMap;

use chrono::{Duration, Utc};
use kenar_hook::config::Settings;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "inbox-operator-token-0123456789abcdefgh";

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        s.inbox.enabled = true;
    })
    .await
}

/// Signs in; the session cookie's `name=value` and the whole `Set-Cookie` line.
async fn sign_in(app: &TestApp, extra: &[(&str, &str)]) -> (String, String) {
    let mut request = app
        .client
        .post(app.url("/inbox/session"))
        .header("x-kenar-inbox", "1")
        .json(&json!({ "token": TOKEN }));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let line = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["client"], "token-1");
    assert_eq!(body["post_tokens"], Value::Null);
    let pair = line.split(';').next().unwrap().to_owned();
    (pair, line)
}

async fn get_with(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

async fn the_inbox_is_off_unless_enabled(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
    })
    .await;
    for path in ["/inbox", "/inbox/app.js", "/inbox/session"] {
        assert_eq!(
            app.client.get(app.url(path)).send().await.unwrap().status(),
            404,
            "{path}"
        );
    }
}

async fn the_page_is_served_with_a_strict_policy(backend: Backend) {
    let app = app(backend).await;
    let page = app.client.get(app.url("/inbox")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    // No inline script or style for the policy to refuse: code comes from files only.
    assert!(html.contains(r#"<script type="module" src="/inbox/app.js"></script>"#));
    assert!(!html.contains("<style") && !html.contains(" style="));
    let script = app
        .client
        .get(app.url("/inbox/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(!script.text().await.unwrap().contains("innerHTML"));
}

async fn signing_in_sets_a_session_cookie_only_scripts_of_the_page_cannot_read(backend: Backend) {
    let app = app(backend).await;
    let (cookie, line) = sign_in(&app, &[]).await;
    assert!(line.contains("HttpOnly"), "{line}");
    assert!(line.contains("SameSite=Strict"), "{line}");
    assert!(line.contains("Path=/"), "{line}");
    assert!(line.contains("Max-Age=28800"), "{line}");
    assert!(!line.contains("Secure"), "plain http from loopback: {line}");
    assert!(!line.contains(TOKEN));
    // Behind a proxy the cookie is Secure.
    let (_, proxied) = sign_in(&app, &[("x-forwarded-proto", "https")]).await;
    assert!(proxied.contains("; Secure"), "{proxied}");

    let session = get_with(&app, "/inbox/session", &cookie).await;
    assert_eq!(session.status(), 200);
    let body: Value = session.json().await.unwrap();
    assert_eq!(body["client"], "token-1");
    assert!(
        body["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("messages"))
    );

    app.post_webhook(fixture("event_new_message_text.json"))
        .await;
    let list = get_with(&app, "/api/v1/conversations?include=last_message", &cookie).await;
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    let first = &list["items"][0];
    assert_eq!(first["post_token"], "AZx7Kp2Q");
    assert_eq!(first["last_message"]["type"], "TEXT");
    assert_eq!(first["last_message"]["sender_side"], "BUYER");
    assert_eq!(
        first["last_message"]["text"],
        "سلام، قیمت نهایی چنده؟ امکان معاوضه هم هست؟"
    );
    // Without asking, no message is read for the list.
    let plain: Value = get_with(&app, "/api/v1/conversations", &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["items"][0]["last_message"], Value::Null);
    // A legacy message names its post's title.
    app.post_webhook(fixture("legacy_chat_message_text.json"))
        .await;
    let list: Value = get_with(&app, "/api/v1/conversations?include=last_message", &cookie)
        .await
        .json()
        .await
        .unwrap();
    let legacy = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"] == "legacy")
        .expect("the legacy conversation");
    assert_eq!(legacy["post_title"], "پژو ۲۰۶ تیپ ۲ مدل ۱۳۹۸");
    assert_eq!(
        legacy["last_message"]["text"],
        "سلام، وقت بخیر. این ماشین هنوز فروشی هست؟"
    );
    // Only its digest is stored.
    let id = cookie.split_once('=').unwrap().1;
    assert_eq!(app.store.inbox_session(id).await.unwrap(), None);
}

async fn wrong_tokens_and_requests_from_other_sites_are_refused(backend: Backend) {
    let app = app(backend).await;
    let post = |body: Value, header: bool| {
        let mut r = app.client.post(app.url("/inbox/session")).json(&body);
        if header {
            r = r.header("x-kenar-inbox", "1");
        }
        r.send()
    };
    // A form of another site cannot send the header, so it cannot sign a browser in.
    let (status, _, _) = error_of(post(json!({ "token": TOKEN }), false).await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, code, message) = error_of(
        post(json!({ "token": "x".repeat(40) }), true)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    assert!(message.contains("not a token"), "{message}");
    let (status, _, message) = error_of(post(json!({ "tok": TOKEN }), true).await.unwrap()).await;
    assert_eq!(status, 400, "{message}");
    let cross = app
        .client
        .post(app.url("/inbox/session"))
        .header("x-kenar-inbox", "1")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({ "token": TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);

    // With a session, reading needs nothing more; changing something needs the header.
    let (cookie, _) = sign_in(&app, &[]).await;
    let ticket = |header: bool| {
        let mut r = app
            .client
            .post(app.url("/api/v1/stream/tickets"))
            .header("cookie", &cookie);
        if header {
            r = r.header("x-kenar-inbox", "1");
        }
        r.send()
    };
    assert_eq!(ticket(false).await.unwrap().status(), 403);
    assert_eq!(ticket(true).await.unwrap().status(), 201);
    // A made-up cookie opens nothing.
    let forged = format!("kenar_inbox={}", "A".repeat(43));
    assert_eq!(
        get_with(&app, "/api/v1/conversations", &forged)
            .await
            .status(),
        401
    );
}

async fn signing_out_and_expiry_end_a_session(backend: Backend) {
    let app = app(backend).await;
    // Signing in again in the same browser ends the session it had.
    let (first, _) = sign_in(&app, &[]).await;
    let (cookie, _) = sign_in(&app, &[("cookie", first.as_str())]).await;
    assert_ne!(cookie, first);
    assert_eq!(
        get_with(&app, "/api/v1/conversations", &first)
            .await
            .status(),
        401
    );
    assert_eq!(
        get_with(&app, "/api/v1/conversations", &cookie)
            .await
            .status(),
        200
    );
    let out = app
        .client
        .delete(app.url("/inbox/session"))
        .header("cookie", &cookie)
        .header("x-kenar-inbox", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("kenar_inbox=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(
        get_with(&app, "/api/v1/conversations", &cookie)
            .await
            .status(),
        401
    );
    assert_eq!(
        get_with(&app, "/inbox/session", &cookie).await.status(),
        401
    );

    // A session past its time is refused, though its row is still there.
    let id = "B".repeat(43);
    let token_digest = hex::encode(kenar_hook::auth::digest(TOKEN.as_bytes()));
    let digest = hex::encode(kenar_hook::auth::digest(id.as_bytes()));
    app.store
        .insert_inbox_session(&digest, &token_digest, Utc::now() - Duration::seconds(1))
        .await
        .unwrap();
    let stale = format!("kenar_inbox={id}");
    assert_eq!(
        get_with(&app, "/api/v1/conversations", &stale)
            .await
            .status(),
        401
    );
    // The same row, in time, is a session: the check above was the clock's.
    let fresh = "C".repeat(43);
    app.store
        .insert_inbox_session(
            &hex::encode(kenar_hook::auth::digest(fresh.as_bytes())),
            &token_digest,
            Utc::now() + Duration::minutes(5),
        )
        .await
        .unwrap();
    let fresh = format!("kenar_inbox={fresh}");
    assert_eq!(
        get_with(&app, "/api/v1/conversations", &fresh)
            .await
            .status(),
        200
    );
}

async fn made_up_cookies_are_limited_before_the_database(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        s.inbox.enabled = true;
        // Failed sign-ins are limited too; here only the lookups' own limit is under test.
        s.api.auth_failures_per_minute = 100_000;
    })
    .await;
    let app = &app;
    let refused_after = refused_after(|i| async move {
        get_with(
            app,
            "/api/v1/conversations",
            &format!("kenar_inbox={i:0>43}"),
        )
        .await
    })
    .await;
    // The quota refills by 10 a second while the loop runs.
    let limit = kenar_hook::api::SESSION_LOOKUPS_PER_MINUTE;
    assert!(
        (limit..=limit + 200).contains(&refused_after),
        "{refused_after}"
    );
}

on_both_backends!(
    made_up_cookies_are_limited_before_the_database,
    the_inbox_is_off_unless_enabled,
    the_page_is_served_with_a_strict_policy,
    signing_in_sets_a_session_cookie_only_scripts_of_the_page_cannot_read,
    wrong_tokens_and_requests_from_other_sites_are_refused,
    signing_out_and_expiry_end_a_session,
);

#[test]
fn the_inbox_needs_a_client_to_sign_in_with() {
    let env: HashMap<String, String> = [("KENAR_HOOK__INBOX__ENABLED", "true")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let e = Settings::load_from(None, &env).unwrap_err().to_string();
    assert!(
        e.contains("inbox.enabled") && e.contains("api.tokens"),
        "{e}"
    );
    let env: HashMap<String, String> = [
        ("KENAR_HOOK__INBOX__SESSION_MINUTES", "0"),
        ("KENAR_HOOK__API__TOKENS", TOKEN),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let e = Settings::load_from(None, &env).unwrap_err().to_string();
    assert!(e.contains("inbox.session_minutes"), "{e}");
}
