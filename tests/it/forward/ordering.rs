//! A receiver that is down: nothing is lost, and each conversation's records arrive in the
//! order they were stored.

use std::time::Duration;

use super::*;

async fn a_receiver_down_then_up_gets_everything_in_order_per_conversation(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer(503, None);
    let app = spawn_app_with(backend, |s| {
        let mut e = endpoint("backend", &receiver.url);
        e.max_in_flight = 4;
        forwarding(s, vec![e]);
    })
    .await;
    post_messages(&app, "m", 60, 5).await;
    receiver.wait_requests(10, Duration::from_secs(10)).await;
    // Until every conversation's first record has been tried (and failed) at least twice,
    // nothing but those firsts may be.
    let firsts: std::collections::BTreeSet<String> = (0..5).map(|i| format!("m-{i}")).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let failed = receiver.all();
        assert!(failed.iter().all(|g| g.status == 503));
        let ids: Vec<String> = failed
            .iter()
            .map(|g| g.json()["id"].as_str().unwrap().to_owned())
            .collect();
        let tried: std::collections::BTreeSet<String> = ids.iter().cloned().collect();
        assert!(
            tried.is_subset(&firsts),
            "only the first of each conversation is tried: {tried:?}"
        );
        let twice = firsts
            .iter()
            .all(|f| ids.iter().filter(|id| *id == f).count() >= 2);
        if twice {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every first was tried twice: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    receiver.answer(200, None);
    let got = receiver.wait_delivered(60, Duration::from_secs(20)).await;
    wait_caught_up(&app).await;
    assert_eq!(receiver.delivered().len(), 60, "each record delivered once");
    let by_conversation = ids_by_conversation(&got);
    assert_eq!(by_conversation.len(), 5);
    for (conversation, ids) in by_conversation {
        let c: usize = conversation[1..].parse().unwrap();
        let expected: Vec<String> = (0..60)
            .filter(|i| i % 5 == c)
            .map(|i| format!("m-{i}"))
            .collect();
        assert_eq!(ids, expected, "order of {conversation}");
    }
}

on_both_backends!(a_receiver_down_then_up_gets_everything_in_order_per_conversation);
