//! Events other than messages: every fixture, redeliveries without an id, unknown types.

use serde_json::{Value, json};

use crate::helpers::*;

/// fixture, type, subtype, subject, post token, payload key, metadata
type EventRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<Value>,
);

async fn every_other_event_fixture_is_stored_field_by_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let revoked_user = "pR3xN8vK2mQ7sT1wY5zA9bC4dE6fG0hJ2kL8nP3qR5s=";
    let payment = "550e8400-e29b-41d4-a716-446655440000";
    #[rustfmt::skip]
    let expected: &[EventRow] = &[
        ("event_user_access_revocation.json", "USER_ACCESS_REVOCATION", None, revoked_user, None,
            "user_access_revocation", None),
        ("event_post_update_publish.json", "POST_UPDATE", Some("PUBLISH"), "AZx7Kp2Q", Some("AZx7Kp2Q"),
            "post_update", Some(json!({"tenant": "garage-42", "subscription": "user-posts"}))),
        ("event_post_update_ongoing.json", "POST_UPDATE", Some("ONGOING"), "AZy2Lm8T", Some("AZy2Lm8T"),
            "post_update", None),
        ("event_post_update_retire.json", "POST_UPDATE", Some("RETIRE"), "AZx7Kp2Q", Some("AZx7Kp2Q"),
            "post_update", None),
        ("event_post_update_archive.json", "POST_UPDATE", Some("ARCHIVE"), "AZy2Lm8T", Some("AZy2Lm8T"),
            "post_update", None),
        ("event_payment_transaction.json", "PAYMENT_TRANSACTION", Some("TRANSACTION_STATE_COMPLETED"),
            payment, None, "payment_transaction", Some(json!({"key": "value"}))),
        ("event_payment_transaction_transaction_key.json", "PAYMENT_TRANSACTION",
            Some("TRANSACTION_STATE_PENDING"), payment, None, "transaction", None),
    ];
    for (name, ..) in expected {
        let response = app.post_webhook(fixture(name)).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let events = app.store.all_events().await.unwrap();
    assert_eq!(events.len(), expected.len());
    for (stored, (name, event_type, subtype, subject, post, key, metadata)) in
        events.iter().zip(expected)
    {
        let raw = fixture(name);
        let body: Value = serde_json::from_slice(&raw).unwrap();
        let e = &stored.event;
        assert_eq!(e.event_type, *event_type, "{name}");
        assert_eq!(e.subtype.as_deref(), *subtype, "{name}");
        assert_eq!(e.subject_id.as_deref(), Some(*subject), "{name}");
        assert_eq!(e.post_token.as_deref(), *post, "{name}");
        assert_eq!(e.payload, body[*key], "{name}");
        assert_eq!(&e.metadata, metadata, "{name}");
        assert_eq!(e.raw_body, raw, "{name}");
        assert_eq!(e.dedupe_key.len(), 64, "{name}");
    }
    assert_eq!(app.counts().await, (0, 0, expected.len() as i64));
}

async fn redelivered_event_without_an_id_is_stored_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let raw = fixture("event_post_update_retire.json");
    // The same event with other white space and key order is the same event.
    let reordered: Value = serde_json::from_slice(&raw).unwrap();
    let reordered = serde_json::to_vec_pretty(&reordered).unwrap();
    let first = app.post_webhook(raw).await;
    let second = app.post_webhook(reordered).await;
    assert_eq!(first.json::<Value>().await.unwrap()["outcome"], "stored");
    assert_eq!(second.status(), 200);
    assert_eq!(
        second.json::<Value>().await.unwrap()["outcome"],
        "duplicate"
    );
    assert_eq!(app.counts().await, (0, 0, 1));
}

async fn unknown_event_type_is_stored_raw_and_answered_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let raw = br#"{"type":"NEW_FEATURE_2027","new_feature":{"x":1},"metadata":{"m":"v"}}"#.to_vec();
    let response = app.post_webhook(raw.clone()).await;
    assert_eq!(response.status(), 200);
    let events = app.store.all_events().await.unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0].event;
    assert_eq!(e.event_type, "NEW_FEATURE_2027");
    assert_eq!(e.raw_body, raw);
    assert_eq!(e.payload, serde_json::from_slice::<Value>(&raw).unwrap());
    assert_eq!(e.metadata, Some(json!({"m": "v"})));

    // Valid JSON that is not even an object is kept too.
    assert_eq!(app.post_webhook("[1,2,3]").await.status(), 200);
    let events = app.store.all_events().await.unwrap();
    assert_eq!(events[1].event.event_type, "UNKNOWN");
}

on_both_backends!(
    every_other_event_fixture_is_stored_field_by_field,
    redelivered_event_without_an_id_is_stored_once,
    unknown_event_type_is_stored_raw_and_answered_200,
);
