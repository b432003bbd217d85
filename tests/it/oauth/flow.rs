//! `GET /oauth/divar/start` and `/oauth/divar/callback`.

use secrecy::ExposeSecret;

use super::*;
use crate::helpers::{error_of, spawn_app};

async fn a_sign_in_from_start_to_callback_stores_the_users_tokens(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    let query = format!(
        "?scope=CONVERSATION_SEND_MESSAGE.c1,CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q&return_to={}",
        urlencode(RETURN_TO)
    );
    let started = start(&app, &query).await;
    let consent = &started.location;
    assert_eq!(consent.path(), "/oauth2/auth");
    let pairs: std::collections::HashMap<_, _> = consent.query_pairs().into_owned().collect();
    assert_eq!(pairs["response_type"], "code");
    assert_eq!(pairs["client_id"], CLIENT_ID);
    assert_eq!(
        pairs["redirect_uri"],
        "http://127.0.0.1:9/oauth/divar/callback"
    );
    assert_eq!(
        pairs["scope"],
        "CONVERSATION_SEND_MESSAGE.c1 CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q USER_ID offline_access"
    );
    assert!(consent.query().unwrap().contains("%20"), "{consent}");
    assert!(started.state.len() >= 43, "a 256-bit state");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
        "Path=/oauth/divar",
    ] {
        assert!(
            started.set_cookie.contains(attribute),
            "{}",
            started.set_cookie
        );
    }
    // The redirect URL is http: a Secure cookie would never come back.
    assert!(
        !started.set_cookie.contains("Secure"),
        "{}",
        started.set_cookie
    );
    assert!(row(&app).await.is_none());

    let response = callback(
        &app,
        &format!("code={GOOD_CODE}&state={}", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], RETURN_TO);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    let exchanges = requests(&mock, TOKEN_PATH, "authorization_code").await;
    assert_eq!(exchanges.len(), 1);
    assert_eq!(
        exchanges[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let fields = form(&exchanges[0]);
    assert_eq!(fields["code"], GOOD_CODE);
    assert_eq!(fields["client_id"], CLIENT_ID);
    assert_eq!(fields["client_secret"], CLIENT_SECRET);
    assert_eq!(
        fields["redirect_uri"],
        "http://127.0.0.1:9/oauth/divar/callback"
    );
    let lookups = requests(&mock, USERS_PATH, "").await;
    assert_eq!(lookups.len(), 1);
    assert_eq!(
        lookups[0].headers["authorization"],
        format!("Bearer {}", at(1)).as_str()
    );

    let stored = row(&app).await.expect("the user's tokens");
    assert_eq!(stored.scope, SCOPE);
    assert_eq!(stored.status.as_str(), "active");
    assert!(stored.refresh_token.is_some());
    let lifetime = stored.expires_at - stored.created_at;
    assert!(
        (3590..=3600).contains(&lifetime.num_seconds()),
        "{lifetime}"
    );
    let token = tokens(&app).access_token(USER).await.unwrap();
    assert_eq!(token.expose_secret(), at(1));
}

async fn a_missing_forged_or_reused_state_is_refused_and_cannot_spoil_a_sign_in(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    let page = |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };

    let (status, body) = page(callback(&app, &format!("code={GOOD_CODE}"), None).await).await;
    assert_eq!(status, 400);
    assert!(body.contains("carries no state"), "{body}");

    let first = start(&app, "").await;
    let tampered = format!("code={GOOD_CODE}&state={}x", first.state);
    let (status, body) = page(callback(&app, &tampered, Some(&first.cookie)).await).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("unknown, has expired or was already used"),
        "{body}"
    );

    // Malformed states are refused before the database is asked (there is nothing to find).
    for bad in [
        "short",
        &"A".repeat(44),
        &format!("{}%21", &first.state[..42]),
    ] {
        let query = format!("code={GOOD_CODE}&state={bad}");
        let (status, body) = page(callback(&app, &query, Some(&first.cookie)).await).await;
        assert_eq!(status, 400);
        assert!(body.contains("unknown"), "{body}");
    }

    // A state started by another browser, sent with this browser's cookie (or none): refused,
    // and not used up, so whoever saw the URL cannot spoil the real user's sign-in.
    let second = start(&app, "").await;
    let forged = format!("code={GOOD_CODE}&state={}", second.state);
    let (status, body) = page(callback(&app, &forged, Some(&first.cookie)).await).await;
    assert_eq!(status, 400);
    assert!(body.contains("not started in this browser"), "{body}");
    let (status, _) = page(callback(&app, &forged, None).await).await;
    assert_eq!(status, 400);
    assert!(row(&app).await.is_none());
    assert!(requests(&mock, TOKEN_PATH, "").await.is_empty());
    // The browser that started it still signs in with it, once.
    let (status, body) = page(callback(&app, &forged, Some(&second.cookie)).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(row(&app).await.is_some());

    let good = format!("code={GOOD_CODE}&state={}", first.state);
    let (status, _) = page(callback(&app, &good, Some(&first.cookie)).await).await;
    assert_eq!(status, 200);
    let (status, body) = page(callback(&app, &good, Some(&first.cookie)).await).await;
    assert_eq!(status, 400);
    assert!(body.contains("already used"), "{body}");
    assert_eq!(
        requests(&mock, TOKEN_PATH, "").await.len(),
        2,
        "one exchange per sign-in"
    );
}

