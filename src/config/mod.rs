//! Settings: layered loading (built-in defaults, `--config FILE` or else `config/default.toml`,
//! `KENAR_HOOK__SECTION__KEY` variables, `DATABASE_URL`), secrets as secret types, and
//! validation at start-up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::divar::outbound::DivarClientSettings;

/// `TryFrom<String>` for a setting that takes one of a few names; any other value is
/// refused as `got "…"; expected a, b or c`.
macro_rules! named_values {
    ($ty:ident { $($name:literal => $variant:ident),+ $(,)? }) => {
        impl TryFrom<String> for $ty {
            type Error = String;

            fn try_from(value: String) -> Result<Self, String> {
                match value.as_str() {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(format!(
                        "got {value:?}; expected {}",
                        $crate::config::one_of(&[$($name),+])
                    )),
                }
            }
        }
    };
}

pub mod callback;
mod check;
pub mod clients;
pub mod forward;
pub mod inbox;
mod keys;
mod load;
mod messages;
pub mod oauth;
pub mod retention;
mod validate;

pub use callback::{CallbackSettings, RuleSettings};
pub use check::{Effective, masked_url};
pub use clients::{ClientSettings, SCOPES};
pub use forward::{ENDPOINT_KEYS, EndpointSettings, ForwardSettings};
pub use inbox::InboxSettings;
pub use keys::unknown_variables;
pub use load::io_reason;
pub use oauth::OAuthSettings;
pub use retention::{OnRevocation, PrivacySettings, RetentionSettings};

use check::*;
use keys::*;
use load::*;
use messages::*;

/// The built-in defaults: the same file that ships as `config/default.toml`, compiled in so a
/// binary started from any directory has every key.
pub const DEFAULTS_TOML: &str = include_str!("../../config/default.toml");

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
    "metrics.token",
];

/// Settings whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "divar.identification_keys",
    "callback.allowed_hosts",
    "api.tokens",
    "oauth.default_scopes",
    "oauth.allowed_scopes",
    "server.trusted_proxies",
    "divar.allowed_sources",
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
    pub oauth: OAuthSettings,
    /// Pushing stored records to the app's own endpoints.
    pub forward: ForwardSettings,
    /// How long stored records are kept.
    pub retention: RetentionSettings,
    /// What a user's revocation of access erases.
    pub privacy: PrivacySettings,
    /// The web inbox.
    pub inbox: InboxSettings,
    /// The settings files read, in order; none when only the built-in defaults and the
    /// environment were.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

/// Section `api`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    /// Bearer tokens with every scope. With `clients` empty too, every `/api/v1` request is
    /// answered 401.
    #[serde(default)]
    pub tokens: Vec<SecretString>,
    /// Named clients with scopes and, optionally, posts.
    #[serde(default)]
    pub clients: Vec<ClientSettings>,
    /// Sustained requests per second allowed per token.
    pub rate_limit_per_second: u32,
    /// Requests a token may make at once above the sustained rate.
    pub rate_limit_burst: u32,
    /// Failed authentications allowed per client IP per minute.
    pub auth_failures_per_minute: u32,
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
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` is believed.
    #[serde(default, deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
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
    /// When not empty, the routes Divar calls answer only these addresses or CIDR blocks.
    pub allowed_sources: Vec<IpNet>,
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
    #[serde(default, deserialize_with = "networks")]
    allowed_sources: Vec<IpNet>,
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
            allowed_sources: d.allowed_sources,
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
    /// When set, `/metrics` answers only `authorization: Bearer <token>`.
    pub token: Option<SecretString>,
}

named_values!(SqliteSync { "normal" => Normal, "full" => Full });

named_values!(LogFormat { "pretty" => Pretty, "json" => Json });

/// A name a client or an endpoint goes by in logs, metrics and URLs.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "got {name:?}; expected 1 to 64 letters, digits, - or _"
        ))
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
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

/// A list of addresses (`10.0.0.7`, `::1`) and CIDR blocks (`10.0.0.0/8`, `fd00::/8`).
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| {
            let text = text.trim();
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "got {text:?}; expected an IP address or a CIDR block such as \
                         10.0.0.0/8 or fd00::/8"
                    ))
                })
        })
        .collect()
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
pub const MIN_KEY_CHARS: usize = 32;

/// `Err` saying why, and how to make a good one, when `secret` is shorter than
/// [`MIN_KEY_CHARS`]; `what` names it (`key`, `token`). The secret itself is never said.
pub fn strong_enough(secret: &str, what: &str) -> Result<(), String> {
    let chars = secret.chars().count();
    if chars >= MIN_KEY_CHARS {
        return Ok(());
    }
    Err(format!(
        "a {what} of {chars} characters is too easy to guess; use at least {MIN_KEY_CHARS} \
         random characters, e.g. the output of `kenar-hook secret new`"
    ))
}

/// [`strong_enough`] for an identification key, which may also be left to kenar-hook.
pub fn strong_identification_key(key: &str) -> Result<(), String> {
    strong_enough(key, "key").map_err(|problem| {
        format!(
            "{problem}, or leave the list empty to have a strong key generated into \
             <server.data_dir>/identification_key"
        )
    })
}

/// A settings problem: one line naming the key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Which database `database.url` selects.
    pub fn database_kind(&self) -> Result<DatabaseKind, String> {
        database_kind(self.database.url.expose_secret())
    }
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
