//! The stored records' way out: retention by age (kept while an endpoint still waits for
//! them), erasure of one user, conversation or post with their forwarding work, erasure on a
//! user's revocation, and the export of one of them in the read API's item shape.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kenar_hook::retention;
use kenar_hook::store::forward::{Dead, Pending, Progress};
use kenar_hook::store::lifecycle::{Erasure, Identity, Keep, Log};
use kenar_hook::store::{
    ClickFacts, ClickOutcome, ClickVersion, ConversationFacts, MessageSource, NewClick, NewEvent,
    NewMessage, NewRecord, RecordKind, RecordRef, Side, Store,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cli::Cli;
use crate::forward::endpoint;
use crate::helpers::*;

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

/// A legacy message between `supply` and `demand`, sent by `demand`, `age` days ago.
fn message(
    id: &str,
    conversation: &str,
    post: &str,
    supply: &str,
    demand: &str,
    age: i64,
) -> NewRecord {
    NewRecord::Message(NewMessage {
        id: id.into(),
        origin: String::new(),
        source: MessageSource::Legacy,
        event_type: "CHAT_MESSAGE".into(),
        conversation: ConversationFacts {
            id: conversation.into(),
            kind: "POST".into(),
            post_token: Some(post.into()),
            supply_user_id: Some(supply.into()),
            demand_user_id: Some(demand.into()),
        },
        message_type: "TEXT".into(),
        text: Some(format!("سلام {id}")),
        sender_side: Some("BUYER".into()),
        sender_type: None,
        sender_id: Some(demand.into()),
        receiver_side: Some("SELLER".into()),
        receiver_id: Some(supply.into()),
        sent_at: days_ago(age),
        sent_at_raw: None,
        received_at: days_ago(age),
        data: None,
        metadata: None,
        raw_body: format!("{{\"id\":\"{id}\",\"from\":\"{demand}\"}}").into_bytes(),
    })
}

fn event(key: &str, kind: &str, subject: &str, post: Option<&str>, age: i64) -> NewRecord {
    NewRecord::Event(NewEvent {
        dedupe_key: key.into(),
        event_type: kind.into(),
        subtype: None,
        subject_id: Some(subject.into()),
        post_token: post.map(Into::into),
        payload: json!({"subject": subject}),
        metadata: None,
        raw_body: key.as_bytes().to_vec(),
        received_at: days_ago(age),
    })
}

fn click(id: &str, conversation: &str, post: &str, user: &str, age: i64) -> NewRecord {
    NewRecord::Click(NewClick {
        id: id.into(),
        version: ClickVersion::V2,
        facts: ClickFacts {
            source: None,
            post_token: Some(post.into()),
            conversation_id: Some(conversation.into()),
            user_id: Some(user.into()),
            peer_id: None,
            side: Some(Side::Demand),
        },
        provider_data: json!({}),
        rule: None,
        url: None,
        outcome: ClickOutcome::NoMatch,
        raw_body: id.as_bytes().to_vec(),
        received_at: days_ago(age),
    })
}

/// Two users' conversations on two posts, old and new rows of every kind.
fn records() -> Vec<NewRecord> {
    vec![
        // c-old: only old messages; c-mixed: old and new; c-new: only new.
        message("m1", "c-old", "POST-A", "seller-1", "buyer-1", 100),
        message("m2", "c-old", "POST-A", "seller-1", "buyer-1", 90),
        message("m3", "c-mixed", "POST-A", "seller-1", "buyer-2", 95),
        message("m4", "c-mixed", "POST-A", "seller-1", "buyer-2", 5),
        message("m5", "c-mixed", "POST-A", "seller-1", "buyer-2", 2),
        message("m6", "c-new", "POST-B", "seller-2", "buyer-1", 1),
        event("e1", "POST_UPDATE", "POST-A", Some("POST-A"), 100),
        event("e2", "USER_ACCESS_REVOCATION", "buyer-2", None, 1),
        event("e3", "POST_UPDATE", "POST-B", Some("POST-B"), 1),
        click("k1", "c-old", "POST-A", "buyer-1", 100),
        click("k2", "c-new", "POST-B", "buyer-1", 1),
    ]
}

async fn seeded(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.store.write_batch(&records()).await.unwrap();
    app.store
        .insert_rejected(
            b"{\"from\":\"buyer-1\",\"broken\"",
            "invalid",
            days_ago(100),
        )
        .await
        .unwrap();
    app.store
        .insert_rejected(b"{\"from\":\"buyer-3\",\"broken\"", "invalid", days_ago(1))
        .await
        .unwrap();
    app
}

async fn message_ids(store: &Store) -> Vec<String> {
    let mut ids = Vec::new();
    for id in ["m1", "m2", "m3", "m4", "m5", "m6"] {
        if store.message(id).await.unwrap().is_some() {
            ids.push(id.to_owned());
        }
    }
    ids
}

async fn event_keys(store: &Store) -> Vec<String> {
    store
        .all_events()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.dedupe_key)
        .collect()
}

