//! Layered settings, validation, and secrets kept out of `Debug`.

use std::collections::HashMap;

use kenar_hook::config::{LogFormat, Settings};
use secrecy::ExposeSecret;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_are_the_documented_ones() {
    let s = Settings::load_from(None, &HashMap::new()).unwrap();
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.server.body_limit_bytes, 256 * 1024);
    assert_eq!(
        s.database.url.expose_secret(),
        "sqlite://data/kenar-hook.db"
    );
    assert_eq!(s.metrics.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(s.log.format, LogFormat::Pretty);
    assert!(s.divar.identification_keys.is_empty());
    assert_eq!(
        s.database.sqlite_synchronous,
        kenar_hook::config::SqliteSync::Normal
    );
    assert_eq!(s.ingest.writers, None, "chosen by database");
    assert_eq!(s.ingest.batch_max, 128);
}

#[test]
fn environment_overrides_with_comma_separated_lists() {
    let s = Settings::load_from(
        None,
        &env(&[
            ("KENAR_HOOK__SERVER__LISTEN", "0.0.0.0:9000"),
            (
                "KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS",
                "key-number-one-0001-0123456789abcd,key-number-two-0002-0123456789abcd",
            ),
            ("KENAR_HOOK__LOG__FORMAT", "json"),
            ("KENAR_HOOK__SERVER__BODY_LIMIT_BYTES", "1024"),
        ]),
    )
    .unwrap();
    assert_eq!(s.server.listen.to_string(), "0.0.0.0:9000");
    let keys: Vec<&str> = s
        .divar
        .identification_keys
        .iter()
        .map(|k| k.expose_secret())
        .collect();
    assert_eq!(
        keys,
        [
            "key-number-one-0001-0123456789abcd",
            "key-number-two-0002-0123456789abcd"
        ]
    );
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.server.body_limit_bytes, 1024);
}

#[test]
fn database_url_is_honoured_unless_the_prefixed_variable_is_set() {
    let s = Settings::load_from(None, &env(&[("DATABASE_URL", "postgres://u:p@db/kh")])).unwrap();
    assert_eq!(s.database.url.expose_secret(), "postgres://u:p@db/kh");
    let s = Settings::load_from(
        None,
        &env(&[
            ("DATABASE_URL", "postgres://u:p@db/kh"),
            ("KENAR_HOOK__DATABASE__URL", "sqlite://other.db"),
        ]),
    )
    .unwrap();
    assert_eq!(s.database.url.expose_secret(), "sqlite://other.db");
}

#[test]
fn a_config_file_is_layered_between_defaults_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kh.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:7000\"\nrequest_timeout_ms = 1234\n",
    )
    .unwrap();
    let s = Settings::load_from(
        Some(&file),
        &env(&[("KENAR_HOOK__SERVER__LISTEN", "127.0.0.1:7001")]),
    )
    .unwrap();
    assert_eq!(s.server.request_timeout_ms, 1234);
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:7001");
    assert_eq!(
        s.server.body_limit_bytes,
        256 * 1024,
        "untouched keys keep defaults"
    );
}

#[test]
fn invalid_settings_name_the_key() {
    let cases = [
        ("KENAR_HOOK__SERVER__LISTEN", "nonsense", "server.listen"),
        ("KENAR_HOOK__DATABASE__URL", "mysql://x", "database.url"),
        (
            "KENAR_HOOK__SERVER__BODY_LIMIT_BYTES",
            "0",
            "server.body_limit_bytes",
        ),
        ("KENAR_HOOK__LOG__FORMAT", "xml", "log.format"),
        (
            "KENAR_HOOK__DATABASE__MAX_CONNECTIONS",
            "0",
            "database.max_connections",
        ),
        (
            "KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS",
            "good-key-of-16-chars, ",
            "divar.identification_keys",
        ),
        (
            "KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS",
            "short-key",
            "divar.identification_keys",
        ),
        (
            "KENAR_HOOK__DATABASE__SQLITE_SYNCHRONOUS",
            "off",
            "database.sqlite_synchronous",
        ),
        ("KENAR_HOOK__INGEST__WRITERS", "0", "ingest.writers"),
        (
            "KENAR_HOOK__SERVER__IDLE_TIMEOUT_MS",
            "10000",
            "server.idle_timeout_ms",
        ),
        (
            "KENAR_HOOK__SERVER__MAX_CONNECTIONS",
            "0",
            "server.max_connections",
        ),
        (
            "KENAR_HOOK__INGEST__WRITE_TIMEOUT_MS",
            "0",
            "ingest.write_timeout_ms",
        ),
        (
            "KENAR_HOOK__API__PAGE_MAX_BYTES",
            "10",
            "api.page_max_bytes",
        ),
        ("KENAR_HOOK__API__MAX_STREAMS", "0", "api.max_streams"),
        ("KENAR_HOOK__INGEST__WRITERS", "17", "ingest.writers"),
    ];
    for (key, value, named) in cases {
        let err = Settings::load_from(None, &env(&[(key, value)])).unwrap_err();
        let line = err.to_string();
        assert!(line.contains(named), "{key}={value}: {line}");
        assert!(!line.contains('\n'), "one line: {line}");
    }
}

