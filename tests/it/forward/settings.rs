//! `[[forward.endpoints]]`: a bad endpoint stops start-up naming its key, never its secret.

use std::collections::HashMap;

use kenar_hook::config::Settings;

use super::SECRET;

fn load(toml: &str) -> Result<Settings, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forward.toml");
    std::fs::write(&path, toml).unwrap();
    Settings::load_from(Some(&path), &HashMap::new()).map_err(|e| e.to_string())
}

fn endpoint(extra: &str) -> String {
    format!(
        "[forward]\nallow_private_http = true\n\n[[forward.endpoints]]\nname = \"backend\"\n\
         url = \"https://app.example.ir/hook\"\nsecret = \"{SECRET}\"\n{extra}"
    )
}

#[test]
fn an_endpoint_gets_the_documented_defaults() {
    let s = load(&endpoint("")).unwrap();
    let e = &s.forward.endpoints[0];
    assert_eq!(e.include, ["messages"]);
    assert_eq!((e.timeout_ms, e.max_attempts), (10_000, 12));
    assert!(e.post_tokens.is_empty() && e.types.is_empty());
    assert!(
        Settings::load_from(None, &HashMap::new())
            .unwrap()
            .forward
            .endpoints
            .is_empty()
    );
}

#[test]
fn a_bad_endpoint_stops_start_up_naming_its_key() {
    let cases = [
        (
            "url = \"http://app.example.ir/hook\"\n",
            "forward.endpoints[0].url",
        ),
        ("include = [\"message\"]\n", "forward.endpoints[0].include"),
        ("max_attempts = 0\n", "forward.endpoints[0].max_attempts"),
        ("max_in_flight = 0\n", "forward.endpoints[0].max_in_flight"),
        ("timeout_ms = 0\n", "forward.endpoints[0].timeout_ms"),
    ];
    for (extra, key) in cases {
        // A later key replaces the first in TOML only if the first is absent: rebuild.
        let toml = endpoint("").replace("url = \"https://app.example.ir/hook\"\n", "") + extra;
        let toml = if extra.starts_with("url") {
            toml
        } else {
            toml + "url = \"https://app.example.ir/hook\"\n"
        };
        let err = load(&toml).unwrap_err();
        assert!(err.contains(key), "{extra}: {err}");
    }
}

#[test]
fn a_bad_secret_is_refused_without_being_shown() {
    let toml = endpoint("").replace(SECRET, "not-a-whsec-secret-value");
    let err = load(&toml).unwrap_err();
    assert!(
        err.contains("forward.endpoints[0].secret: must start with whsec_"),
        "{err}"
    );
    assert!(!err.contains("not-a-whsec-secret-value"), "{err}");
}

#[test]
fn names_are_unique_and_misspelt_keys_are_refused() {
    let two = endpoint("") + &endpoint("").replace("[forward]\nallow_private_http = true\n", "");
    let err = load(&two).unwrap_err();
    assert!(
        err.contains("forward.endpoints[1].name: \"backend\" is used twice"),
        "{err}"
    );

    let err = load(&endpoint("max_atempts = 3\n")).unwrap_err();
    assert!(
        err.contains("forward.endpoints[0].max_atempts: unknown setting"),
        "{err}"
    );
    assert!(err.contains("did you mean max_attempts?"), "{err}");
}

#[test]
fn an_endpoints_secrets_can_be_read_from_files_and_config_check_masks_them() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("endpoint_secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let previous = dir.path().join("previous_secrets");
    std::fs::write(&previous, format!("{SECRET}\n")).unwrap();
    let path = dir.path().join("forward.toml");
    std::fs::write(
        &path,
        format!(
            "[[forward.endpoints]]\nname = \"backend\"\nurl = \"https://app.example.ir/hook\"\n\
             secret_file = {:?}\nprevious_secrets_file = {:?}\n",
            secret.display().to_string(),
            previous.display().to_string()
        ),
    )
    .unwrap();
    let (s, effective) = Settings::load_described(Some(&path), &HashMap::new()).unwrap();
    use secrecy::ExposeSecret;
    let e = &s.forward.endpoints[0];
    assert_eq!(e.secret.expose_secret(), SECRET);
    assert_eq!(e.previous_secrets.len(), 1);
    let shown = format!("{effective:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("secret = \\\"********\\\""), "{shown}");

    // Both ways at once is refused, naming the entry.
    std::fs::write(
        &path,
        format!(
            "[[forward.endpoints]]\nname = \"backend\"\nurl = \"https://app.example.ir/hook\"\n\
             secret = \"{SECRET}\"\nsecret_file = {:?}\n",
            secret.display().to_string()
        ),
    )
    .unwrap();
    let err = Settings::load_from(Some(&path), &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("forward.endpoints[0].secret_file"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
}
