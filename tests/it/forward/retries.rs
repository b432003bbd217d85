//! Failed deliveries: growing waits, `Retry-After`, 410, dead letters and replay.

use std::time::Duration;

use kenar_hook::forward::manage;

use super::*;

async fn a_failed_delivery_is_retried_with_growing_waits_and_one_id(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script(&[(500, None), (502, None), (500, None)]);
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    post_messages(&app, "m", 1, 1).await;
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let all = receiver.all();
    assert_eq!(all.len(), 4, "three failures, then the delivery");
    let ids: Vec<&str> = all.iter().map(|g| g.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id: {ids:?}"
    );
    for g in &all {
        verify(SECRET, g).unwrap();
    }
    let gaps: Vec<Duration> = all.windows(2).map(|w| w[1].at - w[0].at).collect();
    // 50 ms, 150 ms, then 450 ms capped at 400 ms; each ±20%. A retry never comes before its
    // time, so these floors show the growing schedule; it may come later on a busy machine
    // (the forwarder writes its answers between sends), so the gaps themselves need not grow.
    assert!(gaps[0] >= Duration::from_millis(38), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(115), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(315), "{gaps:?}");

    // Answers are written in batches: wait for the last one.
    wait_attempts_stored(&app, 4).await;
    let attempts = app
        .store
        .forward_attempts(&kenar_hook::store::forward::AttemptQuery {
            endpoint: Some("backend".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let outcomes: Vec<(&str, Option<i64>, i64)> = attempts
        .iter()
        .map(|a| (a.outcome.as_str(), a.status_code, a.attempt))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("delivered", Some(200), 4),
            ("failed", Some(500), 3),
            ("failed", Some(502), 2),
            ("failed", Some(500), 1)
        ]
    );
    assert_eq!(attempts[1].response.as_deref(), Some("ok"));
}

async fn retry_after_on_429_and_503_is_honoured(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script(&[(429, Some("1")), (503, Some("1"))]);
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    post_messages(&app, "m", 1, 1).await;
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let all = receiver.all();
    assert_eq!(all.len(), 3);
    for w in all.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(gap >= Duration::from_millis(950), "waited {gap:?}, not 1 s");
    }
}

