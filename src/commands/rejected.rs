//! `kenar-hook rejected reprocess`: kept rejected deliveries through ingestion again.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::call::Failure;
use super::output::{Report, finish};
use crate::config::Settings;
use crate::ingest::reprocess::reprocess;
use crate::store::Store;

/// The subcommands over kept rejected deliveries.
#[derive(Debug, Subcommand)]
pub enum RejectedCommand {
    /// Run every kept delivery through ingestion again; stored ones leave the list.
    Reprocess {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a subcommand.
pub async fn run(settings: &Settings, command: RejectedCommand) -> ExitCode {
    let RejectedCommand::Reprocess { json } = command;
    let result = async {
        let store = Store::connect_for_command(&settings.database).await?;
        store.migrate().await?;
        let summary = reprocess(&store).await?;
        store.close().await;
        anyhow::Ok(summary)
    }
    .await
    .map_err(Failure::Store)
    .map(|s| {
        Report::new(
            format!(
                "stored {}, stored before {}, still rejected {}",
                s.stored, s.duplicate, s.still_rejected
            ),
            json!(s),
        )
    });
    finish(json, result)
}
