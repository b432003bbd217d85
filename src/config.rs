//! Settings: layered loading (built-in defaults, `config/default.toml`, `--config FILE`,
//! `KENAR_HOOK__SECTION__KEY` variables, `DATABASE_URL`), secrets as secret types, and
//! validation at start-up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::callback::rules::CallbackSettings;
use crate::divar::outbound::DivarClientSettings;
use crate::forward::settings::{ENDPOINT_KEYS, ForwardSettings};

/// The built-in defaults: the same file that ships as `config/default.toml`, compiled in so a
/// binary started from any directory has every key.
pub const DEFAULTS_TOML: &str = include_str!("../config/default.toml");

/// `database.url` of the defaults: a SQLite file in the default `server.data_dir`.
const DEFAULT_DATABASE_URL: &str = "sqlite://data/kenar-hook.db";

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "KENAR_HOOK";

/// The settings file read from the working directory, when present.
const LOCAL_FILE: &str = "config/default.toml";

/// Secret settings. Each may instead be given as the path of a file holding it: the key
/// with `_file` appended (`divar.api_key_file`, or `KENAR_HOOK__DIVAR__API_KEY_FILE`), as
/// compose and Kubernetes secrets are mounted. A list's file has one item per line.
pub const SECRET_KEYS: &[&str] = &[
    "database.url",
    "database.password",
    "divar.identification_keys",
    "divar.api_key",
    "api.tokens",
    "callback.signing_key",
    "oauth.client_secret",
    "oauth.vault_keys",
];

/// Settings whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "divar.identification_keys",
    "callback.allowed_hosts",
    "api.tokens",
    "oauth.default_scopes",
    "oauth.vault_keys",
];

/// All settings of the service.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The HTTP listener.
    pub server: ServerSettings,
    /// Where messages are stored.
    pub database: DatabaseSettings,
    /// What Divar sends and how it authenticates.
    pub divar: DivarSettings,
    /// The batch writer.
    pub ingest: IngestSettings,
    /// Logging.
    pub log: LogSettings,
    /// The Prometheus listener.
    pub metrics: MetricsSettings,
    /// Button-click callbacks: redirect rules and signed state.
    pub callback: CallbackSettings,
    /// The read-only REST API.
    pub api: ApiSettings,
    /// Signing users in, and the token vault.
    pub oauth: crate::oauth::OAuthSettings,
    /// Pushing stored records to the app's own endpoints.
    pub forward: ForwardSettings,
    /// The settings files read, in order; none when only the built-in defaults and the
    /// environment were.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

/// Section `api`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    /// Accepted bearer tokens. Empty: every `/api/v1` request is answered 401.
    #[serde(default)]
    pub tokens: Vec<SecretString>,
    /// Sustained requests per second allowed per token.
    pub rate_limit_per_second: u32,
    /// Requests a token may make at once above the sustained rate.
    pub rate_limit_burst: u32,
    /// Failed authentications allowed per client IP per minute.
    pub auth_failures_per_minute: u32,
    /// Take the client IP from the last `X-Forwarded-For` entry (behind a reverse proxy).
    pub trust_forwarded_for: bool,
    /// Seconds between keep-alive comments on `/api/v1/stream`.
    pub stream_keepalive_secs: u64,
    /// A list page stops once its rows hold this many bytes (at least one row).
    pub page_max_bytes: usize,
    /// Live streams open at once, in all.
    pub max_streams: usize,
    /// Live streams open at once per token.
    pub max_streams_per_token: usize,
}

/// Section `server`.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address the HTTP API listens on.
    #[serde(deserialize_with = "listen_address")]
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// A request that takes longer than this is answered 408.
    pub request_timeout_ms: u64,
    /// Folder for the SQLite file and the generated identification key.
    pub data_dir: PathBuf,
    /// How long shutdown waits for in-flight requests and the writer.
    pub shutdown_timeout_ms: u64,
    /// A client must send a request's headers within this time of connecting or of its
    /// previous answer (so a kept-alive connection silent this long is closed).
    pub header_read_timeout_ms: u64,
    /// A connection with no traffic for this long while a request is in flight is closed.
    pub idle_timeout_ms: u64,
    /// Connections open at once; more wait in the listen queue.
    pub max_connections: usize,
}

