//! `kenar-hook registrations`: the legacy webhook registrations, never their keys.

use std::process::ExitCode;

use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::call::Failure;
use super::output::{Report, finish};
use crate::config::Settings;
use crate::store::{Registration, Store};

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
