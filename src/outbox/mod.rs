//! Replies in the answer to a push: an endpoint that answers a forwarded message with
//! `200`, `content-type: application/json` and `{"reply": {...}}` has kenar-hook send that
//! reply to Divar, at most once per record and endpoint (docs/forwarding.md, "Replies").
//!
//! The reply is read here when the answer comes, and recorded with the push's progress:
//! `sending` with the call that will answer it (its target), or `refused` with the reason.
//! [`send::Sender`] then makes the call.

pub mod send;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::divar::outbound::ButtonGrid;
use crate::forward::deliver::{JsonBody, REPLY_MAX};
use crate::store::RecordKind;
use crate::store::forward::Pending;
use crate::store::outbox::{NewReply, OutboxStatus};

/// The reply an endpoint answers with.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The text.
    pub text: Option<String>,
    /// A token of a file uploaded to Divar.
    pub media_token: Option<String>,
    /// Buttons under the message, in Divar's ButtonGrid shape (at most 3 × 3).
    pub buttons: Option<ButtonGrid>,
    /// The signed-in user (app-scoped id) to write as, instead of the one found.
    pub as_user: Option<String>,
}

/// Which Divar call answers a record, and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "api", rename_all = "snake_case")]
pub enum Target {
    /// A `NEW_CHATBOT_MESSAGE`: the chatbot writes in the conversation, with the API key.
    Chatbot {
        /// The chatbot conversation.
        conversation_id: String,
    },
    /// A `NEW_MESSAGE`: send message v2 in the conversation, with the token of `as_user` or
    /// of the user whose subscription covers the post.
    Conversation {
        /// The conversation.
        conversation_id: String,
        /// Its post, whose subscription names the user.
        post_token: Option<String>,
        /// The user the reply asked to write as.
        as_user: Option<String>,
    },
    /// A legacy `CHAT_MESSAGE`: the legacy send, as `user_id` (the receiver, or `as_user`)
    /// to `peer_id`.
    Legacy {
        /// The consenting user written as.
        user_id: String,
        /// The other side.
        peer_id: String,
        /// The post of the conversation.
        post_token: String,
    },
}

/// What a pushed message body tells about its record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Record {
    id: Option<String>,
    conversation_id: Option<String>,
    post_token: Option<String>,
    source: Option<String>,
    event_type: Option<String>,
    sender: Option<Participant>,
    receiver: Option<Participant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Participant {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
}

/// The reply in a `200` JSON answer to the push of `p`, if it holds one: `sending` with its
/// target, or `refused` with the reason.
pub fn read(p: &Pending, body: &JsonBody) -> Option<NewReply> {
    let record: Record = serde_json::from_str(&p.body).unwrap_or_default();
    let mut new = NewReply {
        record: p.record,
        record_id: record.id.clone(),
        conversation_id: record.conversation_id.clone(),
        status: OutboxStatus::Refused,
        json: String::new(),
        target: None,
        answer: None,
    };
    let bytes = match body {
        JsonBody::Whole(bytes) => bytes,
        JsonBody::TooLarge => {
            new.json = "null".into();
            new.answer = Some(format!(
                "the answer is longer than {} KiB: it was not read for a reply",
                REPLY_MAX / 1024
            ));
            return Some(new);
        }
    };
    // A body that is not a JSON object with a `reply` is no reply, as any other 2xx.
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    let value = answer.remove("reply").filter(|v| !v.is_null())?;
    new.json = value.to_string();
    match plan(p.record.kind, &record, value) {
        Ok(target) => {
            new.status = OutboxStatus::Sending;
            new.target = Some(serde_json::to_string(&target).expect("a target serializes"));
        }
        Err(reason) => new.answer = Some(reason),
    }
    Some(new)
}