/// Section `database`.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://path` or `postgres://user:password@host/db`. Secret: it may hold a password.
    pub url: SecretString,
    /// Size of the connection pool.
    pub max_connections: u32,
    /// How long to wait for a connection from the pool.
    pub acquire_timeout_ms: u64,
    /// SQLite only: when a commit reaches the disk (see [`SqliteSync`]).
    pub sqlite_synchronous: SqliteSync,
    /// PostgreSQL's password, apart from the URL (set into it when loading).
    #[serde(default)]
    pub password: Option<SecretString>,
    /// `serve` waits this long for the database at start-up before giving up.
    pub startup_wait_secs: u64,
}

/// SQLite's `synchronous` level in WAL mode: what a 200 promises about a stored delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum SqliteSync {
    /// The commit is in the operating system before the 200: it survives a crash or kill of
    /// kenar-hook, but not a power loss or kernel crash in the moments after.
    Normal,
    /// The commit is on the disk (fsync) before the 200: it survives a power loss too.
    Full,
}

/// Section `divar`.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "DivarSection")]
pub struct DivarSettings {
    /// Every accepted value of the `authorization` header (more than one while rotating).
    pub identification_keys: Vec<SecretString>,
    /// How the client reaches Divar's API (`divar.api_key`, `divar.base_url`, timeouts,
    /// retries): the keys sit directly in the section.
    pub client: DivarClientSettings,
}

/// Section `divar` as written. Every field is named here (no `flatten`) so the config
/// crate's own coercion of environment text into numbers applies.
#[derive(Deserialize)]
struct DivarSection {
    #[serde(default)]
    identification_keys: Vec<SecretString>,
    api_key: Option<SecretString>,
    base_url: String,
    open_api_base_url: String,
    legacy_register_path: String,
    connect_timeout_ms: u64,
    request_timeout_ms: u64,
    retry_max_attempts: u32,
    retry_base_delay_ms: u64,
    retry_max_delay_ms: u64,
    retry_deadline_ms: u64,
}

impl From<DivarSection> for DivarSettings {
    fn from(d: DivarSection) -> Self {
        DivarSettings {
            identification_keys: d.identification_keys,
            client: DivarClientSettings {
                api_key: d.api_key,
                base_url: d.base_url,
                open_api_base_url: d.open_api_base_url,
                legacy_register_path: d.legacy_register_path,
                connect_timeout_ms: d.connect_timeout_ms,
                request_timeout_ms: d.request_timeout_ms,
                retry_max_attempts: d.retry_max_attempts,
                retry_base_delay_ms: d.retry_base_delay_ms,
                retry_max_delay_ms: d.retry_max_delay_ms,
                retry_deadline_ms: d.retry_deadline_ms,
            },
        }
    }
}

/// Section `ingest`.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// How many parsed deliveries may wait for the writer before new ones get 503.
    pub queue_capacity: usize,
    /// The most deliveries committed in one transaction.
    pub batch_max: usize,
    /// Writer tasks committing batches side by side; unset: 2 on PostgreSQL, 1 on SQLite.
    #[serde(default)]
    pub writers: Option<usize>,
    /// Seconds a client is told to wait (`Retry-After`) when the queue is full or the
    /// database is unavailable.
    pub retry_after_secs: u64,
    /// A batch not committed within this time is answered 503 and opens the breaker.
    pub write_timeout_ms: u64,
}

/// Section `log`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `kenar_hook=debug,info`.
    pub level: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line.
    Json,
}

/// Section `metrics`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Address of the separate metrics listener.
    #[serde(deserialize_with = "listen_address")]
    pub listen: SocketAddr,
}

impl TryFrom<String> for SqliteSync {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "normal" => Ok(SqliteSync::Normal),
            "full" => Ok(SqliteSync::Full),
            _ => Err(format!("got {value:?}; expected normal or full")),
        }
    }
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("got {value:?}; expected pretty or json")),
        }
    }
}

/// A listen address as `host:port`: an IP address, or a name such as `localhost` resolved
/// once at start-up.
fn listen_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    use std::net::ToSocketAddrs;
    let text = String::deserialize(d)?;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "got {text:?}; expected host:port, e.g. 0.0.0.0:8080 or localhost:8080"
            ))
        })
}

