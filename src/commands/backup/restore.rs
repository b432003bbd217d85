//! `restore DIR [--force]`: a SQLite backup put back in place of the configured database
//! and key file, then migrated. The service must be stopped meanwhile.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::files::{copy_key, copy_synced};
use super::manifest::{DATABASE_FILE, KEY_FILE, Manifest};
use super::{Problem, absolute, end, postgres};
use crate::config::{DatabaseKind, Settings};
use crate::store::Store;
use crate::store::backup::{latest_schema_version, sqlite_file, sqlite_file_in_use};

/// `restore DIR`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup folder (made by `kenar-hook backup`).
    pub dir: PathBuf,
    /// Replace a database that holds data, and an identification key file that exists.
    #[arg(long)]
    pub force: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `restore DIR`.
pub async fn restore(settings: &Settings, args: RestoreArgs) -> ExitCode {
    end(args.json, put_back(settings, &args).await)
}

/// Where a restore writes: the SQLite file of `database.url` and the key file.
struct Target {
    database: PathBuf,
    key: PathBuf,
}

impl Target {
    /// What is there already, in words; empty when nothing is.
    fn occupied(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Ok(meta) = std::fs::metadata(&self.database) {
            if meta.len() > 0 {
                found.push(format!(
                    "the database {} ({} bytes)",
                    self.database.display(),
                    meta.len()
                ));
            }
        }
        if self.key.exists() {
            found.push(format!("the key file {}", self.key.display()));
        }
        found
    }
}

async fn put_back(settings: &Settings, args: &RestoreArgs) -> Result<(String, Value), Problem> {
    let dir = absolute(&args.dir)?;
    let url = settings.database.url.expose_secret();
    if settings.database_kind().map_err(Problem::usage)? == DatabaseKind::Postgres {
        let commands = postgres::Commands::new(url, &dir).map_err(Problem::usage)?;
        return Err(Problem::usage(format!(
            "restore puts back SQLite backups only; on PostgreSQL stop the service and restore \
             the dump with pg_restore (password from PGPASSWORD or ~/.pgpass), then run \
             `kenar-hook migrate`: {}",
            commands.restore
        )));
    }
    let manifest = Manifest::read_checked(&dir)?;
    check_restorable(&manifest, &dir)?;
    let target = Target {
        database: sqlite_file(url).map_err(Problem::usage)?,
        key: settings.server.data_dir.join(KEY_FILE),
    };
    let occupied = target.occupied();
    if !occupied.is_empty() && !args.force {
        return Err(Problem::usage(format!(
            "not restoring over {}: give --force to replace {}",
            occupied.join(" and "),
            if occupied.len() == 1 { "it" } else { "them" }
        )));
    }
    if target.database.exists()
        && sqlite_file_in_use(&target.database)
            .await
            .unwrap_or_else(|e| e.is_unavailable())
    {
        return Err(Problem::usage(format!(
            "{} is open in another process: stop the service (and any command using it) \
             before restoring",
            target.database.display()
        )));
    }
    replace_database(&dir.join(DATABASE_FILE), &target.database)?;
    let key = if manifest.has(KEY_FILE) {
        if let Some(parent) = target.key.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Problem::io(parent.display(), e))?;
        }
        copy_key(&dir.join(KEY_FILE), &target.key)?;
        Some(&target.key)
    } else {
        None
    };

    let store = Store::connect_for_command(&settings.database)
        .await
        .map_err(Problem::database)?;
    let migrated = async {
        store.migrate().await?;
        let installation = store.renew_installation().await?;
        Ok::<_, Problem>((
            store.schema_version().await?,
            store.row_counts().await?,
            installation,
        ))
    }
    .await;
    store.close().await;
    let (schema_version, row_counts, installation) = migrated?;

    let rows: Vec<String> = row_counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let text = format!(
        "restored {} into {} (schema version {} of the backup, {schema_version} after the \
         migrations)\nidentification key: {}\nrows: {}\nnew installation id: {installation} \
         (forwarding's webhook-ids change from here on)\nstart the service, then check it: \
         kenar-hook config check, GET /readyz",
        dir.display(),
        target.database.display(),
        manifest.schema_version,
        key.map_or_else(
            || "none in the backup; the file in place is kept".to_owned(),
            |k| k.display().to_string()
        ),
        rows.join(", ")
    );
    let value = json!({
        "restored": true,
        "dir": dir,
        "database": target.database,
        "identification_key": key,
        "backup_schema_version": manifest.schema_version,
        "schema_version": schema_version,
        "row_counts": row_counts,
        "installation": installation,
    });
    Ok((text, value))
}

/// A SQLite backup with its database, of a schema this build knows.
fn check_restorable(manifest: &Manifest, dir: &Path) -> Result<(), Problem> {
    if manifest.database != "sqlite" {
        return Err(Problem::invalid(format!(
            "{} is a backup of a {} database: restore puts back SQLite backups only",
            dir.display(),
            manifest.database
        )));
    }
    if !manifest.has(DATABASE_FILE) {
        return Err(Problem::invalid(format!(
            "{}: the manifest lists no {DATABASE_FILE}",
            dir.display()
        )));
    }
    let ours = latest_schema_version(DatabaseKind::Sqlite);
    if manifest.schema_version > ours {
        return Err(Problem::invalid(format!(
            "the backup's schema version {} is newer than this kenar-hook's ({ours}): it was \
             made by kenar-hook {}; restore it with that version or a later one",
            manifest.schema_version, manifest.kenar_hook_version
        )));
    }
    Ok(())
}

/// Puts the copy in place of `database`: its stale `-wal` and `-shm` files removed first
/// (SQLite would otherwise replay an old log onto the restored file), then a temporary file
/// beside it, synced and renamed over it (the folder synced too).
fn replace_database(copy: &Path, database: &Path) -> Result<(), Problem> {
    if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Problem::io(parent.display(), e))?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Problem::io(Path::new(&name).display(), e)),
        }
    }
    copy_synced(copy, database, None)
}
