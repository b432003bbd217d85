//! `kenar-hook outbox status | retry`: the replies endpoints answered pushes with.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::call::{Failure, open_store};
use super::output::{Report, finish};
use crate::config::Settings;
use crate::store::outbox::{OutboxStatus, Retried};

/// The outbox subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// How many replies each endpoint has in each status, and the latest that were not sent.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a `failed` or `unknown` reply again (a running service sends it within a
    /// second). An `unknown` reply may have reached Divar: sending it again may show the
    /// message twice, so it asks first (or takes --yes).
    Retry {
        /// The reply's id (`outbox status`, or `GET /api/v1/outbox`).
        #[arg(long)]
        id: i64,
        /// Do not ask, even for an `unknown` reply.
        #[arg(long)]
        yes: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an outbox subcommand.
pub async fn run(settings: &Settings, command: OutboxCommand) -> ExitCode {
    let json = match &command {
        OutboxCommand::Status { json } | OutboxCommand::Retry { json, .. } => *json,
    };
    finish(json, execute(settings, command).await)
}

async fn execute(settings: &Settings, command: OutboxCommand) -> Result<Report, Failure> {
    let store = open_store(settings).await?;
    let store_err = |e: crate::store::Error| Failure::Store(e.into());
    match command {
        OutboxCommand::Status { .. } => {
            let counts = store.outbox_counts().await.map_err(store_err)?;
            let mut recent = Vec::new();
            for status in [
                OutboxStatus::Failed,
                OutboxStatus::Unknown,
                OutboxStatus::Refused,
            ] {
                let q = crate::store::outbox::OutboxQuery {
                    status: Some(status),
                    limit: 5,
                    ..Default::default()
                };
                recent.extend(store.outbox_list(&q).await.map_err(store_err)?);
            }
            recent.sort_by_key(|r| std::cmp::Reverse(r.id));
            let mut text = if counts.is_empty() {
                "no reply recorded: no endpoint has answered a push with a reply\n".to_owned()
            } else {
                format!("{:<20} {:<9} {:>8}\n", "ENDPOINT", "STATUS", "REPLIES")
            };
            for (endpoint, status, n) in &counts {
                let status = status.as_str();
                text.push_str(&format!("{endpoint:<20} {status:<9} {n:>8}\n"));
            }
            if !recent.is_empty() {
                text.push_str("\nlatest not sent (retry failed and unknown ones with `outbox retry --id ID`):\n");
                for r in &recent {
                    text.push_str(&format!(
                        "{:>8} {:<9} {:<20} {}\n",
                        r.id,
                        r.reply.status.as_str(),
                        r.reply.conversation_id.as_deref().unwrap_or("-"),
                        r.reply.answer.as_deref().unwrap_or("-")
                    ));
                }
            }
            let counts: Vec<_> = counts
                .into_iter()
                .map(|(endpoint, status, n)| json!({"endpoint": endpoint, "status": status.as_str(), "replies": n}))
                .collect();
            let recent: Vec<_> = recent
                .into_iter()
                .map(|r| {
                    json!({"id": r.id, "endpoint": r.endpoint, "status": r.reply.status.as_str(),
                    "conversation_id": r.reply.conversation_id, "answer": r.reply.answer})
                })
                .collect();
            Ok(Report::new(
                text.trim_end().to_owned(),
                json!({"counts": counts, "not_sent": recent}),
            ))
        }
        OutboxCommand::Retry { id, yes, .. } => {
            let Some(row) = store.outbox_row(id).await.map_err(store_err)? else {
                return Err(Failure::Usage(format!(
                    "no reply with id {id} in the outbox"
                )));
            };
            if row.reply.status == OutboxStatus::Unknown && !yes {
                confirm(id)?;
            }
            match store.outbox_retry(id).await.map_err(store_err)? {
                Retried::Queued(was) => Ok(Report::new(
                    format!(
                        "reply {id} ({}) is pending again: the forwarder of {} sends it",
                        was.as_str(),
                        row.endpoint
                    ),
                    json!({"id": id, "was": was.as_str(), "status": "pending", "endpoint": row.endpoint}),
                )),
                Retried::NotRetryable(status) => Err(Failure::Usage(format!(
                    "reply {id} is {}: only failed and unknown replies are sent again",
                    status.as_str()
                ))),
                Retried::Missing => Err(Failure::Usage(format!(
                    "no reply with id {id} in the outbox"
                ))),
            }
        }
    }
}

/// Asks before sending an `unknown` reply again; without a terminal, refuses.
fn confirm(id: i64) -> Result<(), Failure> {
    let warning = format!(
        "reply {id} is unknown: its call may have reached Divar, and sending it again may show \
         the message twice"
    );
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "{warning}. Add --yes to send it anyway"
        )));
    }
    eprint!("{warning}. Send it again? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::Usage(format!("reading the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::Usage("not sent again".into()))
    }
}