/// The config crate's message as `key: problem`, the way every other settings error reads:
/// `invalid type: string "lots", expected an integer for key `x.y` in the environment`
/// becomes `x.y: got "lots"; expected an integer (from the environment)`.
fn readable(message: &str) -> String {
    if let Some(field) = message
        .strip_prefix("missing configuration field \"")
        .and_then(|m| m.strip_suffix('"'))
    {
        return missing(field);
    }
    let Some((problem, rest)) = message.split_once(" for key `") else {
        return message.to_owned();
    };
    let Some((key, tail)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let problem = match problem
        .strip_prefix("invalid type: ")
        .and_then(|p| p.split_once(", expected "))
    {
        Some((got, expected)) => {
            let got = got.strip_prefix("string ").unwrap_or(got);
            format!("got {got}; expected {expected}")
        }
        None => problem.to_owned(),
    };
    let tail = tail.trim();
    let tail = tail.strip_prefix("in ").unwrap_or(tail);
    if tail.is_empty() {
        format!("{key}: {problem}")
    } else {
        format!("{key}: {problem} (from {tail})")
    }
}

/// A required setting that is absent. The config crate writes the field of a list entry
/// without its dot (`forward.endpoints[0]secret`); a secret may come from a file instead.
fn missing(field: &str) -> String {
    let mut key = String::with_capacity(field.len() + 2);
    let mut after_index = false;
    for c in field.chars() {
        if after_index && c != '.' && c != '[' {
            key.push('.');
        }
        after_index = c == ']';
        key.push(c);
    }
    let leaf = key.rsplit('.').next().unwrap_or(&key);
    let secret = SECRET_KEYS.contains(&key.as_str()) || leaf == "secret";
    if secret {
        format!("{key}: missing; set it, or {key}_file to the path of a file that holds it")
    } else {
        format!("{key}: missing")
    }
}

/// Which database a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The shortest identification key accepted: anything shorter can be guessed.
pub const MIN_KEY_CHARS: usize = 16;

/// Why a key of `chars` characters is refused, and how to make a good one.
pub fn weak_key(chars: usize) -> String {
    format!(
        "a key of {chars} characters is too easy to guess; use at least {MIN_KEY_CHARS} \
         random characters, e.g. the output of `openssl rand -base64 32`, or leave the list \
         empty to have a strong key generated into <server.data_dir>/identification_key"
    )
}

/// A settings problem: one line naming the key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Loads the layers in order and validates the result.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(config_file, &std::env::vars().collect())
    }

    /// [`Settings::load`] with the environment given as a map (for tests).
    pub fn load_from(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        Self::load_described(config_file, env).map(|(settings, _)| settings)
    }

    /// [`Settings::load_from`], and every effective setting with the layer it came from and
    /// secrets masked (what `kenar-hook config check` prints).
    pub fn load_described(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<(Settings, Vec<Effective>), ConfigError> {
        if let Some(path) = config_file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "--config {}: file not found",
                    path.display()
                )));
            }
        }
        let mut files: Vec<PathBuf> = Vec::new();
        if Path::new(LOCAL_FILE).is_file() {
            files.push(PathBuf::from(LOCAL_FILE));
        }
        files.extend(config_file.map(Path::to_path_buf));
        let defaults =
            Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
        let mut builder = defaults.clone();
        let mut file_layers = Vec::new();
        for path in &files {
            builder = builder.add_source(File::from(path.as_path()).required(true));
            let one = Config::builder()
                .add_source(File::from(path.as_path()).required(true))
                .build()
                .map_err(|e| ConfigError(readable(&e.to_string())))?;
            file_layers.push((path.clone(), as_table(&one)));
        }
        let builder = environment_layer(builder, env)?;
        let env_layer = as_table(
            &environment_layer(Config::builder(), env)?
                .build()
                .map_err(|e| ConfigError(e.to_string()))?,
        );
        let config = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        refuse_unknown_keys(&config, config_file, env)?;
        let layers = Layers {
            defaults: as_table(
                &defaults
                    .build_cloned()
                    .map_err(|e| ConfigError(e.to_string()))?,
            ),
            files: file_layers,
            env: env_layer,
        };
        let config = secrets_from_files(config, &layers)?;
        if let Some(rust_log) = env.get("RUST_LOG").filter(|v| !v.trim().is_empty()) {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(rust_log) {
                return Err(ConfigError(format!(
                    "RUST_LOG: not a valid filter: {e} (got {rust_log:?}; expected e.g. info or kenar_hook=debug,info)"
                )));
            }
        }
        let mut settings: Settings = config
            .clone()
            .try_deserialize()
            .map_err(|e| ConfigError(readable(&e.to_string())))?;
        settings.files = files;
        settings.apply_database_password()?;
        settings.place_default_database();
        settings.validate()?;
        let described = describe(&config, &layers, &settings, env);
        Ok((settings, described))
    }

    /// `database.password` goes into the PostgreSQL URL here, so a password with `@`, `/`
    /// or `%` needs no escaping by hand.
    fn apply_database_password(&mut self) -> Result<(), ConfigError> {
        let Some(password) = self.database.password.take() else {
            return Ok(());
        };
        let fail = |problem: &str| Err(ConfigError(format!("database.password: {problem}")));
        if password.expose_secret().is_empty() {
            return fail("must not be empty when set");
        }
        if !matches!(self.database_kind(), Ok(DatabaseKind::Postgres)) {
            return fail("is only for a postgres:// database.url");
        }
        let Ok(mut url) = url::Url::parse(self.database.url.expose_secret()) else {
            return Err(ConfigError(
                "database.url: not a valid URL (got a postgres:// value that does not parse)"
                    .to_owned(),
            ));
        };
        if url.password().is_some() {
            return fail("database.url holds a password too; give it in one place only");
        }
        if url.set_password(Some(password.expose_secret())).is_err() {
            return fail("database.url has no host to attach the password to");
        }
        self.database.url = SecretString::from(url.to_string());
        Ok(())
    }

    /// `server.data_dir` holds the SQLite file too: the default database follows it.
    fn place_default_database(&mut self) {
        if self.database.url.expose_secret() == DEFAULT_DATABASE_URL
            && self.server.data_dir != Path::new("data")
        {
            let file = self.server.data_dir.join("kenar-hook.db");
            self.database.url = SecretString::from(format!("sqlite://{}", file.display()));
        }
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, problem: &str| Err(ConfigError(format!("{key}: {problem}")));
        if self.server.body_limit_bytes == 0 {
            return fail("server.body_limit_bytes", "must be greater than 0");
        }
        if self.server.request_timeout_ms == 0 {
            return fail("server.request_timeout_ms", "must be greater than 0");
        }
        if self.server.header_read_timeout_ms == 0 {
            return fail("server.header_read_timeout_ms", "must be greater than 0");
        }
        if self.server.idle_timeout_ms == 0 {
            return fail("server.idle_timeout_ms", "must be greater than 0");
        }
        if self.server.max_connections == 0 {
            return fail("server.max_connections", "must be at least 1");
        }
        if self.database.max_connections == 0 {
            return fail("database.max_connections", "must be at least 1");
        }
        if self.database.acquire_timeout_ms == 0 {
            return fail("database.acquire_timeout_ms", "must be greater than 0");
        }
        if let Err(problem) = self.database_kind() {
            return fail("database.url", &problem);
        }
        if self
            .divar
            .identification_keys
            .iter()
            .any(|k| k.expose_secret().trim().is_empty())
        {
            return fail("divar.identification_keys", "a key must not be empty");
        }
        if let Some(short) = self
            .divar
            .identification_keys
            .iter()
            .map(|k| k.expose_secret().chars().count())
            .find(|n| *n < MIN_KEY_CHARS)
        {
            return fail("divar.identification_keys", &weak_key(short));
        }
        if self.ingest.queue_capacity == 0 {
            return fail("ingest.queue_capacity", "must be at least 1");
        }
        if self.ingest.batch_max == 0 {
            return fail("ingest.batch_max", "must be at least 1");
        }
        if self.ingest.write_timeout_ms == 0 {
            return fail("ingest.write_timeout_ms", "must be greater than 0");
        }
        if matches!(self.ingest.writers, Some(0) | Some(17..)) {
            return fail("ingest.writers", "must be from 1 to 16");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return fail("log.level", &format!("not a valid filter: {e}"));
        }
        if self
            .api
            .tokens
            .iter()
            .any(|k| k.expose_secret().trim().is_empty())
        {
            return fail("api.tokens", "a token must not be empty");
        }
        if self.api.rate_limit_per_second == 0 || self.api.rate_limit_burst == 0 {
            return fail(
                "api.rate_limit_per_second",
                "rate limits must be at least 1",
            );
        }
        if self.api.page_max_bytes < 1024 {
            return fail("api.page_max_bytes", "must be at least 1024");
        }
        if self.api.max_streams == 0 || self.api.max_streams_per_token == 0 {
            return fail(
                "api.max_streams",
                "api.max_streams and api.max_streams_per_token must be at least 1",
            );
        }
        if self.api.stream_keepalive_secs.saturating_mul(1000) >= self.server.idle_timeout_ms {
            return fail(
                "server.idle_timeout_ms",
                "must be longer than api.stream_keepalive_secs, or quiet live streams are closed",
            );
        }
        if self.api.stream_keepalive_secs == 0 {
            return fail("api.stream_keepalive_secs", "must be greater than 0");
        }
        if let Err((key, problem)) = self.callback.validate() {
            return fail(&key, &problem);
        }
        if let Err((key, problem)) = self.oauth.validate() {
            return fail(&key, &problem);
        }
        if let Err((key, problem)) = self.forward.validate() {
            return fail(&key, &problem);
        }
        Ok(())
    }

    /// Which database `database.url` selects.
    pub fn database_kind(&self) -> Result<DatabaseKind, String> {
        database_kind(self.database.url.expose_secret())
    }
}

