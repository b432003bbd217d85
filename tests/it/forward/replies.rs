//! Replies in the answer to a push: a wiremock receiver answers with `{"reply": ...}` and a
//! wiremock Divar takes the sends. Each record kind with its credential, refusals, at most
//! one send per record and endpoint (retried push, replayed record, a call cut off by
//! kill -9), Divar's failures, and the outbox's API and CLI.

use std::time::{Duration, Instant};

use kenar_hook::divar::outbound::EventSubscription;
use kenar_hook::store::outbox::{OutboxQuery, OutboxRow};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::oauth::{API_KEY, USER, at, mock_divar, oauth_on, sign_in, tokens};

const TOKEN: &str = "forward-replies-api-token";
const BIN: &str = env!("CARGO_BIN_EXE_kenar-hook");
const POST: &str = "AZx7Kp2Q";
const BOT_PATH: &str = r"^/v1/open-platform/chat/bot/conversations/[^/]+/messages$";
const V2_PATH: &str = r"^/v2/open-platform/conversations/[^/]+/messages$";
const LEGACY_PATH: &str = "/v2/open-platform/chat/conversation";

/// A receiver that answers every push `200` with `answer(push)` as JSON.
async fn replying(answer: impl Fn(&Value) -> Value + Send + Sync + 'static) -> MockServer {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(move |request: &Request| {
            let push: Value = serde_json::from_slice(&request.body).unwrap();
            ResponseTemplate::new(200).set_body_json(answer(&push))
        })
        .mount(&receiver)
        .await;
    receiver
}

/// `{"reply": {"text": "re: <message id>"}}`.
fn echo(push: &Value) -> Value {
    json!({"reply": {"text": format!("re: {}", push["id"].as_str().unwrap())}})
}

/// Divar's three sends, each answering 200.
async fn mount_sends(divar: &MockServer) {
    Mock::given(method("POST"))
        .and(path_regex(BOT_PATH))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"conversation_id": "x"})))
        .mount(divar)
        .await;
    for p in [V2_PATH, LEGACY_PATH] {
        Mock::given(method("POST"))
            .and(path_regex(p))
            .and(header("x-api-key", API_KEY))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"status": 200, "message": "success"})),
            )
            .mount(divar)
            .await;
    }
}

/// Forwarding to `receiver`, Divar's client against `divar` with quick retries.
fn settings(s: &mut Settings, receiver: &MockServer, divar: &MockServer) {
    forwarding(
        s,
        vec![endpoint("backend", &format!("{}/hook", receiver.uri()))],
    );
    s.api.tokens = vec![SecretString::from(TOKEN)];
    s.divar.client.api_key = Some(SecretString::from(API_KEY));
    s.divar.client.open_api_base_url = divar.uri();
    s.divar.client.base_url = divar.uri();
    s.divar.client.request_timeout_ms = 700;
    s.divar.client.retry_base_delay_ms = 10;
    s.divar.client.retry_max_delay_ms = 50;
}

fn chatbot(id: &str, conversation: &str) -> String {
    json!({"type": "NEW_CHATBOT_MESSAGE", "new_chatbot_message": {
        "id": id, "conversation": {"id": conversation, "type": "BOT"},
        "sender": {"type": "HUMAN"}, "type": "TEXT", "sent_at": 1_741_508_767_440_000_i64,
        "text": "سلام، وقت کارشناسی دارید؟"}})
    .to_string()
}

/// A legacy CHAT_MESSAGE from a buyer to `receiver`.
fn legacy(id: &str, receiver: &str) -> String {
    json!({"type": "CHAT_MESSAGE", "timestamp": 1_741_508_067_402_000_i64, "payload": {
        "id": id, "type": "TEXT", "data": {"text": "هنوز فروشی هست؟"},
        "sender": {"id": "buyer-7", "is_supply": false},
        "receiver": {"id": receiver, "is_supply": true},
        "metadata": {"post_token": POST, "title": "پژو ۲۰۶"},
        "sent_at": 1_741_508_067_315_000_i64}})
    .to_string()
}