async fn click_ids(store: &Store) -> Vec<String> {
    store
        .all_clicks()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.click.id)
        .collect()
}

async fn rejected_bodies(store: &Store) -> Vec<String> {
    store
        .list_rejected(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.raw_body).into_owned())
        .collect()
}

/// Every conversation's counters agree with its messages.
async fn assert_conversations_consistent(store: &Store, ids: &[&str]) {
    for id in ids {
        let Some(c) = store.conversation(id).await.unwrap() else {
            continue;
        };
        let mut sent = Vec::new();
        for m in ["m1", "m2", "m3", "m4", "m5", "m6"] {
            if let Some(m) = store.message(m).await.unwrap() {
                if m.message.conversation.id == *id {
                    sent.push(m.message.sent_at);
                }
            }
        }
        assert!(!sent.is_empty(), "{id} is kept without messages");
        assert_eq!(c.message_count, sent.len() as i64, "{id}: {c:?}");
        assert_eq!(
            us(c.first_message_at),
            us(*sent.iter().min().unwrap()),
            "{id}"
        );
        assert_eq!(
            us(c.last_message_at),
            us(*sent.iter().max().unwrap()),
            "{id}"
        );
    }
}

async fn prune_all(store: &Store, log: Log, keep: &Keep) -> u64 {
    retention::prune(
        store,
        log,
        days_ago(30),
        keep,
        2,
        &CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap()
    .rows
}

async fn retention_removes_what_is_older_than_its_cutoff_and_nothing_newer(backend: Backend) {
    let app = seeded(backend).await;
    let store = &app.store;
    let keep = Keep::default();

    assert_eq!(prune_all(store, Log::Messages, &keep).await, 3);
    assert_eq!(message_ids(store).await, ["m4", "m5", "m6"]);
    assert!(
        store.conversation("c-old").await.unwrap().is_none(),
        "an emptied conversation goes"
    );
    assert_conversations_consistent(store, &["c-mixed", "c-new"]).await;
    assert_eq!(
        store
            .conversation("c-mixed")
            .await
            .unwrap()
            .unwrap()
            .message_count,
        2
    );

    // Each kind is pruned only when asked for.
    assert_eq!(event_keys(store).await, ["e1", "e2", "e3"]);
    assert_eq!(prune_all(store, Log::Events, &keep).await, 1);
    assert_eq!(event_keys(store).await, ["e2", "e3"]);
    assert_eq!(prune_all(store, Log::Clicks, &keep).await, 1);
    assert_eq!(click_ids(store).await, ["k2"]);
    assert_eq!(prune_all(store, Log::Rejected, &keep).await, 1);
    assert_eq!(
        rejected_bodies(store).await,
        ["{\"from\":\"buyer-3\",\"broken\""]
    );

    // A second round finds nothing left.
    for log in Log::ALL {
        assert_eq!(prune_all(store, log, &keep).await, 0, "{log}");
    }
}

async fn a_record_an_endpoint_still_waits_for_is_kept_unless_forced(backend: Backend) {
    let app = seeded(backend).await;
    let store = &app.store;
    // The endpoint starts at the end of each log: m1..m6 are behind it, m7 and m8 not.
    store
        .forward_register(&["backend".to_owned()])
        .await
        .unwrap();
    store
        .write_batch(&[
            message("m7", "c-late", "POST-C", "seller-3", "buyer-3", 60),
            message("m8", "c-late", "POST-C", "seller-3", "buyer-3", 50),
        ])
        .await
        .unwrap();
    let cursor = store.forward_cursors("backend").await.unwrap().message;
    // m7 is read into the endpoint's pending work; m8 not read yet.
    let m7 = store.message("m7").await.unwrap().unwrap().seq;
    let pending = Pending {
        record: RecordRef {
            kind: RecordKind::Message,
            seq: m7,
        },
        order_key: Some("c-late".into()),
        received_at: days_ago(60),
        attempts: 0,
        next_at: Utc::now(),
        body: "{\"m\":7}".into(),
    };
    assert!(
        store
            .forward_take("backend", RecordKind::Message, cursor, m7, &[pending])
            .await
            .unwrap()
    );

    let settings = endpoint("backend", "http://127.0.0.1:9/hook");
    let keep = retention::keep(std::slice::from_ref(&settings), Log::Messages, false);
    assert_eq!(keep.endpoints, ["backend"]);
    assert_eq!(prune_all(store, Log::Messages, &keep).await, 3);
    assert!(
        store.message("m7").await.unwrap().is_some(),
        "pending for the endpoint"
    );
    assert!(
        store.message("m8").await.unwrap().is_some(),
        "not yet read by the endpoint"
    );
    assert_eq!(
        store
            .conversation("c-late")
            .await
            .unwrap()
            .unwrap()
            .message_count,
        2
    );

    // An endpoint that does not take messages keeps none of them.
    let mut events_only = settings.clone();
    events_only.include = vec!["events".into()];
    let keep = retention::keep(&[events_only], Log::Messages, false);
    assert!(keep.endpoints.is_empty());

    // Forced: both go, and the pending work with them.
    let forced = retention::keep(&[settings], Log::Messages, true);
    assert_eq!(prune_all(store, Log::Messages, &forced).await, 2);
    assert!(store.conversation("c-late").await.unwrap().is_none());
    assert!(store.forward_pending("backend").await.unwrap().is_empty());
}

async fn an_interrupted_prune_leaves_whole_batches_and_a_rerun_finishes(backend: Backend) {
    let app = seeded(backend).await;
    let store = &app.store;
    let stop = CancellationToken::new();
    let mut batches = 0;
    let removed = retention::prune(
        store,
        Log::Messages,
        days_ago(30),
        &Keep::default(),
        1,
        &stop,
        |_| {
            batches += 1;
            stop.cancel();
        },
    )
    .await
    .unwrap();
    assert_eq!((batches, removed.rows), (1, 1));
    assert_eq!(message_ids(store).await, ["m2", "m3", "m4", "m5", "m6"]);
    assert_conversations_consistent(store, &["c-old", "c-mixed", "c-new"]).await;
    assert_eq!(
        store
            .conversation("c-old")
            .await
            .unwrap()
            .unwrap()
            .message_count,
        1
    );

    assert_eq!(prune_all(store, Log::Messages, &Keep::default()).await, 2);
    assert_eq!(message_ids(store).await, ["m4", "m5", "m6"]);
    assert_conversations_consistent(store, &["c-mixed", "c-new"]).await;
}

async fn the_service_prunes_expired_records_soon_after_start(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.retention.messages_days = 30;
        s.retention.clicks_days = 30;
    })
    .await;
    let store = &app.store;
    store.write_batch(&records()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while message_ids(store).await != ["m4", "m5", "m6"] || click_ids(store).await != ["k2"] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            message_ids(store).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        event_keys(store).await,
        ["e1", "e2", "e3"],
        "events have no retention here"
    );
    assert_conversations_consistent(store, &["c-mixed", "c-new"]).await;
}