/// Settings that have no line of their own in `config/default.toml` (they are unset, or
/// lists of tables, by default).
const OPTIONAL_KEYS: &[&str] = &[
    "database.password",
    "divar.api_key",
    "ingest.writers",
    "callback.fallback_url",
    "callback.signing_key",
    "callback.rules",
    "oauth.client_id",
    "oauth.client_secret",
    "oauth.redirect_url",
    "forward.endpoints",
];

/// The keys of one `[[callback.rules]]` entry; `data` holds the button's own keys.
const RULE_KEYS: &[&str] = &[
    "name",
    "source",
    "version",
    "post_token",
    "side",
    "data",
    "url",
    "text_message",
];

/// Settings that are lists of tables, and the keys each entry may have.
const LIST_TABLES: &[(&str, &[&str])] = &[
    ("callback.rules", RULE_KEYS),
    ("forward.endpoints", ENDPOINT_KEYS),
];

type Table = config::Map<String, config::Value>;

fn as_table(config: &Config) -> Table {
    config.clone().try_deserialize().unwrap_or_default()
}

/// A misspelt or misplaced key is refused, not ignored: an ignored `sidee` in a rule once
/// made the rule match every click. The known keys are those of the built-in defaults.
fn refuse_unknown_keys(
    config: &Config,
    config_file: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<(), ConfigError> {
    let known = Config::builder()
        .add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml))
        .build()
        .map(|c| as_table(&c))
        .unwrap_or_default();
    let all_known = known_keys();
    let mut unknown: Vec<String> = Vec::new();
    find_unknown(&as_table(config), &known, "", &mut unknown);
    let Some(key) = unknown.into_iter().next() else {
        return Ok(());
    };
    // Values lose their origin on the way here: a variable of this name, else the file.
    let variable = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
    let from = if env.contains_key(&variable) {
        format!(", from {variable}")
    } else {
        let file = config_file.unwrap_or(Path::new("config/default.toml"));
        format!(", in {}", file.display())
    };
    let hint = closest(&key, &all_known)
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default();
    Err(ConfigError(format!("{key}: unknown setting{hint}{from}")))
}

