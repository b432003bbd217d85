//! Set-based batch writes: a batch costs the same few statements whatever its size. Every
//! message of the batch goes in with one insert, the conversations they touch are upserted
//! once each with one more, then events and clicks likewise; the `returning` rows say which
//! records were new. Before this, each record cost its own round trips inside the batch's
//! transaction, and the writer was bound by statement latency, not by the database's work.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{NewClick, NewEvent, NewIds, NewMessage, NewRecord, WriteOutcome};

pub(super) use super::sql::without_nul as clean;

pub(super) fn clean_opt(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(clean)
}

/// A record of a batch with its position and its key as the database holds it (U+0000
/// replaced).
pub(super) struct Item<'a, T> {
    pub index: usize,
    pub key: Cow<'a, str>,
    pub record: &'a T,
}

/// A batch sorted for the statements: the first record of each key, by table. A later copy
/// of a key in the same batch is a redelivery of it and never reaches the database.
pub(super) struct Plan<'a> {
    pub messages: Vec<Item<'a, NewMessage>>,
    pub events: Vec<Item<'a, NewEvent>>,
    pub clicks: Vec<Item<'a, NewClick>>,
    len: usize,
}

impl<'a> Plan<'a> {
    pub fn new(records: &'a [NewRecord]) -> Plan<'a> {
        let mut plan = Plan {
            messages: Vec::new(),
            events: Vec::new(),
            clicks: Vec::new(),
            len: records.len(),
        };
        // Keys as the database will hold them, so two spellings of one stored key are one
        // key here too.
        let mut seen: HashSet<(u8, Cow<'a, str>)> = HashSet::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let (table, key) = match record {
                NewRecord::Message(m) => (0, clean(&m.id)),
                NewRecord::Event(e) => (1, clean(&e.dedupe_key)),
                NewRecord::Click(c) => (2, clean(&c.id)),
            };
            if !seen.insert((table, key.clone())) {
                continue;
            }
            match record {
                NewRecord::Message(record) => plan.messages.push(Item { index, key, record }),
                NewRecord::Event(record) => plan.events.push(Item { index, key, record }),
                NewRecord::Click(record) => plan.clicks.push(Item { index, key, record }),
            }
        }
        plan
    }

    /// Outcomes in batch order from the `(key, seq)` rows each insert returned: a record whose
    /// key came back was stored; everything else (an existing key, or a later copy inside
    /// this batch) is a duplicate.
    pub fn outcomes(
        &self,
        messages: &HashMap<String, i64>,
        events: &HashMap<String, i64>,
        clicks: &HashMap<String, i64>,
    ) -> (Vec<WriteOutcome>, NewIds) {
        let mut outcomes = vec![WriteOutcome::Duplicate; self.len];
        let mut ids = NewIds::default();
        fn mark<T>(
            items: &[Item<'_, T>],
            returned: &HashMap<String, i64>,
            outcomes: &mut [WriteOutcome],
            newest: &mut Option<i64>,
        ) {
            for item in items {
                if let Some(&seq) = returned.get(item.key.as_ref()) {
                    outcomes[item.index] = WriteOutcome::Stored;
                    *newest = Some(newest.map_or(seq, |s| s.max(seq)));
                }
            }
        }
        mark(&self.messages, messages, &mut outcomes, &mut ids.message);
        mark(&self.events, events, &mut outcomes, &mut ids.event);
        mark(&self.clicks, clicks, &mut outcomes, &mut ids.click);
        (outcomes, ids)
    }
}

/// What a batch's new messages change in one conversation: counts and the time range add
/// up, and each fact is the first one known, as if the messages had been stored one by one
/// in batch order.
#[derive(Debug)]
pub(super) struct ConversationChange<'a> {
    /// As stored (U+0000 replaced).
    pub id: Cow<'a, str>,
    pub kind: &'a str,
    pub source: &'static str,
    pub post_token: Option<&'a str>,
    pub supply_user_id: Option<&'a str>,
    pub demand_user_id: Option<&'a str>,
    pub first_message_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub message_count: i64,
}

/// The conversation changes of the messages that were stored, sorted by conversation id
/// (so concurrent writers would lock rows in one order).
pub(super) fn conversation_changes<'a>(
    plan: &Plan<'a>,
    stored: &HashMap<String, i64>,
) -> Vec<ConversationChange<'a>> {
    let mut by_id: HashMap<Cow<'a, str>, ConversationChange<'a>> = HashMap::new();
    for item in plan
        .messages
        .iter()
        .filter(|i| stored.contains_key(i.key.as_ref()))
    {
        let (m, c) = (item.record, &item.record.conversation);
        match by_id.entry(clean(&c.id)) {
            Entry::Vacant(slot) => {
                let id = slot.key().clone();
                slot.insert(ConversationChange {
                    id,
                    kind: &c.kind,
                    source: m.source.as_str(),
                    post_token: c.post_token.as_deref(),
                    supply_user_id: c.supply_user_id.as_deref(),
                    demand_user_id: c.demand_user_id.as_deref(),
                    first_message_at: m.sent_at,
                    last_message_at: m.sent_at,
                    message_count: 1,
                });
            }
            Entry::Occupied(mut slot) => {
                let change = slot.get_mut();
                change.post_token = change.post_token.or(c.post_token.as_deref());
                change.supply_user_id = change.supply_user_id.or(c.supply_user_id.as_deref());
                change.demand_user_id = change.demand_user_id.or(c.demand_user_id.as_deref());
                change.first_message_at = change.first_message_at.min(m.sent_at);
                change.last_message_at = change.last_message_at.max(m.sent_at);
                change.message_count += 1;
            }
        }
    }
    let mut changes: Vec<_> = by_id.into_values().collect();
    changes.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    changes
}

