//! Secrets stay out of every output; invalid requests never leave the process.

use super::*;

#[tokio::test]
async fn secrets_never_appear_in_errors_or_prepared_requests() {
    let server = MockServer::start().await;
    for status in [401, 403, 412, 429, 400, 503] {
        answer(
            &server,
            &v2_path(),
            status,
            json!({"code": 16, "message": "no"}),
            1..,
        )
        .await;
        let error = send_text(&client(&server)).await.unwrap_err();
        for shown in [format!("{error}"), format!("{error:?}")] {
            assert!(
                !shown.contains(API_KEY) && !shown.contains(TOKEN),
                "{shown}"
            );
        }
        server.reset().await;
    }
    let client = client(&server);
    let prepared = client
        .prepare_message(&token(), CONVERSATION, &SendMessage::text("hi"))
        .unwrap();
    let listed = prepared.headers();
    assert!(listed.contains(&("x-api-key", MASK.to_owned())));
    assert!(listed.contains(&("authorization", format!("Bearer {MASK}"))));
    let views = [
        format!("{prepared}"),
        format!("{prepared:?}"),
        serde_json::to_string(&prepared).unwrap(),
        format!("{client:?}"),
        format!("{:?}", client.settings()),
    ];
    for shown in views {
        assert!(
            !shown.contains(API_KEY) && !shown.contains(TOKEN),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn a_dry_run_shows_exactly_what_is_sent() {
    let server = MockServer::start().await;
    let client = client(&server);
    let message: SendMessage = parse("send_message_v2_request.json");
    let prepared = client
        .prepare_message(&token(), CONVERSATION, &message)
        .unwrap();
    assert_eq!(prepared.method, reqwest::Method::POST);
    assert_eq!(
        prepared.url.as_str(),
        format!("{}{}", server.uri(), v2_path())
    );
    assert_eq!(prepared.body, json_fixture("send_message_v2_request.json"));
    Mock::given(method("POST"))
        .and(path(v2_path()))
        .and(header("x-api-key", API_KEY))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(&prepared.body))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    client.execute(&prepared).await.unwrap();
}

#[tokio::test]
async fn invalid_button_grids_are_rejected_before_any_call() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server);
    let ok = json!({"action": {"open_post_page": {"post_token": POST}}, "caption": "x"});
    let cases = [
        (
            json!({"rows": [{"buttons": [ok]}, {"buttons": [ok]}, {"buttons": [ok]}, {"buttons": [ok]}]}),
            "4 rows",
        ),
        (
            json!({"rows": [{"buttons": [ok, ok, ok, ok]}]}),
            "4 buttons",
        ),
        (
            json!({"rows": [{"buttons": [{"caption": "x"}]}]}),
            "no action",
        ),
        (
            json!({"rows": [{"buttons": [{"caption": "x", "action": {"open_direct_link": "https://a.example", "open_post_page": {"post_token": POST}}}]}]}),
            "two actions",
        ),
        (
            json!({"rows": [{"buttons": [{"caption": " ", "action": {"open_direct_link": "https://a.example"}}]}]}),
            "empty caption",
        ),
    ];
    for (grid, case) in cases {
        let grid: ButtonGrid = serde_json::from_value(grid).expect(case);
        let v2 = SendMessage {
            receiver_buttons: Some(grid.clone()),
            ..SendMessage::text("hi")
        };
        let bot = BotMessage {
            buttons: Some(grid),
            ..BotMessage::text("hi")
        };
        let errors = [
            client
                .send_message(&token(), CONVERSATION, &v2)
                .await
                .unwrap_err(),
            client
                .send_bot_message_to_conversation(None, CONVERSATION, &bot)
                .await
                .unwrap_err(),
        ];
        for error in errors {
            let DivarError::Validation(reason) = &error else {
                panic!("{case}: {error:?}")
            };
            let expected = match case {
                "4 rows" => matches!(reason, ValidationError::TooManyRows { rows: 4, .. }),
                "4 buttons" => matches!(
                    reason,
                    ValidationError::TooManyButtons {
                        row: 1,
                        buttons: 4,
                        ..
                    }
                ),
                "no action" => matches!(reason, ValidationError::ActionCount { actions: 0, .. }),
                "two actions" => matches!(reason, ValidationError::ActionCount { actions: 2, .. }),
                _ => matches!(
                    reason,
                    ValidationError::EmptyCaption {
                        row: 1,
                        button: 1,
                        ..
                    }
                ),
            };
            assert!(expected, "{case}: {reason}");
            assert_eq!(error.exit_code(), 2);
        }
    }
}

#[tokio::test]
async fn a_missing_api_key_or_a_dot_id_is_refused_before_any_call() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let keyless = DivarClient::new(DivarClientSettings {
        api_key: None,
        ..settings(&server)
    })
    .unwrap();
    let error = send_text(&keyless).await.unwrap_err();
    assert!(matches!(error, DivarError::NotConfigured(_)), "{error:?}");
    assert_eq!(error.exit_code(), 2);
    let error = client(&server)
        .send_message(&token(), "..", &SendMessage::text("hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DivarError::Validation(ValidationError::InvalidField { .. })
        ),
        "{error:?}"
    );
    let error = client(&server)
        .send_message(&token(), CONVERSATION, &SendMessage::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, DivarError::Validation(ValidationError::NoContent)),
        "{error:?}"
    );
}
