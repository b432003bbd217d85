//! Each operation sends the exact method, path, headers and body of its fixtures.

use super::*;

#[tokio::test]
async fn legacy_send_matches_the_fixture_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/open-platform/chat/conversation"))
        .and(header("x-api-key", API_KEY))
        .and(header("x-access-token", TOKEN))
        .and(header("content-type", "application/json"))
        .and(body_json(json_fixture("legacy_send_message_link.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json_fixture("legacy_send_message_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let button = |role: &str, caption: &str| {
        LegacyButton::Link(LegacyLinkData {
            icon_name: Some("CAR_INSPECTED".into()),
            caption: caption.into(),
            extra_data: data(&[("order_id", "ord_58213"), ("role", role)]),
        })
    };
    let message = LegacySendMessage {
        user_id: USER.into(),
        post_token: POST.into(),
        peer_id: PEER.into(),
        message: "درخواست کارشناسی خودرو برای این آگهی ثبت شد. برای پیگیری روی دکمه زیر بزنید."
            .into(),
        sender_btn: Some(button("seller", "پیگیری درخواست")),
        receiver_btn: Some(button("buyer", "مشاهده گزارش کارشناسی")),
    };
    let answer = client(&server)
        .send_legacy_message(&token(), &message)
        .await
        .unwrap();
    assert_eq!(
        (answer.status, answer.message.as_deref()),
        (Some(200), Some("success"))
    );
}

#[tokio::test]
async fn legacy_send_round_trips_the_direct_link_and_text_only_fixtures() {
    for name in [
        "legacy_send_message_direct_link.json",
        "legacy_send_message_text_only.json",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_json(json_fixture(name)))
            .respond_with(ResponseTemplate::new(200).set_body_string("not json"))
            .expect(1)
            .mount(&server)
            .await;
        let message: LegacySendMessage = parse(name);
        let answer = client(&server)
            .send_legacy_message(&token(), &message)
            .await;
        assert_eq!(answer.unwrap(), SendMessageResponse::default(), "{name}");
    }
}

#[tokio::test]
async fn send_message_v2_matches_the_fixture_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(v2_path()))
        .and(header("x-api-key", API_KEY))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json_fixture("send_message_v2_request.json")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json_fixture("send_message_v2_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let order = |k: &str, v: &str| data(&[("order_id", "ord_58213"), (k, v)]);
    let message = SendMessage {
        message: Some(
            "درخواست کارشناسی شما ثبت شد. کارشناس ما فردا ساعت ۱۰ صبح در محل حاضر می‌شود.".into(),
        ),
        sender_buttons: Some(ButtonGrid::new([vec![
            ChatButton::new(
                "پیگیری سفارش",
                Action::open_server_link(order("role", "seller")),
            )
            .with_icon("KEYBOARD_ARROW_LEFT"),
            ChatButton::new(
                "جزئیات",
                Action::open_direct_link("https://app.example-kenar.ir/orders/ord_58213"),
            )
            .with_icon("INFO"),
        ]])),
        receiver_buttons: Some(ButtonGrid::new([
            vec![
                ChatButton::new(
                    "مشاهده گزارش",
                    Action::open_server_link(order("role", "buyer")),
                )
                .with_icon("CAR_INSPECTED"),
            ],
            vec![
                ChatButton::new(
                    "تایید زمان",
                    Action::get_dynamic_action(order("answer", "yes")),
                )
                .with_icon("CHECKED"),
                ChatButton::new(
                    "تغییر زمان",
                    Action::get_dynamic_action(order("answer", "no")),
                )
                .with_icon("REFRESH"),
            ],
            vec![ChatButton::new("مشاهده آگهی", Action::open_post_page(POST)).with_icon("LINK")],
        ])),
        media_token: None,
    };
    let answer = client(&server)
        .send_message(&token(), CONVERSATION, &message)
        .await
        .unwrap();
    assert_eq!(answer.status, Some(200));
}

