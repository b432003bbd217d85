//! Command-line operations over the Divar client and the store: sending messages,
//! registering subscriptions, building scope strings, listing registrations.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::store::Store;

/// The subcommands that talk to Divar or list what was registered.
#[derive(Debug, Subcommand)]
pub enum DivarCommand {
    /// List legacy webhook registrations (post token, endpoint, created time; never the key).
    Registrations {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a subcommand; the exit code is the command's documented one.
pub async fn run(settings: &Settings, command: DivarCommand) -> ExitCode {
    match command {
        DivarCommand::Registrations { json } => registrations(settings, json).await,
    }
}

async fn registrations(settings: &Settings, json: bool) -> ExitCode {
    let result = async {
        let store = Store::connect(&settings.database).await?;
        store.migrate().await?;
        anyhow::Ok(store.registrations().await?)
    }
    .await;
    let registrations = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kenar-hook: {e:#}");
            return ExitCode::from(4);
        }
    };
    if json {
        let items: Vec<_> = registrations
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "post_token": r.post_token,
                    "endpoint": r.endpoint,
                    "created_at": r.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        println!("{:<12} {:<26} ENDPOINT", "POST TOKEN", "CREATED");
        for r in &registrations {
            println!(
                "{:<12} {:<26} {}",
                r.post_token,
                r.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                r.endpoint
            );
        }
    }
    ExitCode::SUCCESS
}
