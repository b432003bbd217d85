//! `kenar-hook scope ...`: scope strings, printed without settings for Divar or a network.

use serde_json::json;

use super::*;

/// No API key, and a Divar that cannot be reached: scope commands need neither.
fn offline() -> Cli {
    Cli::new("http://127.0.0.1:9").without("KENAR_HOOK__DIVAR__API_KEY")
}

#[tokio::test]
async fn legacy_send_reproduces_the_seed_example_byte_for_byte() {
    let out = offline()
        .run(&[
            "scope",
            "legacy-send",
            "--user-id",
            "e9ba8a81-9583-4f7c-af54-b07df089d971",
            "--post-token",
            "AZf3Uqr3",
            "--peer-id",
            "1697004f-e902-44c2-bbbe-bf8e20d54bff",
        ])
        .await;
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "CHAT_SEND_MESSAGE_OAUTH__ZTliYThhODEtOTU4My00ZjdjLWFmNTQtYjA3ZGYwODlkOTcxOkFaZjNVcXIzOjE2OTcwMDRmLWU5MDItNDRjMi1iYmJlLWJmOGUyMGQ1NGJmZg==\n"
    );
}

#[tokio::test]
async fn dotted_scopes_name_their_resource() {
    let vectors = json_fixture("legacy_oauth_scope_vectors.json");
    let other = &vectors["other_scope_strings"];
    let conversation = "3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58";
    let cases = [
        (
            vec!["post-read", "--post-token", POST],
            &other["read_all_post_conversations_2024"],
        ),
        (
            vec!["post-send", "--post-token", POST],
            &other["send_in_all_post_conversations_2024"],
        ),
        (
            vec!["conversation-send", "--conversation-id", conversation],
            &other["send_in_one_conversation_current"],
        ),
        (
            vec!["conversation-read", "--conversation-id", conversation],
            &other["read_one_conversation_current"],
        ),
        (
            vec![
                "message-send",
                "--user-id",
                USER,
                "--post-token",
                POST,
                "--peer-id",
                PEER,
            ],
            &vectors["vectors"][1]["scope_2024_dot"],
        ),
    ];
    let cli = offline();
    for (args, expected) in cases {
        let out = cli.run(&[&["scope"], args.as_slice()].concat()).await;
        out.assert_code(0);
        assert_eq!(
            out.stdout.trim_end(),
            expected.as_str().unwrap(),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn authorize_percent_encodes_the_space_separated_list() {
    let vector = &json_fixture("legacy_oauth_scope_vectors.json")["vectors"][1];
    let cli = offline();
    let out = cli
        .run(&[
            "scope",
            "authorize",
            vector["scope_2024_dot"].as_str().unwrap(),
            &format!("CHAT_POST_CONVERSATIONS_READ.{POST}"),
        ])
        .await;
    out.assert_code(0);
    assert_eq!(
        out.stdout.trim_end(),
        vector["scope_query_param_encoded"].as_str().unwrap()
    );
}

#[tokio::test]
async fn authorize_keeps_a_legacy_scope_as_written_and_answers_json() {
    let out = offline()
        .run(&[
            "scope",
            "authorize",
            "CHAT_SEND_MESSAGE_OAUTH__YWI/OkFa= USER_PHONE",
            "--json",
        ])
        .await;
    out.assert_code(0);
    assert_eq!(
        out.json(),
        json!({
            "scope": "CHAT_SEND_MESSAGE_OAUTH__YWI%2FOkFa%3D%20USER_PHONE",
            "scopes": ["CHAT_SEND_MESSAGE_OAUTH__YWI/OkFa=", "USER_PHONE"],
        })
    );
}

#[tokio::test]
async fn an_empty_id_or_scope_exits_2() {
    let cli = offline();
    cli.run(&["scope", "post-read", "--post-token", ""])
        .await
        .assert_code(2);
    cli.run(&["scope", "authorize", ".resource"])
        .await
        .assert_code(2);
    cli.run(&["scope", "authorize"]).await.assert_code(2);
}
