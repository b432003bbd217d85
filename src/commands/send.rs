//! `kenar-hook send legacy | conversation | bot`: one chat message through Divar's API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::NonEmptyStringValueParser;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;

use super::buttons::{BotButtons, ConversationButtons, parse_direct_link, parse_link, read_json};
use super::call::{CallOptions, Failure, client, missing_token};
use super::output::{Report, finish};
use super::scope::LegacyIds;
use crate::config::Settings;
use crate::divar::outbound::{
    BotMessage, BotMessageResponse, DivarClient, LegacyButton, LegacySendMessage, PreparedRequest,
    SendMessage, SendMessageResponse,
};

/// Which API sends the message.
#[derive(Debug, Subcommand)]
pub enum SendCommand {
    /// Write as a user to the other side of a post's conversation (2023 API; needs the
    /// CHAT_SEND_MESSAGE_OAUTH__... scope, see `kenar-hook scope legacy-send`). With the token
    /// vault on, the call uses the --user-id's token from the vault unless
    /// --access-token-file is given.
    Legacy(Box<LegacyArgs>),
    /// Write as a user in a conversation (send message v2; needs the user's token with a
    /// send scope of the conversation or its post).
    Conversation(ConversationArgs),
    /// Write as the app's chatbot, in a conversation (API key alone) or to a user (needs the
    /// user's token with CHAT_BOT_USER_MESSAGE_SEND).
    Bot(BotArgs),
}

/// `send legacy`.
#[derive(Debug, Args)]
pub struct LegacyArgs {
    /// The conversation.
    #[command(flatten)]
    pub ids: LegacyIds,
    /// The text of the message.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub text: String,
    /// A LINK button for the sender: a tap calls the app's callback with the KEY=VALUE pairs
    /// as extra_data. ICON may be left empty (`Caption,,k=v`).
    #[arg(long, value_name = "CAPTION,ICON,KEY=VALUE...", value_parser = parse_link,
          conflicts_with = "sender_direct_link")]
    pub sender_link: Option<LegacyButton>,
    /// A LINK button for the receiver, like --sender-link.
    #[arg(long, value_name = "CAPTION,ICON,KEY=VALUE...", value_parser = parse_link,
          conflicts_with = "receiver_direct_link")]
    pub receiver_link: Option<LegacyButton>,
    /// A DIRECT_LINK button for the sender: a tap opens URL. ICON may be left empty.
    #[arg(long, value_name = "CAPTION,ICON,URL", value_parser = parse_direct_link)]
    pub sender_direct_link: Option<LegacyButton>,
    /// A DIRECT_LINK button for the receiver, like --sender-direct-link.
    #[arg(long, value_name = "CAPTION,ICON,URL", value_parser = parse_direct_link)]
    pub receiver_direct_link: Option<LegacyButton>,
    /// Token, dry run and output.
    #[command(flatten)]
    pub call: CallOptions,
}

/// `send conversation`.
#[derive(Debug, Args)]
pub struct ConversationArgs {
    /// The conversation to write in.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub conversation_id: String,
    /// Write as this signed-in user, with the user's token from the vault (the app-scoped
    /// user id, see `kenar-hook oauth tokens`).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub user_id: Option<String>,
    /// The text of the message.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub text: String,
    /// A JSON file with the button grids of the request body, each optional:
    /// {"sender_buttons": {"rows": [{"buttons": [BUTTON, ...]}, ...]}, "receiver_buttons": ...}
    /// where BUTTON is {"caption": "...", "icon": "INFO", "action": {"open_direct_link":
    /// "https://..."}} (or open_server_link / get_dynamic_action {"data": {...}},
    /// open_post_page / open_post_manage_page {"post_token": "..."}). At most 3 rows of 3.
    #[arg(long, value_name = "FILE")]
    pub buttons_json: Option<PathBuf>,
    /// Token, dry run and output.
    #[command(flatten)]
    pub call: CallOptions,
}

