//! `kenar-hook backup DIR` and `kenar-hook restore DIR` (docs/operations.md).
//!
//! A backup folder holds the database (`kenar-hook.db`, SQLite's own online copy; on
//! PostgreSQL the dump `pg_dump` writes), the identification key file when there is one, and
//! `manifest.json`, written last: a folder without it is not a backup. Every file is written
//! under a temporary name and renamed when complete.

mod files;
mod manifest;
mod postgres;
mod restore;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::config::{DatabaseKind, Settings};
use crate::store::{Store, backup::sqlite_file};
use files::{copy_key, prepare_empty_dir, sync_dir, write_synced};
use manifest::{DATABASE_FILE, KEY_FILE, MANIFEST_FILE, Manifest};

pub use restore::{RestoreArgs, restore};

/// `backup DIR`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The folder to write into: created when missing, refused when it holds anything.
    pub dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Why a backup or a restore stopped, with its exit code (see `commands`).
#[derive(Debug)]
struct Problem {
    code: u8,
    kind: &'static str,
    message: String,
}

impl Problem {
    /// 2: an argument, the folder or the settings.
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            kind: "usage",
            message: message.into(),
        }
    }

    /// 2: the backup is incomplete, damaged or too new.
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            kind: "validation",
            message: message.into(),
        }
    }

    /// 4: the database cannot be reached or used now.
    fn database(message: impl std::fmt::Display) -> Self {
        Self {
            code: 4,
            kind: "database",
            message: format!("database: {message}"),
        }
    }

    /// 1: reading or writing a file failed.
    fn io(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        Self {
            code: 1,
            kind: "io",
            message: format!("{what}: {e}"),
        }
    }
}

impl From<crate::store::Error> for Problem {
    fn from(e: crate::store::Error) -> Self {
        if e.is_unavailable() {
            Problem::database(e)
        } else {
            Problem {
                code: 1,
                ..Problem::database(e)
            }
        }
    }
}

/// Prints the result (text, or JSON with `--json`) or the failure (one line on stderr, and
/// `{"error": {kind, message, exit_code}}` with `--json`), as the other commands do.
fn end(json: bool, result: Result<(String, Value), Problem>) -> ExitCode {
    match result {
        Ok((text, value)) => {
            let printed = if json {
                super::output::print(&value.to_string())
            } else {
                super::output::print(text.trim_end())
            };
            printed.err().unwrap_or(ExitCode::SUCCESS)
        }
        Err(problem) => {
            eprintln!("kenar-hook: {}", problem.message);
            if json {
                let error = json!({"error": {
                    "kind": problem.kind,
                    "message": problem.message,
                    "exit_code": problem.code,
                }});
                let _ = super::output::print(&error.to_string());
            }
            ExitCode::from(problem.code)
        }
    }
}

/// The folder as an absolute path, so what is printed and bound into SQL names one place.
fn absolute(dir: &Path) -> Result<PathBuf, Problem> {
    std::path::absolute(dir).map_err(|e| Problem::io(dir.display(), e))
}

/// `backup DIR`.
pub async fn backup(settings: &Settings, args: BackupArgs) -> ExitCode {
    end(args.json, make_backup(settings, &args.dir).await)
}

async fn make_backup(settings: &Settings, dir: &Path) -> Result<(String, Value), Problem> {
    let kind = settings.database_kind().map_err(Problem::usage)?;
    let dir = absolute(dir)?;
    if dir.to_str().is_none() {
        return Err(Problem::usage(format!(
            "{}: the folder's path must be valid UTF-8",
            dir.display()
        )));
    }
    if kind == DatabaseKind::Sqlite {
        let file = sqlite_file(settings.database.url.expose_secret()).map_err(Problem::usage)?;
        if !file.exists() {
            return Err(Problem::usage(format!(
                "there is no database at {} (database.url): nothing to back up",
                file.display()
            )));
        }
    }
    prepare_empty_dir(&dir)?;
    let started = Instant::now();
    let store = Store::connect_for_command(&settings.database)
        .await
        .map_err(Problem::database)?;
    let result = match kind {
        DatabaseKind::Sqlite => copy_sqlite(&store, &dir).await,
        DatabaseKind::Postgres => describe_postgres(&store).await,
    };
    store.close().await;
    let (schema_version, row_counts) = result?;
    let mut manifest = Manifest::new(store.kind_name(), schema_version, row_counts);
    if kind == DatabaseKind::Sqlite {
        manifest.add_file(&dir, DATABASE_FILE)?;
    }
    let key = settings.server.data_dir.join(KEY_FILE);
    if key.exists() {
        copy_key(&key, &dir.join(KEY_FILE))?;
        manifest.add_file(&dir, KEY_FILE)?;
    }
    if kind == DatabaseKind::Postgres {
        manifest.dump = Some(postgres::DUMP_FILE.to_owned());
    }
    let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    write_synced(&dir.join(MANIFEST_FILE), &text, None)?;
    sync_dir(&dir)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(match kind {
        DatabaseKind::Sqlite => (
            format!(
                "backup written to {} in {seconds:.1} s\n{}",
                dir.display(),
                manifest.summary()
            ),
            json!({"dir": dir, "seconds": seconds, "manifest": manifest}),
        ),
        DatabaseKind::Postgres => {
            let commands = postgres::Commands::new(settings.database.url.expose_secret(), &dir)
                .map_err(Problem::usage)?;
            (
                commands.instructions(&dir, &manifest),
                json!({
                    "dir": dir,
                    "seconds": seconds,
                    "manifest": manifest,
                    "pg_dump": commands.dump,
                    "pg_restore": commands.restore,
                }),
            )
        }
    })
}

type Described = (i64, std::collections::BTreeMap<String, i64>);

/// `VACUUM INTO` a temporary name, then the schema version and row counts read from the
/// copy itself (not from the database, which has moved on), then the final name.
async fn copy_sqlite(store: &Store, dir: &Path) -> Result<Described, Problem> {
    let partial = dir.join(format!("{DATABASE_FILE}.partial"));
    let copied = async {
        let flushing = files::flush_while_written(&partial);
        let copied = store.vacuum_into(&partial).await;
        drop(flushing);
        copied?;
        files::sync_file(&partial)?;
        let copy = Store::open_copy(&partial).await?;
        let described =
            async { Ok::<_, Problem>((copy.schema_version().await?, copy.row_counts().await?)) }
                .await;
        copy.close().await;
        let described = described?;
        std::fs::rename(&partial, dir.join(DATABASE_FILE))
            .map_err(|e| Problem::io(partial.display(), e))?;
        Ok(described)
    }
    .await;
    if copied.is_err() {
        // What a failed copy left would get the folder refused as not empty next time.
        let _ = std::fs::remove_file(&partial);
    }
    copied
}

/// The schema version and row counts of the live database, in the manifest beside the dump
/// the operator makes.
async fn describe_postgres(store: &Store) -> Result<Described, Problem> {
    Ok((store.schema_version().await?, store.row_counts().await?))
}
