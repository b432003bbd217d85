//! `kenar-hook forward ...`: each endpoint's status, replay, pause and resume. They work on
//! the database; a running service notices within a second.

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;

use super::call::{Failure, open_store};
use super::output::{Report, finish};
use crate::config::Settings;
use crate::forward::manage;

/// The forwarding subcommands.
#[derive(Debug, Subcommand)]
pub enum ForwardCommand {
    /// Each endpoint's state, lag, last success and last error.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send records to an endpoint again (its receiver deduplicates by webhook-id).
    Replay(ReplayArgs),
    /// Stop sending to an endpoint; its records wait for it.
    Pause {
        /// The endpoint's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send to an endpoint again; also re-enables one that a 410 disabled.
    Resume {
        /// The endpoint's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What `forward replay` sends again.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["dead", "since", "id"])))]
pub struct ReplayArgs {
    /// The endpoint's name.
    #[arg(long)]
    pub endpoint: String,
    /// Its dead letters.
    #[arg(long)]
    pub dead: bool,
    /// Every record it wants that arrived at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// These records, by webhook-id (message_<installation>_12; the short message_12 of
    /// earlier versions too).
    #[arg(long, value_name = "ID", num_args = 1..)]
    pub id: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a forwarding subcommand.
pub async fn run(settings: &Settings, command: ForwardCommand) -> ExitCode {
    let json = match &command {
        ForwardCommand::Status { json }
        | ForwardCommand::Pause { json, .. }
        | ForwardCommand::Resume { json, .. } => *json,
        ForwardCommand::Replay(args) => args.json,
    };
    finish(json, execute(settings, &command).await)
}

fn configured<'a>(
    settings: &'a Settings,
    name: &str,
) -> Result<&'a crate::forward::settings::EndpointSettings, Failure> {
    settings
        .forward
        .endpoints
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Failure::Usage(format!("no endpoint named {name:?} in forward.endpoints")))
}

/// What `forward status` says when there is nothing to show: which files were read, so a
/// settings file that was not the one meant is seen at once.
fn no_endpoints(settings: &Settings) -> String {
    let read = match settings.files.as_slice() {
        [] => {
            "no settings file was read (only the built-in defaults and the environment)".to_owned()
        }
        files => {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            format!("settings read from {}", names.join(", "))
        }
    };
    format!(
        "no forwarding endpoint is configured: forward.endpoints is empty; {read}. \
         Add a [[forward.endpoints]] table to the settings file given with --config \
         (see docs/forwarding.md)"
    )
}

// On SQLite each statement waits its turn behind a running service's write lock
// (`Store::connect_for_command`), so a busy database is waited for, not tried again.
async fn execute(settings: &Settings, command: &ForwardCommand) -> Result<Report, Failure> {
    match command {
        ForwardCommand::Pause { name, .. } | ForwardCommand::Resume { name, .. } => {
            configured(settings, name)?;
        }
        ForwardCommand::Replay(args) => {
            configured(settings, &args.endpoint)?;
        }
        ForwardCommand::Status { .. } if settings.forward.endpoints.is_empty() => {
            return Ok(Report::new(no_endpoints(settings), json!([])));
        }
        ForwardCommand::Status { .. } => {}
    }
    let store = open_store(settings).await?;
    let names: Vec<String> = settings
        .forward
        .endpoints
        .iter()
        .map(|e| e.name.clone())
        .collect();
    store
        .forward_register(&names)
        .await
        .map_err(|e| Failure::Store(e.into()))?;
    let store_err = |e: crate::store::Error| Failure::Store(e.into());
    match command {
        ForwardCommand::Status { .. } => {
            let status = manage::status(&store, &settings.forward.endpoints)
                .await
                .map_err(store_err)?;
            let mut text = format!(
                "{:<20} {:<9} {:>8} {:>10} LAST SUCCESS / LAST ERROR\n",
                "ENDPOINT", "STATE", "LAG", "LAG (S)"
            );
            for s in &status {
                text.push_str(&format!(
                    "{:<20} {:<9} {:>8} {:>10.1} {} / {}\n",
                    s.name,
                    s.state,
                    s.lag_records,
                    s.lag_seconds,
                    s.last_success_at.as_deref().unwrap_or("-"),
                    s.last_error.as_deref().unwrap_or("-"),
                ));
            }
            Ok(Report::new(text, json!(status)))
        }
        ForwardCommand::Pause { name, .. } | ForwardCommand::Resume { name, .. } => {
            let paused = matches!(command, ForwardCommand::Pause { .. });
            manage::set_paused(&store, name, paused)
                .await
                .map_err(store_err)?;
            let (done, state) = if paused {
                ("paused", "paused")
            } else {
                ("resumed", "active")
            };
            let text = format!("{name}: {done}");
            Ok(Report::new(text, json!({"endpoint": name, "state": state})))
        }
        ForwardCommand::Replay(args) => {
            let endpoint = configured(settings, &args.endpoint)?;
            let added = if args.dead {
                manage::replay_dead(&store, &endpoint.name)
                    .await
                    .map_err(store_err)?
            } else if let Some(since) = &args.since {
                let since = chrono::DateTime::parse_from_rfc3339(since)
                    .map_err(|_| {
                        Failure::Usage(format!("--since {since}: expected an RFC 3339 time"))
                    })?
                    .with_timezone(&chrono::Utc);
                manage::replay_since(&store, endpoint, since)
                    .await
                    .map_err(Failure::Store)?
            } else {
                manage::replay_ids(&store, &endpoint.name, &args.id)
                    .await
                    .map_err(|e| {
                        if e.chain().any(|c| c.is::<crate::store::Error>()) {
                            Failure::Store(e)
                        } else {
                            Failure::Usage(format!("{e:#}"))
                        }
                    })?
            };
            Ok(Report::new(
                format!("{}: {added} records to send again", endpoint.name),
                json!({"endpoint": endpoint.name, "replayed": added}),
            ))
        }
    }
}
