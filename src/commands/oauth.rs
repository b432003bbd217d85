//! `kenar-hook oauth url | tokens | revoke | rekey`: signing users in without a web front,
//! and looking after the vault. No command ever prints a token.

use std::collections::HashMap;
use std::process::ExitCode;

use chrono::SecondsFormat;
use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::call::{Failure, open_store};
use super::output::{Report, finish};
use crate::config::Settings;
use crate::oauth::Tokens;
use crate::store::oauth::{SubscriptionRow, TokenRow, TokenStatus};

/// The vault's subcommands.
#[derive(Debug, Subcommand)]
pub enum OAuthCommand {
    /// Print a consent URL for a user to open; the callback route stores the tokens. The
    /// URL works once, within oauth.state_ttl_secs.
    Url(UrlArgs),
    /// List the signed-in users: scopes, expiry, health and subscriptions; never a token.
    Tokens(JsonArgs),
    /// Delete a user's tokens and subscription records.
    Revoke(RevokeArgs),
    /// Seal every token under the first of oauth.vault_keys (after adding a new key first).
    Rekey(JsonArgs),
}

/// `oauth url`.
#[derive(Debug, Args)]
pub struct UrlArgs {
    /// A scope to ask for (repeatable); oauth.default_scopes when none. USER_ID and
    /// offline_access are always added.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub scope: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--json` alone.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `oauth revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The app-scoped user id, as `oauth tokens` lists it.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub user_id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a vault subcommand.
pub(super) async fn run(settings: &Settings, command: OAuthCommand) -> ExitCode {
    match command {
        OAuthCommand::Url(args) => finish(args.json, url(settings, args.scope).await),
        OAuthCommand::Tokens(args) => finish(args.json, list(settings).await),
        OAuthCommand::Revoke(args) => finish(args.json, revoke(settings, &args.user_id).await),
        OAuthCommand::Rekey(args) => finish(args.json, rekey(settings).await),
    }
}

async fn vault(settings: &Settings) -> Result<Tokens, Failure> {
    if let Some(why) = settings.oauth.why_off() {
        return Err(Failure::Usage(why.to_owned()));
    }
    let store = open_store(settings).await?;
    Tokens::new(settings, store).map_err(Failure::Token)
}

async fn url(settings: &Settings, scopes: Vec<String>) -> Result<Report, Failure> {
    let tokens = vault(settings).await?;
    let begun = tokens
        .begin_sign_in(&scopes, None, false)
        .await
        .map_err(Failure::Token)?;
    let url = begun.url.to_string();
    Ok(Report::new(url.clone(), json!({"url": url})))
}

/// What `oauth tokens` shows of a user: never a token.
fn health(t: &TokenRow, now: chrono::DateTime<chrono::Utc>) -> &'static str {
    if t.status == TokenStatus::Dead {
        "dead"
    } else if t.expires_at <= now && t.refresh_token.is_none() {
        "expired"
    } else if t.failures > 0 {
        "retrying"
    } else {
        "ok"
    }
}

async fn list(settings: &Settings) -> Result<Report, Failure> {
    let store = open_store(settings).await?;
    let (tokens, subscriptions) =
        async { anyhow::Ok((store.tokens().await?, store.subscriptions().await?)) }
            .await
            .map_err(Failure::Store)?;
    let mut by_user: HashMap<&str, Vec<&SubscriptionRow>> = HashMap::new();
    for s in &subscriptions {
        by_user.entry(s.user_id.as_str()).or_default().push(s);
    }
    let now = chrono::Utc::now();
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut text = format!(
        "{:<46} {:<9} {:<21} {:<14} SCOPE\n",
        "USER", "HEALTH", "EXPIRES", "SUBSCRIPTIONS"
    );
    let mut items = Vec::new();
    for t in &tokens {
        let subs = by_user.get(t.user_id.as_str()).cloned().unwrap_or_default();
        let failing = subs.iter().filter(|s| s.failures > 0).count();
        let subs_text = if failing > 0 {
            format!("{} ({failing} failing)", subs.len())
        } else {
            subs.len().to_string()
        };
        let health = health(t, now);
        text.push_str(&format!(
            "{:<46} {:<9} {:<21} {:<14} {}\n",
            t.user_id,
            health,
            time(t.expires_at),
            subs_text,
            t.scope
        ));
        if let Some(error) = &t.last_error {
            text.push_str(&format!("    last refresh error: {error}\n"));
        }
        for s in subs.iter().filter(|s| s.failures > 0) {
            text.push_str(&format!(
                "    subscription {} {} failing: {}\n",
                s.event_type,
                s.resource_id,
                s.last_error.as_deref().unwrap_or_default()
            ));
        }
        let subs_json: Vec<Value> = subs
            .iter()
            .map(|s| {
                json!({
                    "event_type": s.event_type,
                    "resource_id": (!s.resource_id.is_empty()).then_some(&s.resource_id),
                    "failures": s.failures,
                    "last_error": s.last_error,
                })
            })
            .collect();
        items.push(json!({
            "user_id": t.user_id,
            "scope": t.scope,
            "health": health,
            "expires_at": time(t.expires_at),
            "refresh_due_at": t.refresh_due_at.map(time),
            "has_refresh_token": t.refresh_token.is_some(),
            "refresh_failures": t.failures,
            "last_error": t.last_error,
            "signed_in_at": time(t.created_at),
            "subscriptions": subs_json,
        }));
    }
    Ok(Report::new(text, Value::Array(items)))
}

async fn revoke(settings: &Settings, user_id: &str) -> Result<Report, Failure> {
    let store = open_store(settings).await?;
    let (tokens, subscriptions) = store
        .forget_user(user_id, None)
        .await
        .map_err(|e| Failure::Store(e.into()))?;
    if tokens == 0 && subscriptions == 0 {
        return Err(Failure::Usage(format!(
            "the vault holds nothing of user {user_id}"
        )));
    }
    tracing::info!(
        user_id,
        tokens,
        subscriptions,
        "tokens deleted by oauth revoke"
    );
    Ok(Report::new(
        format!("deleted the tokens of user {user_id} and {subscriptions} subscription record(s)"),
        json!({"user_id": user_id, "tokens": tokens, "subscriptions": subscriptions}),
    ))
}

async fn rekey(settings: &Settings) -> Result<Report, Failure> {
    let tokens = vault(settings).await?;
    let changed = tokens.rekey().await.map_err(Failure::Token)?;
    Ok(Report::new(
        format!("sealed {changed} user(s)' tokens under the first vault key"),
        json!({"resealed": changed}),
    ))
}