async fn denied_consent_answers_a_page_and_stores_nothing(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    let started = start(&app, "").await;
    let response = callback(
        &app,
        &format!("state={}&error=access_denied", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("not granted (access_denied)"), "{body}");
    assert!(requests(&mock, TOKEN_PATH, "").await.is_empty());
    assert!(row(&app).await.is_none());
}

async fn a_failed_exchange_answers_a_page_and_stores_nothing(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    let started = start(&app, "").await;
    let response = callback(
        &app,
        &format!("code=expired-code&state={}", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(body.contains("could not be exchanged"), "{body}");
    assert!(body.contains("invalid_grant"), "{body}");
    assert!(!body.contains(CLIENT_SECRET));
    assert_eq!(requests(&mock, TOKEN_PATH, "expired-code").await.len(), 1);
    assert!(row(&app).await.is_none());
}

async fn return_to_off_the_allowed_hosts_is_refused(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    let response = browser()
        .get(app.url("/oauth/divar/start?return_to=https%3A%2F%2Fevil.example.com%2F"))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "invalid_parameter"));
    assert!(message.starts_with("return_to:"), "{message}");
}

async fn without_a_vault_key_the_routes_are_off_and_say_why(backend: Backend) {
    let app = spawn_app(backend).await;
    for route in ["/oauth/divar/start", "/oauth/divar/callback?code=c&state=s"] {
        let response = browser().get(app.url(route)).send().await.unwrap();
        let (status, code, message) = error_of(response).await;
        assert_eq!((status, code.as_str()), (404, "not_found"));
        assert!(message.contains("oauth.vault_keys"), "{message}");
    }
}

async fn a_grant_without_user_id_answers_a_page_and_stores_nothing(backend: Backend) {
    let mock = mock_divar(3600).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("code=no-user-id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": at(1), "refresh_token": rt(1), "expires_in": 3600,
            "scope": "CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q offline_access",
        })))
        .mount(&mock)
        .await;
    let app = spawn_oauth_app(backend, &mock).await;
    let started = start(&app, "").await;
    let response = callback(
        &app,
        &format!("code=no-user-id&state={}", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(body.contains("lacks the USER_ID scope"), "{body}");
    assert!(!body.contains(&at(1)));
    assert!(row(&app).await.is_none());
}

async fn an_expired_state_is_refused(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_app_with(backend, |s| {
        oauth_on(s, &mock);
        s.oauth.state_ttl_secs = 1;
    })
    .await;
    let started = start(&app, "").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = callback(
        &app,
        &format!("code={GOOD_CODE}&state={}", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("expired"));
    assert!(requests(&mock, TOKEN_PATH, "").await.is_empty());
    assert!(row(&app).await.is_none());
}

/// Asserts the answer is an HTML page that is neither cached nor named as a referrer: its
/// URL held the code and the state.
fn assert_private_page(response: &reqwest::Response) {
    let headers = response.headers();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    assert_eq!(headers["cache-control"], "no-store", "{headers:?}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{headers:?}");
}

async fn a_hostile_error_is_escaped_on_the_page(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    let started = start(&app, "").await;
    let error = r#"<script>alert("x")</script>&'"#;
    let description = r#"<img src=x onerror="alert(1)">&amp;"#;
    let response = callback(
        &app,
        &format!(
            "state={}&error={}&error_description={}",
            started.state,
            urlencode(error),
            urlencode(description)
        ),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_private_page(&response);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("not granted (&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;)"),
        "{body}"
    );
    for raw in ["<script", "\"x\"", "<img", "onerror"] {
        assert!(!body.contains(raw), "{raw} unescaped in {body}");
    }
    assert!(row(&app).await.is_none());
}

async fn a_hostile_answer_of_the_code_exchange_is_escaped_on_the_page(backend: Backend) {
    let mock = mock_divar(3600).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("code=hostile-code"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "<b>invalid_grant</b>",
            "error_description": "<script>alert('x')</script> & \"more\"",
        })))
        .mount(&mock)
        .await;
    let app = spawn_oauth_app(backend, &mock).await;
    let started = start(&app, "").await;
    let response = callback(
        &app,
        &format!("code=hostile-code&state={}", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 502);
    assert_private_page(&response);
    let body = response.text().await.unwrap();
    assert!(body.contains("could not be exchanged"), "{body}");
    assert!(body.contains("&lt;b&gt;invalid_grant&lt;/b&gt;"), "{body}");
    for raw in ["<b>", "<script", "\"more\""] {
        assert!(!body.contains(raw), "{raw} unescaped in {body}");
    }
}

