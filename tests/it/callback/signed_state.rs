//! The signed state: through the redirect, and checked by `verify-state`.

use kenar_hook::callback::state;

use super::*;

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

#[test]
fn verify_state_cli_exits_0_for_valid_and_1_for_tampered_states() {
    use kenar_hook::callback::click::Click;
    use kenar_hook::store::ClickVersion;
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

on_both_backends!(signed_state_round_trips_through_the_redirect,);