async fn pruning_while_conversations_grow_keeps_their_counts_right(backend: Backend) {
    use kenar_hook::store::query::MessageQuery;
    let app = spawn_app(backend).await;
    let store = app.store.clone();
    let conversations = ["g0", "g1", "g2", "g3", "g4"];
    let old: Vec<NewRecord> = (0..200)
        .map(|i| {
            message(
                &format!("old-{i}"),
                conversations[i % 5],
                "POST-G",
                "s",
                "b",
                100,
            )
        })
        .collect();
    store.write_batch(&old).await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..40 {
                let batch: Vec<NewRecord> = (0..5)
                    .map(|i| {
                        message(
                            &format!("new-{round}-{i}"),
                            conversations[i],
                            "POST-G",
                            "s",
                            "b",
                            1,
                        )
                    })
                    .collect();
                store.write_batch(&batch).await.unwrap();
            }
        })
    };
    let removed = prune_all(&store, Log::Messages, &Keep::default()).await;
    writer.await.unwrap();
    assert_eq!(removed, 200);
    for id in conversations {
        let q = MessageQuery {
            conversation_id: Some(id.into()),
            limit: 1000,
            ..Default::default()
        };
        let rows = store.list_messages(&q, usize::MAX).await.unwrap();
        let views = rows.views().unwrap();
        let c = store
            .conversation(id)
            .await
            .unwrap()
            .expect("kept: it has new messages");
        assert_eq!(views.len(), 40, "{id}");
        assert_eq!(c.message_count, 40, "{id}: {c:?}");
        let first = views.iter().map(|m| m.sent_at).min().unwrap();
        assert_eq!(us(c.first_message_at), us(first), "{id}");
    }
}

