//! Command-line operations over the Divar client and the store: sending messages,
//! registering subscriptions, building scope strings, listing registrations, signing users
//! in and looking after the token vault.
//!
//! Every command prints text by default and JSON with `--json`, and exits 0 when done,
//! 2 on a usage, validation or settings problem, 3 when Divar refused the call, 4 when Divar
//! (or the database) stayed unavailable after the retries, 5 when the call may have reached
//! Divar but no answer confirmed it (the outcome is unknown; it was not sent again).

pub mod backup;
mod buttons;
mod call;
pub mod cli;
pub mod data;
pub mod forward;
mod healthcheck;
mod oauth;
pub mod outbox;
mod output;
mod registrations;
pub mod rejected;
mod scope;
mod send;
mod service;
mod subscribe;
pub mod tail;

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;

pub use call::{ACCESS_TOKEN_ENV, CallOptions};
pub use forward::ForwardCommand;
pub use healthcheck::healthcheck;
pub use oauth::{JsonArgs, OAuthCommand, RevokeArgs, UrlArgs};
pub use registrations::RegistrationsCommand;
pub use rejected::RejectedCommand;
pub use scope::{ConversationScopeArgs, LegacyIds, PostScopeArgs, ScopeCommand, SendScopeArgs};
pub use send::{BotArgs, ConversationArgs, LegacyArgs, SendCommand};
pub use service::{
    completions, config, man, migrate, new_secret, openapi, serve, verify_state,
    warn_unknown_variables,
};
pub use subscribe::{EventsArgs, LegacySubscribeArgs, SubscribeCommand};

/// The subcommands that talk to Divar or list what was registered.
#[derive(Debug, Subcommand)]
pub enum DivarCommand {
    /// List legacy webhook registrations (post token, endpoint, created time; never the key),
    /// or remove one.
    #[command(args_conflicts_with_subcommands = true)]
    Registrations {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Remove a registration instead of listing them.
        #[command(subcommand)]
        command: Option<RegistrationsCommand>,
    },
    /// Send a chat message through Divar's API.
    #[command(subcommand)]
    Send(SendCommand),
    /// Register a webhook or subscribe to events with Divar.
    #[command(subcommand)]
    Subscribe(SubscribeCommand),
    /// Print OAuth scope strings (no network, no token).
    #[command(subcommand)]
    Scope(ScopeCommand),
    /// Sign users in and look after the token vault (never prints a token).
    #[command(subcommand)]
    Oauth(OAuthCommand),
}

/// Runs a subcommand; the exit code is the command's documented one.
pub async fn run(settings: &Settings, command: DivarCommand) -> ExitCode {
    match command {
        DivarCommand::Registrations {
            command: Some(RegistrationsCommand::Remove { id, json }),
            ..
        } => registrations::remove(settings, &id, json).await,
        DivarCommand::Registrations { json, .. } => registrations::run(settings, json).await,
        DivarCommand::Send(command) => send::run(settings, command).await,
        DivarCommand::Subscribe(command) => subscribe::run(settings, command).await,
        DivarCommand::Scope(command) => scope::run(&command),
        DivarCommand::Oauth(command) => oauth::run(settings, command).await,
    }
}
