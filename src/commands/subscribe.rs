//! `kenar-hook subscribe legacy | events`: register the legacy webhook of a post with a key of
//! its own, or subscribe to events.

use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::SecondsFormat;
use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::buttons::parse_pair;
use super::call::{CallOptions, Failure};
use super::output::{Report, finish};
use super::registrations::registration_json;
use crate::config::Settings;
use crate::divar::outbound::{DivarError, EventSubscription, LegacyRegistration};
use crate::store::{Registration, Store};

/// What to subscribe to.
#[derive(Debug, Subcommand)]
pub enum SubscribeCommand {
    /// Register the legacy CHAT_MESSAGE webhook of a post. A fresh random key is made for
    /// this registration and given to Divar; only its SHA-256 digest is stored, and the
    /// webhook accepts it for messages of this post only. The key is never printed.
    Legacy(LegacySubscribeArgs),
    /// Subscribe to events (NEW_MESSAGE_ON_POST, POST_UPDATE, ...). The subscription lives
    /// as long as the access token: made with --user-id (a token from the vault), it is recorded and made again
    /// after each refresh; otherwise subscribe again after a refresh.
    Events(EventsArgs),
}

/// `subscribe legacy`.
#[derive(Debug, Args)]
pub struct LegacySubscribeArgs {
    /// The post whose conversations Divar streams to the endpoint.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub post_token: String,
    /// The absolute URL of this service's webhook, e.g. https://hooks.example.ir/webhooks/divar.
    #[arg(long, value_name = "URL", value_parser = NonEmptyStringValueParser::new())]
    pub endpoint: String,
    /// Act as this signed-in user, with the user's token from the vault (the app-scoped
    /// user id, see `kenar-hook oauth tokens`).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub user_id: Option<String>,
    /// Token, dry run and output.
    #[command(flatten)]
    pub call: CallOptions,
}

/// `subscribe events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The event type, e.g. NEW_MESSAGE_ON_POST or POST_UPDATE.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub event_type: String,
    /// A post token; without it, every post of the user.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub resource_id: Option<String>,
    /// Echoed by Divar in each event's metadata (strings; repeatable). Not signed: never put
    /// secrets here.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_pair, num_args = 1..)]
    pub metadata: Vec<(String, String)>,
    /// Act as this signed-in user, with the user's token from the vault (the app-scoped
    /// user id, see `kenar-hook oauth tokens`).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub user_id: Option<String>,
    /// Token, dry run and output.
    #[command(flatten)]
    pub call: CallOptions,
}

/// Subscribes (or prints the request with `--dry-run`).
pub(super) async fn run(settings: &Settings, command: SubscribeCommand) -> ExitCode {
    match command {
        SubscribeCommand::Legacy(args) => finish(args.call.json, legacy(settings, args).await),
        SubscribeCommand::Events(args) => finish(args.call.json, events(settings, args).await),
    }
}

