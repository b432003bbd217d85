//! What a delivery looks like: the read API's item plus `kind`, signed so that a Standard
//! Webhooks library verifies it; filters; secret rotation.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::*;

const TOKEN: &str = "forward-test-api-token";

async fn a_stored_message_arrives_signed_as_the_api_item_with_its_kind(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    app.post_webhook(fixture("event_new_message_text.json"))
        .await
        .error_for_status()
        .unwrap();

    let got = receiver.wait_delivered(1, Duration::from_secs(10)).await;
    verify(SECRET, &got[0]).expect("the library verifies the signature");
    let mut body = got[0].json();
    assert_eq!(body["kind"], "message");
    let item: Value = app
        .client
        .get(app.url("/api/v1/messages/f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body.as_object_mut().unwrap().remove("kind");
    assert_eq!(body, item, "the body is the API's item");
    let seq = app.store.high_water_marks().await.unwrap().message;
    let installation = app.store.installation().await.unwrap();
    assert_eq!(
        got[0].header("webhook-id"),
        format!("message_{installation}_{seq}")
    );
    assert_eq!(got[0].header("content-type"), "application/json");
    let sent_at: i64 = got[0].header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);
}

async fn a_tampered_body_does_not_verify(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(backend, |s| {
        forwarding(s, vec![endpoint("backend", &receiver.url)]);
    })
    .await;
    app.post_webhook(fixture("event_new_message_text.json"))
        .await
        .error_for_status()
        .unwrap();
    let mut got = receiver.wait_delivered(1, Duration::from_secs(10)).await;
    verify(SECRET, &got[0]).unwrap();
    assert!(verify(NEW_SECRET, &got[0]).is_err(), "another secret fails");
    got[0].body.push(b' ');
    assert!(verify(SECRET, &got[0]).is_err(), "another body fails");
}

async fn filters_pick_kinds_posts_and_types(backend: Backend) {
    let receiver = Receiver::start().await;
    let events = Receiver::start().await;
    let app = spawn_app_with(backend, |s| {
        let mut images_of_b = endpoint("images-of-b", &receiver.url);
        images_of_b.post_tokens = vec!["POSTB".into()];
        images_of_b.types = vec!["image".into()];
        let mut only_events = endpoint("events", &events.url);
        only_events.include = vec!["events".into()];
        forwarding(s, vec![images_of_b, only_events]);
    })
    .await;
    for (id, post, kind) in [
        ("m1", "POSTA", "IMAGE"),
        ("m2", "POSTB", "TEXT"),
        ("m3", "POSTB", "IMAGE"),
    ] {
        let body = message(id, &format!("conv-{id}"), post, kind, 1_741_508_247_515_000);
        app.post_webhook(body).await.error_for_status().unwrap();
    }
    app.post_webhook(fixture("event_post_update_publish.json"))
        .await
        .error_for_status()
        .unwrap();
    let got = receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let got_events = events.wait_delivered(1, Duration::from_secs(10)).await;
    // Once forwarding has caught up, a wrongly forwarded record would have been sent.
    wait_caught_up(&app).await;
    let ids: Vec<Value> = receiver
        .all()
        .iter()
        .map(|g| g.json()["id"].clone())
        .collect();
    assert_eq!(ids, ["m3"]);
    assert_eq!(got[0].json()["type"], "IMAGE");
    assert_eq!(events.all().len(), 1);
    assert_eq!(got_events[0].json()["kind"], "event");
    assert_eq!(got_events[0].json()["type"], "POST_UPDATE");
    verify(SECRET, &got_events[0]).unwrap();
}

async fn during_a_rotation_both_secrets_verify(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(backend, |s| {
        let mut e = endpoint("backend", &receiver.url);
        e.secret = SecretString::from(NEW_SECRET);
        e.previous_secrets = vec![SecretString::from(SECRET)];
        forwarding(s, vec![e]);
    })
    .await;
    app.post_webhook(fixture("event_new_message_text.json"))
        .await
        .error_for_status()
        .unwrap();
    let got = receiver.wait_delivered(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    verify(NEW_SECRET, &got[0]).expect("a receiver on the new secret verifies");
    verify(SECRET, &got[0]).expect("a receiver still on the old secret verifies");
}

on_both_backends!(
    a_stored_message_arrives_signed_as_the_api_item_with_its_kind,
    a_tampered_body_does_not_verify,
    filters_pick_kinds_posts_and_types,
    during_a_rotation_both_secrets_verify,
);
