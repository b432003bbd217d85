use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use kenar_hook::commands::cli::{Cli, Command, SecretCommand};
use kenar_hook::config::Settings;
use kenar_hook::{commands, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck { ready, url } => {
            commands::healthcheck(Settings::load(config), ready, url).await
        }
        Command::Config(command) => commands::config(config, command),
        Command::Openapi => commands::openapi(),
        Command::Completions { shell } => commands::completions(shell),
        Command::Man => commands::man(),
        Command::Secret(SecretCommand::New { whsec }) => commands::new_secret(whsec),
        Command::VerifyState { state } => match settings(config) {
            Ok(settings) => commands::verify_state(&settings, &state),
            Err(code) => code,
        },
        Command::Serve => match logged_settings(config) {
            Ok((settings, _log)) => commands::serve(settings).await,
            Err(code) => code,
        },
        Command::Migrate => match logged_settings(config) {
            Ok((settings, _log)) => commands::migrate(&settings).await,
            Err(code) => code,
        },
        Command::Divar(command) => match logged_settings(config) {
            Ok((settings, _log)) => commands::run(&settings, command).await,
            Err(code) => code,
        },
        Command::Forward(command) => match logged_settings(config) {
            Ok((settings, _log)) => commands::forward::run(&settings, command).await,
            Err(code) => code,
        },
        Command::Prune(args) => match logged_settings(config) {
            Ok((settings, _log)) => commands::data::prune(&settings, args).await,
            Err(code) => code,
        },
        Command::Erase(args) => match logged_settings(config) {
            Ok((settings, _log)) => commands::data::erase(&settings, args).await,
            Err(code) => code,
        },
        Command::Export(args) => match logged_settings(config) {
            Ok((settings, _log)) => commands::data::export(&settings, args).await,
            Err(code) => code,
        },
        Command::Rejected(command) => match logged_settings(config) {
            Ok((settings, _log)) => commands::rejected::run(&settings, command).await,
            Err(code) => code,
        },
        Command::Backup(args) => match logged_settings(config) {
            Ok((settings, _log)) => commands::backup::backup(&settings, args).await,
            Err(code) => code,
        },
        Command::Restore(args) => match logged_settings(config) {
            Ok((settings, _log)) => commands::backup::restore(&settings, args).await,
            Err(code) => code,
        },
    }
}

/// The settings, or exit 2 after saying what is wrong.
fn settings(config: Option<&Path>) -> Result<Settings, ExitCode> {
    commands::warn_unknown_variables(&std::env::vars().collect());
    Settings::load(config).map_err(|e| {
        eprintln!("kenar-hook: {e}");
        ExitCode::from(2)
    })
}

/// [`settings`] with logging started; keep the guard until the command ends.
fn logged_settings(
    config: Option<&Path>,
) -> Result<(Settings, tracing_appender::non_blocking::WorkerGuard), ExitCode> {
    let settings = settings(config)?;
    let guard = telemetry::init_tracing(&settings.log);
    Ok((settings, guard))
}