async fn legacy(settings: &Settings, args: LegacySubscribeArgs) -> Result<Report, Failure> {
    let (client, token, _) = args
        .call
        .client_and_token(settings, args.user_id.as_deref())
        .await?;
    let key = new_key();
    let request = LegacyRegistration {
        post_token: args.post_token,
        endpoint: args.endpoint,
        identification_key: key.clone(),
    };
    let prepared = client.prepare_legacy_registration(&token, &request)?;
    if args.call.dry_run {
        return Ok(Report::dry_run(&prepared));
    }
    let registration = Registration {
        id: uuid::Uuid::new_v4().to_string(),
        post_token: request.post_token.clone(),
        endpoint: request.endpoint.clone(),
        key_digest: hex::encode(crate::auth::digest(key.expose_secret().as_bytes())),
        created_at: chrono::Utc::now(),
    };
    // Stored before the call: Divar may deliver the first message before it answers.
    let store = async {
        let store = Store::connect_for_command(&settings.database).await?;
        store.migrate().await?;
        store.insert_registration(&registration).await?;
        anyhow::Ok(store)
    }
    .await
    .map_err(Failure::Store)?;
    // A running service reads the registration keys every REGISTRATION_REFRESH; waiting one
    // round (and a margin) means the key is known before Divar can use it.
    let wait = crate::auth::REGISTRATION_REFRESH + std::time::Duration::from_millis(500);
    eprintln!(
        "kenar-hook: waiting {:.1} s before calling Divar, so that running services know the \
         new key before Divar can use it",
        wait.as_secs_f64()
    );
    tokio::time::sleep(wait).await;
    if let Err(error) = client.execute(&prepared).await {
        forget_if_refused(&store, &registration, &error).await;
        return Err(error.into());
    }
    let text = format!(
        "registered the webhook of post {} -> {} (registration {}, {})",
        registration.post_token,
        registration.endpoint,
        registration.id,
        registration
            .created_at
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    Ok(Report::new(text, registration_json(&registration)))
}

/// Deletes the registration Divar refused, or never received (no connection could be made;
/// an earlier attempt is tried again only when it provably had no effect). After another
/// transient failure or with the outcome unknown Divar may still have registered the key, so
/// the row is kept: deleting it would refuse the post's messages.
async fn forget_if_refused(store: &Store, registration: &Registration, error: &DivarError) {
    // No attempt could connect: nothing reached Divar, so nothing was registered.
    if let DivarError::Unreachable { .. } = error {
        eprintln!(
            "kenar-hook: the registration was not made: Divar could not be reached, so \
             nothing was registered; registration {} is deleted again",
            registration.id
        );
    } else if error.is_retryable() || matches!(error, DivarError::OutcomeUnknown { .. }) {
        eprintln!(
            "kenar-hook: Divar's answer is unknown; registration {} is kept so that its key \
             stays accepted if Divar did register it",
            registration.id
        );
        return;
    }
    if let Err(e) = store.delete_registration(&registration.id).await {
        eprintln!(
            "kenar-hook: registration {} was refused by Divar but could not be deleted: {e}",
            registration.id
        );
    }
}

async fn events(settings: &Settings, args: EventsArgs) -> Result<Report, Failure> {
    let (client, token, vault) = args
        .call
        .client_and_token(settings, args.user_id.as_deref())
        .await?;
    let mut metadata = Map::new();
    for (key, value) in args.metadata {
        if metadata.contains_key(&key) {
            return Err(Failure::Usage(format!(
                "--metadata: key `{key}` is given twice"
            )));
        }
        metadata.insert(key, Value::String(value));
    }
    let subscription = EventSubscription {
        event_type: args.event_type,
        event_resource_id: args.resource_id,
        metadata: (!metadata.is_empty()).then_some(metadata),
    };
    let prepared = client.prepare_subscription(&token, &subscription)?;
    if args.call.dry_run {
        return Ok(Report::dry_run(&prepared));
    }
    client.execute(&prepared).await?;
    // Recorded with its user, so the refresher makes it again with each new token.
    if let Some(v) = &vault {
        v.tokens
            .record_subscription(&v.user_id, &subscription, v.generation)
            .await
            .map_err(Failure::Token)?;
    }
    let text = match &subscription.event_resource_id {
        Some(post) => format!("subscribed to {} of post {post}", subscription.event_type),
        None => format!("subscribed to {} of every post", subscription.event_type),
    };
    Ok(Report::new(
        text,
        json!({
            "subscribed": true,
            "event_type": subscription.event_type,
            "event_resource_id": subscription.event_resource_id,
            "recorded_for_user": vault.as_ref().map(|v| v.user_id.as_str()),
        }),
    ))
}

/// 32 random bytes, base64url without padding: a 256-bit key that fits a header as it is.
fn new_key() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_43_url_safe_characters_and_never_repeats() {
        let (a, b) = (new_key(), new_key());
        assert_eq!(a.expose_secret().len(), 43);
        assert!(
            a.expose_secret()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