/// The columns of a message insert, in statement order.
pub(super) const MESSAGE_COLUMNS: &str = "id, source, event_type, conversation_id, post_token, \
     message_type, text, sender_side, sender_type, sender_id, receiver_side, receiver_id, \
     sent_at, sent_at_raw, received_at, raw_body, data, metadata";

/// The columns of a conversation upsert, in statement order.
pub(super) const CONVERSATION_COLUMNS: &str = "id, kind, source, post_token, supply_user_id, \
     demand_user_id, first_message_at, last_message_at, message_count";

/// How an existing conversation takes a batch's change; `least`/`greatest` are the
/// dialect's two-argument min and max.
pub(super) fn conversation_conflict(least: &str, greatest: &str) -> String {
    format!(
        " on conflict (id) do update set \
           post_token = coalesce(conversation.post_token, excluded.post_token), \
           supply_user_id = coalesce(conversation.supply_user_id, excluded.supply_user_id), \
           demand_user_id = coalesce(conversation.demand_user_id, excluded.demand_user_id), \
           first_message_at = {least}(conversation.first_message_at, excluded.first_message_at), \
           last_message_at = {greatest}(conversation.last_message_at, excluded.last_message_at), \
           message_count = conversation.message_count + excluded.message_count"
    )
}

/// The columns of an event insert, in statement order.
pub(super) const EVENT_COLUMNS: &str = "dedupe_key, event_type, subtype, subject_id, post_token, \
     raw_body, received_at, payload, metadata";

/// The columns of a click insert, in statement order.
pub(super) const CLICK_COLUMNS: &str = "id, version, source, post_token, conversation_id, \
     user_id, peer_id, side, rule, url, outcome, raw_body, received_at, provider_data";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ConversationFacts, MessageSource};

    fn message(id: &str, conversation: &str, post: Option<&str>, at: i64) -> NewRecord {
        let t = DateTime::from_timestamp(at, 0).unwrap();
        NewRecord::Message(NewMessage {
            id: id.to_owned(),
            source: MessageSource::Events,
            event_type: "NEW_MESSAGE".to_owned(),
            conversation: ConversationFacts {
                id: conversation.to_owned(),
                kind: "POST".to_owned(),
                post_token: post.map(str::to_owned),
                supply_user_id: None,
                demand_user_id: None,
            },
            message_type: "TEXT".to_owned(),
            text: None,
            sender_side: None,
            sender_type: None,
            sender_id: None,
            receiver_side: None,
            receiver_id: None,
            sent_at: t,
            sent_at_raw: None,
            received_at: t,
            data: None,
            metadata: None,
            raw_body: Vec::new(),
        })
    }

    #[test]
    fn a_copy_inside_the_batch_is_a_duplicate_of_the_first() {
        let records = [
            message("a", "c1", None, 10),
            message("b", "c1", None, 20),
            message("a", "c1", None, 10),
        ];
        let plan = Plan::new(&records);
        assert_eq!(plan.messages.len(), 2);
        let stored = HashMap::from([("a".to_owned(), 7), ("b".to_owned(), 8)]);
        let (outcomes, ids) = plan.outcomes(&stored, &HashMap::new(), &HashMap::new());
        assert_eq!(
            outcomes,
            [
                WriteOutcome::Stored,
                WriteOutcome::Stored,
                WriteOutcome::Duplicate
            ]
        );
        assert_eq!(ids.message, Some(8));
        assert_eq!(ids.event, None);
    }

    #[test]
    fn conversation_changes_add_up_and_keep_the_first_known_fact() {
        let records = [
            message("a", "c2", None, 30),
            message("b", "c1", Some("P1"), 20),
            message("c", "c2", Some("P2"), 10),
            message("d", "c2", Some("P3"), 50),
            message("e", "c1", None, 5),
        ];
        let plan = Plan::new(&records);
        // "e" was a redelivery: it changes nothing.
        let stored: HashMap<String, i64> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), i as i64))
            .collect();
        let changes = conversation_changes(&plan, &stored);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].id, "c1");
        assert_eq!(changes[0].message_count, 1);
        assert_eq!(changes[0].first_message_at.timestamp(), 20);
        assert_eq!(changes[1].id, "c2");
        assert_eq!(changes[1].message_count, 3);
        assert_eq!(changes[1].post_token, Some("P2"));
        assert_eq!(changes[1].first_message_at.timestamp(), 10);
        assert_eq!(changes[1].last_message_at.timestamp(), 50);
    }

    #[test]
    fn nul_becomes_the_replacement_character() {
        assert_eq!(clean("a\0b"), "a\u{fffd}b");
        assert!(matches!(clean("ab"), Cow::Borrowed("ab")));
    }
}