/// Every setting's name, list entries apart: the built-in defaults' keys, the optional
/// ones, and each secret's `_file` form.
fn known_keys() -> Vec<String> {
    let known = Config::builder()
        .add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml))
        .build()
        .map(|c| as_table(&c))
        .unwrap_or_default();
    let mut keys: Vec<String> = Vec::new();
    list_keys(&known, "", &mut keys);
    keys.extend(OPTIONAL_KEYS.iter().map(|k| (*k).to_owned()));
    keys.extend(SECRET_KEYS.iter().map(|k| format!("{k}_file")));
    keys
}

/// Variables with the prefix that are read, but are no setting.
const OTHER_VARIABLES: &[&str] = &[
    "KENAR_HOOK_CONFIG",
    "KENAR_HOOK_ACCESS_TOKEN",
    "KENAR_HOOK_TEST_DATABASE_URL",
    "KENAR_HOOK_BIN",
];

/// A warning for each `KENAR_HOOK_…` variable that nothing reads (`KENAR_HOOK_API__TOKENS`,
/// one underscore short), naming the variable, never its value, and the nearest real one.
/// A `KENAR_HOOK__…` variable naming no setting is an error instead ([`Settings::load`]).
pub fn unknown_variables(env: &HashMap<String, String>) -> Vec<String> {
    let mut known: Vec<String> = known_keys().iter().map(|k| variable_of(k)).collect();
    known.extend(OTHER_VARIABLES.iter().map(|v| (*v).to_owned()));
    let mut names: Vec<&String> = env
        .keys()
        .filter(|k| k.starts_with(&format!("{ENV_PREFIX}_")))
        .filter(|k| !k.starts_with(&format!("{ENV_PREFIX}__")))
        .filter(|k| !known.contains(k))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let upper = name.to_uppercase();
            let hint = known
                .iter()
                .map(|k| (k, edit_distance(&upper, k)))
                .min_by_key(|(_, d)| *d)
                .filter(|(_, d)| *d <= upper.len() / 4 + 1)
                .map(|(k, _)| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            format!("{name} matches no setting and is ignored{hint}")
        })
        .collect()
}