async fn outbox(app: &TestApp) -> Vec<OutboxRow> {
    let q = OutboxQuery {
        limit: 500,
        ..Default::default()
    };
    let mut rows = app.store.outbox_list(&q).await.unwrap();
    rows.reverse();
    rows
}

/// Waits until `n` replies are recorded and none is pending or being sent.
async fn settled(app: &TestApp, n: usize) -> Vec<OutboxRow> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = outbox(app).await;
        if rows.len() >= n
            && rows.iter().all(|r| {
                r.reply.status.as_str() != "pending" && r.reply.status.as_str() != "sending"
            })
        {
            return rows;
        }
        assert!(Instant::now() < deadline, "{rows:#?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn row<'a>(rows: &'a [OutboxRow], message: &str) -> &'a OutboxRow {
    rows.iter()
        .find(|r| r.reply.record_id.as_deref() == Some(message))
        .unwrap_or_else(|| panic!("no reply to {message}: {rows:#?}"))
}

/// The requests Divar got on paths starting with `prefix`.
async fn sends(divar: &MockServer, prefix: &str) -> Vec<Request> {
    divar
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path().starts_with(prefix))
        .collect()
}

async fn a_reply_goes_with_the_credential_its_record_calls_for(backend: Backend) {
    let divar = mock_divar(3600).await;
    mount_sends(&divar).await;
    let receiver = replying(|push| {
        let mut answer = echo(push);
        if push["id"] == "as-user-1" {
            answer["reply"]["as_user"] = json!(USER);
        }
        if push["event_type"] == "NEW_CHATBOT_MESSAGE" {
            answer["reply"]["buttons"] = json!({"rows": [{"buttons": [{"caption": "نوبت",
                "icon": "INFO", "action": {"open_direct_link": "https://app.example.ir/book"}}]}]});
        }
        answer
    })
    .await;
    let app = spawn_app_with(backend, |s| {
        oauth_on(s, &divar);
        settings(s, &receiver, &divar);
    })
    .await;
    sign_in(&app).await;
    let vault = tokens(&app);
    let subscription = EventSubscription {
        event_type: "NEW_MESSAGE_ON_POST".into(),
        event_resource_id: Some(POST.into()),
        metadata: None,
    };
    vault
        .record_subscription(USER, &subscription, 1)
        .await
        .unwrap();

    let bodies = [
        chatbot("bot-1", "conv-bot"),
        message("v2-1", "conv-v2", POST, "TEXT", 1_741_508_247_515_000),
        legacy("legacy-1", USER),
        // A post no subscription names: only a reply naming its user can go.
        message(
            "unowned-1",
            "conv-other",
            "OTHERPST",
            "TEXT",
            1_741_508_247_515_000,
        ),
        message(
            "as-user-1",
            "conv-other-2",
            "OTHERPST",
            "TEXT",
            1_741_508_247_515_000,
        ),
    ];
    for body in bodies {
        assert_eq!(app.post_webhook(body).await.status(), 200);
    }
    let rows = settled(&app, 5).await;
    let unowned = row(&rows, "unowned-1");
    assert_eq!(unowned.reply.status.as_str(), "refused");
    let reason = unowned.reply.answer.as_deref().unwrap();
    assert!(
        reason.contains("no signed-in user's message subscription covers post OTHERPST")
            && reason.contains("as_user"),
        "{reason}"
    );
    let as_user = row(&rows, "as-user-1");
    assert_eq!(as_user.reply.status.as_str(), "sent", "{as_user:#?}");
    assert_eq!(
        as_user.credential.as_deref(),
        Some(format!("token of user {USER}").as_str())
    );
    let rows: Vec<_> = rows
        .iter()
        .filter(|r| {
            !matches!(
                r.reply.record_id.as_deref(),
                Some("unowned-1" | "as-user-1")
            )
        })
        .cloned()
        .collect();
    for r in &rows {
        assert_eq!(r.reply.status.as_str(), "sent", "{r:#?}");
        assert_eq!(r.attempts, 1);
    }
    let bot = row(&rows, "bot-1");
    assert_eq!(bot.credential.as_deref(), Some("api key"));
    let request = bot.request.as_deref().unwrap();
    assert!(
        request.starts_with("POST ")
            && request.contains("/chat/bot/conversations/conv-bot/messages"),
        "{request}"
    );
    assert!(!request.contains(API_KEY), "no credential on the row");
    let v2 = row(&rows, "v2-1");
    assert_eq!(
        v2.credential.as_deref(),
        Some(format!("token of user {USER}").as_str())
    );
    let legacy_row = row(&rows, "legacy-1");
    assert_eq!(legacy_row.credential, v2.credential);

    let bot_sends = sends(&divar, "/v1/open-platform/chat/bot/").await;
    assert_eq!(bot_sends.len(), 1);
    let body: Value = serde_json::from_slice(&bot_sends[0].body).unwrap();
    assert_eq!(body["text_message"], "re: bot-1");
    assert_eq!(body["buttons"]["rows"][0]["buttons"][0]["caption"], "نوبت");
    assert!(
        bot_sends[0].headers.get("authorization").is_none(),
        "the API key alone"
    );

    let v2_sends: Vec<_> = sends(&divar, "/v2/open-platform/conversations/conv-v2/").await;
    assert_eq!(v2_sends.len(), 1);
    assert_eq!(
        sends(&divar, "/v2/open-platform/conversations/conv-other-2/")
            .await
            .len(),
        1
    );
    assert!(
        sends(&divar, "/v2/open-platform/conversations/conv-other/")
            .await
            .is_empty()
    );
    assert_eq!(
        v2_sends[0].url.path(),
        "/v2/open-platform/conversations/conv-v2/messages"
    );
    assert_eq!(
        v2_sends[0].headers["authorization"],
        format!("Bearer {}", at(1)).as_str()
    );
    let body: Value = serde_json::from_slice(&v2_sends[0].body).unwrap();
    assert_eq!(body["message"], "re: v2-1");

    let legacy_sends = sends(&divar, LEGACY_PATH).await;
    assert_eq!(legacy_sends.len(), 1);
    assert_eq!(legacy_sends[0].headers["x-access-token"], at(1).as_str());
    let body: Value = serde_json::from_slice(&legacy_sends[0].body).unwrap();
    assert_eq!(
        (
            &body["user_id"],
            &body["peer_id"],
            &body["post_token"],
            &body["message"]
        ),
        (
            &json!(USER),
            &json!("buyer-7"),
            &json!(POST),
            &json!("re: legacy-1")
        )
    );
}

