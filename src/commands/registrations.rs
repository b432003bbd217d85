//! `kenar-hook registrations`: the legacy webhook registrations, never their keys, and
//! `registrations remove ID`.

use std::process::ExitCode;

use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::call::Failure;
use super::output::{Report, finish};
use crate::config::Settings;
use crate::store::{Registration, Store};

/// `kenar-hook registrations …`.
#[derive(Debug, clap::Subcommand)]
pub enum RegistrationsCommand {
    /// Delete a registration (its id is in `registrations --json`): running services refuse
    /// its key within their refresh interval (2 s). Divar is not told; it keeps sending, and
    /// is answered 401.
    Remove {
        /// The registration's id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Deletes the registration `id`; an unknown id is a usage error (exit 2).
pub(super) async fn remove(settings: &Settings, id: &str, json: bool) -> ExitCode {
    finish(json, remove_one(settings, id).await)
}

async fn remove_one(settings: &Settings, id: &str) -> Result<Report, Failure> {
    let store = async {
        let store = Store::connect_for_command(&settings.database).await?;
        store.migrate().await?;
        anyhow::Ok(store)
    }
    .await
    .map_err(Failure::Store)?;
    let registrations = store
        .registrations()
        .await
        .map_err(|e| Failure::Store(e.into()))?;
    let Some(registration) = registrations.iter().find(|r| r.id == id) else {
        return Err(Failure::Usage(format!(
            "no registration with id {id:?}; `kenar-hook registrations --json` lists the ids"
        )));
    };
    store
        .delete_registration(id)
        .await
        .map_err(|e| Failure::Store(e.into()))?;
    let text = format!(
        "removed registration {id} (post {}, {}); running services refuse its key within {} s",
        registration.post_token,
        registration.endpoint,
        crate::auth::REGISTRATION_REFRESH.as_secs()
    );
    let mut json = registration_json(registration);
    json["removed"] = Value::Bool(true);
    Ok(Report::new(text, json))
}

/// Lists the registrations as a table, or as a JSON array with `json`.
pub(super) async fn run(settings: &Settings, json: bool) -> ExitCode {
    finish(json, list(settings).await)
}

async fn list(settings: &Settings) -> Result<Report, Failure> {
    let registrations = async {
        let store = Store::connect_for_command(&settings.database).await?;
        store.migrate().await?;
        anyhow::Ok(store.registrations().await?)
    }
    .await
    .map_err(Failure::Store)?;
    let mut text = format!("{:<12} {:<26} ENDPOINT\n", "POST TOKEN", "CREATED");
    for r in &registrations {
        text.push_str(&format!(
            "{:<12} {:<26} {}\n",
            r.post_token,
            r.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            r.endpoint
        ));
    }
    let items = registrations.iter().map(registration_json).collect();
    Ok(Report::new(text, Value::Array(items)))
}

/// A registration as JSON: id, post token, endpoint and created time; never the digest.
pub(super) fn registration_json(r: &Registration) -> Value {
    json!({
        "id": r.id,
        "post_token": r.post_token,
        "endpoint": r.endpoint,
        "created_at": r.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}
