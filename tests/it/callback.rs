//! Button-click callbacks: every click fixture, rules, state, and rejections.

use kenar_hook::callback::rules::RuleSettings;
use kenar_hook::callback::state;
use kenar_hook::config::Settings;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

const SIGNING_KEY: &str = "click-state-signing-key";

fn rule(name: &str, url: &str) -> RuleSettings {
    RuleSettings {
        name: name.into(),
        source: None,
        version: None,
        post_token: None,
        side: None,
        data: Default::default(),
        url: Some(url.into()),
        text_message: None,
    }
}

/// Rules exercising every condition; a fallback for the rest.
fn configure(s: &mut Settings) {
    let c = &mut s.callback;
    c.allowed_hosts = vec!["app.example-kenar.ir".into(), "*.example.ir".into()];
    c.fallback_url = Some("https://app.example-kenar.ir/start?post={post_token}".into());
    let mut answer = rule(
        "answer",
        "https://app.example-kenar.ir/answer/{data.answer}",
    );
    answer.version = Some("dynamic_action".into());
    answer.text_message = Some("پاسخ ثبت شد".into());
    let mut addon = rule(
        "addon",
        "https://reports.example.ir/{data.addon}?post={post_token}",
    );
    addon.source = Some("post_addon".into());
    let mut seller = rule(
        "seller",
        "https://app.example-kenar.ir/seller/{conversation_id}?u={user_id}",
    );
    seller.side = Some("supply".into());
    seller.version = Some("v2".into());
    let mut buyer = rule(
        "buyer-order",
        "https://app.example-kenar.ir/divar/landing?post={post_token}&order={data.order_id}&side={side}&peer={peer_id}",
    );
    buyer.data.insert("role".into(), "buyer".into());
    let mut legacy_seller = rule(
        "legacy-seller",
        "https://app.example-kenar.ir/legacy/{side}",
    );
    legacy_seller.version = Some("legacy".into());
    legacy_seller.post_token = Some("AZx7Kp2Q".into());
    legacy_seller.side = Some("supply".into());
    c.rules = vec![answer, addon, seller, buyer, legacy_seller];
}

async fn click_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, configure).await
}

impl TestApp {
    async fn post_click(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header("authorization", KEY)
            .body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send().await.expect("request")
    }
}

/// fixture, path, headers, reply, version, rule, side
type ClickCase = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Value,
    &'static str,
    &'static str,
    Option<&'static str>,
);

async fn every_click_fixture_gets_its_reply_and_a_click_row(backend: Backend) {
    let app = click_app(backend).await;
    #[rustfmt::skip]
    let cases: Vec<ClickCase> = vec![
        ("legacy_button_click.json", "/callbacks/divar", vec![],
            json!({"status": "200", "message": "success", "url": "https://app.example-kenar.ir/divar/landing?post=AZx7Kp2Q&order=ord_58213&side=demand&peer=0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d"}),
            "legacy", "buyer-order", Some("demand")),
        ("legacy_button_click_2024_lowercase_supplier.json", "/callbacks/divar", vec![],
            json!({"status": "200", "message": "success", "url": "https://app.example-kenar.ir/legacy/supply"}),
            "legacy", "legacy-seller", Some("supply")),
        ("legacy_button_click_string_location.json", "/callbacks/divar", vec![],
            json!({"status": "200", "message": "success", "url": "https://app.example-kenar.ir/start?post=AZx7Kp2Q"}),
            "legacy", "fallback", Some("demand")),
        ("open_server_link_v2.json", "/callbacks/divar", vec![("API_VERSION", "2")],
            json!({"url": "https://app.example-kenar.ir/divar/landing?post=AZx7Kp2Q&order=ord_58213&side=demand&peer="}),
            "v2", "buyer-order", Some("demand")),
        ("open_server_link_v2_with_return_url.json", "/callbacks/divar", vec![("API-Version", "2")],
            json!({"url": "https://app.example-kenar.ir/seller/3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58?u="}),
            "v2", "seller", Some("supply")),
        ("open_server_link_v2_post_addon.json", "/callbacks/divar", vec![],
            json!({"url": "https://reports.example.ir/inspection-report?post=AZx7Kp2Q"}),
            "v2", "addon", Some("supply")),
        ("open_server_link_v2_touchpoint_variant.json", "/callbacks/divar", vec![("API-Version", "2")],
            json!({"url": "https://app.example-kenar.ir/seller/3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58?u="}),
            "v2", "seller", Some("supply")),
        ("dynamic_action_request.json", "/callbacks/divar/dynamic-action", vec![],
            json!({"action": {"open_direct_link": "https://app.example-kenar.ir/answer/yes"}, "text_message": "پاسخ ثبت شد"}),
            "dynamic_action", "answer", Some("supply")),
    ];
    for (name, path, headers, reply, ..) in &cases {
        let raw = fixture(name);
        let response = app.post_click(path, headers, raw).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(&response.json::<Value>().await.unwrap(), reply, "{name}");
    }
    let clicks = app.store.all_clicks().await.unwrap();
    assert_eq!(clicks.len(), cases.len());
    for (stored, (name, _, _, reply, version, rule, side)) in clicks.iter().zip(&cases) {
        let c = &stored.click;
        let body: Value = serde_json::from_slice(&fixture(name)).unwrap();
        assert_eq!(c.version, *version, "{name}");
        assert_eq!(c.rule.as_deref(), Some(*rule), "{name}");
        assert_eq!(c.side.as_deref(), *side, "{name}");
        assert_eq!(c.outcome, "redirect", "{name}");
        let answered = reply
            .get("url")
            .or_else(|| reply.pointer("/action/open_direct_link"));
        assert_eq!(c.url.as_deref(), answered.and_then(Value::as_str), "{name}");
        assert_eq!(
            c.post_token.as_deref(),
            body["post_token"].as_str(),
            "{name}"
        );
        assert_eq!(
            c.conversation_id.as_deref(),
            body["conversation_id"].as_str(),
            "{name}"
        );
        assert_eq!(c.user_id.as_deref(), body["user_id"].as_str(), "{name}");
        let data = body
            .pointer("/extra_data/provider_data")
            .filter(|_| *version == "legacy")
            .or_else(|| body.get("extra_data").filter(|_| *version != "legacy"))
            .or_else(|| body.get("provider_data"))
            .cloned()
            .unwrap_or(json!({}));
        assert_eq!(c.provider_data, data, "{name}");
        assert_eq!(c.raw_body, fixture(name), "{name}");
    }
    let sources: Vec<Option<&str>> = clicks.iter().map(|c| c.click.source.as_deref()).collect();
    assert_eq!(
        sources,
        [
            None,
            None,
            None,
            Some("CHAT_MESSAGE_ACTION"),
            Some("CHAT_MESSAGE_ACTION"),
            Some("POST_ADDON"),
            Some("CHAT"),
            Some("CHAT")
        ]
    );
}

