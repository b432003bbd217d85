use std::process::ExitCode;

use clap::Parser;
use kenar_hook::cli::{Cli, Command};
use kenar_hook::config::Settings;
use kenar_hook::{app, healthcheck, store, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kenar-hook: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Healthcheck { url } = &command {
        let url = url
            .clone()
            .unwrap_or_else(|| healthcheck::default_url(settings.server.listen));
        return match healthcheck::check(&url).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kenar-hook: unhealthy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    telemetry::init_tracing(&settings.log);
    let result = match command {
        Command::Serve => app::serve(settings).await,
        Command::Migrate => migrate(&settings).await,
        Command::Healthcheck { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("kenar-hook: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = store::Store::connect(&settings.database).await?;
    store.migrate().await?;
    tracing::info!("migrations applied");
    Ok(())
}
