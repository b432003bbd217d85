//! `NEW_MESSAGE` and `NEW_CHATBOT_MESSAGE`: every fixture, field by field, and a message
//! type this version does not know.

use kenar_hook::store::MessageSource;
use serde_json::{Value, json};

use crate::helpers::*;

const POST_CONVERSATION: &str = "3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58";
const BOT_CONVERSATION: &str = "b6e41d2a-93c7-4f05-8a1e-7c2d9f3b5a60";

struct Expected {
    fixture: &'static str,
    id: &'static str,
    message_type: &'static str,
    text: Option<&'static str>,
    side: Option<&'static str>,
    sender_type: Option<&'static str>,
    sent_at_us: i64,
    data: Option<Value>,
    metadata: Option<Value>,
}

fn garage() -> Option<Value> {
    Some(json!({"tenant": "garage-42", "subscription": "post-AZx7Kp2Q"}))
}

fn new_message_fixtures() -> Vec<Expected> {
    vec![
        Expected {
            fixture: "event_new_message_text.json",
            id: "f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f",
            message_type: "TEXT",
            text: Some("سلام، قیمت نهایی چنده؟ امکان معاوضه هم هست؟"),
            side: Some("BUYER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_247_515_000,
            data: None,
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_image.json",
            id: "2026edf0-fcbf-11ef-9b3c-7a8b9c0d1e2f",
            message_type: "IMAGE",
            text: None,
            side: Some("BUYER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_328_015_000,
            data: Some(
                json!({"link": "https://s100.divarcdn.com/static/chat/photo/9f3e1a7c2b4d.jpg",
                "size_bytes": 348211, "height_px": 1280, "width_px": 960}),
            ),
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_file.json",
            id: "4b6ccf70-fcbf-11ef-bc4d-4e5f6a7b8c9d",
            message_type: "FILE",
            text: None,
            side: Some("SELLER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_400_615_000,
            data: Some(
                json!({"link": "https://s100.divarcdn.com/static/chat/file/4c2d8e1f.pdf",
                "name": "برگ-سبز-خودرو.pdf", "size_bytes": 1048576}),
            ),
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_voice.json",
            id: "745056f0-fcbf-11ef-bc4d-4e5f6a7b8c9d",
            message_type: "VOICE",
            text: None,
            side: Some("BUYER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_469_215_000,
            data: Some(
                json!({"link": "https://s100.divarcdn.com/static/chat/voice/a81b3c5d.m4a",
                "size_bytes": 182044}),
            ),
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_location.json",
            id: "944aae10-fcbf-11ef-aa7d-5e4f1c9a2b3d",
            message_type: "LOCATION",
            text: None,
            side: Some("SELLER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_522_865_000,
            data: Some(json!({"latitude": 35.7219, "longitude": 51.3347})),
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_video.json",
            id: "b61669d0-fcbf-11ef-aa7d-5e4f1c9a2b3d",
            message_type: "VIDEO",
            text: None,
            side: Some("BUYER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_579_565_000,
            data: Some(
                json!({"link": "https://s100.divarcdn.com/static/chat/video/5e7f9a1b.mp4",
                "thumbnail_link": "https://s100.divarcdn.com/static/chat/video/5e7f9a1b-thumb.jpg",
                "size_bytes": 20971520}),
            ),
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_contact.json",
            id: "eade1230-fcbf-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "CONTACT",
            text: None,
            side: Some("SELLER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_668_115_000,
            data: Some(json!({"name": "رضا محمدی", "phone": "+989121234567"})),
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_contact_without_name.json",
            id: "f1203e70-fcbf-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "CONTACT",
            text: None,
            side: Some("BUYER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_678_615_000,
            data: Some(json!({"phone": "+989351112233"})),
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_bot_sender.json",
            id: "f780ef30-fcbf-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "TEXT",
            text: Some("نوبت کارشناسی شما ثبت شد. برای پیگیری از دکمه‌های زیر پیام استفاده کنید."),
            side: Some("SELLER"),
            sender_type: Some("BOT"),
            sent_at_us: 1_741_508_689_315_000,
            data: None,
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_meta_data_variant.json",
            id: "fe4c6fb0-fcbf-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "TEXT",
            text: Some("قیمت قطعی است، معاوضه نداریم."),
            side: Some("SELLER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_700_715_000,
            data: None,
            metadata: Some(json!({"your_key": "your_value"})),
        },
        Expected {
            fixture: "event_new_message_sender_type_only_variant.json",
            id: "05273270-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "TEXT",
            text: Some("سلام، بله هنوز موجوده."),
            side: Some("SELLER"),
            sender_type: None,
            sent_at_us: 1_741_508_712_215_000,
            data: None,
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_user_sender_type_variant.json",
            id: "0b3b9800-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "TEXT",
            text: Some("ممنون، فردا تماس می‌گیرم."),
            side: Some("BUYER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_722_415_000,
            data: None,
            metadata: garage(),
        },
        Expected {
            fixture: "event_new_message_without_metadata.json",
            id: "12165ac0-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "TEXT",
            text: Some("آدرس دقیق کجاست؟"),
            side: Some("BUYER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_733_915_000,
            data: None,
            metadata: None,
        },
        Expected {
            fixture: "event_new_message_protojson_variant.json",
            id: "18b41470-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "IMAGE",
            text: None,
            side: Some("BUYER"),
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_745_015_000,
            data: Some(
                json!({"link": "https://s100.divarcdn.com/static/chat/photo/0b1c2d3e4f5a.jpg",
                "size_bytes": 512044, "height_px": 1600, "width_px": 1200}),
            ),
            metadata: garage(),
        },
    ]
}

fn chatbot_fixtures() -> Vec<Expected> {
    let text = |fixture, id, text, sent_at_us| Expected {
        fixture,
        id,
        message_type: "TEXT",
        text: Some(text),
        side: None,
        sender_type: Some("HUMAN"),
        sent_at_us,
        data: None,
        metadata: None,
    };
    vec![
        text(
            "event_new_chatbot_message_text.json",
            "2611dd00-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            "سلام، چطور می‌تونم وقت کارشناسی بگیرم؟",
            1_741_508_767_440_000,
        ),
        text(
            "event_new_chatbot_message_start_my_post.json",
            "2c8d41b0-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            "/start MY_POST AZx7Kp2Q",
            1_741_508_778_315_000,
        ),
        text(
            "event_new_chatbot_message_start_chat.json",
            "33680470-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            "/start CHAT 3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58",
            1_741_508_789_815_000,
        ),
        text(
            "event_new_chatbot_message_rfc3339_sent_at.json",
            "61e5df70-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            "قیمت روز پژو ۲۰۶ چنده؟",
            1_741_508_867_815_000,
        ),
        Expected {
            fixture: "event_new_chatbot_message_image.json",
            id: "68b15ff0-fcc0-11ef-8f1e-6c7d8e9fa0b1",
            message_type: "IMAGE",
            text: None,
            side: None,
            sender_type: Some("HUMAN"),
            sent_at_us: 1_741_508_879_215_000,
            data: Some(
                json!({"link": "https://s100.divarcdn.com/static/chat/photo/7a6b5c4d3e2f.jpg",
                "size_bytes": 220113, "height_px": 1080, "width_px": 1080}),
            ),
            metadata: None,
        },
    ]
}

async fn check_messages(
    app: &TestApp,
    expected: &[Expected],
    event_type: &str,
    conversation: (&str, &str, Option<&str>),
) {
    for e in expected {
        let raw = fixture(e.fixture);
        let response = app.post_webhook(raw.clone()).await;
        assert_eq!(response.status(), 200, "{}", e.fixture);
        let stored = app.store.message(e.id).await.unwrap().expect(e.fixture);
        let m = stored.message;
        assert_eq!(m.source, MessageSource::Events, "{}", e.fixture);
        assert_eq!(m.event_type, event_type, "{}", e.fixture);
        assert_eq!(m.conversation.id, conversation.0, "{}", e.fixture);
        assert_eq!(
            m.conversation.post_token.as_deref(),
            conversation.2,
            "{}",
            e.fixture
        );
        assert_eq!(m.message_type, e.message_type, "{}", e.fixture);
        assert_eq!(m.text.as_deref(), e.text, "{}", e.fixture);
        assert_eq!(m.sender_side.as_deref(), e.side, "{}", e.fixture);
        assert_eq!(m.sender_type.as_deref(), e.sender_type, "{}", e.fixture);
        assert_eq!(us(m.sent_at), e.sent_at_us, "{}", e.fixture);
        assert_eq!(m.data, e.data, "{}", e.fixture);
        assert_eq!(m.metadata, e.metadata, "{}", e.fixture);
        assert_eq!(m.raw_body, raw, "{}", e.fixture);
    }
    let c = app
        .store
        .conversation(conversation.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.kind, conversation.1);
    assert_eq!(c.source, MessageSource::Events);
    assert_eq!(c.post_token.as_deref(), conversation.2);
    assert_eq!(c.message_count, expected.len() as i64);
    let first = expected.iter().map(|e| e.sent_at_us).min().unwrap();
    let last = expected.iter().map(|e| e.sent_at_us).max().unwrap();
    assert_eq!(
        (us(c.first_message_at), us(c.last_message_at)),
        (first, last)
    );
}

async fn every_new_message_fixture_is_stored_field_by_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let expected = new_message_fixtures();
    check_messages(
        &app,
        &expected,
        "NEW_MESSAGE",
        (POST_CONVERSATION, "POST", Some("AZx7Kp2Q")),
    )
    .await;
    assert_eq!(app.counts().await, (1, expected.len() as i64, 0));
}

async fn every_chatbot_fixture_is_stored_field_by_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let expected = chatbot_fixtures();
    check_messages(
        &app,
        &expected,
        "NEW_CHATBOT_MESSAGE",
        (BOT_CONVERSATION, "BOT", None),
    )
    .await;
}

async fn new_message_type_is_stored_with_its_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({
        "type": "NEW_MESSAGE",
        "new_message": {
            "id": "sticker-1",
            "conversation": {"id": POST_CONVERSATION, "type": "POST", "post_token": "AZx7Kp2Q"},
            "sender": {"side": "BUYER", "type": "HUMAN"},
            "type": "STICKER",
            "sent_at": 1741508247515000_i64,
            "sticker_data": {"pack": "cars", "index": 3}
        }
    });
    assert_eq!(app.post_webhook(body.to_string()).await.status(), 200);
    let m = app
        .store
        .message("sticker-1")
        .await
        .unwrap()
        .unwrap()
        .message;
    assert_eq!(m.message_type, "STICKER");
    assert_eq!(m.data, Some(json!({"pack": "cars", "index": 3})));
}

on_both_backends!(
    every_new_message_fixture_is_stored_field_by_field,
    every_chatbot_fixture_is_stored_field_by_field,
    new_message_type_is_stored_with_its_data,
);
