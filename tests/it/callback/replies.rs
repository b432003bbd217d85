//! Every click fixture gets its reply and a click row; bad input gets its version's error shape.

use super::*;

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
        assert_eq!(c.version.as_str(), *version, "{name}");
        assert_eq!(c.rule.as_deref(), Some(*rule), "{name}");
        assert_eq!(c.facts.side.map(Side::as_str), *side, "{name}");
        assert_eq!(c.outcome, ClickOutcome::Redirect, "{name}");
        let answered = reply
            .get("url")
            .or_else(|| reply.pointer("/action/open_direct_link"));
        assert_eq!(c.url.as_deref(), answered.and_then(Value::as_str), "{name}");
        assert_eq!(
            c.facts.post_token.as_deref(),
            body["post_token"].as_str(),
            "{name}"
        );
        assert_eq!(
            c.facts.conversation_id.as_deref(),
            body["conversation_id"].as_str(),
            "{name}"
        );
        assert_eq!(
            c.facts.user_id.as_deref(),
            body["user_id"].as_str(),
            "{name}"
        );
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
    let sources: Vec<Option<&str>> = clicks
        .iter()
        .map(|c| c.click.facts.source.as_deref())
        .collect();
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
        ClickOutcome::Text
    );
}

on_both_backends!(
    every_click_fixture_gets_its_reply_and_a_click_row,
    missing_key_is_401_in_the_legacy_shape_and_stores_nothing,
    bad_input_gets_the_versions_error_shape_and_stores_nothing,
    a_text_only_rule_answers_a_dynamic_action_with_text,
);
