//! The service's own commands: serve, migrate, verify-state, openapi, and `config check`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use super::cli::ConfigCommand;
use super::output::print;
use crate::config::Settings;
use crate::store::{Store, Unreachable};
use crate::{app, callback};

/// Exit status when the database cannot be reached or opened.
const DATABASE_UNAVAILABLE: u8 = 4;

/// `serve`: runs until SIGTERM or Ctrl-C.
pub async fn serve(settings: Settings) -> ExitCode {
    let result = app::serve(settings).await;
    if let Err(e) = &result {
        // The log and the closing line both go to stderr. A person at a terminal reads the
        // closing line alone; elsewhere log collectors get the error as a log entry, and
        // scripts still get the documented closing line.
        if !std::io::stderr().is_terminal() {
            tracing::error!("{e:#}");
        }
    }
    finish(result)
}

/// `migrate`: applies the migrations and exits.
pub async fn migrate(settings: &Settings) -> ExitCode {
    let result = async {
        let store = Store::connect_for_command(&settings.database).await?;
        store.migrate().await?;
        tracing::info!("migrations applied");
        anyhow::Ok(())
    }
    .await;
    finish(result)
}

/// Exit 4 with the cause when the database is the problem, else 1; in one line either way.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kenar-hook: {e:#}");
            match e.downcast_ref::<Unreachable>() {
                Some(_) => ExitCode::from(DATABASE_UNAVAILABLE),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// `verify-state STATE`: prints the claims of a valid state.
pub fn verify_state(settings: &Settings, state: &str) -> ExitCode {
    use secrecy::ExposeSecret;
    let Some(key) = &settings.callback.signing_key else {
        eprintln!("kenar-hook: callback.signing_key is not set");
        return ExitCode::from(2);
    };
    let now = chrono::Utc::now().timestamp();
    match callback::state::verify(state, key.expose_secret().as_bytes(), now) {
        Ok(claims) => {
            let json = serde_json::to_string_pretty(&claims).expect("claims serialise");
            print(&json).err().unwrap_or(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("kenar-hook: invalid state: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Says on stderr which `KENAR_HOOK_…` variables nothing reads (their names, never their
/// values), so a misspelt one is not silently ignored.
pub fn warn_unknown_variables(env: &std::collections::HashMap<String, String>) {
    for warning in crate::config::unknown_variables(env) {
        eprintln!("kenar-hook: warning: {warning}");
    }
}

/// `completions SHELL`: prints the shell's completion script for every subcommand.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = <super::cli::Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kenar-hook", &mut script);
    print(String::from_utf8_lossy(&script).trim_end())
        .err()
        .unwrap_or(ExitCode::SUCCESS)
}

/// `secret new`: prints a fresh random secret, 32 bytes from the operating system's generator
/// in URL-safe base64 (43 characters), or as a Standard Webhooks secret (`whsec_` and standard
/// base64) for `forward.endpoints[].secret`.
pub fn new_secret(whsec: bool) -> ExitCode {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = if whsec {
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    print(&secret).err().unwrap_or(ExitCode::SUCCESS)
}

/// `man`: prints the man page, generated from the same definitions as `--help`.
pub fn man() -> ExitCode {
    let command = <super::cli::Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    if let Err(e) = clap_mangen::Man::new(command).render(&mut page) {
        eprintln!("kenar-hook: cannot render the man page: {e}");
        return ExitCode::FAILURE;
    }
    print(String::from_utf8_lossy(&page).trim_end())
        .err()
        .unwrap_or(ExitCode::SUCCESS)
}

/// `openapi`: prints the OpenAPI document.
pub fn openapi() -> ExitCode {
    let document = crate::api::openapi::document();
    print(document.trim_end())
        .err()
        .unwrap_or(ExitCode::SUCCESS)
}

fn all_scopes() -> String {
    crate::config::SCOPES.join(", ")
}

/// `config check`: like `nginx -t`, exit 0 with the effective settings on stdout, or 2 with
/// the problem on stderr.
pub fn config(file: Option<&Path>, command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Check => {
            let env = std::env::vars().collect();
            warn_unknown_variables(&env);
            match Settings::load_described(file, &env) {
                Ok((settings, effective)) => {
                    let width = effective.iter().map(|e| e.key.len()).max().unwrap_or(0);
                    let value_width = effective
                        .iter()
                        .map(|e| e.value.chars().count())
                        .filter(|n| *n <= 40)
                        .max()
                        .unwrap_or(0);
                    for e in &effective {
                        let line = format!(
                            "{:<width$} = {:<value_width$}  # {}",
                            e.key, e.value, e.source
                        );
                        if let Err(code) = print(&line) {
                            return code;
                        }
                    }
                    for (i, _) in settings.api.tokens.iter().enumerate() {
                        eprintln!(
                            "kenar-hook: api.tokens[{i}] is the client token-{} with every scope ({}) and every post",
                            i + 1,
                            all_scopes()
                        );
                    }
                    eprintln!("kenar-hook: the settings are valid");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kenar-hook: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
