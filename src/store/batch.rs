//! Set-based batch writes: a batch costs the same few statements whatever its size. Every
//! message of the batch goes in with one insert, the conversations they touch are upserted
//! once each with one more, then events and clicks likewise; the `returning` rows say which
//! records were new (and which messages conflict with a stored one). Before this, each record cost its own round trips inside the batch's
//! transaction, and the writer was bound by statement latency, not by the database's work.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

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
    /// The key column: message id, event dedupe key or click id.
    pub key: Cow<'a, str>,
    /// What the key is unique within: a message's origin; empty for events and clicks.
    pub origin: Cow<'a, str>,
    pub record: &'a T,
}

impl<T> Item<'_, T> {
    /// The key and its origin as one string, for matching rows the database returned. A
    /// stored key never holds U+0000, so a NUL cannot be part of either and separates them;
    /// the empty origin (everything but a registration's messages) costs no copy.
    pub fn slot(&self) -> Cow<'_, str> {
        scoped(&self.key, &self.origin)
    }
}

const NO_ORIGIN: Cow<'static, str> = Cow::Borrowed("");

/// The slot of a key within an origin: see [`Item::slot`].
pub(super) fn scoped<'k>(key: &'k str, origin: &str) -> Cow<'k, str> {
    if origin.is_empty() {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("{origin}\0{key}"))
    }
}

/// What the message insert returned for a key: the row that holds it now. That is the new
/// row, or, when the key was held by a message of another conversation or post, the row
/// that holds it (returned, unchanged, so that the conflict is seen in the same statement).
/// A key held by the same conversation and post returns nothing: a redelivery.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Held {
    pub seq: i64,
    pub conversation_id: String,
    pub post_token: Option<String>,
}

impl Held {
    /// Whether this row is the message itself: the same conversation and post, as stored.
    /// Only then was the message stored; otherwise the row holds its key in another place.
    pub fn holds(&self, m: &NewMessage) -> bool {
        same_place(m, &self.conversation_id, self.post_token.as_deref())
    }
}

/// Whether a message names the given conversation and post, as stored.
fn same_place(m: &NewMessage, conversation_id: &str, post_token: Option<&str>) -> bool {
    clean(&m.conversation.id) == conversation_id
        && clean_opt(&m.conversation.post_token).as_deref() == post_token
}

/// A later copy of a message key inside one batch, and the position in [`Plan::messages`]
/// of the first.
struct Repeat<'a> {
    index: usize,
    first: usize,
    record: &'a NewMessage,
}

/// A batch sorted for the statements: the first record of each key, by table. A later copy
/// of a key in the same batch never reaches the database: it is a redelivery of whatever
/// holds the key after the statement or, for a message naming another conversation or post,
/// a conflict with it.
pub(super) struct Plan<'a> {
    pub messages: Vec<Item<'a, NewMessage>>,
    pub events: Vec<Item<'a, NewEvent>>,
    pub clicks: Vec<Item<'a, NewClick>>,
    repeats: Vec<Repeat<'a>>,
    len: usize,
}

impl<'a> Plan<'a> {
    pub fn new(records: &'a [NewRecord]) -> Plan<'a> {
        let mut plan = Plan {
            messages: Vec::new(),
            events: Vec::new(),
            clicks: Vec::new(),
            repeats: Vec::new(),
            len: records.len(),
        };
        // Keys as the database will hold them, so two spellings of one stored key are one
        // key here too; each with the position of its first record in its table's list.
        let mut seen: HashMap<(u8, Cow<'a, str>, Cow<'a, str>), usize> =
            HashMap::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let (table, key, origin, position) = match record {
                NewRecord::Message(m) => (0, clean(&m.id), clean(&m.origin), plan.messages.len()),
                NewRecord::Event(e) => (1, clean(&e.dedupe_key), NO_ORIGIN, plan.events.len()),
                NewRecord::Click(c) => (2, clean(&c.id), NO_ORIGIN, plan.clicks.len()),
            };
            match seen.entry((table, key.clone(), origin.clone())) {
                Entry::Occupied(first) => {
                    if let NewRecord::Message(record) = record {
                        let first = *first.get();
                        plan.repeats.push(Repeat {
                            index,
                            first,
                            record,
                        });
                    }
                    continue;
                }
                Entry::Vacant(slot) => {
                    slot.insert(position);
                }
            }
            match record {
                NewRecord::Message(record) => plan.messages.push(Item {
                    index,
                    key,
                    origin,
                    record,
                }),
                NewRecord::Event(record) => plan.events.push(Item {
                    index,
                    key,
                    origin,
                    record,
                }),
                NewRecord::Click(record) => plan.clicks.push(Item {
                    index,
                    key,
                    origin,
                    record,
                }),
            }
        }
        plan
    }