async fn gone_disables_the_endpoint_until_it_is_resumed(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer(410, None);
    let app = spawn_app_with(backend, |s| {
        let mut e = endpoint("backend", &receiver.url);
        e.max_in_flight = 1;
        forwarding(s, vec![e]);
    })
    .await;
    post_messages(&app, "m", 3, 3).await;
    receiver.wait_requests(1, Duration::from_secs(10)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let state = loop {
        let state = app.store.forward_state("backend").await.unwrap().unwrap();
        if state.disabled_reason.is_some() {
            break state;
        }
        assert!(std::time::Instant::now() < deadline, "never disabled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(state.disabled_reason.unwrap().contains("410"));
    // The other two records are due at once: a disabled endpoint must not take them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.all().len(), 1, "nothing is sent after a 410");

    receiver.answer(200, None);
    assert!(
        manage::set_paused(&app.store, "backend", false)
            .await
            .unwrap()
    );
    let got = receiver.wait_delivered(3, Duration::from_secs(10)).await;
    let mut ids: Vec<String> = got
        .iter()
        .map(|g| g.json()["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["m-0", "m-1", "m-2"]);
}

async fn after_max_attempts_a_record_is_dead_its_conversation_goes_on_and_replay_sends_it(
    backend: Backend,
) {
    let receiver = Receiver::start().await;
    receiver.script(&[(500, None), (500, None), (500, None)]);
    let app = spawn_app_with(backend, |s| {
        let mut e = endpoint("backend", &receiver.url);
        e.max_attempts = 3;
        forwarding(s, vec![e]);
    })
    .await;
    post_messages(&app, "m", 2, 1).await;
    let got = receiver.wait_delivered(1, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].json()["id"],
        "m-1",
        "the next of the conversation goes on"
    );
    let all = receiver.all();
    assert_eq!(all.len(), 4);
    assert!(all[..3].iter().all(|g| g.json()["id"] == "m-0"));

    let dead = wait_dead(&app.store, 1).await;
    assert_eq!(dead[0].1.pending.attempts, 3);
    assert_eq!(dead[0].1.last_error, "answered 500 Internal Server Error");

    let replayed = manage::replay_dead(&app.store, "backend").await.unwrap();
    assert_eq!(replayed, 1);
    let got = receiver.wait_delivered(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].json()["id"], "m-0");
    assert_eq!(got[1].header("webhook-id"), all[0].header("webhook-id"));
    assert!(
        app.store
            .forward_dead(Some("backend"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn wait_dead(
    store: &kenar_hook::store::Store,
    n: usize,
) -> Vec<(String, kenar_hook::store::forward::Dead)> {
    for _ in 0..200 {
        let dead = store.forward_dead(Some("backend"), None, 10).await.unwrap();
        if dead.len() >= n {
            return dead;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no dead letter recorded");
}

on_both_backends!(
    a_failed_delivery_is_retried_with_growing_waits_and_one_id,
    retry_after_on_429_and_503_is_honoured,
    gone_disables_the_endpoint_until_it_is_resumed,
    after_max_attempts_a_record_is_dead_its_conversation_goes_on_and_replay_sends_it,
);

async fn a_redirect_is_a_failure_and_is_not_followed(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.script(&[(307, None)]);
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    post_messages(&app, "m", 1, 1).await;
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let attempts = wait_attempts_stored(&app, 2).await;
    assert_eq!(attempts.len(), 2);
    let redirect = &attempts[1];
    assert_eq!(
        (redirect.outcome.as_str(), redirect.status_code),
        ("failed", Some(307))
    );
    assert!(
        redirect
            .error
            .as_deref()
            .unwrap()
            .contains("redirects are not followed"),
        "{redirect:?}"
    );
    assert_eq!(attempts[0].outcome.as_str(), "delivered");
}

async fn attempts_older_than_the_retention_are_pruned(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    post_messages(&app, "m", 1, 1).await;
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    post_messages(&app, "n", 1, 1).await;
    receiver.wait_delivered(2, Duration::from_secs(10)).await;
    wait_attempts_stored(&app, 2).await;
    let all = kenar_hook::store::forward::AttemptQuery {
        limit: 10,
        ..Default::default()
    };
    let before = app.store.forward_attempts(&all).await.unwrap();
    assert_eq!(before.len(), 2);
    let between = before[1].at + chrono::Duration::microseconds(1);
    assert!(between < before[0].at);
    assert_eq!(app.store.forward_prune(between).await.unwrap(), 1);
    let after = app.store.forward_attempts(&all).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id, "the newer one stays");
}

on_both_backends!(
    a_redirect_is_a_failure_and_is_not_followed,
    attempts_older_than_the_retention_are_pruned,
);

async fn a_failing_endpoint_is_probed_and_its_return_sends_the_backlog_at_once(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer(503, None);
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
        // Each record's own next try would come 24 to 36 s after its failure.
        s.forward.retry_base_delay_ms = 30_000;
        s.forward.retry_max_delay_ms = 600_000;
    })
    .await;
    post_messages(&app, "m", 12, 4).await;
    receiver.wait_requests(4, Duration::from_secs(10)).await;
    // Failing: one probe every 2 s, whatever is waiting.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let down = receiver.all();
    assert!(down.iter().all(|g| g.status == 503));
    assert!(
        (5..=7).contains(&down.len()),
        "the four firsts, then a probe every 2 s: {} requests",
        down.len()
    );
    let firsts = ["m-0", "m-1", "m-2", "m-3"];
    assert!(
        down.iter()
            .all(|g| firsts.contains(&g.json()["id"].as_str().unwrap())),
        "only each conversation's first is tried"
    );

    receiver.answer(200, None);
    let back = std::time::Instant::now();
    let got = receiver.wait_delivered(12, Duration::from_secs(20)).await;
    let took = back.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the backlog took {took:?} after the endpoint answered again"
    );
    wait_caught_up(&app).await;
    assert_eq!(receiver.delivered().len(), 12, "each record once");
    for (conversation, ids) in ids_by_conversation(&got) {
        let c: usize = conversation[1..].parse().unwrap();
        let expected: Vec<String> = (0..12)
            .filter(|i| i % 4 == c)
            .map(|i| format!("m-{i}"))
            .collect();
        assert_eq!(ids, expected, "order of {conversation}");
    }

    // The early probes that failed were not counted: no record's count reached 3.
    let refused = receiver.all().iter().filter(|g| g.status == 503).count();
    let attempts = wait_attempts_stored(&app, refused + 12).await;
    let probes = attempts
        .iter()
        .filter(|a| a.outcome.as_str() == "probe")
        .count();
    let failed = attempts
        .iter()
        .filter(|a| a.outcome.as_str() == "failed")
        .count();
    assert_eq!(probes + failed, refused, "{attempts:?}");
    assert!(probes >= 1, "{attempts:?}");
    assert!(
        attempts
            .iter()
            .filter(|a| a.outcome.as_str() != "delivered")
            .all(|a| a.attempt <= 2),
        "{attempts:?}"
    );
}

on_both_backends!(a_failing_endpoint_is_probed_and_its_return_sends_the_backlog_at_once);
