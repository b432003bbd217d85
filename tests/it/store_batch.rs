//! The set-based batch write: a batch stores exactly what the same records stored one at a
//! time would, copies inside a batch included, and a record the database refuses fails only
//! itself.

use chrono::{DateTime, Utc};
use kenar_hook::ingest::breaker::Breaker;
use kenar_hook::ingest::writer::{WriteError, Writer, WriterSettings};
use kenar_hook::notify::Changes;
use kenar_hook::store::{
    ClickFacts, ClickOutcome, ClickVersion, ConversationFacts, MessageSource, NewClick, NewEvent,
    NewMessage, NewRecord, Side, Store, WriteOutcome,
};
use serde_json::json;

use crate::helpers::*;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

pub(crate) fn message(
    id: &str,
    conversation: &str,
    post: Option<&str>,
    supply: Option<&str>,
    secs: i64,
) -> NewRecord {
    NewRecord::Message(NewMessage {
        id: id.into(),
        origin: String::new(),
        source: MessageSource::Legacy,
        event_type: "CHAT_MESSAGE".into(),
        conversation: ConversationFacts {
            id: conversation.into(),
            kind: "POST".into(),
            post_token: post.map(Into::into),
            supply_user_id: supply.map(Into::into),
            demand_user_id: None,
        },
        message_type: "TEXT".into(),
        text: Some(format!("متن {id}")),
        sender_side: Some("BUYER".into()),
        sender_type: None,
        sender_id: Some("u1".into()),
        receiver_side: Some("SELLER".into()),
        receiver_id: None,
        sent_at: at(secs),
        sent_at_raw: Some(secs.to_string()),
        received_at: at(secs + 1),
        data: Some(json!({"text": format!("متن {id}")})),
        metadata: None,
        raw_body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
    })
}

pub(crate) fn event(key: &str) -> NewRecord {
    NewRecord::Event(NewEvent {
        dedupe_key: key.into(),
        event_type: "POST_UPDATE".into(),
        subtype: Some("PUBLISH".into()),
        subject_id: Some("P1".into()),
        post_token: Some("P1".into()),
        payload: json!({"post_token": "P1"}),
        metadata: Some(json!({"m": 1})),
        raw_body: key.as_bytes().to_vec(),
        received_at: at(100),
    })
}

fn click(id: &str) -> NewRecord {
    NewRecord::Click(NewClick {
        id: id.into(),
        version: ClickVersion::V2,
        facts: ClickFacts {
            source: None,
            post_token: Some("P1".into()),
            conversation_id: Some("c1".into()),
            user_id: None,
            peer_id: None,
            side: Some(Side::Demand),
        },
        provider_data: json!({"k": "v"}),
        rule: None,
        url: Some("https://app.example.ir/x".into()),
        outcome: ClickOutcome::Redirect,
        raw_body: id.as_bytes().to_vec(),
        received_at: at(200),
    })
}

/// Messages over three conversations whose facts arrive late and out of time order, copies
/// of a key inside the batch and of a key stored before, copies that name another
/// conversation (conflicts), events and clicks.
fn mixed_batch() -> Vec<NewRecord> {
    vec![
        message("m1", "c1", None, None, 50),
        message("m2", "c2", Some("P2"), None, 40),
        event("e1"),
        message("m3", "c1", Some("P1"), None, 10),
        message("m1", "c1", None, Some("S9"), 5),
        click("k1"),
        message("m4", "c1", Some("P8"), Some("S1"), 70),
        message("old", "c3", Some("P3"), None, 1),
        event("e1"),
        event("e-old"),
        message("m5", "c3", Some("P3"), Some("S3"), 30),
        click("k2"),
        message("m2", "c2", Some("P2"), None, 40),
        message("old", "c4", Some("P3"), None, 2),
        message("m3", "c4", Some("P1"), None, 12),
    ]
}

async fn store_on(backend: Backend) -> (TestApp, Store) {
    let app = spawn_app(backend).await;
    let store = app.store.clone();
    // Stored earlier: a redelivery of these in the batch changes nothing.
    store
        .write_batch(&[message("old", "c3", Some("P3"), None, 1), event("e-old")])
        .await
        .unwrap();
    (app, store)
}

async fn conversation_rows(store: &Store) -> Vec<String> {
    let mut rows = Vec::new();
    for id in ["c1", "c2", "c3"] {
        rows.push(format!("{:?}", store.conversation(id).await.unwrap()));
    }
    rows
}