fn erasure(identity: Identity) -> Erasure {
    Erasure {
        identity,
        up_to: None,
        keep_revocations: false,
    }
}

async fn erasing_a_user_removes_their_records_and_their_forwarding_work(backend: Backend) {
    let app = seeded(backend).await;
    let store = &app.store;
    store
        .forward_register(&["backend".to_owned()])
        .await
        .unwrap();
    // A dead letter of m1 (buyer-1's) and one of m4 (buyer-2's).
    let seq = |id: &'static str| async move { store.message(id).await.unwrap().unwrap().seq };
    let dead = |seq: i64| Dead {
        id: 0,
        pending: Pending {
            record: RecordRef {
                kind: RecordKind::Message,
                seq,
            },
            order_key: None,
            received_at: Utc::now(),
            attempts: 12,
            next_at: Utc::now(),
            body: format!("{{\"seq\":{seq}}}"),
        },
        last_error: "HTTP 500".into(),
        dead_at: Utc::now(),
    };
    let progress = Progress {
        dead: vec![dead(seq("m1").await), dead(seq("m4").await)],
        ..Default::default()
    };
    store.forward_progress("backend", &progress).await.unwrap();

    let who = erasure(Identity::User("buyer-1".into()));
    let counted = store.count_erasable(&who).await.unwrap();
    assert_eq!(
        message_ids(store).await.len(),
        6,
        "counting changes nothing"
    );
    let erased = store.erase(&who, 2).await.unwrap();
    assert_eq!(
        (
            erased.messages,
            erased.conversations,
            erased.clicks,
            erased.rejected,
            erased.forwarding
        ),
        (3, 2, 2, 1, 1),
        "{erased:?}"
    );
    assert_eq!(
        (
            counted.messages,
            counted.conversations,
            counted.clicks,
            counted.rejected
        ),
        (3, 2, 2, 1)
    );
    assert_eq!(message_ids(store).await, ["m3", "m4", "m5"]);
    assert!(store.conversation("c-old").await.unwrap().is_none());
    assert!(store.conversation("c-new").await.unwrap().is_none());
    assert_conversations_consistent(store, &["c-mixed"]).await;
    assert!(click_ids(store).await.is_empty());
    assert_eq!(
        event_keys(store).await,
        ["e1", "e2", "e3"],
        "no event names buyer-1"
    );
    assert_eq!(
        rejected_bodies(store).await,
        ["{\"from\":\"buyer-3\",\"broken\""]
    );
    let dead: Vec<i64> = store
        .forward_dead(Some("backend"), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, d)| d.pending.record.seq)
        .collect();
    assert_eq!(
        dead,
        [seq("m4").await],
        "only buyer-2's dead letter is left"
    );

    // The revocation event names buyer-2.
    let erased = store
        .erase(&erasure(Identity::User("buyer-2".into())), 100)
        .await
        .unwrap();
    assert_eq!((erased.messages, erased.events), (3, 1));
    assert_eq!(event_keys(store).await, ["e1", "e3"]);
}

