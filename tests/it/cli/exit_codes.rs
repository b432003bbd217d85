//! Exit codes: 2 for usage, validation and missing settings, 3 when Divar refuses, 4 when it
//! stays unavailable after the retries, 5 when a send may have reached Divar unconfirmed;
//! `--json` reports the failure on stdout too.

use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

#[tokio::test]
async fn bot_to_a_user_without_a_token_exits_2() {
    let mock = silent_divar().await;
    let out = Cli::new(&mock.uri())
        .run(&["send", "bot", "--user-id", USER, "--text", "hi"])
        .await;
    out.assert_code(2);
    assert!(out.stderr.contains("KENAR_HOOK_ACCESS_TOKEN"), "{out:?}");
}

#[tokio::test]
async fn there_is_no_flag_that_takes_the_token_itself() {
    let mock = silent_divar().await;
    let out = Cli::new(&mock.uri())
        .run(&[
            "send",
            "conversation",
            "--conversation-id",
            CONVERSATION,
            "--text",
            "hi",
            "--access-token",
            TOKEN,
        ])
        .await;
    out.assert_code(2);
    assert!(out.stderr.contains("unexpected argument"), "{out:?}");
}

#[tokio::test]
async fn a_missing_access_token_or_api_key_exits_2_before_any_call() {
    let mock = silent_divar().await;
    let args = [
        "send",
        "conversation",
        "--conversation-id",
        CONVERSATION,
        "--text",
        "hi",
    ];
    let out = Cli::new(&mock.uri()).run(&args).await;
    out.assert_code(2);
    assert!(out.stderr.contains("access token"), "{out:?}");
    let out = Cli::new(&mock.uri())
        .without("KENAR_HOOK__DIVAR__API_KEY")
        .env("KENAR_HOOK_ACCESS_TOKEN", TOKEN)
        .run(&args)
        .await;
    out.assert_code(2).assert_no_secrets(&[]);
    assert!(out.stderr.contains("divar.api_key"), "{out:?}");
}

#[tokio::test]
async fn a_malformed_button_flag_exits_2() {
    let mock = silent_divar().await;
    let cli = Cli::new(&mock.uri());
    let mut args = legacy_link_args(&cli.token_file(TOKEN));
    let at = args.iter().position(|a| a == "--sender-link").unwrap();
    args[at + 1] = "Caption,INFO,not-a-pair".into();
    let out = cli.run(&strs(&args)).await;
    out.assert_code(2);
    assert!(out.stderr.contains("--sender-link"), "{out:?}");
    args[at] = "--sender-direct-link".into();
    args[at + 1] = "Caption,INFO,not a url".into();
    cli.run(&strs(&args)).await.assert_code(2);
}

#[tokio::test]
async fn a_buttons_file_beyond_the_limits_or_of_another_shape_exits_2() {
    let mock = silent_divar().await;
    let cli = Cli::new(&mock.uri()).env("KENAR_HOOK_ACCESS_TOKEN", TOKEN);
    let row =
        json!({"buttons": [{"caption": "a", "action": {"open_direct_link": "https://x.example"}}]});
    let too_many = json!({"sender_buttons": {"rows": [row, row, row, row]}});
    let bare_grid = json!({"rows": [row]});
    for (name, contents) in [("rows.json", too_many), ("grid.json", bare_grid)] {
        let file = cli.file(name, &contents.to_string());
        let out = cli
            .run(&[
                "send",
                "conversation",
                "--conversation-id",
                CONVERSATION,
                "--text",
                "hi",
                "--buttons-json",
                &file,
                "--json",
            ])
            .await;
        out.assert_code(2);
        assert_eq!(out.json()["error"]["exit_code"], 2);
    }
}

#[tokio::test]
async fn a_recipient_restriction_exits_3_without_a_retry() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(412)
                .set_body_json(json_fixture("send_message_v2_error_412.json")),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let out = Cli::new(&mock.uri())
        .env("KENAR_HOOK_ACCESS_TOKEN", TOKEN)
        .run(&[
            "send",
            "conversation",
            "--conversation-id",
            CONVERSATION,
            "--text",
            "hi",
            "--json",
        ])
        .await;
    out.assert_code(3).assert_no_secrets(&[]);
    let error = &out.json()["error"];
    assert_eq!(error["kind"], "recipient_restricted");
    assert_eq!(error["exit_code"], 3);
}

#[tokio::test]
async fn a_persistent_503_with_retry_after_exits_4_after_the_configured_attempts() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .expect(3)
        .mount(&mock)
        .await;
    let cli = Cli::new(&mock.uri());
    let out = cli
        .run(&strs(&legacy_link_args(&cli.token_file(TOKEN))))
        .await;
    out.assert_code(4).assert_no_secrets(&[]);
    assert!(
        out.stderr.contains("trying again"),
        "retries are logged: {out:?}"
    );
}

#[tokio::test]
async fn a_bot_send_answered_after_the_timeout_is_sent_once_and_exits_5() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json_fixture("chatbot_send_message_response.json"))
                .set_delay(std::time::Duration::from_millis(1_500)),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let out = Cli::new(&mock.uri())
        .env("KENAR_HOOK__DIVAR__REQUEST_TIMEOUT_MS", "1000")
        .run(&[
            "send",
            "bot",
            "--conversation-id",
            CONVERSATION,
            "--text",
            "hi",
            "--json",
        ])
        .await;
    out.assert_code(5).assert_no_secrets(&[]);
    let error = &out.json()["error"];
    assert_eq!(error["kind"], "outcome_unknown");
    assert_eq!(error["exit_code"], 5);
    assert!(
        out.stderr.contains("look in the conversation"),
        "the user is told to check before resending: {out:?}"
    );
    assert!(!out.stderr.contains("trying again"), "{out:?}");
}

#[tokio::test]
async fn a_legacy_send_answered_500_is_sent_once_and_exits_5() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&mock)
        .await;
    let cli = Cli::new(&mock.uri());
    let out = cli
        .run(&strs(&legacy_link_args(&cli.token_file(TOKEN))))
        .await;
    out.assert_code(5).assert_no_secrets(&[]);
    assert!(out.stderr.contains("outcome unknown"), "{out:?}");
}
