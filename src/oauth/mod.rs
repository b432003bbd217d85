//! Signing users in with Divar's OAuth and keeping their tokens: the sign-in routes
//! ([`routes`]), the encrypted vault ([`vault`]), the background refresher that also makes
//! event subscriptions again with each new token ([`refresh`]), and the forgetting of a user
//! whose access was revoked ([`revoke`]).
//!
//! [`Tokens`] is the one way in, for the service, the command line and programs that embed
//! kenar-hook: `Tokens::access_token(user_id)` answers a usable access token, refreshed first
//! when it is close to expiry.

pub(crate) mod refresh;
pub(crate) mod revoke;
pub(crate) mod routes;
pub use crate::config::oauth as settings;
pub(crate) mod vault;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::config::Settings;
use crate::divar::oauth::{Grant, OAuthClient, OAuthError};
use crate::divar::outbound::{DivarClient, DivarError};
use crate::store::Store;
use crate::store::oauth::{TokenRow, TokenStatus};
pub use refresh::Refreshed;
pub use settings::OAuthSettings;
use vault::{TokenKind, Vault, VaultError};

/// Why no token could be had. Never holds a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Sign-in and the vault are off.
    #[error("{0}")]
    Off(&'static str),
    /// The vault holds no token of this user.
    #[error("the vault holds no token of user {0}; sign the user in first")]
    UnknownUser(String),
    /// The OAuth server refused to refresh the token: the user must sign in again.
    #[error(
        "the token of user {user_id} is dead (its refresh was refused: {reason}); sign the user in again"
    )]
    Dead {
        /// The user.
        user_id: String,
        /// The refusal.
        reason: String,
    },
    /// The access token expired and cannot be refreshed now.
    #[error("the access token of user {0} has expired and could not be refreshed")]
    Expired(String),
    /// The sealed token cannot be opened.
    #[error("user {user_id}: {error}")]
    Vault {
        /// The user.
        user_id: String,
        /// Why.
        error: VaultError,
    },
    /// The OAuth server refused or failed.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// Divar's API refused or failed (asking who the user is).
    #[error(transparent)]
    Divar(#[from] DivarError),
    /// The grant names no user.
    #[error("Divar did not say who the user is: the grant lacks the USER_ID scope")]
    NoUserId,
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] crate::store::Error),
    /// `oauth.max_pending_sign_ins` sign-ins are already under way.
    #[error("too many sign-ins are under way (oauth.max_pending_sign_ins); try again later")]
    TooManySignIns,
}

/// What a sign-in did with the user's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIn {
    /// The grant's tokens are stored (the user's earlier ones replaced).
    Stored(String),
    /// The grant covers a strict subset of the scopes of the tokens the user already holds:
    /// those are kept, and the grant is dropped.
    KeptBroader(String),
}

/// The vault and what it needs: the store, the keys, the OAuth server and Divar's API.
/// Cheap to clone.
#[derive(Clone)]
pub struct Tokens(Arc<Inner>);

struct Inner {
    store: Store,
    vault: Vault,
    oauth: OAuthClient,
    divar: DivarClient,
    settings: OAuthSettings,
    allowed_hosts: Vec<String>,
    /// Names this process's refresh leases.
    owner: String,
    /// Requests to the sign-in routes per client IP.
    limiter: Arc<crate::auth::PerClient>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("owner", &self.0.owner)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// The vault of these settings over `store`, or why it is off.
    pub fn new(settings: &Settings, store: Store) -> Result<Tokens, TokenError> {
        let off = settings.oauth.why_off();
        let app = settings.oauth.app().ok_or(TokenError::Off(
            off.unwrap_or("oauth.client_id, client_secret and redirect_url must be set"),
        ))?;
        let vault = Vault::new(&settings.oauth.vault_keys)
            .map_err(OAuthError::NotConfigured)?
            .ok_or(TokenError::Off(off.unwrap_or_default()))?;
        let timeout = Duration::from_millis(settings.oauth.request_timeout_ms);
        Ok(Tokens(Arc::new(Inner {
            store,
            vault,
            oauth: OAuthClient::new(app, timeout)?,
            divar: DivarClient::new(settings.divar.client.clone())?,
            settings: settings.oauth.clone(),
            allowed_hosts: settings.callback.allowed_hosts.clone(),
            owner: uuid::Uuid::new_v4().to_string(),
            limiter: crate::auth::PerClient::per_minute(settings.oauth.rate_limit_per_minute),
        })))
    }

    /// The limit of requests to the sign-in routes per client IP.
    pub fn limiter(&self) -> &Arc<crate::auth::PerClient> {
        &self.0.limiter
    }

    /// The store the vault keeps its rows in.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The OAuth server's client.
    pub fn oauth(&self) -> &OAuthClient {
        &self.0.oauth
    }

    /// Divar's API client.
    pub fn divar(&self) -> &DivarClient {
        &self.0.divar
    }

    /// The `oauth` settings.
    pub fn settings(&self) -> &OAuthSettings {
        &self.0.settings
    }

