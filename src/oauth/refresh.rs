//! The refresher: every `oauth.refresh_check_ms` it refreshes the tokens that are due (at
//! `oauth.refresh_at_fraction` of their lifetime) and makes again the event subscriptions
//! that were made with an older token than their user's current one.
//!
//! One replica refreshes a token: it first takes the row's lease (a conditional update that
//! names the generation it read), and stores the rotation only while it still holds the
//! lease on that generation. A refused refresh (`invalid_grant` and the like) marks the
//! token dead; any other failure is tried again after a backoff.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::vault::{TokenKind, VaultError};
use super::{TokenError, Tokens};
use crate::divar::outbound::EventSubscription;
use crate::store::oauth::{Leased, Rotation, SubscriptionRow, TokenRow, TokenStatus};

/// Longest wait between two attempts to refresh one token.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What became of one refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// Both tokens rotated and stored.
    Rotated,
    /// Another replica holds the token, or rotated it meanwhile.
    Skipped,
    /// It failed and will be tried again later.
    Retrying,
    /// The OAuth server refused: the token is dead.
    Refused,
}

impl Tokens {
    /// Refreshes one token as read, if this replica can take its lease.
    pub async fn refresh(&self, row: &TokenRow) -> Result<Refreshed, TokenError> {
        let store = self.store();
        let now = Utc::now();
        let lease = chrono::Duration::seconds(
            i64::try_from(self.settings().refresh_lease_secs).unwrap_or(60),
        );
        let owner = &self.0.owner;
        if !store
            .take_lease(&row.user_id, row.generation, owner, now, now + lease)
            .await?
        {
            return Ok(Refreshed::Skipped);
        }
        let leased = Leased {
            user_id: &row.user_id,
            generation: row.generation,
            owner,
        };
        let outcome = match (
            self.open(row, TokenKind::Access),
            self.open(row, TokenKind::Refresh),
        ) {
            (Ok(access), Ok(refresh)) => self.oauth().refresh(&access, &refresh).await,
            (
                Err(TokenError::Vault {
                    error: VaultError::UnknownKey,
                    ..
                }),
                _,
            )
            | (
                _,
                Err(TokenError::Vault {
                    error: VaultError::UnknownKey,
                    ..
                }),
            ) => {
                // Sealed under a key this replica does not hold yet: during a key rotation
                // another replica may already seal with the new key. The token is alive;
                // this replica tries again later (and says so once per token).
                metrics::counter!("kenar_oauth_refreshes_total", "outcome" => "unknown_key")
                    .increment(1);
                let wait = self.backoff(row.failures);
                if row.failures == 0 {
                    tracing::warn!(user_id = %row.user_id, retry_in_ms = wait.as_millis() as u64, "token sealed under a vault key this replica does not hold (oauth.vault_keys); trying again later");
                }
                let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                store
                    .refresh_failed(
                        leased,
                        Some(next),
                        false,
                        &VaultError::UnknownKey.to_string(),
                        now,
                    )
                    .await?;
                return Ok(Refreshed::Retrying);
            }
            (Err(e), _) | (_, Err(e)) => {
                // A token that does not verify cannot be refreshed by anyone; say why.
                metrics::counter!("kenar_oauth_refreshes_total", "outcome" => "refused")
                    .increment(1);
                let error = e.to_string();
                store
                    .refresh_failed(leased, None, true, &error, now)
                    .await?;
                return Ok(Refreshed::Refused);
            }
        };
        let now = Utc::now();
        match outcome {
            Ok(grant) => {
                let seal = |t, kind| self.0.vault.seal(t, &row.user_id, &row.scope, kind);
                let rotation = Rotation {
                    access_token: seal(&grant.access_token, TokenKind::Access),
                    refresh_token: grant
                        .refresh_token
                        .as_ref()
                        .map(|t| seal(t, TokenKind::Refresh)),
                    expires_at: now
                        + chrono::Duration::from_std(grant.expires_in).unwrap_or_default(),
                    refresh_due_at: Some(self.due(now, grant.expires_in)),
                };
                if !store.store_rotation(leased, &rotation, now).await? {
                    tracing::warn!(user_id = %row.user_id, "token changed during its refresh; the rotation is dropped");
                    return Ok(Refreshed::Skipped);
                }
                metrics::counter!("kenar_oauth_refreshes_total", "outcome" => "rotated")
                    .increment(1);
                tracing::info!(user_id = %row.user_id, generation = row.generation + 1, "token refreshed");
                self.renew_subscriptions_of(Some(&row.user_id)).await?;
                Ok(Refreshed::Rotated)
            }
            Err(e) if e.is_refusal() => {
                metrics::counter!("kenar_oauth_refreshes_total", "outcome" => "refused")
                    .increment(1);
                tracing::warn!(user_id = %row.user_id, error = %e, "refresh refused; the token is dead");
                store
                    .refresh_failed(leased, None, true, &e.to_string(), now)
                    .await?;
                Ok(Refreshed::Refused)
            }
            Err(e) => {
                metrics::counter!("kenar_oauth_refreshes_total", "outcome" => "failed")
                    .increment(1);
                let wait = self.backoff(row.failures);
                tracing::warn!(user_id = %row.user_id, error = %e, retry_in_ms = wait.as_millis() as u64, "refresh failed; trying again later");
                let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                store
                    .refresh_failed(leased, Some(next), false, &e.to_string(), now)
                    .await?;
                Ok(Refreshed::Retrying)
            }
        }
    }

