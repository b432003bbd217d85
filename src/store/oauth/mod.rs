//! The token vault's tables: sealed tokens here; the subscriptions made with them, sign-ins
//! under way and revocations in `sign_in`. Tokens arrive sealed; this module never sees one
//! in clear text. Every change to a token row names the generation it read, so a write based
//! on a stale read (another replica rotated the tokens meanwhile) changes nothing.

use std::fmt;

use chrono::{DateTime, Utc};

use super::rows::{AnyRow, from_column, read_row};
use super::sql::{Param, Sql};
use super::{Error, Store};

mod sign_in;

pub use sign_in::{StateRow, SubscriptionRow};

/// Where a user's tokens stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Refreshed as needed.
    Active,
    /// The OAuth server refused its refresh: the user must sign in again.
    Dead,
}

impl TokenStatus {
    /// Every status.
    pub const ALL: [TokenStatus; 2] = [TokenStatus::Active, TokenStatus::Dead];

    /// The name stored and shown: `active` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Dead => "dead",
        }
    }

    /// The status of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

from_column!(named TokenStatus);

/// A user's sealed tokens. `Debug` shows sizes, not bytes.
#[derive(Clone)]
pub struct TokenRow {
    /// The app-scoped user id.
    pub user_id: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The sealed access token.
    pub access_token: Vec<u8>,
    /// The sealed refresh token, if one was granted.
    pub refresh_token: Option<Vec<u8>>,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// When the refresher should renew it; none without a refresh token.
    pub refresh_due_at: Option<DateTime<Utc>>,
    /// Rotations so far (and sign-ins); every write checks it.
    pub generation: i64,
    /// Where the tokens stand.
    pub status: TokenStatus,
    /// Failed refreshes in a row.
    pub failures: i64,
    /// Why the last refresh failed.
    pub last_error: Option<String>,
    /// When the user signed in (last).
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for TokenRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRow")
            .field("user_id", &self.user_id)
            .field("scope", &self.scope)
            .field(
                "access_token",
                &format_args!("<{} bytes sealed>", self.access_token.len()),
            )
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<sealed>"),
            )
            .field("expires_at", &self.expires_at)
            .field("refresh_due_at", &self.refresh_due_at)
            .field("generation", &self.generation)
            .field("status", &self.status)
            .field("failures", &self.failures)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

/// A rotation to store: the new sealed tokens and their times.
#[derive(Clone)]
pub struct Rotation {
    /// The new sealed access token.
    pub access_token: Vec<u8>,
    /// The new sealed refresh token (the old one is kept when none was sent).
    pub refresh_token: Option<Vec<u8>>,
    /// When the new access token expires.
    pub expires_at: DateTime<Utc>,
    /// When to refresh next.
    pub refresh_due_at: Option<DateTime<Utc>>,
}

/// A token row as leased for a refresh: the user, the generation read, and the lease owner.
#[derive(Debug, Clone, Copy)]
pub struct Leased<'a> {
    /// The user.
    pub user_id: &'a str,
    /// The generation that was read.
    pub generation: i64,
    /// Who holds the lease.
    pub owner: &'a str,
}

fn text(s: &str) -> Param {
    Param::Text(s.to_owned())
}

fn token_row(row: &AnyRow) -> Result<TokenRow, Error> {
    read_row!(
        row,
        TokenRow {
            user_id,
            scope,
            access_token,
            refresh_token,
            expires_at,
            refresh_due_at,
            generation,
            status,
            failures,
            last_error,
            created_at,
            updated_at
        }
    )
}

const TOKEN_COLUMNS: &str = "user_id, scope, access_token, refresh_token, expires_at, \
    refresh_due_at, generation, status, failures, last_error, created_at, updated_at";

fn opt_time(t: Option<DateTime<Utc>>) -> Param {
    Param::OptTime(t)
}

fn opt_bytes(b: &Option<Vec<u8>>) -> Param {
    Param::OptBytes(b.clone())
}

