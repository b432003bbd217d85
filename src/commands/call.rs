//! What every command that calls Divar shares: the access token, `--dry-run`, `--json`, the
//! client, and the failures with their exit codes.

use std::fmt;
use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use crate::config::Settings;
use crate::divar::outbound::{DivarClient, DivarError};

/// The environment variable read for the access token when no `--access-token-file` is given.
pub const ACCESS_TOKEN_ENV: &str = "KENAR_HOOK_ACCESS_TOKEN";

/// Options of every command that calls Divar.
#[derive(Debug, Clone, Args)]
pub struct CallOptions {
    /// Read the user's OAuth access token from FILE (surrounding whitespace is ignored).
    /// Without it, the KENAR_HOOK_ACCESS_TOKEN environment variable is read. No flag takes
    /// the token itself: it would land in the shell history.
    #[arg(long, value_name = "FILE")]
    pub access_token_file: Option<PathBuf>,
    /// Print the exact request (method, URL, headers with secrets as ***, JSON body) and
    /// exit 0 without sending it.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

impl CallOptions {
    /// The access token from `--access-token-file` or the environment, if any.
    pub(super) fn access_token(&self) -> Result<Option<SecretString>, Failure> {
        if let Some(path) = &self.access_token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::Usage(format!("--access-token-file {}: {e}", path.display()))
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(Failure::Usage(format!(
                    "--access-token-file {}: the file is empty",
                    path.display()
                )));
            }
            return Ok(Some(SecretString::from(token)));
        }
        Ok(std::env::var(ACCESS_TOKEN_ENV)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(SecretString::from))
    }

    /// The access token, which this call cannot do without.
    pub(super) fn required_access_token(&self) -> Result<SecretString, Failure> {
        self.access_token()?.ok_or_else(missing_token)
    }
}

/// The failure of a call made without the access token it needs.
pub(super) fn missing_token() -> Failure {
    Failure::Usage(format!(
        "this call needs the user's access token: give --access-token-file FILE or set \
         {ACCESS_TOKEN_ENV}"
    ))
}

/// The client of the `divar` settings section.
pub(super) fn client(settings: &Settings) -> Result<DivarClient, Failure> {
    Ok(DivarClient::new(settings.divar.client.clone())?)
}

/// Why a command failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// A call to Divar, or the checks before it, failed.
    Divar(DivarError),
    /// Arguments clap could not check: a file that cannot be read, a missing token.
    Usage(String),
    /// The database could not be reached or written.
    Store(anyhow::Error),
}

impl Failure {
    /// 2 usage or settings, 3 refused by Divar, 4 unavailable after the retries, 5 outcome
    /// unknown.
    pub(super) fn exit_code(&self) -> u8 {
        match self {
            Self::Divar(e) => e.exit_code(),
            Self::Usage(_) => 2,
            Self::Store(_) => 4,
        }
    }

    /// A stable name of the failure class, for `--json`.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Divar(e) => match e {
                DivarError::RecipientRestricted { .. } => "recipient_restricted",
                DivarError::Unauthorized { .. } => "unauthorized",
                DivarError::Forbidden { .. } => "forbidden",
                DivarError::RateLimited { .. } => "rate_limited",
                DivarError::Rejected { .. } => "rejected",
                DivarError::Transient { .. } => "transient",
                DivarError::Unreachable { .. } => "unreachable",
                DivarError::OutcomeUnknown { .. } => "outcome_unknown",
                DivarError::Validation(_) => "validation",
                DivarError::NotConfigured(_) => "not_configured",
            },
            Self::Usage(_) => "usage",
            Self::Store(_) => "database",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Divar(e) => write!(f, "{e}"),
            Self::Usage(message) => f.write_str(message),
            Self::Store(e) => write!(f, "database: {e:#}"),
        }
    }
}

impl From<DivarError> for Failure {
    fn from(e: DivarError) -> Self {
        Self::Divar(e)
    }
}