async fn the_first_matching_rule_wins(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        configure(s);
        let general = rule("general", "https://app.example-kenar.ir/general");
        let specific = rule("specific", "https://app.example-kenar.ir/specific");
        // `general` matches everything and comes first: `specific` never wins.
        s.callback.rules = vec![general, specific];
    })
    .await;
    let response = app
        .post_click("/callbacks/divar", &[], fixture("legacy_button_click.json"))
        .await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["url"],
        "https://app.example-kenar.ir/general"
    );
}

async fn placeholders_are_percent_encoded(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        configure(s);
        s.callback.rules = vec![rule(
            "echo",
            "https://app.example-kenar.ir/p/{data.note}?q={data.note}",
        )];
    })
    .await;
    let body = json!({"source": "CHAT_MESSAGE_ACTION", "post_token": "AZx7Kp2Q",
        "extra_data": {"note": "سلام دنیا & a/b?c=d#e"}});
    let response = app
        .post_click(
            "/callbacks/divar",
            &[("API_VERSION", "2")],
            body.to_string().into_bytes(),
        )
        .await;
    let encoded = "%D8%B3%D9%84%D8%A7%D9%85%20%D8%AF%D9%86%DB%8C%D8%A7%20%26%20a%2Fb%3Fc%3Dd%23e";
    assert_eq!(
        response.json::<Value>().await.unwrap()["url"],
        format!("https://app.example-kenar.ir/p/{encoded}?q={encoded}")
    );
}

async fn a_target_off_the_allowlist_after_filling_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        configure(s);
        // "x" is allowed only so the template passes the load-time check with its probe value.
        s.callback.allowed_hosts.push("x".into());
        s.callback.rules = vec![rule("host-from-data", "https://{data.host}/landing")];
    })
    .await;
    let body = json!({"source": "CHAT_MESSAGE_ACTION", "extra_data": {"host": "evil.example.com"}});
    let response = app
        .post_click(
            "/callbacks/divar",
            &[("API_VERSION", "2")],
            body.to_string().into_bytes(),
        )
        .await;
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (422, "unprocessable_entity"));
    let clicks = app.store.all_clicks().await.unwrap();
    assert_eq!(clicks[0].click.outcome, "disallowed");
    assert_eq!(clicks[0].click.url, None);
}