async fn a_batch_stores_what_one_by_one_would(backend: Backend) {
    let records = mixed_batch();
    let (_batched_app, batched) = store_on(backend).await;
    let (_single_app, single) = store_on(backend).await;

    let (outcomes, ids) = batched.write_batch(&records).await.unwrap();
    let mut one_by_one = Vec::new();
    for record in &records {
        let (mut o, _) = single
            .write_batch(std::slice::from_ref(record))
            .await
            .unwrap();
        one_by_one.push(o.remove(0));
    }
    use WriteOutcome::{Conflict as C, Duplicate as D, Stored as S};
    assert_eq!(outcomes, [S, S, S, S, D, S, S, D, D, D, S, S, D, C, C]);
    assert_eq!(outcomes, one_by_one);
    assert!(ids.message.is_some() && ids.event.is_some() && ids.click.is_some());

    assert_eq!(
        conversation_rows(&batched).await,
        conversation_rows(&single).await
    );
    let c1 = batched.conversation("c1").await.unwrap().unwrap();
    assert_eq!(c1.message_count, 3, "m1 once, m3, m4");
    assert_eq!((c1.first_message_at, c1.last_message_at), (at(10), at(70)));
    assert_eq!(
        c1.post_token.as_deref(),
        Some("P1"),
        "the first post token known"
    );
    assert_eq!(
        c1.supply_user_id.as_deref(),
        Some("S1"),
        "the copy of m1 taught nothing"
    );
    let c3 = batched.conversation("c3").await.unwrap().unwrap();
    assert_eq!(c3.message_count, 2, "old, then m5");
    assert_eq!(c3.supply_user_id.as_deref(), Some("S3"));
    assert_eq!(
        batched.conversation("c4").await.unwrap(),
        None,
        "a conflict stores nothing"
    );

    assert_eq!(batched.counts().await.unwrap(), (3, 6, 2));
    assert_eq!(
        batched.counts().await.unwrap(),
        single.counts().await.unwrap()
    );
    let clicks = batched.all_clicks().await.unwrap();
    assert_eq!(clicks.len(), 2);
    let NewRecord::Click(k1) = click("k1") else {
        unreachable!()
    };
    assert_eq!(clicks[0].click, k1, "a click reads back as it was written");
    let m1 = batched.message("m1").await.unwrap().unwrap().message;
    assert_eq!(m1.sent_at, at(50), "the first copy is the one stored");
    assert_eq!(m1.raw_body, b"{\"id\":\"m1\"}");
    assert_eq!(m1.data, Some(json!({"text": "متن m1"})));
}

async fn a_large_batch_keeps_every_outcome_in_place(backend: Backend) {
    let (_app, store) = store_on(backend).await;
    // Over SQLite's 1,000 rows a statement, every other record a copy of its predecessor.
    let records: Vec<NewRecord> = (0..2500)
        .map(|i| {
            message(
                &format!("big-{}", i / 2),
                &format!("conv-{}", i / 2 % 7),
                None,
                None,
                i,
            )
        })
        .collect();
    let (outcomes, _) = store.write_batch(&records).await.unwrap();
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if i % 2 == 0 {
            WriteOutcome::Stored
        } else {
            WriteOutcome::Duplicate
        };
        assert_eq!(*outcome, expected, "record {i}");
    }
    let (conversations, messages, _) = store.counts().await.unwrap();
    assert_eq!((conversations, messages), (8, 1251));
    let mut total = 0;
    for c in 0..7 {
        total += store
            .conversation(&format!("conv-{c}"))
            .await
            .unwrap()
            .unwrap()
            .message_count;
    }
    assert_eq!(total, 1250);
}

/// An id holding U+0000 is stored with U+FFFD; its message still counts in its conversation,
/// and the same id again is a duplicate.
async fn a_nul_in_an_id_still_counts_in_its_conversation(backend: Backend) {
    let (_app, store) = store_on(backend).await;
    let records = [
        message("n\0x", "cn", None, None, 1),
        message("n\u{fffd}x", "cn", None, None, 2),
    ];
    let (outcomes, _) = store.write_batch(&records).await.unwrap();
    assert_eq!(outcomes, [WriteOutcome::Stored, WriteOutcome::Duplicate]);
    let c = store.conversation("cn").await.unwrap().unwrap();
    assert_eq!(c.message_count, 1);
}