impl Store {
    /// Stores a signed-in user's tokens, replacing any earlier ones of the user (a new
    /// generation: subscriptions are made again with the new token).
    pub async fn put_token(&self, t: &TokenRow) -> Result<(), Error> {
        let mut sql = Sql::new(self.dialect(), "insert into oauth_token (");
        sql.push(TOKEN_COLUMNS).push(") values (").list(vec![
            text(&t.user_id),
            text(&t.scope),
            Param::Bytes(t.access_token.clone()),
            opt_bytes(&t.refresh_token),
            Param::Time(t.expires_at),
            opt_time(t.refresh_due_at),
            Param::Int(t.generation),
            text(t.status.as_str()),
            Param::Int(t.failures),
            Param::OptText(t.last_error.clone()),
            Param::Time(t.created_at),
            Param::Time(t.updated_at),
        ]);
        sql.push(
            ") on conflict (user_id) do update set scope = excluded.scope, \
             access_token = excluded.access_token, refresh_token = excluded.refresh_token, \
             expires_at = excluded.expires_at, refresh_due_at = excluded.refresh_due_at, \
             generation = oauth_token.generation + 1, status = excluded.status, failures = 0, \
             last_error = null, lease_owner = null, lease_until = null, \
             created_at = excluded.created_at, updated_at = excluded.updated_at",
        );
        self.execute(&sql).await
    }

    /// A user's tokens.
    pub async fn token(&self, user_id: &str) -> Result<Option<TokenRow>, Error> {
        let mut sql = Sql::new(self.dialect(), "select ");
        sql.push(TOKEN_COLUMNS)
            .push(" from oauth_token where user_id = ")
            .bind(text(user_id));
        self.fetch_optional(&sql)
            .await?
            .as_ref()
            .map(token_row)
            .transpose()
    }