async fn no_rule_and_no_fallback_is_an_error_without_a_url(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        configure(s);
        s.callback.fallback_url = None;
        s.callback.rules.clear();
    })
    .await;
    let response = app
        .post_click("/callbacks/divar", &[], fixture("legacy_button_click.json"))
        .await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "404");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no redirect rule")
    );
    assert!(body.get("url").is_none());
    let v2 = app
        .post_click(
            "/callbacks/divar",
            &[("API_VERSION", "2")],
            fixture("open_server_link_v2.json"),
        )
        .await;
    let (status, code, _) = error_of(v2).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    // Both clicks are logged.
    let clicks = app.store.all_clicks().await.unwrap();
    assert_eq!(clicks.len(), 2);
    assert!(
        clicks
            .iter()
            .all(|c| c.click.outcome == "no_match" && c.click.url.is_none())
    );
}

async fn signed_state_round_trips_through_the_redirect(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        configure(s);
        s.callback.signing_key = Some(SecretString::from(SIGNING_KEY));
    })
    .await;
    let response = app
        .post_click(
            "/callbacks/divar",
            &[("API_VERSION", "2")],
            fixture("open_server_link_v2.json"),
        )
        .await;
    let url = url::Url::parse(
        response.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(url.host_str(), Some("app.example-kenar.ir"));
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = state::verify(&token, SIGNING_KEY.as_bytes(), now).unwrap();
    assert_eq!(claims.post_token.as_deref(), Some("AZx7Kp2Q"));
    assert_eq!(
        claims.conversation_id.as_deref(),
        Some("3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58")
    );
    assert_eq!(
        claims.user_id.as_deref(),
        Some("pR3xN8vK2mQ7sT1wY5zA9bC4dE6fG0hJ2kL8nP3qR5s=")
    );
    assert_eq!(claims.side.as_deref(), Some("demand"));
    assert_eq!(claims.data["order_id"], "ord_58213");
    assert_eq!(claims.exp - claims.iat, 900);
    assert!(state::verify(&token, b"wrong key", now).is_err());
    assert!(
        state::verify(&token, SIGNING_KEY.as_bytes(), claims.exp).is_err(),
        "expired"
    );
    // The stored click has the URL as answered, state included.
    let clicks = app.store.all_clicks().await.unwrap();
    assert_eq!(clicks[0].click.url.as_deref(), Some(url.as_str()));
}

async fn missing_key_is_401_in_the_legacy_shape_and_stores_nothing(backend: Backend) {
    let app = click_app(backend).await;
    let response = app
        .client
        .post(app.url("/callbacks/divar"))
        .body(fixture("legacy_button_click.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "401");
    assert!(body.get("url").is_none());
    let v2 = app
        .client
        .post(app.url("/callbacks/divar"))
        .header("API_VERSION", "2")
        .header("authorization", "wrong")
        .body(fixture("open_server_link_v2.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(v2).await.0, 401);
    let dynamic = app
        .client
        .post(app.url("/callbacks/divar/dynamic-action"))
        .body(fixture("dynamic_action_request.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(dynamic).await.0, 401);
    assert!(app.store.all_clicks().await.unwrap().is_empty());
}

async fn bad_input_gets_the_versions_error_shape_and_stores_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        configure(s);
        s.server.body_limit_bytes = 2048;
    })
    .await;
    let legacy_cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "not valid JSON"),
        (
            json!({"user_id": "u", "peer_id": "p", "demand": {"id": "u"}})
                .to_string()
                .into_bytes(),
            422,
            "post_token",
        ),
        (
            json!({"post_token": "AZx7Kp2Q", "callback_url": "https://x"})
                .to_string()
                .into_bytes(),
            422,
            "user_id",
        ),
        (
            format!("{{\"post_token\":\"{}\"}}", "x".repeat(4096)).into_bytes(),
            413,
            "2048",
        ),
    ];
    for (body, status, needle) in legacy_cases {
        let response = app.post_click("/callbacks/divar", &[], body).await;
        assert_eq!(response.status(), status);
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["status"], status.to_string());
        assert!(
            reply["message"].as_str().unwrap().contains(needle),
            "{reply}"
        );
        assert!(reply.get("url").is_none());
    }
    let v2 = app
        .post_click(
            "/callbacks/divar",
            &[("API_VERSION", "2")],
            json!({"post_token": "x"}).to_string().into_bytes(),
        )
        .await;
    let (status, code, message) = error_of(v2).await;
    assert_eq!((status, code.as_str()), (422, "unprocessable_entity"));
    assert!(message.contains("source"), "{message}");
    let dynamic = app
        .post_click(
            "/callbacks/divar/dynamic-action",
            &[],
            json!({"post_token": "x"}).to_string().into_bytes(),
        )
        .await;
    let (status, _, message) = error_of(dynamic).await;
    assert_eq!(status, 422);
    assert!(message.contains("touchpoint"), "{message}");
    let dynamic = app
        .post_click("/callbacks/divar/dynamic-action", &[], b"[]".to_vec())
        .await;
    assert_eq!(error_of(dynamic).await.0, 422);
    assert!(app.store.all_clicks().await.unwrap().is_empty());
}