    fn backoff(&self, failures: i64) -> Duration {
        let base = Duration::from_millis(self.settings().refresh_retry_base_ms);
        let doublings = u32::try_from(failures.clamp(0, 16)).unwrap_or(16);
        base.saturating_mul(1 << doublings).min(MAX_BACKOFF)
    }

    /// Records a subscription made with the user's token of `generation`, so it is made
    /// again after each refresh.
    pub async fn record_subscription(
        &self,
        user_id: &str,
        subscription: &EventSubscription,
        generation: i64,
    ) -> Result<(), TokenError> {
        let row = SubscriptionRow {
            user_id: user_id.to_owned(),
            event_type: subscription.event_type.clone(),
            resource_id: subscription.event_resource_id.clone().unwrap_or_default(),
            metadata: subscription
                .metadata
                .as_ref()
                .map(|m| serde_json::Value::Object(m.clone()).to_string()),
            made_generation: generation,
            failures: 0,
            last_error: None,
        };
        self.store().put_subscription(&row, Utc::now()).await?;
        Ok(())
    }

    /// Makes again, with the current token, each subscription (of one user, or of all) made
    /// with an older one. Failures are recorded on the subscription and tried again on the
    /// next round.
    pub async fn renew_subscriptions_of(&self, user_id: Option<&str>) -> Result<usize, TokenError> {
        let mut renewed = 0;
        for sub in self.store().stale_subscriptions().await? {
            if user_id.is_some_and(|u| u != sub.user_id) {
                continue;
            }
            let subscription = EventSubscription {
                event_type: sub.event_type.clone(),
                event_resource_id: (!sub.resource_id.is_empty()).then(|| sub.resource_id.clone()),
                metadata: sub
                    .metadata
                    .as_deref()
                    .and_then(|m| serde_json::from_str(m).ok()),
            };
            let result = match self.current_token(&sub.user_id).await {
                Ok((token, generation)) => self
                    .divar()
                    .subscribe_events(&token, &subscription)
                    .await
                    .map(|()| generation)
                    .map_err(TokenError::from),
                Err(e) => Err(e),
            };
            let now = Utc::now();
            match result {
                Ok(generation) => {
                    self.store()
                        .subscription_renewed(&sub, generation, now)
                        .await?;
                    renewed += 1;
                }
                Err(e) => {
                    metrics::counter!("kenar_oauth_subscription_failures_total").increment(1);
                    tracing::warn!(user_id = %sub.user_id, event_type = %sub.event_type, error = %e, "subscription could not be made again; trying again later");
                    self.store()
                        .subscription_failed(&sub, &e.to_string(), now)
                        .await?;
                }
            }
        }
        Ok(renewed)
    }

    /// One round: refresh what is due, make stale subscriptions again, count dead tokens.
    pub async fn refresh_round(&self) -> Result<(), TokenError> {
        for row in self.store().due_tokens(Utc::now()).await? {
            self.refresh(&row).await?;
        }
        self.renew_subscriptions_of(None).await?;
        let tokens = self.store().tokens().await?;
        let dead = tokens
            .iter()
            .filter(|t| t.status == TokenStatus::Dead)
            .count();
        metrics::gauge!("kenar_oauth_dead_tokens").set(dead as f64);
        Ok(())
    }

    /// Runs [`Self::refresh_round`] every `oauth.refresh_check_ms` until `stop`.
    pub fn spawn_refresher(&self, stop: CancellationToken) {
        let tokens = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(tokens.settings().refresh_check());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = tokens.refresh_round().await {
                    tracing::warn!(error = %e, "token refresh round failed");
                }
            }
        });
    }
}