fn list_keys(table: &Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let path = format!("{prefix}{k}");
        match &v.kind {
            config::ValueKind::Table(t) => list_keys(t, &format!("{path}."), out),
            _ => out.push(path),
        }
    }
}

fn find_unknown(table: &Table, known: &Table, prefix: &str, out: &mut Vec<String>) {
    let mut keys: Vec<_> = table.keys().collect();
    keys.sort();
    for k in keys {
        let value = &table[k];
        let path = format!("{prefix}{k}");
        if let Some((_, allowed)) = LIST_TABLES.iter().find(|(list, _)| *list == path) {
            if let config::ValueKind::Array(entries) = &value.kind {
                for (i, entry) in entries.iter().enumerate() {
                    if let config::ValueKind::Table(entry) = &entry.kind {
                        let mut fields: Vec<_> = entry.keys().collect();
                        fields.sort();
                        for field in fields {
                            if !allowed.contains(&field.as_str()) {
                                out.push(format!("{path}[{i}].{field}"));
                            }
                        }
                    }
                }
            }
            continue;
        }
        match known.get(k) {
            Some(known_value) => {
                if let (config::ValueKind::Table(inner), config::ValueKind::Table(known_inner)) =
                    (&value.kind, &known_value.kind)
                {
                    find_unknown(inner, known_inner, &format!("{path}."), out);
                }
            }
            None if OPTIONAL_KEYS.contains(&path.as_str()) => {}
            None if path
                .strip_suffix("_file")
                .is_some_and(|k| SECRET_KEYS.contains(&k)) => {}
            // An unknown section is reported by its keys, so `[serverr] listen` points at
            // `server.listen`.
            None => match &value.kind {
                config::ValueKind::Table(inner) if !inner.is_empty() => {
                    list_keys(inner, &format!("{path}."), out)
                }
                _ => out.push(path),
            },
        }
    }
}

/// The known key nearest to `key` by edit distance, when it is near enough to be a typo.
fn closest(key: &str, known: &[String]) -> Option<String> {
    let entry_fields = LIST_TABLES
        .iter()
        .find(|(list, _)| key.starts_with(&format!("{list}[")))
        .map(|(_, fields)| *fields);
    let entry_field = key.rsplit_once("].").map(|(_, f)| f);
    let candidates: Vec<String> = match (entry_field, entry_fields) {
        (Some(_), Some(fields)) => fields.iter().map(|f| (*f).to_owned()).collect(),
        _ => known.to_vec(),
    };
    let target = entry_field.unwrap_or(key);
    let (best, distance) = candidates
        .iter()
        .map(|k| (k, edit_distance(target, k)))
        .min_by_key(|(_, d)| *d)?;
    let best = known
        .iter()
        .find(|k| *k == best)
        .map(String::as_str)
        .or_else(|| {
            entry_fields
                .unwrap_or_default()
                .iter()
                .copied()
                .find(|f| f == best)
        });
    if distance <= target.len().max(4) / 3 + 1 {
        if let Some(best) = best {
            return Some(best.to_owned());
        }
    }
    if entry_fields.is_some() {
        return None;
    }
    same_leaf(key, known)
}