async fn every_page_of_the_callback_is_neither_cached_nor_a_referrer(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_oauth_app(backend, &mock).await;
    // No state, an unknown state, and a sign-in that succeeds without return_to.
    let missing = callback(&app, &format!("code={GOOD_CODE}"), None).await;
    assert_eq!(missing.status(), 400);
    assert_private_page(&missing);
    let unknown = callback(&app, &format!("code={GOOD_CODE}&state=unknown"), None).await;
    assert_eq!(unknown.status(), 400);
    assert_private_page(&unknown);
    let started = start(&app, "").await;
    let signed_in = callback(
        &app,
        &format!("code={GOOD_CODE}&state={}", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(signed_in.status(), 200);
    assert_private_page(&signed_in);
}

async fn over_https_the_state_cookie_is_secure_and_start_is_not_cached(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_app_with(backend, |s| {
        oauth_on(s, &mock);
        s.oauth.redirect_url = Some("https://hook.example.ir/oauth/divar/callback".to_owned());
    })
    .await;
    let response = browser()
        .get(app.url("/oauth/divar/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/oauth/divar"] {
        assert!(attributes.contains(&attribute), "{set_cookie}");
    }
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let redirect_uri = location
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        redirect_uri.as_deref(),
        Some("https://hook.example.ir/oauth/divar/callback")
    );
}

async fn start_refuses_scopes_it_does_not_allow_and_caps_the_sign_ins_under_way(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_app_with(backend, |s| {
        oauth_on(s, &mock);
        s.oauth.max_pending_sign_ins = 2;
    })
    .await;
    let get = |query: String| {
        browser()
            .get(app.url(&format!("/oauth/divar/start{query}")))
            .send()
    };
    for (query, says) in [
        ("?scope=NOT_A_SCOPE".to_owned(), "not one of Divar's scopes"),
        // Known, but a link may not ask for it (nor downgrade a user to fewer scopes than
        // the app asks for by naming only others).
        ("?scope=USER_PHONE".to_owned(), "USER_PHONE is not allowed"),
        (
            "?scope=CHAT_POST_CONVERSATIONS_READ.another".to_owned(),
            "is not allowed",
        ),
        (
            "?scope=CHAT_POST_CONVERSATIONS_READ".to_owned(),
            "needs a resource id",
        ),
        (
            "?scope=CONVERSATION_SEND_MESSAGE.%3Cscript%3E".to_owned(),
            "not well-formed",
        ),
        (format!("?scope={}", "A".repeat(60_000)), "longer than 2000"),
    ] {
        let (status, code, message) = error_of(get(query.clone()).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_parameter"),
            "{query:.80}"
        );
        assert!(message.contains(says), "{query:.80}: {message}");
    }
    // Nothing was stored for those: two sign-ins may still begin; a third waits.
    start(&app, "?scope=CONVERSATION_SEND_MESSAGE.c9").await;
    start(&app, "").await;
    let response = get(String::new()).await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (503, "unavailable"));
    assert!(message.contains("oauth.max_pending_sign_ins"), "{message}");
}

async fn sign_in_routes_are_limited_per_client_address(backend: Backend) {
    let mock = mock_divar(3600).await;
    let app = spawn_app_with(backend, |s| {
        oauth_on(s, &mock);
        s.oauth.rate_limit_per_minute = 3;
    })
    .await;
    start(&app, "").await;
    let refused = callback(&app, "code=x", None).await;
    assert_eq!(refused.status(), 400, "counted, answered as usual");
    start(&app, "").await;
    for limited in [
        browser()
            .get(app.url("/oauth/divar/start"))
            .send()
            .await
            .unwrap(),
        callback(&app, "code=x", None).await,
    ] {
        let retry: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let (status, code, _) = error_of(limited).await;
        assert_eq!((status, code.as_str()), (429, "rate_limited"));
    }
}

async fn a_narrower_sign_in_keeps_the_users_broader_tokens(backend: Backend) {
    let mock = mock_divar(3600).await;
    let mut narrow = token_answer(7, 3600);
    narrow["scope"] = json!("USER_ID offline_access");
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("code=narrow-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(narrow))
        .mount(&mock)
        .await;
    let app = spawn_oauth_app(backend, &mock).await;
    sign_in(&app).await;
    // A link that asks for less (sent to the user by anyone) is granted less: the tokens
    // the app relies on stay.
    let started = start(&app, "").await;
    let query = format!("code=narrow-code&state={}", started.state);
    let response = callback(&app, &query, Some(&started.cookie)).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("so it is kept"), "{body}");
    assert_eq!(row(&app).await.unwrap().scope, SCOPE);
    assert_eq!(
        tokens(&app)
            .access_token(USER)
            .await
            .unwrap()
            .expose_secret(),
        at(1)
    );
    // A grant of the same scopes replaces them, as every sign-in did.
    sign_in(&app).await;
    assert_eq!(row(&app).await.unwrap().scope, SCOPE);
}

/// A sign-in whose callback meets a service `cut` points at a port nothing listens on: the
/// page's body, after checking that it is a 502 naming no address or error and that nothing
/// was stored.
async fn sign_in_with_a_service_cut(
    backend: Backend,
    code: &str,
    cut: impl FnOnce(&mut Settings, String),
) -> String {
    let mock = mock_divar(3600).await;
    // A port nothing listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(backend, |s| {
        oauth_on(s, &mock);
        cut(s, nowhere);
    })
    .await;
    let started = start(&app, "").await;
    let response = callback(
        &app,
        &format!("code={code}&state={}", started.state),
        Some(&started.cookie),
    )
    .await;
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    for detail in ["connect", "error", "127.0.0.1"] {
        assert!(!body.contains(detail), "{detail} in {body}");
    }
    assert!(row(&app).await.is_none());
    body
}