    /// Every user's tokens, by user id.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, Error> {
        let mut sql = Sql::new(self.dialect(), "select ");
        sql.push(TOKEN_COLUMNS)
            .push(" from oauth_token order by user_id");
        self.fetch_all(&sql).await?.iter().map(token_row).collect()
    }

    /// Active tokens due for a refresh at `now` and not held by a replica.
    pub async fn due_tokens(&self, now: DateTime<Utc>) -> Result<Vec<TokenRow>, Error> {
        let mut sql = Sql::new(self.dialect(), "select ");
        sql.push(TOKEN_COLUMNS)
            .push(" from oauth_token where status = ")
            .bind(text(TokenStatus::Active.as_str()))
            .push(" and refresh_token is not null and refresh_due_at <= ")
            .bind(Param::Time(now))
            .push(" and (lease_until is null or lease_until < ")
            .bind(Param::Time(now))
            .push(") order by refresh_due_at");
        self.fetch_all(&sql).await?.iter().map(token_row).collect()
    }

    /// Takes the refresh lease of a token as read (its generation), unless another replica
    /// holds it or has rotated the token since. True when taken.
    pub async fn take_lease(
        &self,
        user_id: &str,
        generation: i64,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut sql = Sql::new(self.dialect(), "update oauth_token set lease_owner = ");
        sql.bind(text(owner))
            .push(", lease_until = ")
            .bind(Param::Time(until))
            .push(" where user_id = ")
            .bind(text(user_id))
            .push(" and generation = ")
            .bind(Param::Int(generation))
            .push(" and status = ")
            .bind(text(TokenStatus::Active.as_str()))
            .push(" and (lease_until is null or lease_until < ")
            .bind(Param::Time(now))
            .push(")");
        Ok(self.execute_count(&sql).await? == 1)
    }

    /// Stores both rotated tokens at once (one statement, one transaction) and ends the
    /// lease; a new generation. False when the lease was lost or the row changed.
    pub async fn store_rotation(
        &self,
        lease: Leased<'_>,
        r: &Rotation,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut sql = Sql::new(self.dialect(), "update oauth_token set access_token = ");
        sql.bind(Param::Bytes(r.access_token.clone()))
            .push(", refresh_token = coalesce(")
            .bind(opt_bytes(&r.refresh_token))
            .push(", refresh_token), expires_at = ")
            .bind(Param::Time(r.expires_at))
            .push(", refresh_due_at = ")
            .bind(opt_time(r.refresh_due_at))
            .push(
                ", generation = generation + 1, failures = 0, last_error = null, \
                 lease_owner = null, lease_until = null, updated_at = ",
            )
            .bind(Param::Time(now));
        where_leased(&mut sql, lease);
        Ok(self.execute_count(&sql).await? == 1)
    }

    /// Records a failed refresh and ends the lease: the next attempt is due at `next`, or
    /// never when `dead`.
    pub async fn refresh_failed(
        &self,
        lease: Leased<'_>,
        next: Option<DateTime<Utc>>,
        dead: bool,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let status = if dead {
            TokenStatus::Dead
        } else {
            TokenStatus::Active
        };
        let mut sql = Sql::new(self.dialect(), "update oauth_token set status = ");
        sql.bind(text(status.as_str()))
            .push(", refresh_due_at = ")
            .bind(opt_time(next))
            .push(", failures = failures + 1, last_error = ")
            .bind(text(error))
            .push(", lease_owner = null, lease_until = null, updated_at = ")
            .bind(Param::Time(now));
        where_leased(&mut sql, lease);
        Ok(self.execute_count(&sql).await? == 1)
    }

    /// Replaces a token's sealed values by the same tokens sealed under another key, unless
    /// the row changed since it was read. No new generation: the tokens are the same.
    pub async fn reseal_token(
        &self,
        user_id: &str,
        generation: i64,
        access_token: Vec<u8>,
        refresh_token: Option<Vec<u8>>,
    ) -> Result<bool, Error> {
        let mut sql = Sql::new(self.dialect(), "update oauth_token set access_token = ");
        sql.bind(Param::Bytes(access_token))
            .push(", refresh_token = ")
            .bind(opt_bytes(&refresh_token))
            .push(" where user_id = ")
            .bind(text(user_id))
            .push(" and generation = ")
            .bind(Param::Int(generation));
        Ok(self.execute_count(&sql).await? == 1)
    }

    /// Deletes a user's tokens and subscription records, in one transaction, when they were
    /// stored at or before `before` (all of them when `None`): a revocation never deletes a
    /// sign-in that came after it. Returns (tokens, subscriptions) deleted.
    pub async fn forget_user(
        &self,
        user_id: &str,
        before: Option<DateTime<Utc>>,
    ) -> Result<(u64, u64), Error> {
        let d = self.dialect();
        let mut subs = Sql::new(d, "delete from oauth_subscription where user_id = ");
        subs.bind(text(user_id));
        let mut tokens = Sql::new(d, "delete from oauth_token where user_id = ");
        tokens.bind(text(user_id));
        if let Some(before) = before {
            subs.push(" and created_at <= ").bind(Param::Time(before));
            tokens.push(" and created_at <= ").bind(Param::Time(before));
        }
        let counts = self.transaction(&[subs, tokens]).await?;
        Ok((counts[1], counts[0]))
    }
}

impl Store {
    /// The signed-in users whose message subscriptions cover a post: those naming the post
    /// first, else those of every post of the user (`(users, of_every_post)`).
    pub async fn message_subscribers(
        &self,
        post_token: &str,
    ) -> Result<(Vec<String>, bool), Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select distinct s.user_id, s.resource_id from oauth_subscription s \
             join oauth_token t on t.user_id = s.user_id \
             where s.event_type like '%MESSAGE%' and (s.resource_id = ",
        );
        sql.bind(text(post_token))
            .push(" or s.resource_id = '') order by s.user_id");
        let rows = self.fetch_all(&sql).await?;
        let mut named = Vec::new();
        let mut every = Vec::new();
        for r in &rows {
            let user: String = r.get("user_id")?;
            let resource: String = r.get("resource_id")?;
            if resource.is_empty() {
                every.push(user);
            } else {
                named.push(user);
            }
        }
        if named.is_empty() {
            Ok((every, true))
        } else {
            Ok((named, false))
        }
    }
}

fn where_leased(sql: &mut Sql, lease: Leased<'_>) {
    sql.push(" where user_id = ")
        .bind(text(lease.user_id))
        .push(" and generation = ")
        .bind(Param::Int(lease.generation))
        .push(" and lease_owner = ")
        .bind(text(lease.owner));
}
