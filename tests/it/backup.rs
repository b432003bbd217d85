//! `backup DIR` and `restore DIR`, the real binary against a running app: a backup taken
//! while deliveries are being stored holds every one answered 200 before it began, and a
//! restore refuses what it must (a target holding data, a file in use, a damaged or too new
//! backup) and leaves the target as it was.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kenar_hook::config::{DatabaseSettings, SqliteSync};
use kenar_hook::store::Store;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::Connection;

use crate::cli::{Cli, Output};
use crate::helpers::*;

const KEY_FILE_CONTENT: &str = "generated-identification-key-7Hq2xV9mR4tL0pZ8sK3w\n";

/// A legacy CHAT_MESSAGE whose message id is `id`.
fn message_body(id: &str) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&fixture("legacy_chat_message_text.json")).unwrap();
    body["payload"]["id"] = Value::from(id);
    serde_json::to_vec(&body).unwrap()
}

/// The binary over a SQLite database and a data folder.
fn binary_for(database_url: &str, data_dir: &Path) -> Cli {
    Cli::new("http://127.0.0.1:9")
        .env("KENAR_HOOK__DATABASE__URL", database_url)
        .env("KENAR_HOOK__SERVER__DATA_DIR", data_dir.to_str().unwrap())
        .env("KENAR_HOOK__LOG__LEVEL", "warn")
}

/// The binary over the app's database and data folder.
fn binary_of(app: &TestApp) -> Cli {
    binary_for(
        app.settings.database.url.expose_secret(),
        &app.settings.server.data_dir,
    )
}

/// A place to restore into: the binary over `<temp>/kh.db` and `<temp>/data`, nothing there yet.
struct Target {
    cli: Cli,
    database: PathBuf,
    key: PathBuf,
}

fn target() -> Target {
    let cli = Cli::new("http://127.0.0.1:9");
    let database = cli.database_path();
    let data = database.parent().unwrap().join("data");
    let cli = cli
        .env("KENAR_HOOK__SERVER__DATA_DIR", data.to_str().unwrap())
        .env("KENAR_HOOK__LOG__LEVEL", "warn");
    Target {
        cli,
        key: data.join("identification_key"),
        database,
    }
}

impl Target {
    async fn store(&self) -> Store {
        Store::connect(&DatabaseSettings {
            url: SecretString::from(format!("sqlite://{}", self.database.display())),
            max_connections: 2,
            acquire_timeout_ms: 3_000,
            sqlite_synchronous: SqliteSync::Normal,
            password: None,
            startup_wait_secs: 0,
        })
        .await
        .expect("the restored database opens")
    }
}

