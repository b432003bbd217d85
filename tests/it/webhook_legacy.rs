//! The legacy CHAT_MESSAGE webhook (docs/divar-protocol.md §1.1): every fixture, field by field.

use kenar_hook::ingest::normalise::legacy_conversation_id;
use kenar_hook::store::MessageSource;
use serde_json::json;

use crate::helpers::*;

const SELLER: &str = "0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d";
const BUYER: &str = "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
const POST: &str = "AZx7Kp2Q";

struct Expected {
    fixture: &'static str,
    id: &'static str,
    text: &'static str,
    sender: (&'static str, &'static str),
    receiver: (&'static str, &'static str),
    sent_at_us: i64,
    sent_at_raw: &'static str,
}

const LEGACY: &[Expected] = &[
    Expected {
        fixture: "legacy_chat_message_text.json",
        id: "84c34430-fcbe-11ef-aa7d-5e4f1c9a2b3d",
        text: "سلام، وقت بخیر. این ماشین هنوز فروشی هست؟",
        sender: (BUYER, "BUYER"),
        receiver: (SELLER, "SELLER"),
        sent_at_us: 1_741_508_067_315_000,
        sent_at_raw: "1741508067315000",
    },
    Expected {
        fixture: "legacy_chat_message_text_from_supplier.json",
        id: "bda026b0-fcbe-11ef-aa7d-5e4f1c9a2b3d",
        text: "بله موجوده. فردا ساعت ۱۷ برای بازدید تشریف بیارید.",
        sender: (SELLER, "SELLER"),
        receiver: (BUYER, "BUYER"),
        sent_at_us: 1_741_508_162_715_000,
        sent_at_raw: "1741508162715000",
    },
    Expected {
        fixture: "legacy_chat_message_from_to_variant.json",
        id: "d938f870-fcbe-11ef-aa7d-5e4f1c9a2b3d",
        text: "آخرین قیمت چنده؟",
        sender: (BUYER, "BUYER"),
        receiver: (SELLER, "SELLER"),
        sent_at_us: 1_741_508_209_015_000,
        sent_at_raw: "1741508209015000",
    },
    Expected {
        fixture: "legacy_chat_message_string_timestamps.json",
        id: "df7b24b0-fcbe-11ef-aa7d-5e4f1c9a2b3d",
        text: "امکان معاوضه با پراید هم هست؟",
        sender: (BUYER, "BUYER"),
        receiver: (SELLER, "SELLER"),
        sent_at_us: 1_741_508_219_515_000,
        sent_at_raw: "1741508219515000",
    },
];

async fn every_legacy_fixture_is_stored_field_by_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation_id = legacy_conversation_id(POST, BUYER);
    // docs/storage.md: uuid5(NAMESPACE_URL, "kenar-hook:legacy-conversation:{post}:{buyer}").
    assert_eq!(conversation_id, "af198748-82bf-5e33-9353-ee8361a9a903");
    for e in LEGACY {
        let raw = fixture(e.fixture);
        let response = app.post_webhook(raw.clone()).await;
        assert_eq!(response.status(), 200, "{}", e.fixture);
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap(),
            json!({"outcome": "stored"})
        );

        let stored = app.store.message(e.id).await.unwrap().expect(e.fixture);
        let m = stored.message;
        assert_eq!(m.source, MessageSource::Legacy);
        assert_eq!(m.event_type, "CHAT_MESSAGE");
        assert_eq!(m.conversation.id, conversation_id, "{}", e.fixture);
        assert_eq!(m.conversation.post_token.as_deref(), Some(POST));
        assert_eq!(m.message_type, "TEXT");
        assert_eq!(m.text.as_deref(), Some(e.text));
        assert_eq!(m.sender_id.as_deref(), Some(e.sender.0));
        assert_eq!(m.sender_side.as_deref(), Some(e.sender.1));
        assert_eq!(m.sender_type, None);
        assert_eq!(m.receiver_id.as_deref(), Some(e.receiver.0));
        assert_eq!(m.receiver_side.as_deref(), Some(e.receiver.1));
        assert_eq!(us(m.sent_at), e.sent_at_us, "{}", e.fixture);
        assert_eq!(m.sent_at_raw.as_deref(), Some(e.sent_at_raw));
        assert!(m.received_at > m.sent_at);
        assert_eq!(m.data, None);
        assert_eq!(
            m.metadata,
            Some(
                json!({"category": "light", "post_token": POST, "title": "پژو ۲۰۶ تیپ ۲ مدل ۱۳۹۸"})
            )
        );
        assert_eq!(m.raw_body, raw, "raw body kept byte for byte");
    }

    let c = app
        .store
        .conversation(&conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.kind, "POST");
    assert_eq!(c.source, MessageSource::Legacy);
    assert_eq!(c.post_token.as_deref(), Some(POST));
    assert_eq!(c.supply_user_id.as_deref(), Some(SELLER));
    assert_eq!(c.demand_user_id.as_deref(), Some(BUYER));
    assert_eq!(c.message_count, 4);
    assert_eq!(us(c.first_message_at), 1_741_508_067_315_000);
    assert_eq!(us(c.last_message_at), 1_741_508_219_515_000);
    assert_eq!(app.counts().await, (1, 4, 0));
}

