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
    // The commands that need neither logging nor a database answer here.
    let command = match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck { ready, url } => {
            return commands::healthcheck(Settings::load(config), ready, url).await;
        }
        Command::Config(command) => return commands::config(config, command),
        Command::Openapi => return commands::openapi(),
        Command::Completions { shell } => return commands::completions(shell),
        Command::Man => return commands::man(),
        Command::Secret(SecretCommand::New { whsec }) => return commands::new_secret(whsec),
        Command::VerifyState { state } => {
            return match settings(config) {
                Ok(settings) => commands::verify_state(&settings, &state),
                Err(code) => code,
            };
        }
        command => command,
    };
    let (settings, _log) = match logged_settings(config) {
        Ok(logged) => logged,
        Err(code) => return code,
    };
    match command {
        Command::Serve => commands::serve(settings).await,
        Command::Migrate => commands::migrate(&settings).await,
        Command::Divar(command) => commands::run(&settings, command).await,
        Command::Forward(command) => commands::forward::run(&settings, command).await,
        Command::Prune(args) => commands::data::prune(&settings, args).await,
        Command::Erase(args) => commands::data::erase(&settings, args).await,
        Command::Export(args) => commands::data::export(&settings, args).await,
        Command::Tail(args) => commands::tail::run(&settings, args).await,
        Command::Outbox(command) => commands::outbox::run(&settings, command).await,
        Command::Rejected(command) => commands::rejected::run(&settings, command).await,
        Command::Backup(args) => commands::backup::backup(&settings, args).await,
        Command::Restore(args) => commands::backup::restore(&settings, args).await,
        Command::Healthcheck { .. }
        | Command::Config(_)
        | Command::Openapi
        | Command::Completions { .. }
        | Command::Man
        | Command::Secret(_)
        | Command::VerifyState { .. } => unreachable!("answered without logging above"),
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