/// `record`, a message, vouched for by the registration of `post`.
fn vouched_by(post: &str, mut record: NewRecord) -> NewRecord {
    if let NewRecord::Message(m) = &mut record {
        m.origin = post.into();
    }
    record
}

/// One id is two keys in two origins; within one origin a copy naming another conversation
/// is a conflict, inside the batch as after it, and changes nothing.
async fn an_id_is_unique_within_its_origin(backend: Backend) {
    let records = [
        vouched_by("PA", message("x", "ca", Some("PA"), None, 1)),
        vouched_by("PA", message("x", "ca2", Some("PA"), None, 1)),
        message("x", "cb", Some("PB"), None, 1),
        message("x", "cc", Some("PB"), None, 1),
        vouched_by("PA", message("x", "ca", Some("PA"), None, 1)),
    ];
    let (_batched_app, batched) = store_on(backend).await;
    let (_single_app, single) = store_on(backend).await;
    let (outcomes, _) = batched.write_batch(&records).await.unwrap();
    let mut one_by_one = Vec::new();
    for record in &records {
        let (mut o, _) = single
            .write_batch(std::slice::from_ref(record))
            .await
            .unwrap();
        one_by_one.push(o.remove(0));
    }
    use WriteOutcome::{Conflict as C, Duplicate as D, Stored as S};
    assert_eq!(outcomes, [S, C, S, C, D]);
    assert_eq!(outcomes, one_by_one);
    for store in [&batched, &single] {
        assert_eq!(
            store.counts().await.unwrap(),
            (3, 3, 1),
            "c3 and old from before"
        );
        assert_eq!(store.conversation("ca2").await.unwrap(), None);
        assert_eq!(store.conversation("cc").await.unwrap(), None);
        let served = store.message("x").await.unwrap().unwrap().message;
        assert_eq!(
            (served.origin.as_str(), served.conversation.id.as_str()),
            ("", "cb")
        );
    }
    // A conflict alone in its batch is not new either.
    let (outcomes, ids) = batched
        .write_batch(&[message("x", "cd", Some("PB"), None, 1)])
        .await
        .unwrap();
    assert_eq!((outcomes, ids.message), (vec![C], None));
}

on_both_backends!(
    an_id_is_unique_within_its_origin,
    a_nul_in_an_id_still_counts_in_its_conversation,
    a_batch_stores_what_one_by_one_would,
    a_large_batch_keeps_every_outcome_in_place,
);

/// Renames `known` in each `(table, column)` to a name no version knows: `read` (of that
/// table) must fail naming the column and the value, then read the one row again once the
/// known name is back.
async fn unknown_names_are_refused(
    app: &TestApp,
    cases: &[(&str, &str, &str)],
    read: impl AsyncFn(&str) -> Result<usize, String>,
) {
    use secrecy::ExposeSecret;
    use sqlx::Connection;
    for (table, column, known) in cases {
        let mut conn = sqlx::SqliteConnection::connect(app.settings.database.url.expose_secret())
            .await
            .unwrap();
        let set = |from: &str, to: &str| {
            format!("update {table} set {column} = '{to}' where {column} = '{from}'")
        };
        sqlx::query(&set(known, "later"))
            .execute(&mut conn)
            .await
            .unwrap();
        let err = read(table).await.unwrap_err();
        assert!(err.contains(column), "{table}.{column}: {err}");
        assert!(
            err.contains("\"later\" is not a value this version knows"),
            "{table}.{column}: {err}"
        );
        sqlx::query(&set("later", known))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        assert_eq!(read(table).await, Ok(1), "{table}.{column}");
    }
}

