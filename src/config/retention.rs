//! Sections `retention` and `privacy`: how long stored records are kept, and what a user's
//! revocation of access erases (docs/operations.md).

use serde::Deserialize;

/// Section `retention`. A number of days of 0 keeps that kind of record for ever.
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// Messages older than this (by `sent_at`) are deleted; 0: kept for ever.
    pub messages_days: u32,
    /// Events older than this (by `received_at`) are deleted; 0: kept for ever.
    pub events_days: u32,
    /// Clicks older than this are deleted; 0: kept for ever.
    pub clicks_days: u32,
    /// Refused deliveries older than this are deleted; 0: kept for ever.
    pub rejected_days: u32,
    /// Minutes between two rounds of pruning (the first comes within a minute of start-up).
    pub interval_minutes: u32,
    /// Rows deleted per transaction.
    pub batch_size: u32,
    /// Delete expired records even when an active forwarding endpoint has not yet
    /// delivered them.
    pub force: bool,
}

impl RetentionSettings {
    /// Whether any kind of record expires.
    pub fn enabled(&self) -> bool {
        self.messages_days + self.events_days + self.clicks_days + self.rejected_days > 0
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.interval_minutes == 0 {
            return Err(("retention.interval_minutes", "must be at least 1".into()));
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(("retention.batch_size", "must be from 1 to 10000".into()));
        }
        // chrono's durations end near 292,000 years; a typo of a few zeros should not panic.
        for (key, days) in [
            ("retention.messages_days", self.messages_days),
            ("retention.events_days", self.events_days),
            ("retention.clicks_days", self.clicks_days),
            ("retention.rejected_days", self.rejected_days),
        ] {
            if days > 36_500 {
                return Err((
                    key,
                    format!("{days} days is over 100 years; 0 keeps for ever"),
                ));
            }
        }
        Ok(())
    }
}

/// Section `privacy`.
#[derive(Debug, Clone, Deserialize)]
pub struct PrivacySettings {
    /// What a stored `USER_ACCESS_REVOCATION` does besides deleting the user's tokens.
    pub on_revocation: OnRevocation,
}

/// `privacy.on_revocation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum OnRevocation {
    /// The user's messages, clicks and events are kept.
    Keep,
    /// The user's messages, conversations, clicks and events stored before the revocation
    /// are erased, as `kenar-hook erase --user-id` does.
    Erase,
}

named_values!(OnRevocation { "keep" => Keep, "erase" => Erase });