#[tokio::test]
async fn send_message_v2_sends_media_without_type_and_icon_name_as_icon() {
    let mut renamed = json_fixture("send_message_v2_request_icon_name_variant.json").to_string();
    renamed = renamed.replace("\"icon_name\"", "\"icon\"");
    let cases = [
        (
            "send_message_v2_request_media.json",
            json_fixture("send_message_v2_request_media.json"),
        ),
        (
            "send_message_v2_request_text_only.json",
            json_fixture("send_message_v2_request_text_only.json"),
        ),
        (
            "send_message_v2_request_icon_name_variant.json",
            serde_json::from_str(&renamed).unwrap(),
        ),
    ];
    for (name, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(body_json(expected))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let message: SendMessage = parse(name);
        client(&server)
            .send_message(&token(), CONVERSATION, &message)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn bot_message_to_a_conversation_sends_the_api_key_only_unless_a_token_is_given() {
    let server = MockServer::start().await;
    let route = format!("/v1/open-platform/chat/bot/conversations/{CONVERSATION}/messages");
    Mock::given(method("POST"))
        .and(path(route.as_str()))
        .and(header("x-api-key", API_KEY))
        .and(body_json(json_fixture("chatbot_send_message_request.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json_fixture("chatbot_send_message_response.json")),
        )
        .expect(2)
        .mount(&server)
        .await;
    let client = client(&server);
    let message: BotMessage = parse("chatbot_send_message_request.json");
    let answer = client
        .send_bot_message_to_conversation(None, CONVERSATION, &message)
        .await;
    assert_eq!(
        answer.unwrap().conversation_id.as_deref(),
        Some(CONVERSATION)
    );
    let token = token();
    client
        .send_bot_message_to_conversation(Some(&token), CONVERSATION, &message)
        .await
        .unwrap();
    let seen = server.received_requests().await.unwrap();
    assert!(seen[0].headers.get("authorization").is_none());
    assert_eq!(
        seen[1].headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
}

#[tokio::test]
async fn bot_message_to_a_user_matches_the_fixture_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1/open-platform/chat/bot/users/{USER}/messages"
        )))
        .and(header("x-api-key", API_KEY))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json_fixture(
            "chatbot_send_message_to_user_request.json",
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"conversation_id": "c-1"})))
        .expect(1)
        .mount(&server)
        .await;
    let message = BotMessage::text("اشتراک شما فعال شد. برای شروع، پیام خود را بنویسید.");
    let answer = client(&server)
        .send_bot_message_to_user(&token(), USER, &message)
        .await;
    assert_eq!(answer.unwrap().conversation_id.as_deref(), Some("c-1"));
}

#[tokio::test]
async fn bot_message_bodies_carry_no_target_and_media_carries_no_type() {
    let cases = [
        (
            "chatbot_send_message_media_request.json",
            json_fixture("chatbot_send_message_media_request.json"),
        ),
        (
            "chatbot_send_message_body_conversation_id_variant.json",
            json!({"type": "TEXT", "text_message": "پیام شما دریافت شد."}),
        ),
    ];
    for (name, expected) in cases {
        let server = MockServer::start().await;
        let route = format!("/v1/open-platform/chat/bot/conversations/{CONVERSATION}/messages");
        Mock::given(path(route.as_str()))
            .and(body_json(expected))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let message: BotMessage = parse(name);
        client(&server)
            .send_bot_message_to_conversation(None, CONVERSATION, &message)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn legacy_registration_matches_the_fixture_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/open-platform/notify/chat/post-conversations"))
        .and(header("x-api-key", API_KEY))
        .and(header("x-access-token", TOKEN))
        .and(body_json(json_fixture(
            "legacy_notify_register_request.json",
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json_fixture("legacy_notify_register_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let registration: LegacyRegistration = parse("legacy_notify_register_request.json");
    let client = client(&server);
    let prepared = client
        .prepare_legacy_registration(&token(), &registration)
        .unwrap();
    assert_eq!(prepared.body["identification_key"], MASK);
    assert!(!prepared.to_string().contains("lk_7Yq2vN9sLm4xR8tBw3ZcQ6pH"));
    client
        .register_legacy_webhook(&token(), &registration)
        .await
        .unwrap();
}

#[tokio::test]
async fn subscriptions_match_each_fixture_and_send_meta_data_as_metadata() {
    let mut variant = json_fixture("events_subscription_request_meta_data_variant.json");
    let meta = variant
        .as_object_mut()
        .unwrap()
        .remove("meta_data")
        .unwrap();
    variant["metadata"] = meta;
    let cases = [
        "events_subscription_request_post.json",
        "events_subscription_request_all_conversations.json",
        "events_subscription_request_post_update_all.json",
    ]
    .map(|name| (name, json_fixture(name)))
    .into_iter()
    .chain([(
        "events_subscription_request_meta_data_variant.json",
        variant,
    )]);
    for (name, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/open-platform/events/subscriptions"))
            .and(header("x-api-key", API_KEY))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(expected))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json_fixture("events_subscription_response.json")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let subscription: EventSubscription = parse(name);
        client(&server)
            .subscribe_events(&token(), &subscription)
            .await
            .unwrap();
    }
}
