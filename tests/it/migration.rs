//! A database made before message ids were scoped keeps its messages through the migration:
//! each in the app's scope, its seq unchanged, a redelivery still a duplicate, and no seq
//! used twice.

use std::path::Path;

use kenar_hook::store::{Store, WriteOutcome};
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;

use crate::helpers::*;
use crate::store_batch::message;

/// The migrations of `backend` before the one that scopes message ids, as a migrator.
async fn before_scoping(backend: Backend, dir: &Path) -> Migrator {
    let source: std::path::PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "migrations",
        match backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        },
    ]
    .iter()
    .collect();
    let target = dir.join("before-scoping");
    std::fs::create_dir(&target).unwrap();
    for name in ["0001_init.sql", "0002_click.sql", "0003_registration.sql"] {
        std::fs::copy(source.join(name), target.join(name)).unwrap();
    }
    Migrator::new(target.as_path()).await.unwrap()
}

/// Three messages of the old shape; the last deleted again.
fn old_rows(backend: Backend) -> [String; 2] {
    let (time, body) = match backend {
        Backend::Postgres => ("to_timestamp(1)", r"'\x7b7d'::bytea"),
        Backend::Sqlite => ("1000000", "x'7b7d'"),
    };
    let values: Vec<String> = ["old-1", "old-2", "old-3"]
        .iter()
        .map(|id| {
            format!("('{id}', 'legacy', 'CHAT_MESSAGE', 'c1', 'P1', 'TEXT', 'old', {time}, {time}, {body})")
        })
        .collect();
    [
        format!(
            "insert into message (id, source, event_type, conversation_id, post_token, \
             message_type, text, sent_at, received_at, raw_body) values {}",
            values.join(", ")
        ),
        "delete from message where id = 'old-3'".to_owned(),
    ]
}

async fn messages_stored_before_scoping_keep_their_place(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(backend, &dir).await;
    let url = settings.database.url.expose_secret().to_owned();
    let migrator = before_scoping(backend, dir.path()).await;
    match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for sql in old_rows(backend) {
                sqlx::query(&sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Backend::Sqlite => {
            let options = url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for sql in old_rows(backend) {
                sqlx::query(&sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }

    let store = Store::connect(&settings.database).await.unwrap();
    store.migrate().await.unwrap();
    let installation = store.installation().await.unwrap();
    assert_eq!(
        installation.len(),
        32,
        "an existing database gets an installation id"
    );
    let old = store.message("old-1").await.unwrap().unwrap();
    assert_eq!((old.seq, old.message.origin.as_str()), (1, ""));
    assert_eq!(old.message.text.as_deref(), Some("old"));
    assert_eq!(store.counts().await.unwrap().1, 2);

    let new = store
        .write_batch(&[message("new-1", "c1", Some("P1"), None, 2)])
        .await
        .unwrap();
    assert_eq!(new.0, [WriteOutcome::Stored]);
    assert_eq!(
        new.1.message,
        Some(4),
        "the seq of the deleted row is not used again"
    );
    let again = store
        .write_batch(&[message("old-2", "c1", Some("P1"), None, 1)])
        .await
        .unwrap();
    assert_eq!(again.0, [WriteOutcome::Duplicate]);
    store.close().await;
}

on_both_backends!(messages_stored_before_scoping_keep_their_place);