async fn replies_no_call_can_make_are_refused_and_the_push_still_counts(backend: Backend) {
    let divar = MockServer::start().await;
    mount_sends(&divar).await;
    let receiver = replying(|push| match push["id"].as_str().unwrap() {
        "bad-1" => json!({"reply": {"txt": "typo"}}),
        "grid-1" => json!({"reply": {"text": "x", "buttons": {"rows": [
            {"buttons": [{"caption": "a", "action": {"open_direct_link": "https://a.ir"}}]},
            {"buttons": []}, {"buttons": []}, {"buttons": []}]}}}),
        "none-1" => json!({"ok": true}),
        _ => echo(push),
    })
    .await;
    // Sign-in is off: no user's token for a NEW_MESSAGE or a legacy message.
    let app = spawn_app_with(backend, |s| settings(s, &receiver, &divar)).await;
    let bodies = [
        chatbot("bad-1", "conv-a"),
        chatbot("grid-1", "conv-b"),
        chatbot("none-1", "conv-c"),
        message("v2-1", "conv-d", POST, "TEXT", 1_741_508_247_515_000),
        legacy("legacy-1", "seller-1"),
    ];
    for body in bodies {
        assert_eq!(app.post_webhook(body).await.status(), 200);
    }
    let rows = settled(&app, 4).await;
    assert_eq!(
        rows.len(),
        4,
        "no row for an answer without a reply: {rows:#?}"
    );
    for (id, reason) in [
        ("bad-1", "the reply is malformed: unknown field `txt`"),
        ("grid-1", "reply.buttons has 4 rows; at most 3 are allowed"),
        ("v2-1", "sign-in is off"),
        ("legacy-1", "sign-in is off"),
    ] {
        let r = row(&rows, id);
        assert_eq!(r.reply.status.as_str(), "refused", "{r:#?}");
        let answer = r.reply.answer.as_deref().unwrap_or_default();
        assert!(answer.contains(reason), "{id}: {answer}");
    }
    assert!(
        divar.received_requests().await.unwrap().is_empty(),
        "no call made"
    );
    // Every push was delivered, and none is tried again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pushes = receiver.received_requests().await.unwrap();
    assert_eq!(pushes.len(), 5);
    let (pending, _) = app.store.forward_pending_summary("backend").await.unwrap();
    assert_eq!(pending, 0);
}

