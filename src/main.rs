use std::process::ExitCode;

// Many small, short-lived allocations per request (rows, strings, JSON): mimalloc serves
// them with less contention than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use kenar_hook::cli::{Cli, Command};
use kenar_hook::config::Settings;
use kenar_hook::{app, callback, commands, healthcheck, store, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let settings = Settings::load(cli.config.as_deref());
    if let Command::Healthcheck { url } = &command {
        // Docker reads any exit code but 0 and 1 as "reserved": a settings problem is
        // simply "unhealthy" here.
        let url = match (url, &settings) {
            // A mistyped URL is a usage error, not an unhealthy service.
            (Some(url), _) => match healthcheck::usable_url(url) {
                Ok(()) => url.clone(),
                Err(why) => {
                    eprintln!("kenar-hook: healthcheck: {why}");
                    return ExitCode::from(2);
                }
            },
            (None, Ok(s)) => healthcheck::default_url(s.server.listen),
            (None, Err(e)) => {
                eprintln!("kenar-hook: {e}");
                return ExitCode::FAILURE;
            }
        };
        return match healthcheck::check(&url).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kenar-hook: unhealthy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kenar-hook: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Openapi = &command {
        print!("{}", kenar_hook::api::openapi::document());
        return ExitCode::SUCCESS;
    }
    if let Command::VerifyState { state } = &command {
        return verify_state(&settings, state);
    }
    let _log_writer = telemetry::init_tracing(&settings.log);
    let command = match command {
        Command::Divar(divar) => return commands::run(&settings, divar).await,
        Command::Forward(forward) => return commands::forward::run(&settings, forward).await,
        Command::Rejected(rejected) => return commands::rejected::run(&settings, rejected).await,
        other => other,
    };
    let result = match command {
        Command::Serve => app::serve(settings).await,
        Command::Migrate => migrate(&settings).await,
        Command::Healthcheck { .. }
        | Command::VerifyState { .. }
        | Command::Divar(_)
        | Command::Forward(_)
        | Command::Rejected(_)
        | Command::Openapi => {
            unreachable!("handled above")
        }
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

fn verify_state(settings: &Settings, state: &str) -> ExitCode {
    use secrecy::ExposeSecret;
    let Some(key) = &settings.callback.signing_key else {
        eprintln!("kenar-hook: callback.signing_key is not set");
        return ExitCode::from(2);
    };
    let now = chrono::Utc::now().timestamp();
    match callback::state::verify(state, key.expose_secret().as_bytes(), now) {
        Ok(claims) => {
            let json = serde_json::to_string_pretty(&claims).expect("claims serialise");
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kenar-hook: invalid state: {e}");
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