/// The target of a well-formed reply to a record, or why there is none.
fn plan(kind: RecordKind, record: &Record, value: Value) -> Result<Target, String> {
    let reply: Reply =
        serde_json::from_value(value).map_err(|e| format!("the reply is malformed: {e}"))?;
    check(&reply)?;
    if kind != RecordKind::Message {
        return Err(format!(
            "a reply answers a message; this record is of kind {kind} (events and clicks are not answered)"
        ));
    }
    if record
        .sender
        .as_ref()
        .and_then(|s| s.kind.as_deref())
        .is_some_and(|t| t.eq_ignore_ascii_case("BOT"))
    {
        return Err(
            "the message was written by an app (sender type BOT): answering it could start a \
             loop"
                .into(),
        );
    }
    let conversation = || {
        record
            .conversation_id
            .clone()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| "the message names no conversation".to_owned())
    };
    match (record.source.as_deref(), record.event_type.as_deref()) {
        (_, Some("NEW_CHATBOT_MESSAGE")) => {
            if reply.as_user.is_some() {
                return Err(
                    "as_user does not apply to a chatbot conversation: the chatbot writes with \
                     the API key"
                        .into(),
                );
            }
            Ok(Target::Chatbot {
                conversation_id: conversation()?,
            })
        }
        (_, Some("NEW_MESSAGE")) => Ok(Target::Conversation {
            conversation_id: conversation()?,
            post_token: record.post_token.clone().filter(|t| !t.trim().is_empty()),
            as_user: reply.as_user,
        }),
        (Some("legacy"), _) => {
            if reply.buttons.is_some() || reply.media_token.is_some() {
                return Err(
                    "the legacy send carries text only: no buttons or media_token in a reply \
                     to a CHAT_MESSAGE"
                        .into(),
                );
            }
            if reply.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                return Err("the legacy send needs text".into());
            }
            let id = |p: &Option<Participant>| {
                p.as_ref()
                    .and_then(|p| p.id.clone())
                    .filter(|i| !i.trim().is_empty())
            };
            let (sender, receiver) = (id(&record.sender), id(&record.receiver));
            let user_id = reply.as_user.or(receiver.clone()).ok_or_else(|| {
                "the message names no receiver to write as: answer with as_user".to_owned()
            })?;
            // Writing as one side, to the other.
            let peer_id = if Some(&user_id) == sender.as_ref() {
                receiver
            } else {
                sender
            }
            .ok_or_else(|| "the message names no other side to write to".to_owned())?;
            let post_token = record
                .post_token
                .clone()
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| "the message names no post".to_owned())?;
            Ok(Target::Legacy {
                user_id,
                peer_id,
                post_token,
            })
        }
        (source, event) => Err(format!(
            "no Divar call answers a message of source {} and type {}",
            source.unwrap_or("?"),
            event.unwrap_or("?")
        )),
    }
}