/// The page anyone may see says that the OAuth server could not be used, never how: the
/// addresses and errors beneath stay in the log.
async fn an_unreachable_oauth_server_is_said_without_its_details(backend: Backend) {
    let body = sign_in_with_a_service_cut(backend, "good-code", |s, nowhere| {
        s.oauth.base_url = nowhere;
    })
    .await;
    assert!(body.contains("could not be exchanged"), "{body}");
    assert!(body.contains("start the sign-in again later"), "{body}");
}

/// Likewise when the token was granted but Divar's API, asked who the user is, cannot be
/// reached.
async fn an_unreachable_divar_api_is_said_without_its_details(backend: Backend) {
    let body = sign_in_with_a_service_cut(backend, GOOD_CODE, |s, nowhere| {
        s.divar.client.open_api_base_url = nowhere;
        s.divar.client.retry_max_attempts = 1;
    })
    .await;
    assert!(body.contains("the Divar API could not be used"), "{body}");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

on_both_backends!(
    a_sign_in_from_start_to_callback_stores_the_users_tokens,
    a_missing_forged_or_reused_state_is_refused_and_cannot_spoil_a_sign_in,
    denied_consent_answers_a_page_and_stores_nothing,
    a_failed_exchange_answers_a_page_and_stores_nothing,
    an_unreachable_oauth_server_is_said_without_its_details,
    an_unreachable_divar_api_is_said_without_its_details,
    return_to_off_the_allowed_hosts_is_refused,
    without_a_vault_key_the_routes_are_off_and_say_why,
    a_grant_without_user_id_answers_a_page_and_stores_nothing,
    an_expired_state_is_refused,
    a_hostile_error_is_escaped_on_the_page,
    a_hostile_answer_of_the_code_exchange_is_escaped_on_the_page,
    every_page_of_the_callback_is_neither_cached_nor_a_referrer,
    over_https_the_state_cookie_is_secure_and_start_is_not_cached,
    start_refuses_scopes_it_does_not_allow_and_caps_the_sign_ins_under_way,
    sign_in_routes_are_limited_per_client_address,
    a_narrower_sign_in_keeps_the_users_broader_tokens,
);