/// A click's stored version, side or outcome, a message's or conversation's source, or a
/// token's status that this build does not know (written by hand, or by a newer build) is
/// refused by name, never read as something else.
#[tokio::test]
async fn a_stored_name_this_version_does_not_know_is_refused_by_name() {
    let (app, store) = store_on(Backend::Sqlite).await;
    store.write_batch(&[click("k1")]).await.unwrap();
    let cases = [
        ("click", "version", "v2"),
        ("click", "side", "demand"),
        ("click", "outcome", "redirect"),
        ("message", "source", "legacy"),
        ("conversation", "source", "legacy"),
        ("oauth_token", "status", "active"),
    ];
    let now = Utc::now();
    let token = kenar_hook::store::oauth::TokenRow {
        user_id: "u1".into(),
        scope: "USER_ID".into(),
        access_token: vec![1; 40],
        refresh_token: None,
        expires_at: now,
        refresh_due_at: None,
        generation: 1,
        status: kenar_hook::store::oauth::TokenStatus::Active,
        failures: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    store.put_token(&token).await.unwrap();
    unknown_names_are_refused(&app, &cases, async |table| {
        let read = match table {
            "click" => store.all_clicks().await.map(|c| c.len()),
            "message" => store.message("old").await.map(|m| usize::from(m.is_some())),
            "conversation" => store
                .conversation("c3")
                .await
                .map(|c| usize::from(c.is_some())),
            _ => store.tokens().await.map(|t| t.len()),
        };
        read.map_err(|e| e.to_string())
    })
    .await;
}

/// A forwarded record whose stored kind, attempt outcome or reply status this build does not
/// know is refused by name, never read as another record or status; so is an endpoint's read
/// position in a log of an unknown kind (skipping it would take that log's position as 0).
#[tokio::test]
async fn a_stored_forwarding_name_this_version_does_not_know_is_refused_by_name() {
    use kenar_hook::store::RecordRef;
    use kenar_hook::store::forward::{Attempt, AttemptOutcome, AttemptQuery, Pending, Progress};
    use kenar_hook::store::outbox::{NewReply, OutboxQuery, OutboxStatus};
    let (app, store) = store_on(Backend::Sqlite).await;
    let name = "backend".to_owned();
    store
        .forward_register(std::slice::from_ref(&name))
        .await
        .unwrap();
    let record = RecordRef {
        kind: kenar_hook::store::RecordKind::Message,
        seq: 1,
    };
    let now = Utc::now();
    let pending = Pending {
        record,
        order_key: None,
        received_at: now,
        attempts: 0,
        next_at: now,
        body: "{}".into(),
    };
    let cursor = store.forward_cursors(&name).await.unwrap().message;
    assert!(
        store
            .forward_take(&name, record.kind, cursor, cursor, &[pending])
            .await
            .unwrap()
    );
    let progress = Progress {
        attempts: vec![Attempt {
            id: 0,
            endpoint: name.clone(),
            record,
            attempt: 1,
            outcome: AttemptOutcome::Failed,
            status_code: Some(500),
            latency_ms: 3,
            error: None,
            response: None,
            at: now,
        }],
        replies: vec![NewReply {
            record,
            record_id: Some("m1".into()),
            conversation_id: None,
            status: OutboxStatus::Refused,
            json: "{}".into(),
            target: None,
            answer: Some("malformed".into()),
        }],
        ..Default::default()
    };
    assert_eq!(
        store.forward_progress(&name, &progress).await.unwrap(),
        [true]
    );

    let attempts = AttemptQuery {
        limit: 10,
        ..Default::default()
    };
    let outbox = OutboxQuery {
        limit: 10,
        ..Default::default()
    };
    let read = async |table: &str| -> Result<usize, String> {
        let n = match table {
            "forward_pending" => store.forward_pending(&name).await.map(|r| r.len()),
            "forward_attempt" => store.forward_attempts(&attempts).await.map(|r| r.len()),
            "forward_cursor" => store.forward_cursors(&name).await.map(|_| 1),
            _ => store.outbox_list(&outbox).await.map(|r| r.len()),
        };
        n.map_err(|e| e.to_string())
    };
    let cases = [
        ("forward_cursor", "kind", "message"),
        ("forward_pending", "kind", "message"),
        ("forward_attempt", "kind", "message"),
        ("forward_attempt", "outcome", "failed"),
        ("outbox", "kind", "message"),
        ("outbox", "status", "refused"),
    ];
    unknown_names_are_refused(&app, &cases, read).await;
}

/// PostgreSQL cannot hold a time before 4713 BC: such a record fails its batch, and the
/// writer then stores every other record of that batch on its own.
#[tokio::test]
async fn a_record_the_database_refuses_fails_only_itself() {
    let app = spawn_app(Backend::Postgres).await;
    let (writer, task) = Writer::spawn(
        app.store.clone(),
        writer_settings(16, 16, 1),
        breaker(),
        Changes::new(),
    );
    let mut ancient = message("ancient", "c9", None, None, 0);
    if let NewRecord::Message(m) = &mut ancient {
        m.sent_at = DateTime::from_timestamp(-300_000_000_000, 0).unwrap();
    }
    // All three are queued before the writer task first runs, so they form one batch.
    let (a, b, c) = tokio::join!(
        writer.submit(message("good-1", "c9", None, None, 1)),
        writer.submit(ancient),
        writer.submit(message("good-2", "c9", None, None, 2)),
    );
    assert_eq!(a, Ok(WriteOutcome::Stored));
    assert_eq!(b, Err(WriteError::Unavailable));
    assert_eq!(c, Ok(WriteOutcome::Stored));
    assert!(app.store.message("ancient").await.unwrap().is_none());
    let conversation = app.store.conversation("c9").await.unwrap().unwrap();
    assert_eq!(conversation.message_count, 2);
    drop(writer);
    task.await.unwrap();
}

/// Several writers share one queue: everything is stored once, whatever writer took it.
#[tokio::test]
async fn several_writers_store_every_record_once() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app(backend).await;
        let (writer, task) = Writer::spawn(
            app.store.clone(),
            writer_settings(4096, 32, 4),
            breaker(),
            Changes::new(),
        );
        let submits = (0..600).map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .submit(message(&format!("w-{}", i % 400), "cw", None, None, i))
                    .await
            })
        });
        let outcomes = futures_util::future::join_all(submits).await;
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Ok(WriteOutcome::Stored))))
            .count();
        let duplicate = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Ok(WriteOutcome::Duplicate))))
            .count();
        assert_eq!((stored, duplicate), (400, 200), "{backend:?}");
        let c = app.store.conversation("cw").await.unwrap().unwrap();
        assert_eq!(c.message_count, 400, "{backend:?}");
        drop(writer);
        task.await.unwrap();
    }
}