async fn another_buyer_of_the_same_post_gets_another_conversation(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("legacy_chat_message_text.json")).unwrap();
    assert_eq!(app.post_webhook(body.to_string()).await.status(), 200);
    body["payload"]["id"] = json!("second-buyer-message");
    body["payload"]["sender"]["id"] = json!("another-buyer");
    assert_eq!(app.post_webhook(body.to_string()).await.status(), 200);

    let first = app
        .store
        .conversation(&legacy_conversation_id(POST, BUYER))
        .await
        .unwrap();
    let second = app
        .store
        .conversation(&legacy_conversation_id(POST, "another-buyer"))
        .await
        .unwrap();
    assert_eq!(first.unwrap().message_count, 1);
    assert_eq!(
        second.unwrap().demand_user_id.as_deref(),
        Some("another-buyer")
    );
}

async fn legacy_message_without_a_post_token_is_422_and_not_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("legacy_chat_message_text.json")).unwrap();
    body["payload"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("post_token");
    let (status, code, message) = error_of(app.post_webhook(body.to_string()).await).await;
    assert_eq!((status, code.as_str()), (422, "unprocessable_entity"));
    assert!(message.contains("payload.metadata.post_token"), "{message}");
    assert_eq!(app.counts().await, (0, 0, 0));
}

async fn legacy_message_with_an_rfc3339_sent_at_is_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("legacy_chat_message_text.json")).unwrap();
    body["payload"]["sent_at"] = json!("2025-03-09T08:14:27.315Z");
    body["timestamp"] = json!("");
    assert_eq!(app.post_webhook(body.to_string()).await.status(), 200);
    let m = app
        .store
        .message("84c34430-fcbe-11ef-aa7d-5e4f1c9a2b3d")
        .await
        .unwrap()
        .unwrap()
        .message;
    assert_eq!(us(m.sent_at), 1_741_508_067_315_000);
}

on_both_backends!(
    every_legacy_fixture_is_stored_field_by_field,
    another_buyer_of_the_same_post_gets_another_conversation,
    legacy_message_without_a_post_token_is_422_and_not_stored,
    legacy_message_with_an_rfc3339_sent_at_is_read,
);

async fn a_registration_key_is_accepted_only_for_its_post(backend: Backend) {
    use kenar_hook::store::Registration;
    // Waiting for the registration below fails a few times; those must not reach the limit.
    let app = spawn_app_with(backend, |s| s.api.auth_failures_per_minute = 1000).await;
    let key = "lk_7Yq2vN9sLm4xR8tBw3ZcQ6pH";
    app.store
        .insert_registration(&Registration {
            id: "r1".into(),
            post_token: POST.into(),
            endpoint: "https://hooks.example-app.ir/kenar".into(),
            key_digest: hex::encode(kenar_hook::auth::digest(key.as_bytes())),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let raw = fixture("legacy_chat_message_text.json");
    // The running service reads the registrations every couple of seconds.
    let mut own_post = app.post_webhook_with_key(Some(key), raw.clone()).await;
    for _ in 0..50 {
        if own_post.status() != 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        own_post = app.post_webhook_with_key(Some(key), raw.clone()).await;
    }
    assert_eq!(own_post.status(), 200);

    let mut other: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    other["payload"]["id"] = json!("other-post-message");
    other["payload"]["metadata"]["post_token"] = json!("AZy2Lm8T");
    let other_post = app
        .post_webhook_with_key(Some(key), other.to_string())
        .await;
    assert_eq!(error_of(other_post).await.0, 401);

    // Good only for legacy messages: an event with it is refused too.
    let event = app
        .post_webhook_with_key(Some(key), fixture("event_new_message_text.json"))
        .await;
    assert_eq!(error_of(event).await.0, 401);
    // An unauthenticated caller learns nothing from a bad body.
    let junk = app.post_webhook_with_key(Some(key), "not json").await;
    assert_eq!(error_of(junk).await.0, 401);
    // The app-level keys keep working for every post.
    let app_level = app.post_webhook(other.to_string()).await;
    assert_eq!(app_level.status(), 200);
    assert_eq!(app.counts().await.1, 2);
}

on_both_backends!(a_registration_key_is_accepted_only_for_its_post);
