//! The rows around the tokens: subscriptions made with them, sign-ins under way (by the
//! digest of their state, deleted as they are used), and the revocations to apply.

use chrono::{DateTime, Utc};

use super::super::rows::{AnyRow, read_row};
use super::super::sql::{Param, Sql};
use super::super::{Error, Store};
use super::{TokenStatus, text};

/// A subscription made with a user's token.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRow {
    /// The user whose token made it.
    pub user_id: String,
    /// `NEW_MESSAGE_ON_POST`, `POST_UPDATE`, ...
    pub event_type: String,
    /// The post token; empty for every post of the user.
    pub resource_id: String,
    /// The metadata object as JSON text.
    pub metadata: Option<String>,
    /// The token generation it was last made with.
    pub made_generation: i64,
    /// Failed attempts in a row to make it again.
    pub failures: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A sign-in under way.
#[derive(Debug, Clone, PartialEq)]
pub struct StateRow {
    /// Whether the browser must show the state's cookie (made by `start`; not by `oauth url`).
    pub bound: bool,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// Where to send the browser afterwards.
    pub return_to: Option<String>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

fn subscription_row(row: &AnyRow) -> Result<SubscriptionRow, Error> {
    read_row!(
        row,
        SubscriptionRow {
            user_id,
            event_type,
            resource_id,
            metadata,
            made_generation,
            failures,
            last_error
        }
    )
}

impl Store {
    /// Records a subscription made with the user's token of `generation`; a second record of
    /// the same (user, event type, resource) replaces the first.
    pub async fn put_subscription(
        &self,
        s: &SubscriptionRow,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "insert into oauth_subscription (user_id, event_type, resource_id, metadata, \
             made_generation, failures, last_error, created_at, updated_at) values (",
        );
        sql.list(vec![
            text(&s.user_id),
            text(&s.event_type),
            text(&s.resource_id),
            Param::OptText(s.metadata.clone()),
            Param::Int(s.made_generation),
            Param::Int(0),
            Param::OptText(None),
            Param::Time(now),
            Param::Time(now),
        ]);
        sql.push(
            ") on conflict (user_id, event_type, resource_id) do update set \
             metadata = excluded.metadata, made_generation = excluded.made_generation, \
             failures = 0, last_error = null, updated_at = excluded.updated_at",
        );
        self.execute(&sql).await
    }

    /// Every recorded subscription, by user.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, Error> {
        let sql = Sql::new(
            self.dialect(),
            "select * from oauth_subscription order by user_id, event_type, resource_id",
        );
        self.fetch_all(&sql)
            .await?
            .iter()
            .map(subscription_row)
            .collect()
    }

    /// Subscriptions made with an older token than their user's active one.
    pub async fn stale_subscriptions(&self) -> Result<Vec<SubscriptionRow>, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select s.* from oauth_subscription s join oauth_token t on t.user_id = s.user_id \
             where s.made_generation < t.generation and t.status = ",
        );
        sql.bind(text(TokenStatus::Active.as_str()))
            .push(" order by s.user_id, s.event_type, s.resource_id");
        self.fetch_all(&sql)
            .await?
            .iter()
            .map(subscription_row)
            .collect()
    }

    /// Marks a subscription made again with the token of `generation`.
    pub async fn subscription_renewed(
        &self,
        s: &SubscriptionRow,
        generation: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "update oauth_subscription set made_generation = ",
        );
        sql.bind(Param::Int(generation))
            .push(", failures = 0, last_error = null, updated_at = ")
            .bind(Param::Time(now));
        where_subscription(&mut sql, s);
        self.execute(&sql).await
    }

    /// Records a failed attempt to make a subscription again.
    pub async fn subscription_failed(
        &self,
        s: &SubscriptionRow,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "update oauth_subscription set failures = failures + 1, last_error = ",
        );
        sql.bind(text(error))
            .push(", updated_at = ")
            .bind(Param::Time(now));
        where_subscription(&mut sql, s);
        self.execute(&sql).await
    }

    /// Stores a sign-in under way (by the digest of its state) and drops expired ones;
    /// `false` when `max_pending` are already under way (nothing stored).
    pub async fn put_state(
        &self,
        digest: &str,
        state: &StateRow,
        max_pending: u64,
    ) -> Result<bool, Error> {
        let d = self.dialect();
        let mut purge = Sql::new(d, "delete from oauth_state where expires_at < ");
        purge.bind(Param::Time(Utc::now()));
        self.execute(&purge).await?;
        let mut sql = Sql::new(
            d,
            "insert into oauth_state (state_digest, bound, scope, return_to, expires_at) select ",
        );
        sql.list(vec![
            text(digest),
            Param::Int(i64::from(state.bound)),
            text(&state.scope),
            Param::OptText(state.return_to.clone()),
            Param::Time(state.expires_at),
        ]);
        sql.push(" where (select count(*) from oauth_state) < ")
            .bind(Param::Int(i64::try_from(max_pending).unwrap_or(i64::MAX)));
        Ok(self.execute_count(&sql).await? == 1)
    }

    /// Takes a sign-in under way: deleted as it is read, so a state works once.
    pub async fn take_state(
        &self,
        digest: &str,
        cookie_matches: bool,
    ) -> Result<Option<StateRow>, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "delete from oauth_state where state_digest = ",
        );
        // A state bound to a browser is used up only by that browser: anyone else who saw
        // it (it travels in URLs) cannot make the user's sign-in fail.
        sql.bind(text(digest))
            .push(" and (bound = 0 or ")
            .bind(Param::Int(i64::from(cookie_matches)))
            .push(" = 1) returning bound, scope, return_to, expires_at");
        let Some(row) = self.fetch_optional(&sql).await? else {
            return Ok(None);
        };
        Ok(Some(StateRow {
            bound: row.get::<i64>("bound")? != 0,
            scope: row.get("scope")?,
            return_to: row.get("return_to")?,
            expires_at: row.time("expires_at")?,
        }))
    }

    /// `USER_ACCESS_REVOCATION` events stored after `seq`: (seq, user id, received at).
    pub async fn revocations_after(
        &self,
        seq: i64,
    ) -> Result<Vec<(i64, Option<String>, DateTime<Utc>)>, Error> {
        let mut sql = Sql::new(
            self.dialect(),
            "select seq, subject_id, received_at from event where event_type = ",
        );
        sql.bind(text("USER_ACCESS_REVOCATION"))
            .push(" and seq > ")
            .bind(Param::Int(seq))
            .push(" order by seq");
        self.fetch_all(&sql)
            .await?
            .iter()
            .map(|r| Ok((r.get("seq")?, r.get("subject_id")?, r.time("received_at")?)))
            .collect()
    }
}

fn where_subscription(sql: &mut Sql, s: &SubscriptionRow) {
    sql.push(" where user_id = ")
        .bind(text(&s.user_id))
        .push(" and event_type = ")
        .bind(text(&s.event_type))
        .push(" and resource_id = ")
        .bind(text(&s.resource_id));
}