/// Text or media, non-blank `as_user`, and buttons within Divar's limits.
fn check(reply: &Reply) -> Result<(), String> {
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    if blank(&reply.text) && blank(&reply.media_token) {
        return Err("the reply has neither text nor media_token".into());
    }
    if reply.as_user.is_some() && blank(&reply.as_user) {
        return Err("as_user is blank".into());
    }
    if let Some(grid) = &reply.buttons {
        grid.validate("reply.buttons").map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn pending(kind: RecordKind, body: Value) -> Pending {
        Pending {
            record: crate::store::RecordRef { kind, seq: 7 },
            order_key: None,
            received_at: Utc::now(),
            attempts: 0,
            next_at: Utc::now(),
            body: body.to_string(),
        }
    }

    fn message(source: &str, event_type: &str) -> Value {
        json!({"kind": "message", "id": "m1", "conversation_id": "c1", "post_token": "P1",
            "source": source, "event_type": event_type,
            "sender": {"side": "BUYER", "type": "HUMAN", "id": "buyer"},
            "receiver": {"side": "SELLER", "type": null, "id": "seller"}})
    }

    fn answer(v: Value) -> JsonBody {
        JsonBody::Whole(v.to_string().into_bytes())
    }

    fn target(r: &NewReply) -> Target {
        serde_json::from_str(r.target.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn a_body_without_reply_is_no_reply() {
        let p = pending(RecordKind::Message, message("events", "NEW_MESSAGE"));
        for body in [
            json!({}),
            json!({"ok": true}),
            json!([1]),
            json!({"reply": null}),
        ] {
            assert!(read(&p, &answer(body)).is_none());
        }
        assert!(read(&p, &JsonBody::Whole(b"not json".to_vec())).is_none());
    }

    #[test]
    fn each_record_gets_its_call() {
        let reply = answer(json!({"reply": {"text": "سلام"}}));
        let read_message = |source, event_type| {
            let r = read(
                &pending(RecordKind::Message, message(source, event_type)),
                &reply,
            )
            .unwrap();
            assert_eq!(r.status, OutboxStatus::Sending, "{event_type}");
            assert_eq!(
                (r.record_id.as_deref(), r.conversation_id.as_deref()),
                (Some("m1"), Some("c1")),
                "{event_type}"
            );
            target(&r)
        };
        assert_eq!(
            read_message("events", "NEW_CHATBOT_MESSAGE"),
            Target::Chatbot {
                conversation_id: "c1".into()
            }
        );
        assert_eq!(
            read_message("events", "NEW_MESSAGE"),
            Target::Conversation {
                conversation_id: "c1".into(),
                post_token: Some("P1".into()),
                as_user: None
            }
        );
        assert_eq!(
            read_message("legacy", "CHAT_MESSAGE"),
            Target::Legacy {
                user_id: "seller".into(),
                peer_id: "buyer".into(),
                post_token: "P1".into()
            }
        );
    }

    #[test]
    fn malformed_replies_are_refused_with_the_reason() {
        let p = pending(RecordKind::Message, message("events", "NEW_MESSAGE"));
        let cases = [
            (json!({"reply": {"txt": "x"}}), "unknown field `txt`"),
            (json!({"reply": "hello"}), "the reply is malformed"),
            (json!({"reply": {}}), "neither text nor media_token"),
            (
                json!({"reply": {"text": "x", "as_user": " "}}),
                "as_user is blank",
            ),
            (
                json!({"reply": {"text": "x", "buttons": {"rows": [
                    {"buttons": []}, {"buttons": []}, {"buttons": []}, {"buttons": []}]}}}),
                "buttons",
            ),
        ];
        for (body, reason) in cases {
            let r = read(&p, &answer(body.clone())).unwrap();
            assert_eq!(r.status, OutboxStatus::Refused, "{body}");
            assert!(r.target.is_none());
            let said = r.answer.unwrap();
            assert!(said.contains(reason), "{body}: {said}");
        }
        let r = read(&p, &JsonBody::TooLarge).unwrap();
        assert_eq!(r.status, OutboxStatus::Refused);
    }

    #[test]
    fn events_clicks_and_bot_messages_are_not_answered() {
        let reply = answer(json!({"reply": {"text": "x"}}));
        let r = read(
            &pending(RecordKind::Event, json!({"kind": "event"})),
            &reply,
        )
        .unwrap();
        assert!(r.answer.unwrap().contains("of kind event"));
        let r = read(
            &pending(RecordKind::Click, json!({"kind": "click"})),
            &reply,
        )
        .unwrap();
        assert_eq!(r.status, OutboxStatus::Refused);
        let mut bot = message("events", "NEW_MESSAGE");
        bot["sender"]["type"] = json!("BOT");
        let r = read(&pending(RecordKind::Message, bot), &reply).unwrap();
        assert!(r.answer.unwrap().contains("sender type BOT"));
    }

    #[test]
    fn a_legacy_reply_is_text_only() {
        let p = pending(RecordKind::Message, message("legacy", "CHAT_MESSAGE"));
        let r = read(&p, &answer(json!({"reply": {"media_token": "t"}}))).unwrap();
        assert_eq!(r.status, OutboxStatus::Refused);
        let r = read(
            &p,
            &answer(json!({"reply": {"text": "x", "as_user": "buyer"}})),
        )
        .unwrap();
        assert_eq!(
            target(&r),
            Target::Legacy {
                user_id: "buyer".into(),
                peer_id: "seller".into(),
                post_token: "P1".into()
            }
        );
    }
}
