//! On PostgreSQL the database is copied by `pg_dump`, which the operator runs: the commands
//! for the configured database, never with its password.

use std::path::Path;

use percent_encoding::percent_decode_str;

use super::manifest::Manifest;

/// The dump's name in a backup folder.
pub(super) const DUMP_FILE: &str = "kenar-hook.pgdump";

/// The `pg_dump` and `pg_restore` command lines for one database and backup folder.
#[derive(Debug)]
pub(super) struct Commands {
    pub dump: String,
    pub restore: String,
}

impl Commands {
    /// From `database.url` (its password left out) and the backup folder.
    pub(super) fn new(url: &str, dir: &Path) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| format!("database.url: {e}"))?;
        let query = |key: &str| {
            url.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .or_else(|| query("host"));
        let port = url.port().map(|p| p.to_string()).or_else(|| query("port"));
        let user = Some(decode(url.username()))
            .filter(|u| !u.is_empty())
            .or_else(|| query("user"));
        let dbname = Some(decode(url.path().trim_start_matches('/')))
            .filter(|d| !d.is_empty())
            .or_else(|| query("dbname"));
        let mut connection = String::new();
        for (flag, value) in [
            ("--host", host),
            ("--port", Some(port.unwrap_or_else(|| "5432".to_owned()))),
            ("--username", user),
            ("--dbname", dbname),
        ] {
            if let Some(value) = value {
                connection.push_str(&format!(" {flag}={}", quote(&value)));
            }
        }
        // libpq reads the TLS mode from the environment as well as from its flags.
        let env = query("sslmode")
            .map(|mode| format!("PGSSLMODE={} ", quote(&mode)))
            .unwrap_or_default();
        let file = quote(&dir.join(DUMP_FILE).to_string_lossy());
        Ok(Commands {
            dump: format!("{env}pg_dump --format=custom --file={file}{connection}"),
            restore: format!(
                "{env}pg_restore --clean --if-exists --no-owner --exit-on-error{connection} {file}"
            ),
        })
    }

    /// What `backup` prints on PostgreSQL.
    pub(super) fn instructions(&self, dir: &Path, manifest: &Manifest) -> String {
        format!(
            "PostgreSQL: kenar-hook does not dump the database. {dir} holds the manifest{key}; \
             complete it with:\n\n  {dump}\n\n\
             Give the password with PGPASSWORD or ~/.pgpass: it is not shown here. The row \
             counts of the manifest are those of now, not of the dump.\n\
             Restore the dump (into the database of database.url, the service stopped) with:\n\n  \
             {restore}\n\n{summary}",
            dir = dir.display(),
            key = if manifest.has(super::manifest::KEY_FILE) {
                " and a copy of the identification key file"
            } else {
                ""
            },
            dump = self.dump,
            restore = self.restore,
            summary = manifest.summary(),
        )
    }
}

/// A word for a POSIX shell: as it is when it needs no quoting, else in single quotes.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_name_the_database_and_never_its_password() {
        let commands = Commands::new(
            "postgres://kh%20user:s3cret-PASS@db.internal:6432/kenar?sslmode=require",
            Path::new("/backups/it's"),
        )
        .unwrap();
        assert_eq!(
            commands.dump,
            "PGSSLMODE=require pg_dump --format=custom --file='/backups/it'\\''s/kenar-hook.pgdump' \
             --host=db.internal --port=6432 --username='kh user' --dbname=kenar"
        );
        assert!(
            commands
                .restore
                .starts_with("PGSSLMODE=require pg_restore ")
        );
        assert!(commands.restore.contains("--dbname=kenar"));
        for text in [&commands.dump, &commands.restore] {
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn a_socket_url_takes_its_host_from_the_query() {
        let commands = Commands::new(
            "postgres:///kenar?host=/var/run/postgresql&user=kh",
            Path::new("/b"),
        )
        .unwrap();
        assert!(
            commands
                .dump
                .ends_with("--host=/var/run/postgresql --port=5432 --username=kh --dbname=kenar"),
            "{}",
            commands.dump
        );
    }
}
