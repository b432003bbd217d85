//! Section `oauth`: off by default, keys checked without showing them.

use std::collections::HashMap;

use kenar_hook::config::Settings;
use secrecy::ExposeSecret;

use super::vault_key;

fn load(pairs: &[(&str, &str)]) -> Result<Settings, String> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_from(None, &env).map_err(|e| e.to_string())
}

const ON: [(&str, &str); 3] = [
    ("KENAR_HOOK__OAUTH__CLIENT_ID", "example-app-slug"),
    (
        "KENAR_HOOK__OAUTH__CLIENT_SECRET",
        "client-secret-SHOWN-NOWHERE",
    ),
    (
        "KENAR_HOOK__OAUTH__REDIRECT_URL",
        "https://hooks.example.ir/oauth/divar/callback",
    ),
];

#[test]
fn sign_in_is_off_by_default_and_says_how_to_turn_it_on() {
    let oauth = load(&[]).unwrap().oauth;
    assert!(!oauth.enabled());
    assert_eq!(oauth.base_url, "https://oauth.divar.ir");
    assert_eq!(oauth.refresh_at_fraction, 0.8);
    assert!(oauth.why_off().unwrap().contains("oauth.vault_keys"));
}

#[test]
fn vault_keys_and_scopes_are_lists_in_the_environment() {
    let keys = format!("{},{}", vault_key(1), vault_key(2));
    let mut env = ON.to_vec();
    env.push(("KENAR_HOOK__OAUTH__VAULT_KEYS", &keys));
    env.push((
        "KENAR_HOOK__OAUTH__DEFAULT_SCOPES",
        "USER_PHONE,POST_ADDON_CREATE.AZx7Kp2Q",
    ));
    let oauth = load(&env).unwrap().oauth;
    assert!(oauth.enabled());
    assert_eq!(oauth.vault_keys.len(), 2);
    assert_eq!(oauth.vault_keys[1].expose_secret(), vault_key(2));
    assert_eq!(
        oauth.scopes(&[]),
        [
            "USER_PHONE",
            "POST_ADDON_CREATE.AZx7Kp2Q",
            "USER_ID",
            "offline_access"
        ]
    );
    assert!(!format!("{oauth:?}").contains("client-secret-SHOWN-NOWHERE"));
}

#[test]
fn a_vault_key_that_is_not_32_bytes_is_refused_by_name_without_its_value() {
    let short = "c2hvcnQta2V5LVNIT1dOLU5PV0hFUkU=";
    let mut env = ON.to_vec();
    env.push(("KENAR_HOOK__OAUTH__VAULT_KEYS", short));
    let error = load(&env).unwrap_err();
    assert!(
        error.contains("oauth.vault_keys[0]: holds 23 bytes; expected 32"),
        "{error}"
    );
    assert!(!error.contains(short), "{error}");
}

#[test]
fn a_vault_key_without_the_app_settings_is_refused() {
    let key = vault_key(1);
    let error = load(&[("KENAR_HOOK__OAUTH__VAULT_KEYS", &key)]).unwrap_err();
    assert!(
        error.contains("oauth.client_id: must be set when oauth.vault_keys is"),
        "{error}"
    );
}

#[test]
fn a_misspelt_oauth_key_is_refused_with_a_suggestion() {
    let error = load(&[("KENAR_HOOK__OAUTH__CLIENT_SECRT", "x")]).unwrap_err();
    assert!(
        error.contains("oauth.client_secrt: unknown setting (did you mean oauth.client_secret?)"),
        "{error}"
    );
}