/// Writers side by side see every conflict, whichever of two places of an id commits first
/// and whatever the other writer's statement saw when it began.
#[tokio::test]
async fn several_writers_see_every_conflict() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app(backend).await;
        let (writer, task) = Writer::spawn(
            app.store.clone(),
            writer_settings(4096, 32, 4),
            breaker(),
            Changes::new(),
        );
        let submits = (0..600).map(|i| {
            let writer = writer.clone();
            // Ids 0..200 arrive in two conversations.
            let conversation = if i < 400 { "cw" } else { "cx" };
            tokio::spawn(async move {
                writer
                    .submit(message(
                        &format!("w-{}", i % 400),
                        conversation,
                        None,
                        None,
                        i,
                    ))
                    .await
            })
        });
        let outcomes = futures_util::future::join_all(submits).await;
        let count = |wanted: WriteOutcome| {
            outcomes
                .iter()
                .filter(|o| matches!(o, Ok(Ok(got)) if *got == wanted))
                .count()
        };
        assert_eq!(
            (count(WriteOutcome::Stored), count(WriteOutcome::Conflict)),
            (400, 200),
            "{backend:?}"
        );
        let mut total = 0;
        for id in ["cw", "cx"] {
            if let Some(c) = app.store.conversation(id).await.unwrap() {
                total += c.message_count;
            }
        }
        assert_eq!(total, 400, "{backend:?}");
        drop(writer);
        task.await.unwrap();
    }
}

/// SQLite's log is copied into the database file by the service's own checkpoints (SQLite's
/// automatic ones, inside a commit, are off): the file grows a moment after the writes.
#[tokio::test]
async fn sqlite_checkpoints_run_in_the_background() {
    let app = spawn_app(Backend::Sqlite).await;
    let file = app._dir.path().join("test.db");
    let size = || std::fs::metadata(&file).unwrap().len();
    let before = size();
    let records: Vec<NewRecord> = (0..300)
        .map(|i| {
            message(
                &format!("ck-{i}"),
                &format!("ck-conv-{}", i % 30),
                None,
                None,
                i,
            )
        })
        .collect();
    app.store.write_batch(&records).await.unwrap();
    let wal = app._dir.path().join("test.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "written to the log first"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 10 s: the database file stayed at {before} bytes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn writer_settings(capacity: usize, batch_max: usize, writers: usize) -> WriterSettings {
    WriterSettings {
        capacity,
        batch_max,
        writers,
        write_timeout: std::time::Duration::from_secs(10),
        deadline: std::time::Duration::from_secs(20),
    }
}

fn breaker() -> std::sync::Arc<Breaker> {
    std::sync::Arc::new(Breaker::new(std::time::Duration::from_secs(10)))
}
