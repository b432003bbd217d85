//! What an endpoint is sent: records read from the logs after its position, filtered, as
//! the read API's item plus `kind`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::settings::EndpointSettings;
use crate::items::{Item, read_log};
use crate::store::forward::Pending;
use crate::store::query::StreamQuery;
use crate::store::{RecordKind, RecordRef, Store};

/// Records read per query.
pub const READ_BATCH: i64 = 500;
/// Bytes of rows read per query at most.
const READ_BUDGET: usize = 8 << 20;

/// Whether an endpoint's `include` names a log (in the plural: `messages`).
pub fn included(endpoint: &EndpointSettings, kind: RecordKind) -> bool {
    let plural = format!("{}s", kind.as_str());
    endpoint.include.contains(&plural)
}

/// The body posted: the API item with `kind` first.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    kind: &'a str,
    #[serde(flatten)]
    item: T,
}

fn body<T: Serialize>(kind: &str, item: T) -> String {
    serde_json::to_string(&Envelope { kind, item }).expect("items serialise")
}

/// The `webhook-id` of a record, `<kind>_<installation>_<seq>`: the same for every attempt
/// and replay, and never the same for two databases, whose seqs both start at 1.
pub fn webhook_id(installation: &str, record: RecordRef) -> String {
    format!("{}_{installation}_{}", record.kind, record.seq)
}

/// The record a `webhook-id` of this installation names. The short form of earlier versions,
/// `message_12`, is read too: the seqs of a database did not change when the installation
/// id was added to the id, so an operator's old note still names the same record.
pub fn parse_webhook_id(installation: &str, id: &str) -> Result<RecordRef, String> {
    let expected = || {
        let example = RecordRef {
            kind: RecordKind::Message,
            seq: 12,
        };
        format!(
            "expected a webhook-id such as {}",
            webhook_id(installation, example)
        )
    };
    let (kind, rest) = id.split_once('_').ok_or_else(expected)?;
    let kind = RecordKind::parse(kind).ok_or_else(expected)?;
    let seq = match rest.split_once('_') {
        Some(("", _)) => return Err(expected()),
        Some((of, _)) if of != installation => {
            return Err(format!(
                "a record of another installation ({of}); this database's is {installation}"
            ));
        }
        Some((_, seq)) => seq,
        None => rest,
    };
    match seq.parse::<i64>() {
        Ok(seq) if seq > 0 => Ok(RecordRef { kind, seq }),
        _ => Err(expected()),
    }
}

/// Which records an endpoint wants, beyond their kind.
#[derive(Debug, Clone)]
pub struct Filter {
    post_tokens: Vec<String>,
    types: Vec<String>,
}

impl Filter {
    /// The filter of an endpoint's settings.
    pub fn new(endpoint: &EndpointSettings) -> Self {
        Filter {
            post_tokens: endpoint.post_tokens.clone(),
            types: endpoint
                .types
                .iter()
                .map(|t| t.to_ascii_uppercase())
                .collect(),
        }
    }

    /// Every record.
    pub fn everything() -> Self {
        Filter {
            post_tokens: Vec::new(),
            types: Vec::new(),
        }
    }

    fn wants(&self, post_token: Option<&str>, kind_type: Option<&str>) -> bool {
        let post_ok = self.post_tokens.is_empty()
            || post_token.is_some_and(|p| self.post_tokens.iter().any(|t| t == p));
        let type_ok = match kind_type {
            None => true,
            Some(t) => self.types.is_empty() || self.types.iter().any(|x| x == t),
        };
        post_ok && type_ok
    }
}

/// Records of one log after `after`: those the filter wants, as pending records due at
/// `now`; the last `seq` read (wanted or not); and whether the log may hold more.
pub async fn read(
    store: &Store,
    kind: RecordKind,
    after: i64,
    limit: i64,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Result<(Vec<Pending>, i64, bool), crate::store::Error> {
    let mut out = Vec::new();
    let mut last = after;
    let q = StreamQuery {
        after_seq: after,
        limit,
        ..Default::default()
    };
    let (count, cut) = read_log(store, kind, &q, READ_BUDGET, |record, received_at, item| {
        last = record.seq;
        if filter.wants(item.post_token(), item.type_name()) {
            out.push(Pending {
                record,
                order_key: order_key(&item),
                received_at,
                attempts: 0,
                next_at: now,
                body: body(kind.as_str(), &item),
            });
        }
    })
    .await?;
    Ok((out, last, cut || count as i64 >= limit))
}

/// Records of one key are delivered in order: a conversation's messages, the events about
/// one subject, the clicks in one conversation.
fn order_key(item: &Item<'_>) -> Option<String> {
    match item {
        Item::Message(m) => Some(format!("conversation:{}", m.conversation_id)),
        Item::Event(e) => e
            .subject_id
            .as_ref()
            .map(|s| format!("subject:{}:{s}", e.event_type)),
        Item::Click(c) => c
            .conversation_id
            .as_ref()
            .map(|id| format!("click-conversation:{id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLATION: &str = "0123456789abcdef0123456789abcdef";

    fn at(kind: RecordKind, seq: i64) -> RecordRef {
        RecordRef { kind, seq }
    }

    #[test]
    fn a_webhook_id_names_its_kind_installation_and_seq() {
        let id = webhook_id(INSTALLATION, at(RecordKind::Message, 12));
        assert_eq!(id, "message_0123456789abcdef0123456789abcdef_12");
        assert_eq!(
            parse_webhook_id(INSTALLATION, &id),
            Ok(at(RecordKind::Message, 12))
        );
    }

    #[test]
    fn the_short_form_of_earlier_versions_is_read() {
        assert_eq!(
            parse_webhook_id(INSTALLATION, "click_7"),
            Ok(at(RecordKind::Click, 7))
        );
    }

    #[test]
    fn an_id_of_another_installation_is_refused() {
        let other = webhook_id("fedcba9876543210fedcba9876543210", at(RecordKind::Event, 3));
        let error = parse_webhook_id(INSTALLATION, &other).unwrap_err();
        assert!(error.contains("another installation"), "{error}");
    }

    #[test]
    fn malformed_ids_are_refused() {
        for id in [
            "",
            "message",
            "message_",
            "reply_3",
            "message_x",
            "message_0",
            "message__3",
        ] {
            assert!(parse_webhook_id(INSTALLATION, id).is_err(), "{id}");
        }
    }
}
