//! `manifest.json`: what a backup holds, written last, checked before a restore.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Problem;
use super::files::digest;

/// The database copy's name in a backup folder.
pub(super) const DATABASE_FILE: &str = "kenar-hook.db";
/// The identification key's name, in a backup folder and in `server.data_dir` alike.
pub(super) const KEY_FILE: &str = "identification_key";
/// The manifest's name.
pub(super) const MANIFEST_FILE: &str = "manifest.json";

/// The only names a manifest may list: a changed manifest cannot make a restore read or
/// write anywhere else.
const KNOWN_FILES: &[&str] = &[DATABASE_FILE, KEY_FILE];

/// A backup's description.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// When the backup was made.
    pub created_at: DateTime<Utc>,
    /// The kenar-hook that made it (`--version`).
    pub kenar_hook_version: String,
    /// "sqlite" or "postgres".
    pub database: String,
    /// The highest migration applied to the copied database.
    pub schema_version: i64,
    /// Rows of the main tables (SQLite: in the copy; PostgreSQL: when the backup was made).
    pub row_counts: BTreeMap<String, i64>,
    /// The files beside the manifest.
    pub files: Vec<FileEntry>,
    /// PostgreSQL: the file `pg_dump` is told to write, not made by kenar-hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
}

/// One file of a backup.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    pub(super) fn new(
        database: &str,
        schema_version: i64,
        row_counts: BTreeMap<String, i64>,
    ) -> Self {
        Manifest {
            created_at: Utc::now(),
            kenar_hook_version: crate::commands::cli::VERSION.to_owned(),
            database: database.to_owned(),
            schema_version,
            row_counts,
            files: Vec::new(),
            dump: None,
        }
    }

    /// Lists `dir/name` with its size and SHA-256.
    pub(super) fn add_file(&mut self, dir: &Path, name: &str) -> Result<(), Problem> {
        let (size, sha256) = digest(&dir.join(name))?;
        self.files.push(FileEntry {
            name: name.to_owned(),
            size,
            sha256,
        });
        Ok(())
    }

    /// Whether it lists a file of that name.
    pub(super) fn has(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.name == name)
    }

    /// The schema version, the row counts and the files, as text.
    pub(super) fn summary(&self) -> String {
        let mut text = format!(
            "{} database, schema version {}, made by kenar-hook {} at {}\n",
            self.database,
            self.schema_version,
            self.kenar_hook_version,
            self.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let rows: Vec<String> = self
            .row_counts
            .iter()
            .map(|(table, n)| format!("{table} {n}"))
            .collect();
        let _ = writeln!(text, "rows: {}", rows.join(", "));
        for f in &self.files {
            let _ = writeln!(
                text,
                "  {:<20} {:>14} bytes  sha-256 {}",
                f.name, f.size, f.sha256
            );
        }
        text
    }

    /// Reads `dir/manifest.json` and checks every file it lists: a known name, present,
    /// of the listed size and SHA-256.
    pub(super) fn read_checked(dir: &Path) -> Result<Manifest, Problem> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Problem::invalid(format!(
                    "{} has no {MANIFEST_FILE}: it is not a complete backup (a backup that \
                     stopped before its end has none)",
                    dir.display()
                )));
            }
            Err(e) => return Err(Problem::io(path.display(), e)),
        };
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
            Problem::invalid(format!("{}: not a backup manifest: {e}", path.display()))
        })?;
        for f in &manifest.files {
            if !KNOWN_FILES.contains(&f.name.as_str()) {
                return Err(Problem::invalid(format!(
                    "{}: lists an unknown file {:?}",
                    path.display(),
                    f.name
                )));
            }
            let file = dir.join(&f.name);
            if !file.exists() {
                return Err(Problem::invalid(format!(
                    "{} is missing: the manifest lists it",
                    file.display()
                )));
            }
            let (size, sha256) = digest(&file)?;
            if size != f.size || sha256 != f.sha256 {
                return Err(Problem::invalid(format!(
                    "{}: its size or sha-256 differs from the manifest's ({size} bytes, \
                     sha-256 {sha256}; the manifest says {} bytes, sha-256 {}): the backup \
                     is damaged or was changed",
                    file.display(),
                    f.size,
                    f.sha256
                )));
            }
        }
        Ok(manifest)
    }
}