    /// Outcomes in batch order from the rows each insert returned, by slot: a message whose
    /// slot came back naming its own conversation and post was stored, naming another one
    /// it is a conflict; an event or click whose key came back was stored. Anything else (an
    /// existing key, or a later copy inside this batch) is a duplicate, except a later copy of
    /// a message naming another conversation or post than the row that holds its key, which
    /// is a conflict: as if the batch had been written one record at a time.
    pub fn outcomes(
        &self,
        messages: &HashMap<String, Held>,
        events: &HashMap<String, i64>,
        clicks: &HashMap<String, i64>,
    ) -> (Vec<WriteOutcome>, NewIds) {
        let mut outcomes = vec![WriteOutcome::Duplicate; self.len];
        let mut ids = NewIds::default();
        fn newest(newest: &mut Option<i64>, seq: i64) {
            *newest = Some(newest.map_or(seq, |s| s.max(seq)));
        }
        for item in &self.messages {
            if let Some(held) = messages.get(item.slot().as_ref()) {
                outcomes[item.index] = if held.holds(item.record) {
                    newest(&mut ids.message, held.seq);
                    WriteOutcome::Stored
                } else {
                    WriteOutcome::Conflict
                };
            }
        }
        for repeat in &self.repeats {
            let first = &self.messages[repeat.first];
            // Not returned: the row that holds the key names the first copy's place.
            let same = match messages.get(first.slot().as_ref()) {
                Some(held) => held.holds(repeat.record),
                None => same_place(
                    repeat.record,
                    &clean(&first.record.conversation.id),
                    clean_opt(&first.record.conversation.post_token).as_deref(),
                ),
            };
            if !same {
                outcomes[repeat.index] = WriteOutcome::Conflict;
            }
        }
        fn mark<T>(
            items: &[Item<'_, T>],
            returned: &HashMap<String, i64>,
            outcomes: &mut [WriteOutcome],
            newest_seq: &mut Option<i64>,
        ) {
            for item in items {
                if let Some(&seq) = returned.get(item.key.as_ref()) {
                    outcomes[item.index] = WriteOutcome::Stored;
                    newest(newest_seq, seq);
                }
            }
        }
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

/// The conversation changes of the messages that were stored, by the batch's outcomes,
/// sorted by conversation id (so concurrent writers would lock rows in one order).
pub(super) fn conversation_changes<'a>(
    plan: &Plan<'a>,
    outcomes: &[WriteOutcome],
) -> Vec<ConversationChange<'a>> {
    let mut by_id: HashMap<Cow<'a, str>, ConversationChange<'a>> = HashMap::new();
    for item in plan
        .messages
        .iter()
        .filter(|i| outcomes[i.index] == WriteOutcome::Stored)
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
pub(super) const MESSAGE_COLUMNS: &str = "id, origin, source, event_type, conversation_id, post_token, \
     message_type, text, sender_side, sender_type, sender_id, receiver_side, receiver_id, \
     sent_at, sent_at_raw, received_at, raw_body, data, metadata";

/// How a message insert meets a key its origin holds already. A row of another conversation
/// or post is "updated" to its own values and so returned as it is: the conflict is seen in
/// the insert itself, with the row locked, never by a look-up that a concurrent commit could
/// outdate. A row of the same conversation and post returns nothing: a redelivery. The
/// column rewritten is in no index. `is_distinct` is the dialect's null-safe `<>`.
pub(super) fn message_conflict(is_distinct: &str) -> String {
    format!(
        " on conflict (id, origin) do update set received_at = message.received_at \
           where message.conversation_id <> excluded.conversation_id \
             or message.post_token {is_distinct} excluded.post_token \
           returning id, origin, seq, conversation_id, post_token"
    )
}

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
        scoped_message(id, "", conversation, post, at)
    }

