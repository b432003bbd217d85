//! The client keys of section `divar`: defaults, environment variables and a settings file.

use std::collections::HashMap;

use kenar_hook::config::Settings;
use secrecy::ExposeSecret;

fn load(pairs: &[(&str, &str)]) -> Result<Settings, String> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_from(None, &env).map_err(|e| e.to_string())
}

#[test]
fn the_client_defaults_to_divars_hosts_without_an_api_key() {
    let client = load(&[]).unwrap().divar.client;
    assert!(client.api_key.is_none());
    assert_eq!(client.base_url, "https://api.divar.ir");
    assert_eq!(client.open_api_base_url, "https://open-api.divar.ir");
    assert_eq!(
        client.legacy_register_path,
        "/v1/open-platform/notify/chat/post-conversations"
    );
    assert_eq!(
        (client.connect_timeout_ms, client.request_timeout_ms),
        (3_000, 10_000)
    );
    assert_eq!(
        (
            client.retry_max_attempts,
            client.retry_base_delay_ms,
            client.retry_max_delay_ms,
            client.retry_deadline_ms
        ),
        (4, 200, 5_000, 30_000)
    );
}

#[test]
fn client_keys_are_read_from_the_environment_beside_the_identification_keys() {
    let s = load(&[
        ("KENAR_HOOK__DIVAR__API_KEY", "key-from-env"),
        ("KENAR_HOOK__DIVAR__BASE_URL", "http://127.0.0.1:4000"),
        (
            "KENAR_HOOK__DIVAR__OPEN_API_BASE_URL",
            "http://127.0.0.1:4001",
        ),
        ("KENAR_HOOK__DIVAR__RETRY_MAX_ATTEMPTS", "2"),
        ("KENAR_HOOK__DIVAR__LEGACY_REGISTER_PATH", "/v2/x"),
        (
            "KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS",
            "key-number-one-0001-0123456789abcd,key-number-two-0002-0123456789abcd",
        ),
    ])
    .unwrap();
    let client = &s.divar.client;
    assert_eq!(
        client.api_key.as_ref().unwrap().expose_secret(),
        "key-from-env"
    );
    assert_eq!(client.base_url, "http://127.0.0.1:4000");
    assert_eq!(client.open_api_base_url, "http://127.0.0.1:4001");
    assert_eq!(client.retry_max_attempts, 2);
    assert_eq!(client.legacy_register_path, "/v2/x");
    assert_eq!(s.divar.identification_keys.len(), 2);
}

#[test]
fn an_all_digit_api_key_from_the_environment_stays_text() {
    let s = load(&[("KENAR_HOOK__DIVAR__API_KEY", "12345678")]).unwrap();
    assert_eq!(s.divar.client.api_key.unwrap().expose_secret(), "12345678");
}

#[test]
fn a_bad_client_value_names_its_key() {
    let error = load(&[("KENAR_HOOK__DIVAR__RETRY_MAX_ATTEMPTS", "many")]).unwrap_err();
    assert!(error.contains("divar.retry_max_attempts"), "{error}");
}

#[test]
fn client_keys_are_read_from_a_settings_file_and_the_key_stays_out_of_debug() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kh.toml");
    std::fs::write(
        &path,
        "[divar]\napi_key = \"file-key-SECRET\"\nrequest_timeout_ms = 1500\n",
    )
    .unwrap();
    let s = Settings::load_from(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(s.divar.client.request_timeout_ms, 1_500);
    assert_eq!(
        s.divar.client.api_key.as_ref().unwrap().expose_secret(),
        "file-key-SECRET"
    );
    assert!(!format!("{s:?}").contains("file-key-SECRET"));
}