/// `send bot`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["conversation_id", "user_id"])))]
pub struct BotArgs {
    /// Write in this conversation (the API key is enough; a token is sent when given).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub conversation_id: Option<String>,
    /// Write to this user, starting the conversation if needed (needs the user's token: with
    /// the token vault on, this user's token from the vault).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub user_id: Option<String>,
    /// The text of the message.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub text: String,
    /// A JSON file with the button grid of the request body:
    /// {"buttons": {"rows": [{"buttons": [BUTTON, ...]}, ...]}}; BUTTON as in
    /// `send conversation --help`. At most 3 rows of 3.
    #[arg(long, value_name = "FILE")]
    pub buttons_json: Option<PathBuf>,
    /// Token, dry run and output.
    #[command(flatten)]
    pub call: CallOptions,
}

/// Sends the message (or prints it with `--dry-run`).
pub(super) async fn run(settings: &Settings, command: SendCommand) -> ExitCode {
    match command {
        SendCommand::Legacy(args) => finish(args.call.json, legacy(settings, *args).await),
        SendCommand::Conversation(args) => {
            finish(args.call.json, conversation(settings, args).await)
        }
        SendCommand::Bot(args) => finish(args.call.json, bot(settings, args).await),
    }
}

async fn legacy(settings: &Settings, args: LegacyArgs) -> Result<Report, Failure> {
    let (client, token, _) = args
        .call
        .client_and_token(settings, Some(&args.ids.user_id))
        .await?;
    let message = LegacySendMessage {
        user_id: args.ids.user_id,
        post_token: args.ids.post_token,
        peer_id: args.ids.peer_id,
        message: args.text,
        sender_btn: args.sender_link.or(args.sender_direct_link),
        receiver_btn: args.receiver_link.or(args.receiver_direct_link),
    };
    let request = client.prepare_legacy_message(&token, &message)?;
    make(&client, &args.call, &request, sent).await
}

async fn conversation(settings: &Settings, args: ConversationArgs) -> Result<Report, Failure> {
    let (client, token, _) = args
        .call
        .client_and_token(settings, args.user_id.as_deref())
        .await?;
    let buttons: ConversationButtons = match &args.buttons_json {
        Some(path) => read_json(path)?,
        None => ConversationButtons::default(),
    };
    let message = SendMessage {
        sender_buttons: buttons.sender_buttons,
        receiver_buttons: buttons.receiver_buttons,
        ..SendMessage::text(args.text)
    };
    let request = client.prepare_message(&token, &args.conversation_id, &message)?;
    make(&client, &args.call, &request, sent).await
}

async fn bot(settings: &Settings, args: BotArgs) -> Result<Report, Failure> {
    let client = client(settings)?;
    let buttons: BotButtons = match &args.buttons_json {
        Some(path) => read_json(path)?,
        None => BotButtons::default(),
    };
    let message = BotMessage {
        buttons: buttons.buttons,
        ..BotMessage::text(args.text)
    };
    let (token, _) = args.call.token(settings, args.user_id.as_deref()).await?;
    let request = match (&args.conversation_id, &args.user_id, &token) {
        (Some(id), _, token) => {
            client.prepare_bot_message_to_conversation(token.as_ref(), id, &message)?
        }
        (None, Some(id), Some(token)) => client.prepare_bot_message_to_user(token, id, &message)?,
        (None, Some(_), None) => return Err(missing_token()),
        (None, None, _) => unreachable!("clap requires --conversation-id or --user-id"),
    };
    make(
        &client,
        &args.call,
        &request,
        |answer: BotMessageResponse| {
            let text = match &answer.conversation_id {
                Some(id) => format!("sent in conversation {id}"),
                None => "sent".to_owned(),
            };
            Report::new(
                text,
                json!({"sent": true, "conversation_id": answer.conversation_id}),
            )
        },
    )
    .await
}

/// Makes the call, or with `--dry-run` only shows it; `report` tells what Divar answered.
async fn make<T: serde::de::DeserializeOwned + Default>(
    client: &DivarClient,
    call: &CallOptions,
    request: &PreparedRequest,
    report: impl FnOnce(T) -> Report,
) -> Result<Report, Failure> {
    if call.dry_run {
        return Ok(Report::dry_run(request));
    }
    Ok(report(client.send(request).await?))
}

fn sent(answer: SendMessageResponse) -> Report {
    let text = match (&answer.status, &answer.message) {
        (Some(status), Some(message)) => format!("sent (Divar: {status} {message})"),
        (_, Some(message)) => format!("sent (Divar: {message})"),
        _ => "sent".to_owned(),
    };
    Report::new(
        text,
        json!({"sent": true, "status": answer.status, "message": answer.message}),
    )
}
