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
    tokio::time::sleep(Duration::from_millis(500)).await;
    let failed = receiver.all();
    assert!(failed.iter().all(|g| g.status == 503));
    let tried: std::collections::BTreeSet<String> = failed
        .iter()
        .map(|g| g.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let firsts: std::collections::BTreeSet<String> = (0..5).map(|i| format!("m-{i}")).collect();
    assert_eq!(
        tried, firsts,
        "only the first of each conversation is tried"
    );

    receiver.answer(200, None);
    let got = receiver.wait_delivered(60, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
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