async fn erasing_a_conversation_or_a_post_touches_nothing_else(backend: Backend) {
    let app = seeded(backend).await;
    let store = &app.store;
    let erased = store
        .erase(&erasure(Identity::Conversation("c-mixed".into())), 100)
        .await
        .unwrap();
    assert_eq!(
        (erased.messages, erased.conversations, erased.clicks),
        (3, 1, 0)
    );
    assert_eq!(message_ids(store).await, ["m1", "m2", "m6"]);
    assert_eq!(click_ids(store).await, ["k1", "k2"]);

    let erased = store
        .erase(&erasure(Identity::Post("POST-B".into())), 100)
        .await
        .unwrap();
    assert_eq!(
        (
            erased.messages,
            erased.conversations,
            erased.events,
            erased.clicks
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(message_ids(store).await, ["m1", "m2"]);
    assert_eq!(event_keys(store).await, ["e1", "e2"]);
    assert_eq!(click_ids(store).await, ["k1"]);
    assert_conversations_consistent(store, &["c-old"]).await;
    assert_eq!(rejected_bodies(store).await.len(), 2);
}

async fn a_revocation_erases_the_users_records_when_asked_to(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.privacy.on_revocation = kenar_hook::config::OnRevocation::Erase;
    })
    .await;
    let store = &app.store;
    // Without e2, buyer-2's revocation.
    let mut records = records();
    records
        .retain(|r| !matches!(r, NewRecord::Event(e) if e.event_type == "USER_ACCESS_REVOCATION"));
    store.write_batch(&records).await.unwrap();
    let revocation = json!({
        "type": "USER_ACCESS_REVOCATION",
        "user_access_revocation": {"user_id": "buyer-1"}
    });
    let response = app.post_webhook(revocation.to_string()).await;
    assert_eq!(response.status(), 200);
    // The erasure goes one log at a time (messages, then events, then clicks): wait for the
    // last of them, not the first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let buyer_events: Vec<_> = store
            .all_events()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event.subject_id.as_deref() == Some("buyer-1"))
            .map(|e| e.event.event_type)
            .collect();
        let state = (
            message_ids(store).await,
            click_ids(store).await,
            buyer_events,
        );
        if state.0 == ["m3", "m4", "m5"] && state.1.is_empty() {
            assert_eq!(
                state.2,
                ["USER_ACCESS_REVOCATION"],
                "the revocation itself is kept"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{state:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_conversations_consistent(store, &["c-mixed"]).await;
}

async fn an_erased_record_waiting_for_its_endpoint_is_never_sent(backend: Backend) {
    use crate::forward::{Receiver, forwarding, message as delivery};
    let receiver = Receiver::start().await;
    receiver.answer(503, None);
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    for (id, conversation) in [("gone-1", "conv-gone"), ("kept-1", "conv-kept")] {
        let body = delivery(id, conversation, "POSTA", "TEXT", 1_741_508_247_515_000);
        assert_eq!(app.post_webhook(body).await.status(), 200);
    }
    // Both were tried and refused: the forwarder holds them for a retry.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let bodies: Vec<String> = receiver
            .all()
            .iter()
            .map(|g| String::from_utf8_lossy(&g.body).into_owned())
            .collect();
        if ["gone-1", "kept-1"]
            .iter()
            .all(|id| bodies.iter().any(|b| b.contains(id)))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "both tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let erased = app
        .store
        .erase(&erasure(Identity::Conversation("conv-gone".into())), 100)
        .await
        .unwrap();
    assert_eq!((erased.messages, erased.forwarding), (1, 1), "{erased:?}");
    // A forwarder reads its state every second; after that it holds the record no more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    receiver.answer(200, None);
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    // Retries come at most 400 ms apart: an erased record still held would be sent by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered: Vec<String> = receiver
        .delivered()
        .iter()
        .map(|g| String::from_utf8_lossy(&g.body).into_owned())
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(delivered[0].contains("kept-1"), "{delivered:?}");
}

async fn prune_stopped_by_ctrl_c_ends_after_a_whole_batch_and_a_rerun_finishes(backend: Backend) {
    use secrecy::ExposeSecret;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let app = spawn_app(backend).await;
    let old: Vec<NewRecord> = (0..3000)
        .map(|i| {
            message(
                &format!("o-{i}"),
                &format!("conv-{}", i % 100),
                "POST-I",
                "s",
                "b",
                100,
            )
        })
        .collect();
    for chunk in old.chunks(500) {
        app.store.write_batch(chunk).await.unwrap();
    }
    let url = app.settings.database.url.expose_secret().to_owned();
    let run = move || {
        let mut child = Command::new(crate::cli::BIN)
            .args(["prune", "--older-than", "30d", "--kind", "messages"])
            .env_clear()
            .env("KENAR_HOOK__DATABASE__URL", &url)
            .env("KENAR_HOOK__RETENTION__BATCH_SIZE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let rest: Vec<String> = lines.map(Result::unwrap).collect();
        let status = child.wait().unwrap();
        (first, rest, status.code())
    };
    let (first, rest, code) = tokio::task::spawn_blocking(run).await.unwrap();
    assert_eq!(code, Some(130), "{first} {rest:?}");
    let last: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(last["done"], false, "{last}");
    let removed = last["removed"]["messages"].as_u64().unwrap();
    assert_eq!(
        rest.len() as u64,
        removed,
        "one line per batch of one, then the summary"
    );
    assert!(removed < 3000, "stopped early: {removed}");
    let (_, messages, _) = store_counts(&app.store).await;
    assert_eq!(messages as u64, 3000 - removed, "whole batches only");
    let conversations = app
        .store
        .list_conversations(&kenar_hook::store::query::ConversationQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let counted: i64 = conversations.iter().map(|c| c.message_count).sum();
    assert_eq!(counted, messages, "counts agree with the messages left");

    let out = cli_for(&app)
        .run(&["prune", "--older-than", "30d", "--json"])
        .await;
    out.assert_code(0);
    let summary: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["removed"]["messages"].as_u64().unwrap(),
        3000 - removed,
        "{out:?}"
    );
    assert_eq!(store_counts(&app.store).await, (0, 0, 0));
}

async fn store_counts(store: &Store) -> (i64, i64, i64) {
    store.counts().await.unwrap()
}

fn cli_for(app: &TestApp) -> Cli {
    use secrecy::ExposeSecret;
    Cli::new("http://127.0.0.1:9").env(
        "KENAR_HOOK__DATABASE__URL",
        app.settings.database.url.expose_secret(),
    )
}

async fn prune_dry_run_counts_and_changes_nothing(backend: Backend) {
    let app = seeded(backend).await;
    let cli = cli_for(&app);
    let out = cli
        .run(&["prune", "--older-than", "30d", "--dry-run", "--json"])
        .await;
    out.assert_code(0);
    let json = out.json();
    assert_eq!(
        json["would_remove"],
        json!({"messages": 3, "events": 1, "clicks": 1, "rejected": 1}),
        "{json}"
    );
    assert_eq!(message_ids(&app.store).await.len(), 6);
    assert_eq!(rejected_bodies(&app.store).await.len(), 2);

    let out = cli
        .run(&["prune", "--older-than", "30d", "--kind", "clicks"])
        .await;
    out.assert_code(0);
    // Not a terminal: one JSON line per batch, then the summary.
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "clicks", "{out:?}");
    assert_eq!(
        lines.last().unwrap()["removed"],
        json!({"clicks": 1}),
        "{out:?}"
    );
    assert_eq!(click_ids(&app.store).await, ["k2"]);
    assert_eq!(message_ids(&app.store).await.len(), 6);

    let out = cli.run(&["prune", "--older-than", "soon"]).await;
    out.assert_code(2);
    assert!(out.stderr.contains("90d"), "{out:?}");
}

async fn erase_prints_its_counts_and_refuses_a_vague_identity(backend: Backend) {
    let app = seeded(backend).await;
    let cli = cli_for(&app);
    let out = cli
        .run(&["erase", "--post-token", "POST-B", "--dry-run", "--json"])
        .await;
    out.assert_code(0);
    assert_eq!(out.json()["messages"], 1, "{out:?}");
    assert_eq!(message_ids(&app.store).await.len(), 6);

    let out = cli.run(&["erase", "--post-token", "POST-B"]).await;
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("erased: 1 messages, 1 conversations, 1 events, 1 clicks"),
        "{out:?}"
    );
    assert_eq!(message_ids(&app.store).await.len(), 5);

    cli.run(&["erase", "--user-id", "ab"]).await.assert_code(2);
    cli.run(&["erase"]).await.assert_code(2);
    cli.run(&["erase", "--user-id", "buyer-1", "--post-token", "POST-A"])
        .await
        .assert_code(2);
    assert_eq!(message_ids(&app.store).await.len(), 5);
}

async fn an_export_is_the_read_apis_items(backend: Backend) {
    const TOKEN: &str = "lifecycle-api-token-0123456789abcdef";
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![secrecy::SecretString::from(TOKEN)];
    })
    .await;
    app.store.write_batch(&records()).await.unwrap();
    let cli = cli_for(&app);
    let out = cli.run(&["export", "--user-id", "buyer-1"]).await;
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("exported 3 messages, 0 events, 2 clicks"),
        "{out:?}"
    );
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);

    let get = |path: String| {
        let request = app.client.get(app.url(&path)).bearer_auth(TOKEN);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let mut expected = Vec::new();
    for conversation in ["c-old", "c-new"] {
        let page = get(format!("/api/v1/conversations/{conversation}/messages")).await;
        expected.extend(page["items"].as_array().unwrap().iter().cloned());
    }
    let clicks = get("/api/v1/clicks".to_owned()).await;
    expected.extend(
        clicks["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["user_id"] == "buyer-1")
            .cloned(),
    );
    assert_eq!(lines, expected);

    // A file: created new, never overwritten.
    let file = tempfile::tempdir().unwrap();
    let path = file.path().join("export.jsonl");
    let path = path.to_str().unwrap();
    cli.run(&["export", "--conversation-id", "c-mixed", "--output", path])
        .await
        .assert_code(0);
    assert_eq!(std::fs::read_to_string(path).unwrap().lines().count(), 3);
    cli.run(&["export", "--conversation-id", "c-mixed", "--output", path])
        .await
        .assert_code(2);
    assert_eq!(
        std::fs::read_to_string(path).unwrap().lines().count(),
        3,
        "left as it was"
    );
}

on_both_backends!(
    retention_removes_what_is_older_than_its_cutoff_and_nothing_newer,
    a_record_an_endpoint_still_waits_for_is_kept_unless_forced,
    an_interrupted_prune_leaves_whole_batches_and_a_rerun_finishes,
    the_service_prunes_expired_records_soon_after_start,
    pruning_while_conversations_grow_keeps_their_counts_right,
    erasing_a_user_removes_their_records_and_their_forwarding_work,
    erasing_a_conversation_or_a_post_touches_nothing_else,
    a_revocation_erases_the_users_records_when_asked_to,
    an_erased_record_waiting_for_its_endpoint_is_never_sent,
    prune_dry_run_counts_and_changes_nothing,
    prune_stopped_by_ctrl_c_ends_after_a_whole_batch_and_a_rerun_finishes,
    erase_prints_its_counts_and_refuses_a_vague_identity,
    an_export_is_the_read_apis_items,
);