/// Writes the generated-key file into the app's data folder, as the service does (0600).
fn write_key_file(app: &TestApp) -> PathBuf {
    let path = app.settings.server.data_dir.join("identification_key");
    std::fs::write(&path, KEY_FILE_CONTENT).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// A running app holding one message and a key file, and a backup of it in `dir/backup`.
async fn backed_up_app(dir: &Path) -> (TestApp, PathBuf) {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.post_webhook(message_body("kept-1")).await.status(), 200);
    write_key_file(&app);
    let backup = dir.join("backup");
    binary_of(&app)
        .run(&["backup", backup.to_str().unwrap()])
        .await
        .assert_code(0);
    (app, backup)
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn assert_refused(out: &Output, words: &str) {
    out.assert_code(2);
    assert!(out.stderr.contains(words), "expected {words:?}: {out:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_ingesting_restores_every_message_answered_before_it() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await);
    let key_file = write_key_file(&app);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let mut posters = Vec::new();
    for poster in 0..2 {
        let (app, acknowledged, refused, stop, count_tx) = (
            app.clone(),
            acknowledged.clone(),
            refused.clone(),
            stop.clone(),
            count_tx.clone(),
        );
        posters.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let id = format!("during-backup-{poster}-{n}");
                n += 1;
                if app.post_webhook(message_body(&id)).await.status() == 200 {
                    let mut list = acknowledged.lock().unwrap();
                    list.push(id);
                    count_tx.send_replace(list.len());
                } else {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    count_rx.wait_for(|n| *n >= 300).await.unwrap();

    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("nested").join("backup");
    let out = binary_of(&app)
        .run(&["backup", backup.to_str().unwrap(), "--json"])
        .await;
    out.assert_code(0);
    let after = acknowledged.lock().unwrap().len();
    stop.store(true, Ordering::SeqCst);
    for poster in posters {
        poster.await.unwrap();
    }
    assert!(
        after > before.len(),
        "the deliveries went on during the backup"
    );
    assert_eq!(refused.load(Ordering::SeqCst), 0, "no delivery was refused");

    let manifest = manifest(&backup);
    assert_eq!(out.json()["manifest"], manifest);
    assert_eq!(manifest["database"], "sqlite");
    assert!(manifest["row_counts"]["message"].as_i64().unwrap() >= before.len() as i64);
    let mut names: Vec<String> = std::fs::read_dir(&backup)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["identification_key", "kenar-hook.db", "manifest.json"]
    );

    let target = target();
    let restored = target
        .cli
        .run(&["restore", backup.to_str().unwrap(), "--json"])
        .await;
    restored.assert_code(0);
    assert_eq!(restored.json()["row_counts"], manifest["row_counts"]);
    let store = target.store().await;
    let original = app.store.installation().await.unwrap().to_owned();
    let renewed = store.installation().await.unwrap().to_owned();
    assert_ne!(
        renewed, original,
        "a restored copy hands out webhook-ids of its own"
    );
    assert_eq!(restored.json()["installation"], renewed.as_str());
    for id in &before {
        assert!(
            store.message(id).await.unwrap().is_some(),
            "message {id}, answered 200 before the backup began, is in the restored copy"
        );
    }
    store.close().await;
    assert_eq!(
        std::fs::read(&target.key).unwrap(),
        std::fs::read(&key_file).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [&target.key, &backup.join("identification_key")] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
    }
}

#[tokio::test]
async fn restore_refuses_a_target_holding_data_without_force_and_replaces_it_with() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, backup) = backed_up_app(dir.path()).await;
    let target = target();
    target.cli.run(&["migrate"]).await.assert_code(0);
    std::fs::create_dir_all(target.key.parent().unwrap()).unwrap();
    std::fs::write(&target.key, "the-key-already-in-place-0123456789abcdef\n").unwrap();
    let (database, key) = (
        std::fs::read(&target.database).unwrap(),
        std::fs::read(&target.key).unwrap(),
    );

    let out = target.cli.run(&["restore", backup.to_str().unwrap()]).await;
    assert_refused(&out, "--force");
    assert_eq!(std::fs::read(&target.database).unwrap(), database);
    assert_eq!(std::fs::read(&target.key).unwrap(), key);

    target
        .cli
        .run(&["restore", backup.to_str().unwrap(), "--force"])
        .await
        .assert_code(0);
    assert_eq!(
        std::fs::read_to_string(&target.key).unwrap(),
        KEY_FILE_CONTENT
    );
    let store = target.store().await;
    assert!(store.message("kept-1").await.unwrap().is_some());
    store.close().await;
}

#[tokio::test]
async fn restore_refuses_a_database_the_running_service_has_open() {
    let dir = tempfile::tempdir().unwrap();
    let (app, backup) = backed_up_app(dir.path()).await;
    let out = binary_of(&app)
        .run(&["restore", backup.to_str().unwrap(), "--force"])
        .await;
    assert_refused(&out, "stop the service");
    assert_eq!(
        app.post_webhook(message_body("after-refusal"))
            .await
            .status(),
        200
    );
}

/// A copy of the backup folder, to be damaged.
fn copy_of(backup: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(backup).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to.to_path_buf()
}

#[tokio::test]
async fn restore_refuses_a_changed_an_incomplete_or_a_newer_backup() {
    let dir = tempfile::tempdir().unwrap();
    let (app, backup) = backed_up_app(dir.path()).await;
    let target = target();

    let changed = copy_of(&backup, &dir.path().join("changed"));
    let mut bytes = std::fs::read(changed.join("kenar-hook.db")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(changed.join("kenar-hook.db"), bytes).unwrap();
    let out = target
        .cli
        .run(&["restore", changed.to_str().unwrap(), "--json"])
        .await;
    assert_refused(&out, "sha-256 differs");
    assert_eq!(out.json()["error"]["kind"], "validation");

    let incomplete = copy_of(&backup, &dir.path().join("incomplete"));
    std::fs::remove_file(incomplete.join("manifest.json")).unwrap();
    let out = target
        .cli
        .run(&["restore", incomplete.to_str().unwrap()])
        .await;
    assert_refused(&out, "not a complete backup");

    // A database a newer kenar-hook migrated: one more migration applied than this build has.
    let newer_version = manifest(&backup)["schema_version"].as_i64().unwrap() + 1;
    let mut conn = sqlx::SqliteConnection::connect(app.settings.database.url.expose_secret())
        .await
        .unwrap();
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
         values ($1, 'from a newer build', 1, x'00', 1)",
    )
    .bind(newer_version)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let newer = dir.path().join("newer");
    binary_of(&app)
        .run(&["backup", newer.to_str().unwrap()])
        .await
        .assert_code(0);
    assert_eq!(manifest(&newer)["schema_version"], newer_version);
    let out = target.cli.run(&["restore", newer.to_str().unwrap()]).await;
    assert_refused(&out, "is newer than this kenar-hook's");

    assert!(!target.database.exists(), "nothing was written");
    assert!(!target.key.exists(), "nothing was written");
}

#[tokio::test]
async fn backup_refuses_a_folder_that_is_not_empty() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("earlier.txt"), "keep me").unwrap();
    let out = binary_of(&app)
        .run(&["backup", dir.path().to_str().unwrap(), "--json"])
        .await;
    assert_refused(&out, "is not empty");
    assert_eq!(out.json()["error"]["exit_code"], 2);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["earlier.txt"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("earlier.txt")).unwrap(),
        "keep me"
    );
}