#[test]
fn a_missing_config_file_is_an_error() {
    let err = Settings::load_from(
        Some(std::path::Path::new("/nonexistent/kh.toml")),
        &HashMap::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/kh.toml"));
}

#[test]
fn debug_output_hides_secrets() {
    let s = Settings::load_from(
        None,
        &env(&[
            (
                "KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS",
                "very-secret-key-7f3a-0123456789abcdef",
            ),
            ("DATABASE_URL", "postgres://user:hunter2@db/kh"),
        ]),
    )
    .unwrap();
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("very-secret-key-7f3a-0123456789abcdef"),
        "{debug}"
    );
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn environment_values_that_look_like_numbers_stay_text() {
    let s = Settings::load_from(
        None,
        &env(&[
            (
                "KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS",
                "01234567890123456789012345678901",
            ),
            (
                "KENAR_HOOK__API__TOKENS",
                "0070000000000000000000000000000001",
            ),
            ("KENAR_HOOK__DIVAR__API_KEY", "000042"),
            (
                "KENAR_HOOK__CALLBACK__SIGNING_KEY",
                "1e300000000000000000000000000000",
            ),
            ("KENAR_HOOK__DIVAR__RETRY_MAX_ATTEMPTS", "7"),
            ("KENAR_HOOK__METRICS__ENABLED", "false"),
        ]),
    )
    .unwrap();
    let text = |v: &[secrecy::SecretString]| {
        v.iter()
            .map(|k| k.expose_secret().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        text(&s.divar.identification_keys),
        ["01234567890123456789012345678901"]
    );
    assert_eq!(text(&s.api.tokens), ["0070000000000000000000000000000001"]);
    assert_eq!(
        s.divar.client.api_key.as_ref().unwrap().expose_secret(),
        "000042"
    );
    assert_eq!(
        s.callback.signing_key.as_ref().unwrap().expose_secret(),
        "1e300000000000000000000000000000"
    );
    assert_eq!(s.divar.client.retry_max_attempts, 7);
    assert!(!s.metrics.enabled);
}

#[test]
fn a_short_identification_key_stops_start_up_and_says_how_to_make_one() {
    let err = Settings::load_from(
        None,
        &env(&[(
            "KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS",
            "a-good-long-key-0001-a-good-long-key,thirty-one-characters-xxxxxxxxx",
        )]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("divar.identification_keys"), "{err}");
    assert!(err.contains("31 characters"), "{err}");
    assert!(err.contains("kenar-hook secret new"), "{err}");
    assert!(!err.contains("thirty-one"), "never the key: {err}");
    let ok = Settings::load_from(
        None,
        &env(&[(
            "KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS",
            "thirty-two-characters-xxxxxxxxxx",
        )]),
    );
    assert!(ok.is_ok());
}

#[test]
fn a_short_signing_key_or_webhook_secret_stops_start_up_naming_the_key_only() {
    let err = Settings::load_from(
        None,
        &env(&[("KENAR_HOOK__CALLBACK__SIGNING_KEY", "a long random secret")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("callback.signing_key: a key of 20 characters"),
        "{err}"
    );
    assert!(err.contains("kenar-hook secret new"), "{err}");
    assert!(!err.contains("random secret"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kh.toml");
    // 18 random bytes: below the 24 the settings ask for.
    std::fs::write(
        &path,
        "[[forward.endpoints]]\nname = \"a\"\nurl = \"https://x.example/h\"\n\
         secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZI\"\n",
    )
    .unwrap();
    let err = Settings::load_from(Some(&path), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("forward.endpoints[0].secret: holds 18 bytes"),
        "{err}"
    );
    assert!(err.contains("secret new --whsec"), "{err}");
    assert!(!err.contains("MfKQ9r8"), "{err}");
}

/// A settings file's error for `toml`, as one line.
fn file_error(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kh.toml");
    std::fs::write(&path, toml).unwrap();
    Settings::load_from(Some(&path), &HashMap::new())
        .unwrap_err()
        .to_string()
}

#[test]
fn unknown_keys_in_a_file_stop_start_up_with_a_suggestion() {
    let err = file_error("[server]\nlisten_addr = \"0.0.0.0:8080\"\n");
    assert!(err.contains("server.listen_addr"), "{err}");
    assert!(err.contains("kh.toml"), "names the file: {err}");
    assert!(
        err.contains("unknown setting (did you mean server.listen?)"),
        "{err}"
    );

    let err = file_error("[serverr]\nlisten = \"0.0.0.0:8080\"\n");
    assert!(
        err.contains("serverr.listen: unknown setting (did you mean server.listen?)"),
        "{err}"
    );

    // A misspelt rule condition once matched every click.
    let err = file_error(
        "[callback]\nallowed_hosts = [\"app.example.ir\"]\n\n[[callback.rules]]\nname = \"owner\"\n\
         sidee = \"supply\"\nurl = \"https://app.example.ir/x\"\n",
    );
    assert!(err.contains("callback.rules[0].sidee"), "{err}");
    assert!(err.contains("did you mean side?"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unknown_keys_in_the_environment_stop_start_up_naming_the_variable() {
    let err = Settings::load_from(
        None,
        &env(&[("KENAR_HOOK__SERVER__LISTEN_ADDR", "0.0.0.0:8080")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("server.listen_addr"), "{err}");
    assert!(err.contains("KENAR_HOOK__SERVER__LISTEN_ADDR"), "{err}");
    assert!(err.contains("did you mean server.listen?"), "{err}");
}

#[test]
fn a_section_key_at_the_top_of_a_file_is_pointed_to_its_section() {
    let err = file_error("listen = \"0.0.0.0:8080\"\n");
    assert!(
        err.contains("listen: unknown setting (did you mean server.listen"),
        "{err}"
    );
    let err = file_error("[api]\nlisten = \"0.0.0.0:8080\"\n");
    assert!(err.contains("did you mean server.listen"), "{err}");
}

#[test]
fn a_prefixed_variable_that_names_no_setting_is_warned_about_by_name() {
    let warnings = kenar_hook::config::unknown_variables(&env(&[
        ("KENAR_HOOK_API__TOKENS", "value-SECRET-1"),
        ("KENAR_HOOK_DIVAR_API_KEY", "value-SECRET-2"),
        ("KENAR_HOOK_CONFIG", "kh.toml"),
        ("KENAR_HOOK_ACCESS_TOKEN", "t"),
        ("KENAR_HOOK__SERVER__LISTEN", "0.0.0.0:1"),
        ("KENAR_HOOKS", "x"),
        ("OTHER_API__TOKENS", "x"),
    ]));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(
        warnings[0],
        "KENAR_HOOK_API__TOKENS matches no setting and is ignored \
         (did you mean KENAR_HOOK__API__TOKENS?)"
    );
    assert!(
        warnings[1].starts_with("KENAR_HOOK_DIVAR_API_KEY matches no setting")
            && warnings[1].ends_with("(did you mean KENAR_HOOK__DIVAR__API_KEY?)"),
        "{warnings:?}"
    );
    assert!(!warnings.join("\n").contains("SECRET"), "{warnings:?}");
}

#[test]
fn every_documented_key_and_optional_setting_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kh.toml");
    std::fs::write(
        &path,
        "[divar]\napi_key = \"k\"\n[ingest]\nwriters = 2\n[callback]\n\
         allowed_hosts = [\"app.example.ir\"]\nfallback_url = \"https://app.example.ir/\"\n\
         signing_key = \"a long random secret, long enough 0\"\n\n[[callback.rules]]\nname = \"r\"\n\
         source = \"CHAT_MESSAGE_ACTION\"\nversion = \"v2\"\npost_token = \"P\"\nside = \"demand\"\n\
         data = { anything = \"goes\" }\nurl = \"https://app.example.ir/{post_token}\"\n\
         text_message = \"hi\"\n",
    )
    .unwrap();
    let loaded = Settings::load_from(
        Some(&path),
        &env(&[
            ("KENAR_HOOK__DIVAR__API_KEY", "from-env"),
            ("DATABASE_URL", "sqlite://x.db"),
        ]),
    );
    assert!(loaded.is_ok(), "{:?}", loaded.err());
}

#[test]
fn bad_values_are_named_with_what_was_given_and_what_is_expected() {
    let cases = [
        (
            "KENAR_HOOK__LOG__FORMAT",
            "yaml",
            r#"log.format: got "yaml"; expected pretty or json"#,
        ),
        (
            "KENAR_HOOK__DATABASE__SQLITE_SYNCHRONOUS",
            "off",
            r#"database.sqlite_synchronous: got "off"; expected normal or full"#,
        ),
        (
            "KENAR_HOOK__PRIVACY__ON_REVOCATION",
            "delete",
            r#"privacy.on_revocation: got "delete"; expected keep or erase"#,
        ),
        (
            "KENAR_HOOK__RETENTION__MESSAGES_DAYS",
            "-1",
            "retention.messages_days",
        ),
        (
            "KENAR_HOOK__RETENTION__BATCH_SIZE",
            "0",
            "retention.batch_size: must be from 1 to 10000",
        ),
        (
            "KENAR_HOOK__RETENTION__EVENTS_DAYS",
            "3650000",
            "retention.events_days: 3650000 days is over 100 years; 0 keeps for ever",
        ),
        (
            "KENAR_HOOK__SERVER__LISTEN",
            "nonsense",
            r#"server.listen: got "nonsense"; expected host:port"#,
        ),
        (
            "KENAR_HOOK__SERVER__BODY_LIMIT_BYTES",
            "lots",
            r#"server.body_limit_bytes: got "lots"; expected an integer"#,
        ),
    ];
    for (key, value, expected) in cases {
        let err = Settings::load_from(None, &env(&[(key, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{key}={value}: {err}");
        assert!(!err.contains("variant constructor"), "{err}");
    }
}

#[test]
fn listen_addresses_may_name_a_host() {
    let s = Settings::load_from(
        None,
        &env(&[
            ("KENAR_HOOK__SERVER__LISTEN", "localhost:8080"),
            ("KENAR_HOOK__METRICS__LISTEN", "127.0.0.1:9191"),
        ]),
    )
    .unwrap();
    assert!(s.server.listen.ip().is_loopback());
    assert_eq!(s.server.listen.port(), 8080);
}

#[test]
fn the_default_database_lives_in_the_data_dir() {
    let s = Settings::load_from(
        None,
        &env(&[("KENAR_HOOK__SERVER__DATA_DIR", "/srv/kenar/mydata")]),
    )
    .unwrap();
    assert_eq!(
        s.database.url.expose_secret(),
        "sqlite:///srv/kenar/mydata/kenar-hook.db"
    );
    // A database set on its own stays where it was set.
    let s = Settings::load_from(
        None,
        &env(&[
            ("KENAR_HOOK__SERVER__DATA_DIR", "/srv/kenar/mydata"),
            ("DATABASE_URL", "sqlite:///var/db/other.db"),
        ]),
    )
    .unwrap();
    assert_eq!(s.database.url.expose_secret(), "sqlite:///var/db/other.db");
}

#[test]
fn every_secret_can_be_read_from_a_file_named_in_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let keys = write(
        "keys",
        "first-key-0123456789-0123456789abcd\n\nsecond-key-0123456789-0123456789abc\n",
    );
    let api_key = write("api_key", "divar-api-key\n");
    let tokens = write(
        "tokens",
        "token-one-0123456789abcdefghijklmnopq\ntoken-two-0123456789abcdefghijklmnopq\n",
    );
    let signing = write("signing", "signing-secret-0123456789abcdefghijk\r\n");
    let settings_file = dir.path().join("kh.toml");
    std::fs::write(
        &settings_file,
        format!("[divar]\nidentification_keys_file = {keys:?}\napi_key_file = {api_key:?}\n"),
    )
    .unwrap();
    let s = Settings::load_from(
        Some(&settings_file),
        &env(&[
            ("KENAR_HOOK__API__TOKENS_FILE", &tokens),
            ("KENAR_HOOK__CALLBACK__SIGNING_KEY_FILE", &signing),
        ]),
    )
    .unwrap();
    let exposed = |v: &[secrecy::SecretString]| -> Vec<String> {
        v.iter().map(|s| s.expose_secret().to_owned()).collect()
    };
    assert_eq!(
        exposed(&s.divar.identification_keys),
        [
            "first-key-0123456789-0123456789abcd",
            "second-key-0123456789-0123456789abc"
        ],
        "one per line, blank lines skipped"
    );
    assert_eq!(
        s.divar.client.api_key.as_ref().unwrap().expose_secret(),
        "divar-api-key",
        "the trailing newline is not part of the secret"
    );
    assert_eq!(
        exposed(&s.api.tokens),
        [
            "token-one-0123456789abcdefghijklmnopq",
            "token-two-0123456789abcdefghijklmnopq"
        ]
    );
    assert_eq!(
        s.callback.signing_key.as_ref().unwrap().expose_secret(),
        "signing-secret-0123456789abcdefghijk"
    );
}

#[test]
fn a_secret_file_that_cannot_be_read_or_a_secret_given_twice_is_refused() {
    let err = Settings::load_from(
        None,
        &env(&[("KENAR_HOOK__DIVAR__API_KEY_FILE", "/nonexistent/api_key")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("divar.api_key_file"), "{err}");
    assert!(
        err.contains("/nonexistent/api_key"),
        "names the path: {err}"
    );
    assert!(err.contains("no such file"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api_key");
    std::fs::write(&path, "from-the-file").unwrap();
    let err = Settings::load_from(
        None,
        &env(&[
            ("KENAR_HOOK__DIVAR__API_KEY", "from-the-environment"),
            (
                "KENAR_HOOK__DIVAR__API_KEY_FILE",
                &path.display().to_string(),
            ),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("one place only"), "{err}");
    assert!(!err.contains("from-the"), "no secret in the message: {err}");

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let err = Settings::load_from(
        None,
        &env(&[(
            "KENAR_HOOK__CALLBACK__SIGNING_KEY_FILE",
            &empty.display().to_string(),
        )]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("is empty"), "{err}");
}

#[test]
fn the_database_password_is_given_apart_from_the_url_without_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db_password");
    std::fs::write(&path, "p@ss/w%rd:#?\n").unwrap();
    let s = Settings::load_from(
        None,
        &env(&[
            ("DATABASE_URL", "postgres://kh@db:5432/kh"),
            (
                "KENAR_HOOK__DATABASE__PASSWORD_FILE",
                &path.display().to_string(),
            ),
        ]),
    )
    .unwrap();
    let url = url::Url::parse(s.database.url.expose_secret()).unwrap();
    assert_eq!(url.username(), "kh");
    let password = percent_encoding::percent_decode_str(url.password().unwrap())
        .decode_utf8()
        .unwrap();
    assert_eq!(password, "p@ss/w%rd:#?");
    assert_eq!(url.host_str(), Some("db"));
    assert_eq!(url.path(), "/kh");

    let err = Settings::load_from(None, &env(&[("KENAR_HOOK__DATABASE__PASSWORD", "x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("only for a postgres://"), "{err}");
    let err = Settings::load_from(
        None,
        &env(&[
            ("DATABASE_URL", "postgres://kh:inline@db/kh"),
            ("KENAR_HOOK__DATABASE__PASSWORD", "apart"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("one place only"), "{err}");
    assert!(!err.contains("inline") && !err.contains("apart"), "{err}");
}

#[test]
fn effective_settings_name_their_layer_and_mask_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kh.toml");
    std::fs::write(&path, "[server]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
    let (_, effective) = Settings::load_described(
        Some(&path),
        &env(&[
            (
                "KENAR_HOOK__API__TOKENS",
                "secret-token-1-0123456789abcdefghij,secret-token-2-0123456789abcdefghij",
            ),
            ("DATABASE_URL", "postgres://kh:db-secret@db/kh"),
        ]),
    )
    .unwrap();
    let find = |key: &str| {
        effective
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("{key} listed"))
    };
    assert_eq!(find("server.listen").value, "\"0.0.0.0:8080\"");
    assert_eq!(
        find("server.listen").source,
        format!("file {}", path.display())
    );
    assert_eq!(find("api.tokens").value, "[\"********\", \"********\"]");
    assert_eq!(find("api.tokens").source, "env KENAR_HOOK__API__TOKENS");
    assert_eq!(
        find("database.url").value,
        "\"postgres://kh:********@db/kh\""
    );
    assert_eq!(find("database.url").source, "env DATABASE_URL");
    assert_eq!(find("ingest.batch_max").source, "default");
    let all = format!("{effective:?}");
    assert!(!all.contains("secret"), "{all}");
}

#[test]
fn an_invalid_rust_log_stops_start_up_naming_it() {
    let err = Settings::load_from(None, &env(&[("RUST_LOG", "info,[")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("RUST_LOG"), "{err}");
    Settings::load_from(None, &env(&[("RUST_LOG", "kenar_hook=debug,warn")])).unwrap();
}

#[test]
fn the_vaults_secrets_can_be_read_from_files_and_are_masked() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("vault_keys");
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    std::fs::write(&keys, format!("{key}\n")).unwrap();
    let secret = dir.path().join("client_secret");
    std::fs::write(&secret, "oauth-client-secret\n").unwrap();
    let (s, effective) = Settings::load_described(
        None,
        &env(&[
            (
                "KENAR_HOOK__OAUTH__VAULT_KEYS_FILE",
                &keys.display().to_string(),
            ),
            (
                "KENAR_HOOK__OAUTH__CLIENT_SECRET_FILE",
                &secret.display().to_string(),
            ),
            ("KENAR_HOOK__OAUTH__CLIENT_ID", "my-app"),
            (
                "KENAR_HOOK__OAUTH__REDIRECT_URL",
                "https://hooks.example.ir/oauth/divar/callback",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(s.oauth.vault_keys.len(), 1);
    assert_eq!(
        s.oauth.client_secret.as_ref().unwrap().expose_secret(),
        "oauth-client-secret"
    );
    let all = format!("{effective:?}");
    assert!(
        !all.contains(&key) && !all.contains("oauth-client-secret"),
        "{all}"
    );
}

#[test]
fn config_check_warns_about_a_misspelt_variable_without_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kenar-hook"))
        .args(["config", "check"])
        .current_dir(dir.path())
        .env_remove("KENAR_HOOK_CONFIG")
        .env("KENAR_HOOK_API__TOKENS", "token-SECRET-7f3a")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: KENAR_HOOK_API__TOKENS matches no setting")
            && stderr.contains("did you mean KENAR_HOOK__API__TOKENS?"),
        "{stderr}"
    );
    assert!(!stderr.contains("SECRET"), "{stderr}");
    assert!(!String::from_utf8(output.stdout).unwrap().contains("SECRET"));
}

#[test]
fn an_endpoint_without_a_secret_names_the_key_and_secret_file() {
    let err = file_error(
        "[[forward.endpoints]]\nname = \"app\"\nurl = \"https://app.example.ir/hook\"\n\
         include = [\"messages\"]\n",
    );
    assert!(
        err.contains("forward.endpoints[0].secret: missing"),
        "{err}"
    );
    assert!(err.contains("forward.endpoints[0].secret_file"), "{err}");
}

#[test]
fn the_replaced_forwarded_for_switch_and_bad_networks_are_refused_saying_what_to_write() {
    let err = Settings::load_from(
        None,
        &env(&[("KENAR_HOOK__API__TRUST_FORWARDED_FOR", "true")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("api.trust_forwarded_for: no longer a setting"),
        "{err}"
    );
    assert!(err.contains("server.trusted_proxies"), "{err}");
    let err = Settings::load_from(
        None,
        &env(&[(
            "KENAR_HOOK__SERVER__TRUSTED_PROXIES",
            "127.0.0.1,10.0.0.0/33",
        )]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("server.trusted_proxies"), "{err}");
    assert!(err.contains("10.0.0.0/33"), "{err}");
    let s = Settings::load_from(
        None,
        &env(&[
            ("KENAR_HOOK__SERVER__TRUSTED_PROXIES", "127.0.0.1, fd00::/8"),
            ("KENAR_HOOK__DIVAR__ALLOWED_SOURCES", "31.214.250.128/27"),
        ]),
    )
    .unwrap();
    let shown: Vec<String> = s
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(shown, ["127.0.0.1/32", "fd00::/8"]);
    assert_eq!(s.divar.allowed_sources[0].to_string(), "31.214.250.128/27");
}

#[test]
fn allowed_scopes_must_be_divars() {
    for (value, ok) in [
        ("CONVERSATION_SEND_MESSAGE.*,USER_PHONE", true),
        ("CHAT_POST_CONVERSATIONS_READ.AZx7Kp2Q", true),
        ("USER_PHONE.*", false),
        ("NOT_A_SCOPE", false),
        ("CHAT_CONVERSATION_READ", false),
    ] {
        let loaded =
            Settings::load_from(None, &env(&[("KENAR_HOOK__OAUTH__ALLOWED_SCOPES", value)]));
        match loaded {
            Ok(_) => assert!(ok, "{value} accepted"),
            Err(e) => {
                assert!(!ok, "{value}: {e}");
                assert!(e.to_string().contains("oauth.allowed_scopes["), "{e}");
            }
        }
    }
}

#[test]
fn a_secret_in_the_wrong_shape_or_a_broken_file_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let load = |toml: &str| {
        let path = dir.path().join("kh.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::load_from(Some(&path), &env(&[]))
            .unwrap_err()
            .to_string()
    };
    let secret = "supersecrettoken-4b1d7c";
    for (toml, key) in [
        (format!("[api]\ntokens = \"{secret}\"\n"), "api.tokens"),
        (
            format!("[api]\ntokens = [{{ t = \"{secret}\" }}]\n"),
            "api.tokens",
        ),
        (
            format!("[callback]\nsigning_key = [\"{secret}\"]\n"),
            "callback.signing_key",
        ),
        (
            format!("[divar]\nidentification_keys = \"{secret}\"\n"),
            "divar.identification_keys",
        ),
        (
            format!(
                "[[forward.endpoints]]\nname = \"a\"\nurl = \"https://x.example/h\"\nsecret = [\"{secret}\"]\n"
            ),
            "forward.endpoints[0].secret",
        ),
        // Not TOML at all: the parser would quote the line.
        (format!("[api]\ntokens = [{secret}]\n"), "line 2"),
        (format!("[callback]\nsigning_key = \"{secret}\n"), "line 2"),
    ] {
        let err = load(&toml);
        assert!(!err.contains("4b1d7c"), "the secret is echoed: {err}");
        assert!(err.contains(key), "names {key}: {err}");
    }
    // Settings that are not secrets still say what was given.
    let err = load("[log]\nformat = [\"yaml\"]\n");
    assert!(err.contains("log.format"), "{err}");
    let err = load("[server]\nbody_limit_bytes = \"lots\"\n");
    assert!(err.contains("\"lots\""), "{err}");
}

/// Settings from `toml` in a file of its own, or the error's text.
fn load_toml(toml: &str) -> Result<Settings, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, toml).unwrap();
    Settings::load_from(Some(&path), &HashMap::new()).map_err(|e| e.to_string())
}

#[test]
fn api_clients_take_a_token_or_token_file_scopes_and_posts() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "client-two-token-0123456789abcdefgh\n").unwrap();
    let s = load_toml(&format!(
        r#"
[api]
tokens = ["plain-token-0123456789abcdefghijklm"]
[[api.clients]]
name = "crm"
token = "client-one-token-0123456789abcdefgh"
scopes = ["messages", "pii"]
post_tokens = ["AZx7Kp2Q"]
[[api.clients]]
name = "audit"
token_file = "{}"
scopes = ["events", "rejected"]
"#,
        token_file.display()
    ))
    .unwrap();
    assert_eq!(s.api.clients.len(), 2);
    assert_eq!(
        s.api.clients[1].token.expose_secret(),
        "client-two-token-0123456789abcdefgh"
    );
    let all = kenar_hook::config::clients::effective(&s.api.tokens, &s.api.clients);
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["token-1", "crm", "audit"]);
    assert_eq!(
        all[0].scopes.len(),
        kenar_hook::config::SCOPES.len(),
        "api.tokens: every scope"
    );
    assert_eq!(all[0].post_tokens, None);
}

#[test]
fn an_unknown_scope_is_refused_naming_the_key_and_the_allowed_values() {
    let error = load_toml(
        "[[api.clients]]\nname = \"crm\"\ntoken = \"client-one-token-0123456789abcdefgh\"\nscopes = [\"messages\", \"everything\"]\n",
    )
    .unwrap_err();
    assert!(error.contains("api.clients[0].scopes"), "{error}");
    assert!(error.contains("\"everything\""), "{error}");
    assert!(
        error.contains("messages, events, clicks, raw, pii, forwarding, rejected"),
        "{error}"
    );
}

#[test]
fn duplicate_client_names_and_tokens_are_refused() {
    let two = |a: (&str, &str), b: (&str, &str)| {
        format!(
            "[[api.clients]]\nname = \"{}\"\ntoken = \"{}\"\nscopes = [\"messages\"]\n\
             [[api.clients]]\nname = \"{}\"\ntoken = \"{}\"\nscopes = [\"events\"]\n",
            a.0, a.1, b.0, b.1
        )
    };
    let error = load_toml(&two(
        ("crm", "token-aaaa-0123456789abcdefghijklmnop"),
        ("crm", "token-bbbb-0123456789abcdefghijklmnop"),
    ))
    .unwrap_err();
    assert!(error.contains("api.clients[1].name"), "{error}");
    let error = load_toml(&two(
        ("crm", "token-aaaa-0123456789abcdefghijklmnop"),
        ("audit", "token-aaaa-0123456789abcdefghijklmnop"),
    ))
    .unwrap_err();
    assert!(error.contains("api.clients[1].token"), "{error}");
    assert!(
        !error.contains("token-aaaa-0123456789abcdefghijklmnop"),
        "never the token itself: {error}"
    );
    // Across api.tokens too, by name and by token.
    let error = load_toml(
        "[api]\ntokens = [\"token-aaaa-0123456789abcdefghijklmnop\"]\n[[api.clients]]\nname = \"crm\"\ntoken = \"token-aaaa-0123456789abcdefghijklmnop\"\nscopes = [\"messages\"]\n",
    )
    .unwrap_err();
    assert!(error.contains("api.clients[0].token"), "{error}");
    let error = load_toml(
        "[api]\ntokens = [\"token-aaaa-0123456789abcdefghijklmnop\"]\n[[api.clients]]\nname = \"token-1\"\ntoken = \"token-bbbb-0123456789abcdefghijklmnop\"\nscopes = [\"messages\"]\n",
    )
    .unwrap_err();
    assert!(error.contains("api.clients[0].name"), "{error}");
}

#[test]
fn post_tokens_cannot_go_with_scopes_of_every_post() {
    let error = load_toml(
        "[[api.clients]]\nname = \"crm\"\ntoken = \"token-aaaa-0123456789abcdefghijklmnop\"\nscopes = [\"messages\", \"rejected\"]\npost_tokens = [\"P\"]\n",
    )
    .unwrap_err();
    assert!(error.contains("api.clients[0].scopes"), "{error}");
    let error = load_toml(
        "[[api.clients]]\nname = \"crm\"\ntoken = \"token-aaaa-0123456789abcdefghijklmnop\"\nscopes = [\"messages\"]\npost_tokens = []\n",
    )
    .unwrap_err();
    assert!(error.contains("api.clients[0].post_tokens"), "{error}");
}

#[test]
fn a_short_api_token_stops_start_up_naming_its_key_only() {
    let err = Settings::load_from(None, &env(&[("KENAR_HOOK__API__TOKENS", "a")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("api.tokens[0]: a token of 1 characters"),
        "{err}"
    );
    assert!(err.contains("kenar-hook secret new"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kh.toml");
    std::fs::write(
        &path,
        "[[api.clients]]\nname = \"crm\"\ntoken = \"short-client-token-7\"\nscopes = [\"messages\"]\n",
    )
    .unwrap();
    let err = Settings::load_from(Some(&path), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("api.clients[0].token: a token of 20 characters"),
        "{err}"
    );
    assert!(!err.contains("short-client"), "{err}");
}
