//! The binary's manners as a Unix tool: a closed stdout pipe, shell completions, a man page,
//! the version.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_kenar-hook");

/// Waits for `child` and returns its exit code and stderr.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code(), stderr)
}

fn piped(args: &[&str], dir: &std::path::Path) -> Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("KENAR_HOOK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_reader_that_stops_after_one_line_ends_openapi_quietly_with_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = piped(&["openapi"], dir.path());
    // The document is larger than a pipe's buffer, so the rest is written after the reader
    // has gone.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "{");
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn a_closed_stdout_ends_config_check_quietly_with_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = piped(&["config", "check"], dir.path());
    drop(child.stdout.take());
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status.code().unwrap(), stdout)
}

#[test]
fn completions_for_bash_name_the_binary_and_its_subcommands() {
    let (code, script) = run(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(script.contains("kenar-hook"), "{script}");
    assert!(script.contains("healthcheck"), "{script}");
    for shell in ["zsh", "fish"] {
        let (code, script) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(script.contains("openapi"), "{shell}: {script}");
    }
}

#[test]
fn man_prints_a_roff_page() {
    let (code, page) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
    assert!(page.contains(".TH kenar-hook"), "{page}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let (code, version) = run(&["--version"]);
    assert_eq!(code, 0);
    let inner = version
        .trim()
        .strip_prefix("kenar-hook 0.1.0 (")
        .and_then(|v| v.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version}"));
    assert!(
        inner == "unknown" || (inner.len() >= 7 && inner.chars().all(|c| c.is_ascii_hexdigit())),
        "{version}"
    );
}

#[test]
fn secret_new_prints_a_fresh_secret_the_settings_accept() {
    use base64::Engine as _;
    let (code, first) = run(&["secret", "new"]);
    assert_eq!(code, 0);
    let (_, second) = run(&["secret", "new"]);
    let (first, second) = (first.trim(), second.trim());
    assert_ne!(first, second);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .unwrap();
    assert_eq!(bytes.len(), 32, "{first}");
    let (code, whsec) = run(&["secret", "new", "--whsec"]);
    assert_eq!(code, 0);
    let whsec = whsec.trim();
    let encoded = whsec.strip_prefix("whsec_").unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(bytes.len(), 32, "{whsec}");
    // Both pass the settings' strength checks where they are meant to go.
    let env: std::collections::HashMap<String, String> = [
        ("KENAR_HOOK__DIVAR__IDENTIFICATION_KEYS", first),
        ("KENAR_HOOK__CALLBACK__SIGNING_KEY", second),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    kenar_hook::config::Settings::load_from(None, &env).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kh.toml");
    std::fs::write(
        &path,
        format!(
            "[[forward.endpoints]]\nname = \"a\"\nurl = \"https://x.example/h\"\nsecret = \"{whsec}\"\n"
        ),
    )
    .unwrap();
    kenar_hook::config::Settings::load_from(Some(&path), &Default::default()).unwrap();
}
