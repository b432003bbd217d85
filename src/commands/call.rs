//! What every command that calls Divar shares: the access token, `--dry-run`, `--json`, the
//! client, and the failures with their exit codes.

use std::fmt;
use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use crate::config::Settings;
use crate::divar::outbound::{DivarClient, DivarError};
use crate::oauth::{TokenError, Tokens};
use crate::store::Store;

/// The environment variable read for the access token when no `--access-token-file` is given.
pub const ACCESS_TOKEN_ENV: &str = "KENAR_HOOK_ACCESS_TOKEN";

/// Options of every command that calls Divar.
#[derive(Debug, Clone, Args)]
pub struct CallOptions {
    /// Read the user's OAuth access token from FILE (surrounding whitespace is ignored).
    /// Without it, the token of --user-id is taken from the vault when sign-in is on
    /// (oauth.vault_keys), else the KENAR_HOOK_ACCESS_TOKEN environment variable is read. No
    /// flag takes the token itself: it would land in the shell history.
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

/// A token from the vault, with what is needed to record a subscription made with it.
pub(super) struct VaultToken {
    pub tokens: Tokens,
    pub user_id: String,
    pub generation: i64,
}

impl CallOptions {
    /// The access token of the call: from `--access-token-file`; else, with the vault on
    /// and a user named, that user's token from the vault (refreshed first when due; a dry
    /// run reads it as it is); else from the environment, if set.
    pub(super) async fn token(
        &self,
        settings: &Settings,
        user_id: Option<&str>,
    ) -> Result<(Option<SecretString>, Option<VaultToken>), Failure> {
        let user_id = match user_id {
            Some(u) if self.access_token_file.is_none() && settings.oauth.enabled() => u,
            _ => return Ok((self.access_token()?, None)),
        };
        let store = open_store(settings).await?;
        let tokens = Tokens::new(settings, store).map_err(Failure::Token)?;
        let found = if self.dry_run {
            tokens.current_token(user_id).await
        } else {
            tokens.access_token_of(user_id).await
        };
        let (token, generation) = found.map_err(Failure::Token)?;
        let vault = VaultToken {
            tokens,
            user_id: user_id.to_owned(),
            generation,
        };
        Ok((Some(token), Some(vault)))
    }

    /// The access token, which this call cannot do without.
    pub(super) async fn required_token(
        &self,
        settings: &Settings,
        user_id: Option<&str>,
    ) -> Result<(SecretString, Option<VaultToken>), Failure> {
        match self.token(settings, user_id).await? {
            (Some(token), vault) => Ok((token, vault)),
            (None, _) => Err(missing_token()),
        }
    }

    /// The client of the `divar` section, and the access token this call cannot do without.
    pub(super) async fn client_and_token(
        &self,
        settings: &Settings,
        user_id: Option<&str>,
    ) -> Result<(DivarClient, SecretString, Option<VaultToken>), Failure> {
        let client = client(settings)?;
        let (token, vault) = self.required_token(settings, user_id).await?;
        Ok((client, token, vault))
    }

    /// The access token from `--access-token-file` or the environment, if any.
    fn access_token(&self) -> Result<Option<SecretString>, Failure> {
        token_from(
            "--access-token-file",
            self.access_token_file.as_deref(),
            ACCESS_TOKEN_ENV,
        )
        .map_err(Failure::Usage)
    }
}

/// A token from the file a command's `flag` names (trimmed; an empty file is an error), else
/// from the variable `env` when it is set and not blank.
pub(super) fn token_from(
    flag: &str,
    file: Option<&std::path::Path>,
    env: &str,
) -> Result<Option<SecretString>, String> {
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("{flag} {}: the file is empty", path.display()));
        }
        return Ok(Some(SecretString::from(token)));
    }
    Ok(std::env::var(env)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(SecretString::from))
}

/// The database, migrated.
pub(super) async fn open_store(settings: &Settings) -> Result<Store, Failure> {
    async {
        let store = Store::connect_for_command(&settings.database).await?;
        store.migrate().await?;
        anyhow::Ok(store)
    }
    .await
    .map_err(Failure::Store)
}

/// The failure of a call made without the access token it needs.
pub(super) fn missing_token() -> Failure {
    Failure::Usage(format!(
        "this call needs the user's access token: give --access-token-file FILE, or \
         --user-id USER_ID with the token vault on (oauth.vault_keys), or set \
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
    /// The vault has no usable token, or is off.
    Token(TokenError),
}

impl Failure {
    /// 2 usage or settings, 3 refused by Divar, 4 unavailable after the retries, 5 outcome
    /// unknown.
    pub(super) fn exit_code(&self) -> u8 {
        match self {
            Self::Divar(e) => e.exit_code(),
            Self::Usage(_) => 2,
            Self::Store(_) => 4,
            Self::Token(e) => match e {
                TokenError::Divar(e) => e.exit_code(),
                TokenError::Store(_) => 4,
                TokenError::OAuth(e) if !e.is_refusal() => 4,
                TokenError::OAuth(_) | TokenError::Dead { .. } | TokenError::Expired(_) => 3,
                _ => 2,
            },
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
            Self::Token(_) => "vault",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Divar(e) => write!(f, "{e}"),
            Self::Usage(message) => f.write_str(message),
            Self::Store(e) => write!(f, "database: {e:#}"),
            Self::Token(e) => write!(f, "{e}"),
        }
    }
}

impl From<DivarError> for Failure {
    fn from(e: DivarError) -> Self {
        Self::Divar(e)
    }
}
