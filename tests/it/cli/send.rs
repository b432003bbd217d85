//! `kenar-hook send legacy | conversation | bot`: dry runs, sent requests, the access token and
//! exit codes.

use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const LEGACY_PATH: &str = "/v2/open-platform/chat/conversation";

/// The button fields of the send message v2 fixture, as a `--buttons-json` file holds them.
fn v2_buttons_file() -> Value {
    let mut body = json_fixture("send_message_v2_request.json");
    let map = body.as_object_mut().unwrap();
    map.remove("type");
    map.remove("message");
    body
}

#[tokio::test]
async fn legacy_dry_run_prints_the_exact_request_with_secrets_masked_and_sends_nothing() {
    let mock = silent_divar().await;
    let cli = Cli::new(&mock.uri());
    let mut args = legacy_link_args(&cli.token_file(TOKEN));
    args.push("--dry-run".into());
    let out = cli.run(&strs(&args)).await;
    out.assert_code(0).assert_no_secrets(&[]);
    let (headers, body) = listing(&out.stdout, &format!("POST {}{LEGACY_PATH}", mock.uri()));
    for expected in [
        "content-type: application/json",
        "x-api-key: ***",
        "x-access-token: ***",
    ] {
        assert!(headers.iter().any(|h| h == expected), "{headers:?}");
    }
    assert_eq!(body, json_fixture("legacy_send_message_link.json"));
}

#[tokio::test]
async fn legacy_send_reaches_divar_with_the_token_file_over_the_environment() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(LEGACY_PATH))
        .and(header("x-api-key", API_KEY))
        .and(header("x-access-token", TOKEN))
        .and(body_json(json_fixture(
            "legacy_send_message_direct_link.json",
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json_fixture("legacy_send_message_response.json")),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let cli = Cli::new(&mock.uri()).env("KENAR_HOOK_ACCESS_TOKEN", "not-this-one");
    let token = cli.token_file(TOKEN);
    let report = "https://app.example-kenar.ir/reports/ord_58213";
    let out = cli
        .run(&[
            "send",
            "legacy",
            "--user-id",
            USER,
            "--post-token",
            POST,
            "--peer-id",
            PEER,
            "--text",
            "گزارش کارشناسی آماده است.",
            "--sender-direct-link",
            &format!("دریافت گزارش,FILE,{report}?side=seller"),
            "--receiver-direct-link",
            &format!("دریافت گزارش,FILE,{report}?side=buyer"),
            "--access-token-file",
            &token,
        ])
        .await;
    out.assert_code(0).assert_no_secrets(&[]);
    assert_eq!(out.stdout.trim(), "sent (Divar: 200 success)");
}

#[tokio::test]
async fn conversation_dry_run_as_json_shows_the_buttons_file_and_a_masked_bearer() {
    let mock = silent_divar().await;
    let cli = Cli::new(&mock.uri()).env("KENAR_HOOK_ACCESS_TOKEN", TOKEN);
    let file = cli.file("buttons.json", &v2_buttons_file().to_string());
    let out = cli
        .run(&[
            "send",
            "conversation",
            "--conversation-id",
            CONVERSATION,
            "--text",
            json_fixture("send_message_v2_request.json")["message"]
                .as_str()
                .unwrap(),
            "--buttons-json",
            &file,
            "--dry-run",
            "--json",
        ])
        .await;
    out.assert_code(0).assert_no_secrets(&[]);
    let request = &out.json()["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(
        request["url"],
        format!(
            "{}/v2/open-platform/conversations/{CONVERSATION}/messages",
            mock.uri()
        )
    );
    assert_eq!(request["headers"]["authorization"], "Bearer ***");
    assert_eq!(request["headers"]["x-api-key"], "***");
    assert_eq!(
        request["body"],
        json_fixture("send_message_v2_request.json")
    );
}

#[tokio::test]
async fn conversation_send_takes_the_token_from_the_environment_and_answers_json() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/v2/open-platform/conversations/{CONVERSATION}/messages"
        )))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json!({"type": "TEXT", "message": "hi"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json_fixture("send_message_v2_response.json")),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let cli = Cli::new(&mock.uri()).env("KENAR_HOOK_ACCESS_TOKEN", TOKEN);
    let out = cli
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
    out.assert_code(0).assert_no_secrets(&[]);
    assert_eq!(out.json()["sent"], true);
}

#[tokio::test]
async fn bot_to_a_conversation_needs_only_the_api_key() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1/open-platform/chat/bot/conversations/{CONVERSATION}/messages"
        )))
        .and(header("x-api-key", API_KEY))
        .and(body_json(json!({"type": "TEXT", "text_message": "hi"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json_fixture("chatbot_send_message_response.json")),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let cli = Cli::new(&mock.uri());
    let out = cli
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
    out.assert_code(0).assert_no_secrets(&[]);
    assert_eq!(
        out.json(),
        json!({"sent": true, "conversation_id": CONVERSATION})
    );
    let received = mock.received_requests().await.unwrap();
    assert!(!received[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn bot_dry_run_to_a_user_carries_a_masked_bearer_and_the_buttons() {
    let mock = silent_divar().await;
    let cli = Cli::new(&mock.uri()).env("KENAR_HOOK_ACCESS_TOKEN", TOKEN);
    let grid = json!({"rows": [{"buttons": [
        {"caption": "Start", "icon": "INFO", "action": {"open_direct_link": "https://x.example"}}
    ]}]});
    let file = cli.file("bot.json", &json!({ "buttons": grid }).to_string());
    let out = cli
        .run(&[
            "send",
            "bot",
            "--user-id",
            USER,
            "--text",
            "hi",
            "--buttons-json",
            &file,
            "--dry-run",
        ])
        .await;
    out.assert_code(0).assert_no_secrets(&[]);
    let (headers, body) = listing(
        &out.stdout,
        &format!(
            "POST {}/v1/open-platform/chat/bot/users/{USER}/messages",
            mock.uri()
        ),
    );
    assert!(headers.iter().any(|h| h == "authorization: Bearer ***"));
    assert_eq!(
        body,
        json!({"type": "TEXT", "text_message": "hi", "buttons": grid})
    );
}
