//! The command line: its arguments and subcommands, parsed by clap; `main` runs them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The version `--version` prints: the package's, and the git commit it was built from
/// ("unknown" when built without the repository).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("GIT_COMMIT_SHORT"),
    ")"
);

/// kenar-hook: receives Divar's chat webhooks and stores every message.
#[derive(Debug, Parser)]
#[command(name = "kenar-hook", version = VERSION, about)]
pub struct Cli {
    /// A settings file (TOML) layered over the defaults, read instead of config/default.toml.
    #[arg(long, global = true, value_name = "FILE", env = "KENAR_HOOK_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 when the service answers GET /healthz with 200, 1 otherwise (for Docker).
    Healthcheck {
        /// Check readiness (`/readyz`: the database answers) instead of liveness.
        #[arg(long, conflicts_with = "url")]
        ready: bool,
        /// The URL to check; default http://<server.listen>/healthz.
        url: Option<String>,
    },
    /// Check the settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Verify a redirect's `state` with callback.signing_key and print its claims as JSON
    /// (exit 0 when valid, 1 when tampered, expired or malformed).
    VerifyState {
        /// The value of the `state` query parameter.
        state: String,
    },
    /// Print the OpenAPI document of every endpoint.
    Openapi,
    /// Print a shell completion script: `kenar-hook completions bash > /etc/bash_completion.d/kenar-hook`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Make secrets for the settings.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Print the man page (roff): `kenar-hook man > /usr/local/share/man/man1/kenar-hook.1`.
    Man,
    /// Forwarding to the app's endpoints: status, replay, pause and resume.
    #[command(subcommand)]
    Forward(super::ForwardCommand),
    /// Replies endpoints answered pushes with: their status, and sending one again.
    #[command(subcommand)]
    Outbox(super::outbox::OutboxCommand),
    /// Deliveries refused although their key was good: run them through ingestion again.
    #[command(subcommand)]
    Rejected(super::RejectedCommand),
    /// Delete stored records older than a given age, as retention does (docs/operations.md).
    Prune(super::data::PruneArgs),
    /// Erase one user's, conversation's or post's records, with their forwarding work.
    Erase(super::data::EraseArgs),
    /// Follow a running service's stored records as they arrive (the live stream), one line
    /// each.
    Tail(super::tail::TailArgs),
    /// Write one user's, conversation's or post's records as JSON Lines (a data-access
    /// request).
    Export(super::data::ExportArgs),
    /// Write a consistent copy of the database and the key file into an empty folder, while
    /// the service runs (PostgreSQL: print the pg_dump command).
    Backup(super::backup::BackupArgs),
    /// Put a backup back in place of the database and key file (SQLite; the service stopped).
    Restore(super::backup::RestoreArgs),
    /// Calls to Divar's API and what was registered with it.
    #[command(flatten)]
    Divar(super::DivarCommand),
}

/// `kenar-hook config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings and print every effective value with the layer it came from
    /// (default, file or env), secrets masked; exit 0 when valid, 2 when not.
    Check,
}

/// `secret`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print a fresh random secret (32 random bytes, URL-safe base64): for api.tokens,
    /// divar.identification_keys, callback.signing_key or metrics.token.
    New {
        /// A Standard Webhooks secret (`whsec_...`) for forward.endpoints[].secret instead.
        #[arg(long)]
        whsec: bool,
    },
}