#[tokio::test]
async fn on_postgres_backup_prints_the_pg_dump_command_without_the_password() {
    let url = fresh_postgres_url().await;
    let parsed = url::Url::parse(&url).unwrap();
    let (user, password) = (
        parsed.username().to_owned(),
        parsed.password().unwrap().to_owned(),
    );
    let database = parsed.path().trim_start_matches('/').to_owned();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let cli = binary_for(&url, &data);
    cli.run(&["migrate"]).await.assert_code(0);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("identification_key"), KEY_FILE_CONTENT).unwrap();
    let dir = work.path().join("backup");

    let out = cli.run(&["backup", dir.to_str().unwrap()]).await;
    out.assert_code(0);
    let dump = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("pg_dump "))
        .unwrap_or_else(|| panic!("a pg_dump command: {out:#?}"));
    assert_eq!(
        dump,
        format!(
            "pg_dump --format=custom --file={}/kenar-hook.pgdump --host={} --port={} \
             --username={user} --dbname={database}",
            dir.display(),
            parsed.host_str().unwrap(),
            parsed.port().unwrap_or(5432),
        )
    );
    assert!(out.stdout.contains("pg_restore "), "{out:#?}");
    assert!(out.stdout.contains("PGPASSWORD"), "{out:#?}");
    // The test role's password may equal its name: every place the password's text appears
    // must be the user name's.
    let shown = out.stdout.matches(password.as_str()).count()
        + out.stderr.matches(password.as_str()).count();
    let as_user = if password == user {
        out.stdout.matches(&format!("--username={user}")).count()
    } else {
        0
    };
    assert_eq!(shown, as_user, "the password is never shown: {out:#?}");
    assert!(!out.stdout.contains(&format!(":{password}@")), "{out:#?}");

    let manifest = manifest(&dir);
    assert_eq!(manifest["database"], "postgres");
    assert_eq!(manifest["dump"], "kenar-hook.pgdump");
    assert_eq!(manifest["row_counts"]["message"], 0);
    assert_eq!(manifest["files"][0]["name"], "identification_key");
    assert_eq!(
        std::fs::read_to_string(dir.join("identification_key")).unwrap(),
        KEY_FILE_CONTENT
    );

    let out = cli.run(&["restore", dir.to_str().unwrap()]).await;
    assert_refused(&out, "pg_restore");
}