    fn scoped_message(
        id: &str,
        origin: &str,
        conversation: &str,
        post: Option<&str>,
        at: i64,
    ) -> NewRecord {
        let t = DateTime::from_timestamp(at, 0).unwrap();
        NewRecord::Message(NewMessage {
            id: id.to_owned(),
            origin: origin.to_owned(),
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

    /// What the insert returns for a new row: the row itself.
    fn held(seq: i64, conversation: &str, post: Option<&str>) -> Held {
        Held {
            seq,
            conversation_id: conversation.to_owned(),
            post_token: post.map(str::to_owned),
        }
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
        let stored = HashMap::from([
            ("a".to_owned(), held(7, "c1", None)),
            ("b".to_owned(), held(8, "c1", None)),
        ]);
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
    fn one_id_in_two_origins_is_two_keys() {
        let records = [
            scoped_message("b-2", "", "cb", Some("B"), 10),
            scoped_message("b-2", "A", "ca", Some("A"), 10),
        ];
        let plan = Plan::new(&records);
        assert_eq!(plan.messages.len(), 2);
        let slots: Vec<_> = plan
            .messages
            .iter()
            .map(|i| i.slot().into_owned())
            .collect();
        assert_eq!(slots, ["b-2", "A\0b-2"]);
        let stored = HashMap::from([
            ("b-2".to_owned(), held(1, "cb", Some("B"))),
            ("A\0b-2".to_owned(), held(2, "ca", Some("A"))),
        ]);
        let (outcomes, ids) = plan.outcomes(&stored, &HashMap::new(), &HashMap::new());
        assert_eq!(outcomes, [WriteOutcome::Stored, WriteOutcome::Stored]);
        assert_eq!(ids.message, Some(2));
    }

    #[test]
    fn a_key_held_in_another_place_is_a_conflict() {
        let records = [
            message("x", "c2", Some("P"), 10),
            message("x", "c1", Some("P"), 10),
            message("y", "c1", Some("P"), 10),
            message("y", "c1", Some("Q"), 10),
            message("y", "c1", Some("P"), 10),
        ];
        let plan = Plan::new(&records);
        assert_eq!(plan.messages.len(), 2);
        // "x" is held by c1 from before: the first copy conflicts, the second is a
        // redelivery of the stored row. "y" is new: its copy of another post conflicts.
        let returned = HashMap::from([
            ("x".to_owned(), held(3, "c1", Some("P"))),
            ("y".to_owned(), held(9, "c1", Some("P"))),
        ]);
        let (outcomes, ids) = plan.outcomes(&returned, &HashMap::new(), &HashMap::new());
        use WriteOutcome::{Conflict as C, Duplicate as D, Stored as S};
        assert_eq!(outcomes, [C, D, S, C, D]);
        assert_eq!(ids.message, Some(9), "a conflict's row is not new");
        let changes = conversation_changes(&plan, &outcomes);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].message_count, 1, "only y");
    }

    #[test]
    fn a_copy_of_a_redelivery_is_judged_by_the_first_copys_place() {
        let records = [message("z", "c1", None, 10), message("z", "c2", None, 10)];
        let plan = Plan::new(&records);
        // Nothing returned: "z" was held by c1 already.
        let (outcomes, _) = plan.outcomes(&HashMap::new(), &HashMap::new(), &HashMap::new());
        assert_eq!(outcomes, [WriteOutcome::Duplicate, WriteOutcome::Conflict]);
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
        use WriteOutcome::{Duplicate as D, Stored as S};
        let changes = conversation_changes(&plan, &[S, S, S, S, D]);
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
