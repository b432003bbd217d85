//! `webhook-id`: the database's installation id is part of it, so a database rebuilt from
//! empty, whose seqs start at 1 again, never repeats an id a receiver has seen; a restart
//! keeps it; `forward replay --id` takes it.

use std::time::Duration;

use super::*;

/// The parts of a `webhook-id`: kind, installation id, seq.
fn parts(id: &str) -> (String, String, i64) {
    let mut parts = id.splitn(3, '_');
    let (Some(kind), Some(installation), Some(seq)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("{id:?} is not <kind>_<installation>_<seq>");
    };
    assert!(
        installation.len() == 32
            && installation
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id:?}: the installation id is 32 hex digits"
    );
    (
        kind.to_owned(),
        installation.to_owned(),
        seq.parse().unwrap(),
    )
}

async fn two_fresh_databases_give_their_first_records_different_ids(backend: Backend) {
    let receiver = Receiver::start().await;
    let mut ids = Vec::new();
    for n in 1..=2 {
        let mut app = spawn_app_with(backend, |s| {
            forwarding(s, vec![endpoint("backend", &receiver.url)]);
        })
        .await;
        post_messages(&app, "m", 1, 1).await;
        let got = receiver.wait_delivered(n, Duration::from_secs(10)).await;
        assert_eq!(got[n - 1].json()["id"], "m-0", "the same record");
        ids.push(got[n - 1].header("webhook-id").to_owned());
        app.app.take().unwrap().stop().await.unwrap();
    }
    let (first, second) = (parts(&ids[0]), parts(&ids[1]));
    assert_eq!((&first.0, first.2), (&"message".to_owned(), 1));
    assert_eq!((&second.0, second.2), (&"message".to_owned(), 1));
    assert_ne!(
        ids[0], ids[1],
        "a receiver that saw the first keeps the second"
    );
}

async fn a_restart_keeps_the_ids_and_replay_takes_them(backend: Backend) {
    let receiver = Receiver::start().await;
    let mut app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    post_messages(&app, "before", 1, 1).await;
    let got = receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let first = got[0].header("webhook-id").to_owned();
    let (_, installation, seq) = parts(&first);
    assert_eq!(installation, app.store.installation().await.unwrap());
    wait_caught_up(&app).await;

    app.app.take().unwrap().stop().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let restarted = kenar_hook::app::start(app.settings.clone(), listener)
        .await
        .unwrap();
    app.addr = restarted.addr;
    app.app = Some(restarted);
    post_messages(&app, "after", 1, 1).await;
    let got = receiver.wait_delivered(2, Duration::from_secs(10)).await;
    assert_eq!(
        got[1].header("webhook-id"),
        format!("message_{installation}_{}", seq + 1),
        "the installation id outlives the process"
    );
    wait_caught_up(&app).await;

    // Replay by the id as sent, then by the short form of earlier versions: the same id
    // comes both times.
    for (n, id) in [(3, first.clone()), (4, format!("message_{seq}"))] {
        let replayed = kenar_hook::forward::manage::replay_ids(&app.store, "backend", &[id])
            .await
            .unwrap();
        assert_eq!(replayed, 1);
        let got = receiver.wait_delivered(n, Duration::from_secs(10)).await;
        assert_eq!(got[n - 1].header("webhook-id"), first);
        assert_eq!(got[n - 1].json()["id"], "before-0");
        verify(SECRET, &got[n - 1]).unwrap();
        wait_caught_up(&app).await;
    }

    let other = format!("message_{}_{seq}", "0".repeat(32));
    let error = kenar_hook::forward::manage::replay_ids(&app.store, "backend", &[other])
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("another installation"), "{error}");
}

on_both_backends!(
    two_fresh_databases_give_their_first_records_different_ids,
    a_restart_keeps_the_ids_and_replay_takes_them,
);