/// The known keys with the same last part as `key`, in their sections' order in the
/// defaults: a setting put in the wrong section (`listen` at the top, `[api] listen`) is
/// too far from its real name by spelling, but not by name.
fn same_leaf(key: &str, known: &[String]) -> Option<String> {
    let leaf = key.rsplit('.').next()?;
    let section_at = |k: &str| {
        let section = k.split('.').next().unwrap_or(k);
        DEFAULTS_TOML
            .find(&format!("[{section}]"))
            .unwrap_or(usize::MAX)
    };
    let mut found: Vec<&String> = known
        .iter()
        .filter(|k| k.as_str() != key && k.rsplit('.').next() == Some(leaf))
        .collect();
    found.sort_by_key(|k| section_at(k));
    found.truncate(3);
    (!found.is_empty()).then(|| {
        found
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// Which database a URL selects, or why it selects none.
pub fn database_kind(url: &str) -> Result<DatabaseKind, String> {
    if url.starts_with("sqlite:") {
        Ok(DatabaseKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DatabaseKind::Postgres)
    } else {
        Err("must start with sqlite:// or postgres://".to_owned())
    }
}

/// Adds the environment variables (and `DATABASE_URL`) to `builder`.
fn environment_layer(
    mut builder: config::ConfigBuilder<config::builder::DefaultState>,
    env: &HashMap<String, String>,
) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
    // Values stay text (a key "0123" must not become the number 123); the config crate
    // turns text into numbers and booleans where a setting's type asks for one. List
    // settings are split here.
    let vars: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .filter(|(k, _)| !LIST_KEYS.iter().any(|key| **k == variable_of(key)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(Some(vars)),
    );
    for key in LIST_KEYS {
        if let Some(value) = env.get(&variable_of(key)) {
            let items: Vec<String> = match value.trim() {
                "" => Vec::new(),
                v => v.split(',').map(|s| s.trim().to_owned()).collect(),
            };
            builder = builder
                .set_override(*key, items)
                .map_err(|e| ConfigError(e.to_string()))?;
        }
    }
    // DATABASE_URL is the convention of most tooling; the prefixed variable still wins.
    if !env.contains_key("KENAR_HOOK__DATABASE__URL") {
        if let Some(url) = env.get("DATABASE_URL") {
            builder = builder
                .set_override("database.url", url.as_str())
                .map_err(|e| ConfigError(e.to_string()))?;
        }
    }
    Ok(builder)
}

/// The environment variable of a setting: `server.listen` → `KENAR_HOOK__SERVER__LISTEN`.
fn variable_of(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
}

/// What the files and the environment set, apart from the built-in defaults.
struct Layers {
    defaults: Table,
    files: Vec<(PathBuf, Table)>,
    env: Table,
}

impl Layers {
    /// Where `key` was set last: the environment, a file, or nowhere (a default).
    fn source(&self, key: &str, env: &HashMap<String, String>) -> String {
        if lookup(&self.env, key).is_some() {
            let variable = variable_of(key);
            return if env.contains_key(&variable) {
                format!("env {variable}")
            } else if key == "database.url" && env.contains_key("DATABASE_URL") {
                "env DATABASE_URL".to_owned()
            } else {
                "env".to_owned()
            };
        }
        match self
            .files
            .iter()
            .rev()
            .find(|(_, table)| self.file_sets(table, key))
        {
            Some((path, _)) => format!("file {}", path.display()),
            None => "default".to_owned(),
        }
    }

    /// Whether a file sets `key` to something other than its built-in default (the shipped
    /// config/default.toml repeats every default, and sets nothing by doing so).
    fn file_sets(&self, table: &Table, key: &str) -> bool {
        match (lookup(table, key), lookup(&self.defaults, key)) {
            (None, _) => false,
            (Some(value), Some(default)) => toml_value(value) != toml_value(default),
            (Some(_), None) => true,
        }
    }

    fn sets(&self, key: &str) -> bool {
        lookup(&self.env, key).is_some() || self.files.iter().any(|(_, t)| self.file_sets(t, key))
    }
}

fn lookup<'a>(table: &'a Table, key: &str) -> Option<&'a config::Value> {
    let (first, rest) = match key.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (key, None),
    };
    let value = table.get(first)?;
    match (rest, &value.kind) {
        (None, _) => Some(value),
        (Some(rest), config::ValueKind::Table(inner)) => lookup(inner, rest),
        (Some(_), _) => None,
    }
}