async fn a_text_only_rule_answers_a_dynamic_action_with_text(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        configure(s);
        let mut text = rule("text", "https://unused.example.ir");
        text.url = None;
        text.text_message = Some("ثبت شد".into());
        s.callback.rules = vec![text];
    })
    .await;
    let response = app
        .post_click(
            "/callbacks/divar/dynamic-action",
            &[],
            fixture("dynamic_action_request.json"),
        )
        .await;
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"text_message": "ثبت شد"})
    );
    // The text-only rule cannot answer a redirect: the fallback does.
    let legacy = app
        .post_click("/callbacks/divar", &[], fixture("legacy_button_click.json"))
        .await;
    assert_eq!(
        legacy.json::<Value>().await.unwrap()["url"],
        "https://app.example-kenar.ir/start?post=AZx7Kp2Q"
    );
    assert_eq!(
        app.store.all_clicks().await.unwrap()[0].click.outcome,
        "text"
    );
}

on_both_backends!(
    every_click_fixture_gets_its_reply_and_a_click_row,
    the_first_matching_rule_wins,
    placeholders_are_percent_encoded,
    a_target_off_the_allowlist_after_filling_is_refused,
    no_rule_and_no_fallback_is_an_error_without_a_url,
    signed_state_round_trips_through_the_redirect,
    missing_key_is_401_in_the_legacy_shape_and_stores_nothing,
    bad_input_gets_the_versions_error_shape_and_stores_nothing,
    a_text_only_rule_answers_a_dynamic_action_with_text,
);

#[test]
fn rules_that_could_redirect_off_the_allowlist_stop_start_up() {
    use std::collections::HashMap;
    let load = |toml: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kh.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::load_from(Some(&path), &HashMap::new()).map(|_| ())
    };
    let base = "[callback]\nallowed_hosts = [\"app.example.ir\"]\n";
    let cases = [
        (
            "[[callback.rules]]\nname = \"r\"\nurl = \"https://evil.example.com/x\"\n",
            "callback.rules[0].url",
        ),
        (
            "[[callback.rules]]\nname = \"r\"\nurl = \"http://app.example.ir/x\"\n",
            "callback.rules[0].url",
        ),
        (
            "[[callback.rules]]\nname = \"r\"\nurl = \"https://{data.host}/x\"\n",
            "callback.rules[0].url",
        ),
        (
            "fallback_url = \"javascript:alert(1)\"\n",
            "callback.fallback_url",
        ),
        (
            "[[callback.rules]]\nname = \"r\"\nside = \"both\"\nurl = \"https://app.example.ir\"\n",
            "callback.rules[0].side",
        ),
        (
            "[[callback.rules]]\nname = \"r\"\n",
            "callback.rules[0].url",
        ),
        // An unknown placeholder used to reach the URL as %7Bnope%7D.
        (
            "[[callback.rules]]\nname = \"r\"\nurl = \"https://app.example.ir/{nope}\"\n",
            "callback.rules[0].url: unknown placeholder {nope}",
        ),
        (
            "fallback_url = \"https://app.example.ir/?p={post_tokn}\"\n",
            "callback.fallback_url: unknown placeholder {post_tokn}",
        ),
    ];
    for (extra, key) in cases {
        let err = load(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
    load(&format!(
        "{base}[[callback.rules]]\nname = \"ok\"\nurl = \"https://app.example.ir/{{post_token}}\"\n"
    ))
    .unwrap();
    load("[callback]\nallowed_hosts = [\"localhost\"]\nfallback_url = \"http://localhost:3000/dev\"\n").unwrap();
}

#[test]
fn verify_state_cli_exits_0_for_valid_and_1_for_tampered_states() {
    use kenar_hook::callback::click::{Click, ClickVersion};
    use std::process::Command;
    let click = Click::parse(
        ClickVersion::V2,
        &serde_json::from_slice(&fixture("open_server_link_v2.json")).unwrap(),
    )
    .unwrap();
    let claims = state::StateClaims::for_click(&click, chrono::Utc::now().timestamp(), 600);
    let token = state::sign(&claims, SIGNING_KEY.as_bytes());
    let run = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_kenar-hook"))
            .args(["verify-state", token])
            .env("KENAR_HOOK__CALLBACK__SIGNING_KEY", SIGNING_KEY)
            .output()
            .unwrap()
    };
    let ok = run(&token);
    assert_eq!(ok.status.code(), Some(0));
    let printed: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(printed["post_token"], "AZx7Kp2Q");
    assert_eq!(printed["nonce"], claims.nonce);
    let mut tampered = token.clone();
    tampered.insert(5, 'A');
    let bad = run(&tampered);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid state"));
}