async fn a_retried_or_replayed_push_never_sends_a_second_reply(backend: Backend) {
    let divar = MockServer::start().await;
    mount_sends(&divar).await;
    let receiver = replying(echo).await;
    let app = spawn_app_with(backend, |s| settings(s, &receiver, &divar)).await;
    assert_eq!(
        app.post_webhook(chatbot("once-1", "conv-once"))
            .await
            .status(),
        200
    );
    let rows = settled(&app, 1).await;
    assert_eq!(rows[0].reply.status.as_str(), "sent");
    let pushes = receiver.received_requests().await.unwrap();
    let webhook_id = pushes[0].headers["webhook-id"].to_str().unwrap().to_owned();
    // The same record pushed again, and answered with the same reply, twice. Each replay
    // waits until the push before it is written as delivered: a record still waiting is not
    // queued a second time.
    for _ in 0..2 {
        wait_caught_up(&app).await;
        let added = kenar_hook::forward::manage::replay_ids(
            &app.store,
            "backend",
            std::slice::from_ref(&webhook_id),
        )
        .await
        .unwrap();
        assert_eq!(added, 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        let before = receiver.received_requests().await.unwrap().len();
        while receiver.received_requests().await.unwrap().len() == before {
            assert!(Instant::now() < deadline, "replayed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received_requests().await.unwrap().len(), 3);
    assert_eq!(
        sends(&divar, "/v1/open-platform/chat/bot/").await.len(),
        1,
        "one send, however often pushed"
    );
    let rows = outbox(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].reply.status.as_str(), rows[0].attempts),
        ("sent", 1)
    );
}

async fn divar_failures_end_unknown_retried_or_refused(backend: Backend) {
    let divar = MockServer::start().await;
    let bot = |conversation: &str| {
        format!("/v1/open-platform/chat/bot/conversations/{conversation}/messages")
    };
    // Slower than the client's timeout: the request went out, its fate is unknown.
    Mock::given(path(bot("conv-slow")))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&divar)
        .await;
    // Rate-limited once, then accepted.
    Mock::given(path(bot("conv-busy")))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&divar)
        .await;
    Mock::given(path(bot("conv-busy")))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .with_priority(10)
        .mount(&divar)
        .await;
    // The recipient blocks the sender: final.
    Mock::given(path(bot("conv-blocked")))
        .respond_with(
            ResponseTemplate::new(412)
                .set_body_json(json!({"code": 9, "message": "user is blacklisted", "details": []})),
        )
        .mount(&divar)
        .await;
    let receiver = replying(echo).await;
    let app = spawn_app_with(backend, |s| settings(s, &receiver, &divar)).await;
    for (id, conversation) in [
        ("slow-1", "conv-slow"),
        ("busy-1", "conv-busy"),
        ("blocked-1", "conv-blocked"),
    ] {
        assert_eq!(
            app.post_webhook(chatbot(id, conversation)).await.status(),
            200
        );
    }
    let rows = settled(&app, 3).await;
    let slow = row(&rows, "slow-1");
    assert_eq!(slow.reply.status.as_str(), "unknown", "{slow:#?}");
    assert_eq!(row(&rows, "busy-1").reply.status.as_str(), "sent");
    let blocked = row(&rows, "blocked-1");
    assert_eq!(blocked.reply.status.as_str(), "refused");
    assert!(
        blocked
            .reply
            .answer
            .as_deref()
            .unwrap()
            .contains("blacklisted"),
        "{blocked:#?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = |c: &'static str| {
        let divar = &divar;
        async move {
            divar
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.url.path() == bot(c))
                .count()
        }
    };
    assert_eq!(
        calls("conv-slow").await,
        1,
        "an unknown outcome is never sent again"
    );
    assert_eq!(calls("conv-busy").await, 2, "a 429 is tried again");
    assert_eq!(calls("conv-blocked").await, 1, "a 412 is final");
}

