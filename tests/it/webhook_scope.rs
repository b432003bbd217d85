//! Message ids are unique within the scope of who vouched for them: a legacy registration's
//! key (good for one post) can neither hide, replace nor reveal a message of another post,
//! and the same id for another conversation or post within one scope is a conflict.

use kenar_hook::store::Registration;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

/// The registered post, whose key the forger holds.
const POST_A: &str = "AZx7Kp2Q";
/// Another post, delivered with the app's key.
const POST_B: &str = "AZy2Lm8T";
const REGISTRATION_KEY: &str = "lk_7Yq2vN9sLm4xR8tBw3ZcQ6pH";
const API_TOKEN: &str = "api-token-1";

/// An app with a read API token.
async fn api_app(backend: Backend) -> TestApp {
    // Waiting for a registration fails a few times; those must not reach the limit.
    spawn_app_with(backend, |s| {
        s.api.auth_failures_per_minute = 1000;
        s.api.tokens = vec![SecretString::from(API_TOKEN)];
    })
    .await
}

/// An app with a read API token and a registration for post A whose key the running service
/// has read.
async fn app_with_registration(backend: Backend) -> TestApp {
    let app = api_app(backend).await;
    app.store
        .insert_registration(&Registration {
            id: "r1".into(),
            post_token: POST_A.into(),
            endpoint: "https://hooks.example-app.ir/kenar".into(),
            key_digest: hex::encode(kenar_hook::auth::digest(REGISTRATION_KEY.as_bytes())),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    // The service reads the registrations every couple of seconds. A message of post A
    // without a demand-side participant is answered 422 once the key is known (401 before),
    // and stores nothing.
    let mut probe = legacy("probe", POST_A, "probe", "buyer-1");
    probe["payload"]["sender"]["is_supply"] = json!(true);
    for _ in 0..50 {
        let response = app
            .post_webhook_with_key(Some(REGISTRATION_KEY), probe.to_string())
            .await;
        if response.status() == 422 {
            return app;
        }
        assert_eq!(response.status(), 401);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the service did not read the registration in 5 s");
}

/// A legacy CHAT_MESSAGE of `post` from buyer `buyer`.
fn legacy(id: &str, post: &str, text: &str, buyer: &str) -> Value {
    let mut body: Value =
        serde_json::from_slice(&fixture("legacy_chat_message_text.json")).unwrap();
    body["payload"]["id"] = json!(id);
    body["payload"]["metadata"]["post_token"] = json!(post);
    body["payload"]["data"]["text"] = json!(text);
    body["payload"]["sender"]["id"] = json!(buyer);
    body
}

/// The status and JSON body of an answer.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

impl TestApp {
    /// Delivers with the registration key of post A.
    async fn forge(&self, body: &Value) -> (u16, Value) {
        answer(
            self.post_webhook_with_key(Some(REGISTRATION_KEY), body.to_string())
                .await,
        )
        .await
    }

    /// Delivers with the app's identification key.
    async fn deliver(&self, body: &Value) -> (u16, Value) {
        answer(self.post_webhook(body.to_string()).await).await
    }

    /// `GET /api/v1/...` with the API token.
    async fn read(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(&format!("/api/v1{path}")))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

fn stored() -> (u16, Value) {
    (200, json!({"outcome": "stored"}))
}

async fn a_forged_id_stored_first_neither_hides_nor_replaces_the_real_message(backend: Backend) {
    let app = app_with_registration(backend).await;
    let forged = legacy("b-2", POST_A, "forged", "buyer-1");
    assert_eq!(app.forge(&forged).await, stored());

    let real = legacy("b-2", POST_B, "real", "buyer-2");
    assert_eq!(app.deliver(&real).await, stored());
    assert_eq!(app.deliver(&real).await.1, json!({"outcome": "duplicate"}));

    let served = app.read("/messages/b-2").await;
    assert_eq!(served["post_token"], POST_B);
    assert_eq!(served["text"], "real");
    assert_eq!(
        app.store
            .message("b-2")
            .await
            .unwrap()
            .unwrap()
            .message
            .origin,
        ""
    );
    assert_eq!(app.counts().await.1, 2, "both rows exist");
    let of_a = app.read(&format!("/messages?post_token={POST_A}")).await;
    assert_eq!(of_a["items"][0]["text"], "forged");
    let of_b = app.read(&format!("/messages?post_token={POST_B}")).await;
    assert_eq!(of_b["items"][0]["text"], "real");
}

async fn a_forged_id_stored_second_is_answered_as_a_fresh_one_and_changes_nothing(
    backend: Backend,
) {
    let app = app_with_registration(backend).await;
    let real = legacy("b-2", POST_B, "real", "buyer-2");
    assert_eq!(app.deliver(&real).await, stored());
    let before = app.store.message("b-2").await.unwrap().unwrap();

    let forged = legacy("b-2", POST_A, "forged", "buyer-1");
    assert_eq!(app.forge(&forged).await, stored());
    let fresh = legacy("fresh-1", POST_A, "forged", "buyer-1");
    assert_eq!(app.forge(&fresh).await, stored());

    assert_eq!(app.store.message("b-2").await.unwrap().unwrap(), before);
    let served = app.read("/messages/b-2").await;
    assert_eq!(
        (served["post_token"].clone(), served["text"].clone()),
        (json!(POST_B), json!("real"))
    );
    assert_eq!(app.deliver(&real).await.1, json!({"outcome": "duplicate"}));
}

/// Whatever a registration key sends, the answers follow from its own post's messages only:
/// an id another post holds is answered exactly like an id nobody holds, first, again, and
/// for another conversation of its post.
async fn a_registration_key_learns_nothing_of_another_posts_ids(backend: Backend) {
    let app = app_with_registration(backend).await;
    assert_eq!(
        app.deliver(&legacy("b-7", POST_B, "real", "buyer-2")).await,
        stored()
    );
    let mut answers = Vec::new();
    for id in ["b-7", "never-seen"] {
        let first = app.forge(&legacy(id, POST_A, "probe", "buyer-1")).await;
        let again = app.forge(&legacy(id, POST_A, "probe", "buyer-1")).await;
        let elsewhere = app.forge(&legacy(id, POST_A, "probe", "buyer-3")).await;
        answers.push([first, again, elsewhere.clone()]);
        assert_eq!(elsewhere.0, 409, "{elsewhere:?}");
        let message = elsewhere.1["error"]["message"].as_str().unwrap();
        assert!(!message.contains(POST_B), "{message}");
    }
    assert_eq!(answers[0][0], stored());
    assert_eq!(answers[0][1].1, json!({"outcome": "duplicate"}));
    // Only the id differs between the two conflict messages.
    let unnamed = |a: &(u16, Value)| {
        let mut a = a.clone();
        if let Some(message) = a.1["error"]["message"].as_str() {
            let message = message.replace("b-7", "ID").replace("never-seen", "ID");
            a.1["error"]["message"] = json!(message);
        }
        a
    };
    assert_eq!(
        answers[0].iter().map(unnamed).collect::<Vec<_>>(),
        answers[1].iter().map(unnamed).collect::<Vec<_>>()
    );
}

async fn an_id_again_for_another_post_is_a_conflict_and_stores_nothing(backend: Backend) {
    let app = api_app(backend).await;
    assert_eq!(
        app.deliver(&legacy("x-1", POST_B, "first", "buyer-2"))
            .await,
        stored()
    );
    let counts = app.counts().await;
    let (status, code, message) = error_of(
        app.post_webhook(legacy("x-1", "AZz9Qw4R", "second", "buyer-2").to_string())
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    assert!(message.contains("x-1"), "{message}");
    assert_eq!(app.counts().await, counts, "nothing stored");
    assert_eq!(app.read("/messages/x-1").await["text"], "first");

    // Another conversation of the same post (another buyer) is a conflict too.
    let (status, code, _) = error_of(
        app.post_webhook(legacy("x-1", POST_B, "third", "buyer-4").to_string())
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    assert_eq!(app.counts().await, counts, "nothing stored");
}

/// The ids of every page of `/messages` with one row a page.
async fn paged_ids(app: &TestApp, order: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut path = format!("/messages?limit=1&order={order}");
    loop {
        let page = app.read(&path).await;
        for item in page["items"].as_array().unwrap() {
            let (id, post) = (&item["id"], &item["post_token"]);
            rows.push((id.as_str().unwrap().into(), post.as_str().unwrap().into()));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/messages?limit=1&order={order}&cursor={cursor}"),
            None => return rows,
        }
    }
}

/// One id stored in two origins at one time: a page boundary between the two rows skips
/// neither, so a forged copy cannot push the real message off a list.
async fn a_page_boundary_between_two_rows_of_one_id_skips_neither(backend: Backend) {
    let app = api_app(backend).await;
    let mut forged = crate::store_batch::message("b-2", "ca", Some(POST_A), None, 10);
    if let kenar_hook::store::NewRecord::Message(m) = &mut forged {
        m.origin = POST_A.into();
    }
    let records = [
        crate::store_batch::message("a-1", "cb", Some(POST_B), None, 5),
        forged,
        crate::store_batch::message("b-2", "cb", Some(POST_B), None, 10),
        crate::store_batch::message("c-3", "cb", Some(POST_B), None, 20),
    ];
    app.store.write_batch(&records).await.unwrap();
    let row = |id: &str, post: &str| (id.to_owned(), post.to_owned());
    let ascending = [
        row("a-1", POST_B),
        row("b-2", POST_A),
        row("b-2", POST_B),
        row("c-3", POST_B),
    ];
    assert_eq!(paged_ids(&app, "asc").await, ascending);
    let mut descending = ascending.to_vec();
    descending.reverse();
    assert_eq!(paged_ids(&app, "desc").await, descending);
}

on_both_backends!(
    a_page_boundary_between_two_rows_of_one_id_skips_neither,
    a_forged_id_stored_first_neither_hides_nor_replaces_the_real_message,
    a_forged_id_stored_second_is_answered_as_a_fresh_one_and_changes_nothing,
    a_registration_key_learns_nothing_of_another_posts_ids,
    an_id_again_for_another_post_is_a_conflict_and_stores_nothing,
);
