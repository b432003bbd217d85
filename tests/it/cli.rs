//! The command line over the Divar client: the real binary against a wiremock Divar. Dry runs
//! and sent requests ([`send`]), registrations and their keys ([`subscribe`]), scope strings
//! ([`scope`]), and the `divar` settings that feed them ([`settings`]).

mod exit_codes;
mod scope;
mod send;
mod settings;
mod subscribe;

use std::collections::HashMap;
use std::path::PathBuf;

use kenar_hook::config::DatabaseSettings;
use kenar_hook::store::Store;
use secrecy::SecretString;
use serde_json::Value;
use tempfile::TempDir;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub use crate::client::{CONVERSATION, PEER, POST, USER, json_fixture};

pub const BIN: &str = env!("CARGO_BIN_EXE_kenar-hook");
pub const API_KEY: &str = "cli-api-key-SECRET-5c1e";
pub const TOKEN: &str = "cli-access-token-SECRET-0b7d";

/// What a run of the binary printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{self:#?}");
        self
    }

    /// Asserts that neither stream holds the API key, the access token or `others`.
    pub fn assert_no_secrets(&self, others: &[&str]) {
        for secret in [API_KEY, TOKEN].iter().chain(others) {
            assert!(
                !self.stdout.contains(secret),
                "stdout shows a secret: {self:#?}"
            );
            assert!(
                !self.stderr.contains(secret),
                "stderr shows a secret: {self:#?}"
            );
        }
    }
}

/// The binary with a clean environment: both base URLs at one host, the API key, fast retries
/// (3 attempts, waits of at most 20 ms), a SQLite database in a temporary folder that is also
/// the working directory.
pub struct Cli {
    env: HashMap<String, String>,
    dir: TempDir,
}

impl Cli {
    pub fn new(base_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}", dir.path().join("kh.db").display());
        let env = [
            ("KENAR_HOOK__DIVAR__API_KEY", API_KEY),
            ("KENAR_HOOK__DIVAR__BASE_URL", base_url),
            ("KENAR_HOOK__DIVAR__OPEN_API_BASE_URL", base_url),
            ("KENAR_HOOK__DIVAR__REQUEST_TIMEOUT_MS", "2000"),
            ("KENAR_HOOK__DIVAR__RETRY_MAX_ATTEMPTS", "3"),
            ("KENAR_HOOK__DIVAR__RETRY_BASE_DELAY_MS", "5"),
            ("KENAR_HOOK__DIVAR__RETRY_MAX_DELAY_MS", "20"),
            ("KENAR_HOOK__DIVAR__RETRY_DEADLINE_MS", "5000"),
            ("KENAR_HOOK__DATABASE__URL", &db),
            ("KENAR_HOOK__LOG__LEVEL", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self { env, dir }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn without(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Writes `token` (with a trailing newline, as editors do) to a file; returns its path.
    pub fn token_file(&self, token: &str) -> String {
        let path = self.dir.path().join("access-token");
        std::fs::write(&path, format!("{token}\n")).expect("token file");
        path.display().to_string()
    }

    /// Writes a file into the temporary folder; returns its path.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("file");
        path.display().to_string()
    }

    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join("kh.db")
    }

    /// A handle on the database the binary used.
    pub async fn store(&self) -> Store {
        let url = &self.env["KENAR_HOOK__DATABASE__URL"];
        Store::connect(&DatabaseSettings {
            url: SecretString::from(url.as_str()),
            max_connections: 2,
            acquire_timeout_ms: 3_000,
            sqlite_synchronous: kenar_hook::config::SqliteSync::Normal,
            password: None,
            startup_wait_secs: 0,
        })
        .await
        .expect("store")
    }

    /// Runs the binary on the blocking pool, so the mock server and any app under test in
    /// this runtime keep answering.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.dir.path());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("the binary runs");
        Output {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }
}

/// The headers and the JSON body of a dry run's text listing, after asserting its request line.
pub fn listing(stdout: &str, request_line: &str) -> (Vec<String>, Value) {
    let (head, body) = stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("a listing: {stdout}"));
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some(request_line), "{stdout}");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {stdout}"));
    (lines.map(str::to_owned).collect(), body)
}

/// A mock Divar that must receive nothing.
pub async fn silent_divar() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&mock)
        .await;
    mock
}

const LINK_TEXT: &str =
    "درخواست کارشناسی خودرو برای این آگهی ثبت شد. برای پیگیری روی دکمه زیر بزنید.";

/// `send legacy` with the two LINK buttons of the fixture `legacy_send_message_link.json`.
pub fn legacy_link_args(token_file: &str) -> Vec<String> {
    [
        "send",
        "legacy",
        "--user-id",
        USER,
        "--post-token",
        POST,
        "--peer-id",
        PEER,
        "--text",
        LINK_TEXT,
        "--sender-link",
        "پیگیری درخواست,CAR_INSPECTED,order_id=ord_58213,role=seller",
        "--receiver-link",
        "مشاهده گزارش کارشناسی,CAR_INSPECTED,order_id=ord_58213,role=buyer",
        "--access-token-file",
        token_file,
    ]
    .map(str::to_owned)
    .to_vec()
}

pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
