//! Redirect rules: the first match wins, placeholders are encoded, targets stay on the allow-list.

use super::*;

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
    assert_eq!(clicks[0].click.outcome, ClickOutcome::Disallowed);
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
            .all(|c| c.click.outcome == ClickOutcome::NoMatch && c.click.url.is_none())
    );
}

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

on_both_backends!(
    the_first_matching_rule_wins,
    placeholders_are_percent_encoded,
    a_target_off_the_allowlist_after_filling_is_refused,
    no_rule_and_no_fallback_is_an_error_without_a_url,
);