async fn erasing_a_conversation_takes_its_replies_with_it(backend: Backend) {
    use kenar_hook::store::lifecycle::{Erasure, Identity};
    let divar = MockServer::start().await;
    mount_sends(&divar).await;
    let receiver = replying(echo).await;
    let app = spawn_app_with(backend, |s| settings(s, &receiver, &divar)).await;
    for (id, conversation) in [("gone-1", "conv-gone"), ("kept-1", "conv-kept")] {
        assert_eq!(
            app.post_webhook(chatbot(id, conversation)).await.status(),
            200
        );
    }
    settled(&app, 2).await;
    let erasure = Erasure {
        identity: Identity::Conversation("conv-gone".into()),
        up_to: None,
        keep_revocations: false,
    };
    let erased = app.store.erase(&erasure, 100).await.unwrap();
    assert_eq!(erased.messages, 1);
    let left: Vec<_> = outbox(&app)
        .await
        .into_iter()
        .map(|r| r.reply.record_id)
        .collect();
    assert_eq!(
        left,
        [Some("kept-1".to_owned())],
        "the reply's text leaves with its message"
    );
}

/// Runs the binary against the app's database.
async fn cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let receiver = app.settings.forward.endpoints[0].url.clone();
    super::manage::cli(app, &receiver, args).await
}

