//! Every list, its filters and order, and keyset pagination.

use super::*;

async fn conversations_list_newest_activity_first_with_filters(backend: Backend) {
    let app = api_app(backend).await;
    store(
        &app,
        vec![
            text_message("a1", "conv-a", "POST-A", 1_000_000, "a", "BUYER"),
            text_message("b1", "conv-b", "POST-B", 2_000_000, "b", "BUYER"),
            text_message("c1", "conv-c", "POST-A", 3_000_000, "c", "BUYER"),
            text_message("a2", "conv-a", "POST-A", 4_000_000, "a again", "SELLER"),
        ],
    )
    .await;
    let all = app.api_json("/api/v1/conversations").await;
    assert_eq!(ids(&all), ["conv-a", "conv-c", "conv-b"]);
    assert_eq!(all["next_cursor"], Value::Null);
    let a = &all["items"][0];
    assert_eq!(a["message_count"], 2);
    assert_eq!(a["first_message_at"], "1970-01-01T00:00:01.000000Z");
    assert_eq!(a["last_message_at"], "1970-01-01T00:00:04.000000Z");
    assert_eq!(a["type"], "POST");
    assert_eq!(a["post_token"], "POST-A");
    let post_a = app
        .api_json("/api/v1/conversations?post_token=POST-A")
        .await;
    assert_eq!(ids(&post_a), ["conv-a", "conv-c"]);
    let window = app
        .api_json("/api/v1/conversations?since=1970-01-01T00:00:02Z&until=1970-01-01T00:00:04Z")
        .await;
    assert_eq!(ids(&window), ["conv-c", "conv-b"]);
    let one = app.api_json("/api/v1/conversations/conv-b").await;
    assert_eq!(one["id"], "conv-b");
    assert_eq!(one["message_count"], 1);
    let (status, code, _) = error_of(app.api("/api/v1/conversations/nope").await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

async fn legacy_conversations_name_their_participants(backend: Backend) {
    let app = api_app(backend).await;
    app.post_webhook(fixture("legacy_chat_message_text.json"))
        .await;
    let list = app.api_json("/api/v1/conversations").await;
    let c = &list["items"][0];
    assert_eq!(c["source"], "legacy");
    assert_eq!(
        c["participants"],
        json!({"supply": "0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d", "demand": "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"})
    );
    let messages = app
        .api_json(&format!(
            "/api/v1/conversations/{}/messages",
            c["id"].as_str().unwrap()
        ))
        .await;
    let m = &messages["items"][0];
    assert_eq!(
        m["sender"],
        json!({"side": "BUYER", "type": null, "id": "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"})
    );
    assert_eq!(
        m["receiver"],
        json!({"side": "SELLER", "type": null, "id": "0f3b2c1a-7d4e-4a9b-9c2d-5e6f7a8b9c0d"})
    );
    assert_eq!(m["source"], "legacy");
    assert_eq!(m["sent_at"], "2025-03-09T08:14:27.315000Z");
}

async fn conversation_messages_are_ordered_by_sent_at_not_arrival(backend: Backend) {
    let app = api_app(backend).await;
    // Arrival order differs from sending order; equal sent_at is ordered by id.
    for record in [
        text_message("m3", "conv", "P", 3_000_000, "third", "BUYER"),
        text_message("m1", "conv", "P", 1_000_000, "first", "BUYER"),
        text_message("m2b", "conv", "P", 2_000_000, "second b", "SELLER"),
        text_message("m2a", "conv", "P", 2_000_000, "second a", "BUYER"),
    ] {
        store(&app, vec![record]).await;
    }
    let asc = app.api_json("/api/v1/conversations/conv/messages").await;
    assert_eq!(ids(&asc), ["m1", "m2a", "m2b", "m3"]);
    let desc = app
        .api_json("/api/v1/conversations/conv/messages?order=desc")
        .await;
    assert_eq!(ids(&desc), ["m3", "m2b", "m2a", "m1"]);
    let sellers = app
        .api_json("/api/v1/conversations/conv/messages?sender_side=seller")
        .await;
    assert_eq!(ids(&sellers), ["m2b"]);
    let window = app
        .api_json("/api/v1/conversations/conv/messages?since=1970-01-01T00:00:02Z&until=1970-01-01T00:00:03Z")
        .await;
    assert_eq!(ids(&window), ["m2a", "m2b"]);
    let none = app
        .api_json("/api/v1/conversations/conv/messages?type=IMAGE")
        .await;
    assert_eq!(ids(&none), Vec::<String>::new());
    assert_eq!(
        error_of(app.api("/api/v1/conversations/nope/messages").await)
            .await
            .0,
        404
    );
}

async fn messages_filter_by_post_type_side_time_and_text(backend: Backend) {
    let app = api_app(backend).await;
    for name in [
        "event_new_message_text.json",
        "event_new_message_image.json",
        "event_new_message_contact.json",
        "legacy_chat_message_text.json",
        "event_new_chatbot_message_text.json",
    ] {
        assert_eq!(app.post_webhook(fixture(name)).await.status(), 200);
    }
    store(
        &app,
        vec![text_message(
            "latin",
            "conv-x",
            "POST-X",
            5_000_000,
            "Hello WORLD",
            "BUYER",
        )],
    )
    .await;
    let by_post = app.api_json("/api/v1/messages?post_token=AZx7Kp2Q").await;
    assert_eq!(by_post["items"].as_array().unwrap().len(), 4);
    let images = app.api_json("/api/v1/messages?type=image").await;
    assert_eq!(ids(&images), ["2026edf0-fcbf-11ef-9b3c-7a8b9c0d1e2f"]);
    let image = &images["items"][0];
    assert_eq!(image["text"], Value::Null);
    assert_eq!(image["data"]["size_bytes"], 348211);
    let contact = app.api_json("/api/v1/messages?type=CONTACT").await;
    assert_eq!(contact["items"][0]["data"]["phone"], "+989121234567");
    let persian = app
        .api_json(&format!("/api/v1/messages?q={}", urlencode("معاوضه")))
        .await;
    assert_eq!(ids(&persian), ["f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f"]);
    let latin = app.api_json("/api/v1/messages?q=hello%20world").await;
    assert_eq!(ids(&latin), ["latin"]);
    let wildcard = app.api_json("/api/v1/messages?q=%25").await;
    assert_eq!(
        ids(&wildcard),
        Vec::<String>::new(),
        "% is matched literally"
    );
    let by_conversation = app
        .api_json("/api/v1/messages?conversation_id=b6e41d2a-93c7-4f05-8a1e-7c2d9f3b5a60")
        .await;
    assert_eq!(
        by_conversation["items"][0]["event_type"],
        "NEW_CHATBOT_MESSAGE"
    );
    let buyers_after = app
        .api_json("/api/v1/messages?sender_side=BUYER&since=2025-03-09T08:16:00Z")
        .await;
    assert_eq!(
        ids(&buyers_after),
        [
            "f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f",
            "2026edf0-fcbf-11ef-9b3c-7a8b9c0d1e2f"
        ]
    );
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn one_message_with_its_raw_body(backend: Backend) {
    let app = api_app(backend).await;
    let raw = fixture("event_new_message_text.json");
    app.post_webhook(raw.clone()).await;
    let id = "f02b9ab0-fcbe-11ef-9b3c-7a8b9c0d1e2f";
    let plain = app.api_json(&format!("/api/v1/messages/{id}")).await;
    assert!(plain.get("raw").is_none());
    assert_eq!(
        plain["conversation_id"],
        "3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58"
    );
    assert_eq!(
        plain["sender"],
        json!({"side": "BUYER", "type": "HUMAN", "id": null})
    );
    assert_eq!(plain["receiver"], Value::Null);
    assert_eq!(
        plain["metadata"],
        json!({"tenant": "garage-42", "subscription": "post-AZx7Kp2Q"})
    );
    let with_raw = app
        .api_json(&format!("/api/v1/messages/{id}?include=raw"))
        .await;
    assert_eq!(with_raw["raw"].as_str().unwrap().as_bytes(), raw.as_slice());
    assert_eq!(
        error_of(app.api("/api/v1/messages/nope").await).await.0,
        404
    );
    assert_eq!(
        error_of(
            app.api(&format!("/api/v1/messages/{id}?include=everything"))
                .await
        )
        .await
        .0,
        400
    );
}

async fn events_and_clicks_list_with_filters(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.api.tokens = vec![SecretString::from(TOKEN)];
        s.callback.allowed_hosts = vec!["app.example-kenar.ir".into()];
        s.callback.fallback_url = Some("https://app.example-kenar.ir/start/{post_token}".into());
    })
    .await;
    for name in [
        "event_post_update_publish.json",
        "event_user_access_revocation.json",
        "event_post_update_archive.json",
    ] {
        app.post_webhook(fixture(name)).await;
    }
    let all = app.api_json("/api/v1/events").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let updates = app.api_json("/api/v1/events?type=post_update").await;
    let types: Vec<&str> = updates["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subtype"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PUBLISH", "ARCHIVE"]);
    assert_eq!(updates["items"][0]["payload"]["post"]["token"], "AZx7Kp2Q");
    // Newest first, paged on below the cursor; a cursor is bound to its order.
    let first = app.api_json("/api/v1/events?order=desc&limit=2").await;
    let subtypes = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(subtypes(&first), ["POST_UPDATE", "USER_ACCESS_REVOCATION"]);
    assert_eq!(first["items"][0]["subtype"], "ARCHIVE");
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app
        .api_json(&format!(
            "/api/v1/events?order=desc&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest["items"][0]["subtype"], "PUBLISH");
    assert_eq!(rest["next_cursor"], Value::Null);
    let switched = app
        .client
        .get(app.url(&format!("/api/v1/events?limit=2&cursor={cursor}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 400);
    let later = app
        .api_json("/api/v1/events?since=2999-01-01T00:00:00Z")
        .await;
    assert!(later["items"].as_array().unwrap().is_empty());

    for (name, post) in [
        ("legacy_button_click.json", "AZx7Kp2Q"),
        ("open_server_link_v2.json", "AZx7Kp2Q"),
    ] {
        let mut body: Value = serde_json::from_slice(&fixture(name)).unwrap();
        body["post_token"] = json!(post);
        let response = app
            .client
            .post(app.url("/callbacks/divar"))
            .header("authorization", KEY)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let clicks = app.api_json("/api/v1/clicks?post_token=AZx7Kp2Q").await;
    assert_eq!(clicks["items"].as_array().unwrap().len(), 2);
    assert_eq!(clicks["items"][0]["version"], "legacy");
    let newest = app
        .api_json("/api/v1/clicks?post_token=AZx7Kp2Q&order=desc")
        .await;
    assert_eq!(newest["items"][0]["version"], "v2");
    assert_eq!(
        clicks["items"][1]["url"],
        "https://app.example-kenar.ir/start/AZx7Kp2Q"
    );
    let by_conversation = app
        .api_json("/api/v1/clicks?conversation_id=3f9c2a7e-5b1d-4e8a-9c6f-2d7b1e0a4c58")
        .await;
    assert_eq!(by_conversation["items"].as_array().unwrap().len(), 1);
}

async fn pagination_walks_every_row_once_while_new_rows_arrive(backend: Backend) {
    let app = api_app(backend).await;
    let originals: Vec<String> = (0..23).map(|i| format!("m{i:02}")).collect();
    // Several rows share a sent_at, so the id tie-break matters.
    store(
        &app,
        originals
            .iter()
            .enumerate()
            .map(|(i, id)| {
                text_message(
                    id,
                    "conv",
                    "P",
                    1_000_000 + (i as i64 / 3) * 1_000,
                    "t",
                    "BUYER",
                )
            })
            .collect(),
    )
    .await;
    for path in [
        "/api/v1/conversations/conv/messages",
        "/api/v1/messages?post_token=P",
        "/api/v1/conversations/conv/messages?order=desc",
    ] {
        let mut seen: Vec<String> = Vec::new();
        let mut next = format!(
            "{path}{}limit=5",
            if path.contains('?') { "&" } else { "?" }
        );
        let mut extra = 0;
        loop {
            let page = app.api_json(&next).await;
            seen.extend(ids(&page));
            // New messages arrive between pages: later and earlier than everything seen.
            extra += 1;
            store(
                &app,
                vec![
                    text_message(
                        &format!("new-late-{path}-{extra}"),
                        "conv",
                        "P",
                        9_000_000 + extra,
                        "n",
                        "BUYER",
                    ),
                    text_message(
                        &format!("new-early-{path}-{extra}"),
                        "conv",
                        "P",
                        extra,
                        "n",
                        "BUYER",
                    ),
                ],
            )
            .await;
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    next = format!(
                        "{path}{}limit=5&cursor={cursor}",
                        if path.contains('?') { "&" } else { "?" }
                    )
                }
                None => break,
            }
        }
        for id in &originals {
            assert_eq!(
                seen.iter().filter(|s| *s == id).count(),
                1,
                "{path}: {id} seen once"
            );
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{path}: no row twice");
    }
}

async fn registrations_are_listed_without_keys(backend: Backend) {
    let app = api_app(backend).await;
    app.store
        .insert_registration(&kenar_hook::store::Registration {
            id: "r1".into(),
            post_token: "AZx7Kp2Q".into(),
            endpoint: "https://hooks.example-app.ir/kenar".into(),
            key_digest: "ab".repeat(32),
            created_at: at(1_741_508_067_000_000),
        })
        .await
        .unwrap();
    let list = app.api_json("/api/v1/registrations").await;
    assert_eq!(
        list["items"],
        json!([{"id": "r1", "post_token": "AZx7Kp2Q",
        "endpoint": "https://hooks.example-app.ir/kenar", "created_at": "2025-03-09T08:14:27.000000Z"}])
    );
}

on_both_backends!(
    conversations_list_newest_activity_first_with_filters,
    legacy_conversations_name_their_participants,
    conversation_messages_are_ordered_by_sent_at_not_arrival,
    messages_filter_by_post_type_side_time_and_text,
    one_message_with_its_raw_body,
    events_and_clicks_list_with_filters,
    pagination_walks_every_row_once_while_new_rows_arrive,
    registrations_are_listed_without_keys,
);