    /// When a token granted now for `lifetime` is due for a refresh.
    fn due(&self, now: DateTime<Utc>, lifetime: Duration) -> DateTime<Utc> {
        let at = lifetime.mul_f64(self.0.settings.refresh_at_fraction);
        now + chrono::Duration::from_std(at).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Stores the tokens of a new grant under the user Divar names for them, and returns
    /// that user id. Earlier tokens of the user are replaced.
    pub async fn sign_in(&self, grant: &Grant) -> Result<SignedIn, TokenError> {
        if grant.scope.is_some() && !grant.allows("USER_ID") {
            return Err(TokenError::NoUserId);
        }
        let user = self.0.divar.user(&grant.access_token).await?;
        let user_id = user
            .user_id
            .filter(|u| !u.is_empty())
            .ok_or(TokenError::NoUserId)?;
        let scope = grant.scope.clone().unwrap_or_default();
        // A sign-in link can ask for fewer scopes than the user already granted; replacing
        // the broader tokens with it would break the app's subscriptions and sends.
        if let Some(held) = self.0.store.token(&user_id).await? {
            let words = |s: &str| -> std::collections::BTreeSet<String> {
                s.split_whitespace().map(str::to_owned).collect()
            };
            let (new, old) = (words(&scope), words(&held.scope));
            if held.status != TokenStatus::Dead
                && grant.scope.is_some()
                && new != old
                && new.is_subset(&old)
            {
                tracing::info!(user_id = %user_id, scope = %scope, held = %held.scope, "sign-in for fewer scopes than the user's tokens hold; the tokens are kept");
                return Ok(SignedIn::KeptBroader(user_id));
            }
        }
        let now = Utc::now();
        let seal = |token: &SecretString, kind| self.0.vault.seal(token, &user_id, &scope, kind);
        let row = TokenRow {
            user_id: user_id.clone(),
            scope: scope.clone(),
            access_token: seal(&grant.access_token, TokenKind::Access),
            refresh_token: grant
                .refresh_token
                .as_ref()
                .map(|t| seal(t, TokenKind::Refresh)),
            expires_at: now + chrono::Duration::from_std(grant.expires_in).unwrap_or_default(),
            refresh_due_at: grant
                .refresh_token
                .as_ref()
                .map(|_| self.due(now, grant.expires_in)),
            generation: 1,
            status: TokenStatus::Active,
            failures: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
        };
        self.0.store.put_token(&row).await?;
        tracing::info!(user_id = %user_id, scope = %scope, "user signed in; tokens stored");
        Ok(SignedIn::Stored(user_id))
    }

    /// A usable access token of the user, with its generation. Refreshed first when it is
    /// due; when another replica is refreshing it, the current one is used while it lasts
    /// (Divar keeps it valid for two minutes after a rotation).
    pub async fn access_token_of(&self, user_id: &str) -> Result<(SecretString, i64), TokenError> {
        let mut row = self.row(user_id).await?;
        let now = Utc::now();
        if row.refresh_due_at.is_some_and(|due| due <= now) {
            if let Err(e) = self.refresh(&row).await {
                tracing::warn!(user_id, error = %e, "refresh before use failed");
            }
            row = self.row(user_id).await?;
        }
        self.usable(row)
    }

    /// The access token of the user as stored now, without refreshing it.
    pub(crate) async fn current_token(
        &self,
        user_id: &str,
    ) -> Result<(SecretString, i64), TokenError> {
        let row = self.row(user_id).await?;
        self.usable(row)
    }

    fn usable(&self, row: TokenRow) -> Result<(SecretString, i64), TokenError> {
        let user_id = row.user_id.as_str();
        if row.status == TokenStatus::Dead {
            return Err(TokenError::Dead {
                user_id: user_id.to_owned(),
                reason: row.last_error.clone().unwrap_or_default(),
            });
        }
        if row.expires_at <= Utc::now() {
            return Err(TokenError::Expired(user_id.to_owned()));
        }
        let token = self.open(&row, TokenKind::Access)?;
        Ok((token, row.generation))
    }

    /// A usable access token of the user (see [`Self::access_token_of`]).
    pub async fn access_token(&self, user_id: &str) -> Result<SecretString, TokenError> {
        Ok(self.access_token_of(user_id).await?.0)
    }

    async fn row(&self, user_id: &str) -> Result<TokenRow, TokenError> {
        self.0
            .store
            .token(user_id)
            .await?
            .ok_or_else(|| TokenError::UnknownUser(user_id.to_owned()))
    }

    fn open(&self, row: &TokenRow, kind: TokenKind) -> Result<SecretString, TokenError> {
        let sealed = match kind {
            TokenKind::Access => Some(&row.access_token),
            TokenKind::Refresh => row.refresh_token.as_ref(),
        };
        let sealed = sealed.ok_or_else(|| TokenError::Expired(row.user_id.clone()))?;
        self.0
            .vault
            .open(sealed, &row.user_id, &row.scope, kind)
            .map_err(|error| TokenError::Vault {
                user_id: row.user_id.clone(),
                error,
            })
    }

    /// Seals every token under the first vault key; returns how many rows changed. A row
    /// rotated meanwhile is under the first key already.
    pub async fn rekey(&self) -> Result<usize, TokenError> {
        let mut changed = 0;
        for row in self.0.store.tokens().await? {
            let current = self.0.vault.is_current(&row.access_token)
                && row
                    .refresh_token
                    .as_ref()
                    .is_none_or(|t| self.0.vault.is_current(t));
            if current {
                continue;
            }
            let access = self.open(&row, TokenKind::Access)?;
            let refresh = row
                .refresh_token
                .as_ref()
                .map(|_| self.open(&row, TokenKind::Refresh))
                .transpose()?;
            let seal =
                |t: &SecretString, kind| self.0.vault.seal(t, &row.user_id, &row.scope, kind);
            let resealed = self
                .0
                .store
                .reseal_token(
                    &row.user_id,
                    row.generation,
                    seal(&access, TokenKind::Access),
                    refresh.as_ref().map(|t| seal(t, TokenKind::Refresh)),
                )
                .await?;
            changed += usize::from(resealed);
        }
        Ok(changed)
    }

    /// Whether `return_to` is a URL the browser may be sent to after sign-in.
    pub fn checked_return_to(&self, return_to: &str) -> Result<url::Url, String> {
        crate::callback::rules::checked_url(return_to, &self.0.allowed_hosts)
    }
}