async fn the_outbox_is_seen_in_the_api_and_the_cli_and_retried_by_hand(backend: Backend) {
    let divar = MockServer::start().await;
    let send = "/v1/open-platform/chat/bot/conversations/conv-down/messages";
    // Busy through every attempt of the first call (2), then accepting.
    Mock::given(path(send))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(2)
        .mount(&divar)
        .await;
    Mock::given(path(send))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .with_priority(10)
        .mount(&divar)
        .await;
    Mock::given(path(
        "/v1/open-platform/chat/bot/conversations/conv-slow/messages",
    ))
    .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
    .mount(&divar)
    .await;
    let receiver = replying(echo).await;
    let app = spawn_app_with(backend, |s| {
        settings(s, &receiver, &divar);
        s.divar.client.retry_max_attempts = 2;
    })
    .await;
    assert_eq!(
        app.post_webhook(chatbot("down-1", "conv-down"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_webhook(chatbot("slow-1", "conv-slow"))
            .await
            .status(),
        200
    );
    let rows = settled(&app, 2).await;
    let failed = row(&rows, "down-1").clone();
    let unknown = row(&rows, "slow-1").clone();
    assert_eq!(
        (failed.reply.status.as_str(), unknown.reply.status.as_str()),
        ("failed", "unknown")
    );

    let (status, page) = app.get_as(TOKEN, "/api/v1/outbox?status=failed").await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], failed.id);
    assert_eq!(items[0]["message_id"], "down-1");
    assert_eq!(items[0]["conversation_id"], "conv-down");
    assert_eq!(items[0]["reply"]["text"], "re: down-1");
    assert_eq!(items[0]["credential"], "api key");
    assert!(items[0]["record"].as_str().unwrap().starts_with("message_"));
    let (_, first) = app.get_as(TOKEN, "/api/v1/outbox?limit=1").await;
    assert_eq!(first["items"][0]["id"], unknown.id, "newest first");
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get_as(TOKEN, &format!("/api/v1/outbox?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(second["items"][0]["id"], failed.id);
    assert!(second["next_cursor"].is_null());
    let (_, by_conversation) = app
        .get_as(TOKEN, "/api/v1/outbox?conversation_id=conv-slow")
        .await;
    assert_eq!(by_conversation["items"][0]["status"], "unknown");
    let (status, _) = app.get_as(TOKEN, "/api/v1/outbox?status=lost").await;
    assert_eq!(status, 400);

    let (code, out, err) = cli(&app, &["outbox", "status", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    let counts = shown["counts"].as_array().unwrap();
    assert!(counts.contains(&json!({"endpoint": "backend", "status": "failed", "replies": 1})));
    assert!(counts.contains(&json!({"endpoint": "backend", "status": "unknown", "replies": 1})));
    let (code, out, _) = cli(&app, &["outbox", "status"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("outbox retry --id"), "{out}");

    // An unknown reply is sent again only when the operator says so.
    let unknown_id = unknown.id.to_string();
    let (code, _, err) = cli(&app, &["outbox", "retry", "--id", &unknown_id]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("may show the message twice") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(
        row(&outbox(&app).await, "slow-1").reply.status.as_str(),
        "unknown"
    );

    let failed_id = failed.id.to_string();
    let (code, out, err) = cli(&app, &["outbox", "retry", "--id", &failed_id]).await;
    assert_eq!(code, 0, "{out}{err}");
    let rows = settled(&app, 2).await;
    let retried = row(&rows, "down-1");
    assert_eq!(
        (retried.reply.status.as_str(), retried.attempts),
        ("sent", 2),
        "{retried:#?}"
    );
    let (code, _, err) = cli(&app, &["outbox", "retry", "--id", &failed_id]).await;
    assert_eq!(code, 2);
    assert!(err.contains("is sent: only failed and unknown"), "{err}");
    let (code, _, err) = cli(&app, &["outbox", "retry", "--id", "999999"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("no reply with id 999999"), "{err}");
}

/// The binary serving on `port` over `database`, forwarding to `receiver` and sending to
/// `divar`.
fn serving(
    dir: &tempfile::TempDir,
    port: u16,
    database: &str,
    receiver: &str,
    divar: &str,
) -> std::process::Command {
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{database}\"\n\
             [metrics]\nenabled = false\n[divar]\nidentification_keys = [\"{KEY}\"]\n\
             api_key = \"{API_KEY}\"\nopen_api_base_url = \"{divar}\"\nrequest_timeout_ms = 20000\n\
             [forward]\nallow_private_http = true\n[[forward.endpoints]]\nname = \"backend\"\n\
             url = \"{receiver}/hook\"\nsecret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

async fn a_reply_cut_off_by_kill_9_is_unknown_and_never_sent_again(backend: Backend) {
    let divar = MockServer::start().await;
    // The call is under way (committed as sending, the request at Divar) when the process dies.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&divar)
        .await;
    let receiver = replying(echo).await;
    let app = spawn_app(backend).await;
    let database = app.settings.database.url.expose_secret().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = serving(&dir, port, &database, &receiver.uri(), &divar.uri())
        .spawn()
        .unwrap();
    wait_until_ready(port).await;
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/divar"))
        .header("authorization", KEY)
        .header("content-type", "application/json")
        .body(chatbot("cut-1", "conv-cut"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while divar.received_requests().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the call was never made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(outbox(&app).await[0].reply.status.as_str(), "sending");

    // The next forwarder of the endpoint finds the row cut off.
    let port = free_port();
    let mut child = serving(&dir, port, &database, &receiver.uri(), &divar.uri())
        .spawn()
        .unwrap();
    wait_until_ready(port).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = outbox(&app).await;
        if rows[0].reply.status.as_str() == "unknown" {
            assert!(
                rows[0]
                    .reply
                    .answer
                    .as_deref()
                    .unwrap()
                    .contains("not known"),
                "{rows:#?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{rows:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        divar.received_requests().await.unwrap().len(),
        1,
        "never sent twice"
    );
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
}

on_both_backends!(a_reply_goes_with_the_credential_its_record_calls_for);
on_both_backends!(replies_no_call_can_make_are_refused_and_the_push_still_counts);
on_both_backends!(a_retried_or_replayed_push_never_sends_a_second_reply);
on_both_backends!(divar_failures_end_unknown_retried_or_refused);
on_both_backends!(the_outbox_is_seen_in_the_api_and_the_cli_and_retried_by_hand);
on_both_backends!(a_reply_cut_off_by_kill_9_is_unknown_and_never_sent_again);
on_both_backends!(erasing_a_conversation_takes_its_replies_with_it);
