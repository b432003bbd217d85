//! `kenar-hook scope ...`: OAuth scope strings, built locally (no network, no token).

use std::process::ExitCode;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};
use serde_json::json;

use super::call::Failure;
use super::output::{Report, finish};
use crate::divar::scope::{Scope, authorize_scope_param, legacy_send_scope};

/// Which scope to print.
#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// The 2023 legacy send scope: CHAT_SEND_MESSAGE_OAUTH__<base64(user:post:peer)>.
    LegacySend(SendScopeArgs),
    /// The 2024 form of the same scope: CHAT_MESSAGE_SEND.<base64(user:post:peer)>.
    MessageSend(SendScopeArgs),
    /// Read every conversation of a post: CHAT_POST_CONVERSATIONS_READ.<post_token>.
    PostRead(PostScopeArgs),
    /// Send in every conversation of a post:
    /// CHAT_POST_CONVERSATIONS_MESSAGE_SEND.<post_token>.
    PostSend(PostScopeArgs),
    /// Send in one conversation: CONVERSATION_SEND_MESSAGE.<conversation_id>.
    ConversationSend(ConversationScopeArgs),
    /// Read one conversation: CHAT_CONVERSATION_READ.<conversation_id>.
    ConversationRead(ConversationScopeArgs),
    /// The `scope` parameter of an authorize URL: the scopes separated by spaces, then
    /// percent-encoded (`=` -> %3D, space -> %20). Each scope is kept as written.
    Authorize {
        /// The scopes; an argument holding spaces is split into several.
        #[arg(required = true, num_args = 1.., value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A legacy send scope.
#[derive(Debug, Args)]
pub struct SendScopeArgs {
    /// The conversation.
    #[command(flatten)]
    pub ids: LegacyIds,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The three ids of a conversation the legacy API writes in, in the order of its scope.
#[derive(Debug, Args)]
pub struct LegacyIds {
    /// The consenting user the app writes as.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub user_id: String,
    /// The post of the conversation.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub post_token: String,
    /// The other side of the conversation.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub peer_id: String,
}

/// A post.
#[derive(Debug, Args)]
pub struct PostScopeArgs {
    /// The post.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub post_token: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A conversation.
#[derive(Debug, Args)]
pub struct ConversationScopeArgs {
    /// The conversation.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub conversation_id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints the scope string.
pub(super) fn run(command: &ScopeCommand) -> ExitCode {
    let of = |json: bool, scope: Scope| (json, scope.to_string());
    let (json, scope) = match command {
        ScopeCommand::LegacySend(t) => (
            t.json,
            legacy_send_scope(&t.ids.user_id, &t.ids.post_token, &t.ids.peer_id),
        ),
        ScopeCommand::MessageSend(t) => of(
            t.json,
            Scope::message_send(&t.ids.user_id, &t.ids.post_token, &t.ids.peer_id),
        ),
        ScopeCommand::PostRead(p) => of(p.json, Scope::PostConversationsRead(p.post_token.clone())),
        ScopeCommand::PostSend(p) => of(
            p.json,
            Scope::PostConversationsMessageSend(p.post_token.clone()),
        ),
        ScopeCommand::ConversationSend(c) => of(
            c.json,
            Scope::ConversationSendMessage(c.conversation_id.clone()),
        ),
        ScopeCommand::ConversationRead(c) => {
            of(c.json, Scope::ConversationRead(c.conversation_id.clone()))
        }
        ScopeCommand::Authorize { scopes, json } => return finish(*json, authorize(scopes)),
    };
    let report = Report::new(scope.clone(), json!({ "scope": scope }));
    finish(json, Ok(report))
}

fn authorize(arguments: &[String]) -> Result<Report, Failure> {
    let scopes: Vec<&str> = arguments
        .iter()
        .flat_map(|a| a.split_whitespace())
        .collect();
    if scopes.is_empty() {
        return Err(Failure::Usage("no scope given".to_owned()));
    }
    for scope in &scopes {
        // Parsed only to refuse nonsense: printing the parsed form would turn a 2023
        // `PERMISSION__resource` into the dotted form, which a legacy app must not send.
        scope
            .parse::<Scope>()
            .map_err(|e| Failure::Usage(format!("`{scope}`: {e}")))?;
    }
    let param = authorize_scope_param(&scopes);
    Ok(Report::new(
        param.clone(),
        json!({"scope": param, "scopes": scopes}),
    ))
}