/// Reads every `<secret>_file` setting into its secret.
fn secrets_from_files(config: Config, layers: &Layers) -> Result<Config, ConfigError> {
    let table = as_table(&config);
    let mut builder = Config::builder().add_source(config);
    for key in SECRET_KEYS {
        let Some(value) = lookup(&table, &format!("{key}_file")) else {
            continue;
        };
        let (path, text) = read_secret_file(key, value, layers.sets(key))?;
        let result = if LIST_KEYS.contains(key) {
            builder.set_override(*key, secret_lines(&text))
        } else {
            let secret = text.trim_end_matches(['\n', '\r']);
            if secret.trim().is_empty() {
                return Err(ConfigError(format!("{key}_file: {path} is empty")));
            }
            builder.set_override(*key, secret.to_owned())
        };
        builder = result.map_err(|e| ConfigError(e.to_string()))?;
    }
    // The secrets of `[[forward.endpoints]]` entries, the same way.
    if let Some(config::ValueKind::Array(entries)) =
        lookup(&table, "forward.endpoints").map(|v| &v.kind)
    {
        for (i, entry) in entries.iter().enumerate() {
            let config::ValueKind::Table(entry) = &entry.kind else {
                continue;
            };
            for (field, list) in [("secret", false), ("previous_secrets", true)] {
                let Some(path) = entry.get(&format!("{field}_file")) else {
                    continue;
                };
                let key = format!("forward.endpoints[{i}].{field}");
                let (path, text) = read_secret_file(&key, path, entry.contains_key(field))?;
                let items = secret_lines(&text);
                let result = if list {
                    builder.set_override(&key, items)
                } else {
                    match items.as_slice() {
                        [one] => builder.set_override(&key, one.clone()),
                        _ => {
                            return Err(ConfigError(format!(
                                "{key}_file: {path} must hold the secret on one line"
                            )));
                        }
                    }
                };
                builder = result.map_err(|e| ConfigError(e.to_string()))?;
            }
        }
    }
    builder.build().map_err(|e| ConfigError(e.to_string()))
}

/// The path in `<key>_file` and the text of that file; refused when `key` is also set.
fn read_secret_file(
    key: &str,
    path: &config::Value,
    also_set: bool,
) -> Result<(String, String), ConfigError> {
    let path = path
        .clone()
        .into_string()
        .map_err(|_| ConfigError(format!("{key}_file: expected the path of a file")))?;
    if also_set {
        return Err(ConfigError(format!(
            "{key}_file: {key} is set too; give the secret in one place only"
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError(format!("{key}_file: cannot read {path}: {}", io_reason(&e))))?;
    Ok((path, text))
}

/// A secrets file's items: one a line, blank lines skipped.
fn secret_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Table fields that hold secrets inside lists of tables (`[[forward.endpoints]]`).
const SECRET_FIELDS: &[&str] = &["secret", "previous_secrets"];

/// An operating system error without its code number: "permission denied".
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.split_once(" (os error") {
        Some((reason, _)) => reason.to_owned(),
        None => text,
    };
    text.to_lowercase()
}

/// One effective setting, as `config check` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// `section.key`.
    pub key: String,
    /// The value as TOML, secrets masked.
    pub value: String,
    /// `default`, `file PATH` or `env VARIABLE`.
    pub source: String,
}

const MASK: &str = "\"********\"";

fn describe(
    config: &Config,
    layers: &Layers,
    settings: &Settings,
    env: &HashMap<String, String>,
) -> Vec<Effective> {
    let mut keys = Vec::new();
    list_keys(&as_table(config), "", &mut keys);
    keys.sort();
    let table = as_table(config);
    keys.into_iter()
        .map(|key| {
            let value = if key == "database.url" {
                format!("{:?}", masked_url(settings.database.url.expose_secret()))
            } else if SECRET_KEYS.contains(&key.as_str()) {
                match &lookup(&table, &key).map(|v| &v.kind) {
                    Some(config::ValueKind::Array(items)) => {
                        format!("[{}]", vec![MASK; items.len()].join(", "))
                    }
                    _ => MASK.to_owned(),
                }
            } else {
                lookup(&table, &key)
                    .map(|v| render(v, true))
                    .unwrap_or_default()
            };
            let source = layers.source(&key, env);
            Effective { key, value, source }
        })
        .collect()
}

/// A database URL with its password replaced by asterisks.
pub fn masked_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn toml_value(value: &config::Value) -> String {
    render(value, false)
}

/// A value as TOML; with `masked`, the fields of [`SECRET_FIELDS`] in tables are masked.
fn render(value: &config::Value, masked: bool) -> String {
    match &value.kind {
        config::ValueKind::Nil => "\"\"".to_owned(),
        config::ValueKind::String(s) => format!("{s:?}"),
        config::ValueKind::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(|v| render(v, masked))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        config::ValueKind::Table(t) => {
            let mut entries: Vec<_> = t.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "{{ {} }}",
                entries
                    .iter()
                    .map(
                        |(k, v)| match (masked, SECRET_FIELDS.contains(&k.as_str())) {
                            (true, true) => format!("{k} = {MASK}"),
                            _ => format!("{k} = {}", render(v, masked)),
                        }
                    )
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        other => other.to_string(),
    }
}
