//! The pending records of one endpoint, in memory: which may be sent now. Records of one
//! order key (a conversation) go one at a time, in `seq` order: the next waits until the one
//! before is delivered or dead, however long its retries take. Records of other keys do not
//! wait for it. A record may be woken to go before its own time (an endpoint that answers
//! again after failing); its own time is kept for when such an early try fails.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::store::RecordRef;
use crate::store::forward::Pending;

#[derive(Debug, Default)]
pub struct Queue {
    /// Each record, its order key, and when it may go: its own `next_at`, or earlier once
    /// woken.
    items: HashMap<RecordRef, (Pending, String, DateTime<Utc>)>,
    keys: HashMap<String, BTreeSet<RecordRef>>,
    busy: HashSet<String>,
    /// In flight when forgotten: dropped, not retried, when the answer fails.
    forgotten: HashSet<RecordRef>,
    heap: BinaryHeap<Reverse<(DateTime<Utc>, RecordRef)>>,
}

fn key_of(p: &Pending) -> String {
    match &p.order_key {
        Some(k) => format!("k:{k}"),
        None => format!("r:{}:{}", p.record.kind, p.record.seq),
    }
}

impl Queue {
    /// Records held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether a record is held.
    pub fn contains(&self, id: RecordRef) -> bool {
        self.items.contains_key(&id)
    }

    /// The oldest arrival among the records held.
    pub fn oldest_received(&self) -> Option<DateTime<Utc>> {
        self.items.values().map(|(p, _, _)| p.received_at).min()
    }

    /// Adds a record; one held already is left as it is.
    pub fn insert(&mut self, p: Pending) {
        let id = p.record;
        if self.items.contains_key(&id) {
            return;
        }
        let key = key_of(&p);
        self.keys.entry(key.clone()).or_default().insert(id);
        let at = p.next_at;
        self.items.insert(id, (p, key.clone(), at));
        self.schedule_head(&key);
    }

    fn schedule_head(&mut self, key: &str) {
        if self.busy.contains(key) {
            return;
        }
        if let Some(head) = self.keys.get(key).and_then(|q| q.first()) {
            let at = self.items[head].2;
            self.heap.push(Reverse((at, *head)));
        }
    }

    /// When the next record may become ready (possibly earlier: a stale entry).
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// A record due by `now` whose key has nothing in flight; it is in flight from now on.
    pub fn take_ready(&mut self, now: DateTime<Utc>) -> Option<Pending> {
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now {
                return None;
            }
            let Reverse((at, id)) = self.heap.pop().expect("peeked");
            let Some((p, key, ready_at)) = self.items.get(&id) else {
                continue;
            };
            let is_head = self.keys.get(key).and_then(|q| q.first()) == Some(&id);
            if *ready_at != at || !is_head || self.busy.contains(key) {
                continue;
            }
            self.busy.insert(key.clone());
            return Some(p.clone());
        }
        None
    }

    /// The record that would go first, whether due or not: an endpoint's probe.
    pub fn take_first(&mut self) -> Option<Pending> {
        self.take_ready(DateTime::<Utc>::MAX_UTC)
    }

    /// Lets every record waiting for a later time go from `now`, each conversation still in
    /// order.
    pub fn wake(&mut self, now: DateTime<Utc>) {
        let mut keys = Vec::new();
        for (_, key, ready_at) in self.items.values_mut() {
            if *ready_at > now {
                *ready_at = now;
                keys.push(key.clone());
            }
        }
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            self.schedule_head(&key);
        }
    }

    /// A record in flight was delivered or given up: the next of its key may go.
    pub fn done(&mut self, id: RecordRef) {
        self.forgotten.remove(&id);
        let Some((_, key, _)) = self.items.get(&id) else {
            return;
        };
        let key = key.clone();
        self.busy.remove(&key);
        self.remove(id, &key);
    }

    /// Takes a record out of the queue and of its key's line; the next of the key may go.
    fn remove(&mut self, id: RecordRef, key: &str) {
        self.items.remove(&id);
        if let Some(q) = self.keys.get_mut(key) {
            q.remove(&id);
            if q.is_empty() {
                self.keys.remove(key);
                return;
            }
        }
        self.schedule_head(key);
    }

    /// The records held.
    pub fn ids(&self) -> Vec<RecordRef> {
        self.items.keys().copied().collect()
    }

    /// Drops a record that is no longer pending (erased or pruned from the database); one in
    /// flight is dropped when its answer comes, whatever it is.
    pub fn forget(&mut self, id: RecordRef) {
        let Some((_, key, _)) = self.items.get(&id) else {
            return;
        };
        let key = key.clone();
        let in_flight =
            self.busy.contains(&key) && self.keys.get(&key).and_then(|q| q.first()) == Some(&id);
        if in_flight {
            self.forgotten.insert(id);
        } else {
            self.remove(id, &key);
        }
    }

    /// Whether a record in flight was forgotten.
    pub fn is_forgotten(&self, id: RecordRef) -> bool {
        self.forgotten.contains(&id)
    }

    /// A record in flight failed: it is tried again at `next_at`, and its key waits; one
    /// forgotten meanwhile is dropped instead. Whether it is still held.
    pub fn retry(&mut self, id: RecordRef, attempts: i64, next_at: DateTime<Utc>) -> bool {
        if self.forgotten.remove(&id) {
            self.done(id);
            return false;
        }
        let Some((p, key, ready_at)) = self.items.get_mut(&id) else {
            return false;
        };
        p.attempts = attempts;
        p.next_at = next_at;
        *ready_at = next_at;
        let key = key.clone();
        self.busy.remove(&key);
        self.schedule_head(&key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn message(seq: i64) -> RecordRef {
        RecordRef {
            kind: crate::store::RecordKind::Message,
            seq,
        }
    }

    fn record(seq: i64, key: Option<&str>, at: DateTime<Utc>) -> Pending {
        Pending {
            record: message(seq),
            order_key: key.map(str::to_owned),
            received_at: at,
            attempts: 0,
            next_at: at,
            body: String::new(),
        }
    }

    /// A queue of `records` (seq, order key), all due at `at`.
    fn queue(records: &[(i64, Option<&str>)], at: DateTime<Utc>) -> Queue {
        let mut q = Queue::default();
        for (seq, key) in records {
            q.insert(record(*seq, *key, at));
        }
        q
    }

    #[test]
    fn a_conversation_waits_for_its_retried_record_and_others_do_not() {
        let now = Utc::now();
        let mut q = queue(&[(1, Some("a")), (2, Some("a")), (3, Some("b"))], now);
        let first = q.take_ready(now).unwrap();
        let second = q.take_ready(now).unwrap();
        assert_eq!((first.record.seq, second.record.seq), (1, 3));
        assert!(q.take_ready(now).is_none(), "2 waits for 1");
        q.retry(message(1), 1, now + Duration::seconds(5));
        assert!(
            q.take_ready(now).is_none(),
            "2 still waits while 1 is retried"
        );
        assert_eq!(
            q.take_ready(now + Duration::seconds(5)).unwrap().record.seq,
            1
        );
        q.done(message(1));
        assert_eq!(q.take_ready(now).unwrap().record.seq, 2);
    }

    #[test]
    fn a_forgotten_record_is_never_taken_and_one_in_flight_stays() {
        let now = Utc::now();
        let mut q = queue(&[(1, Some("c")), (2, Some("c")), (3, Some("d"))], now);
        let first = q.take_ready(now).unwrap();
        assert_eq!(first.record.seq, 1);
        q.forget(message(1));
        q.forget(message(3));
        assert!(q.contains(message(1)), "in flight");
        assert!(!q.contains(message(3)));
        assert!(q.take_ready(now).is_none(), "2 waits for 1; 3 is gone");
        q.done(message(1));
        assert_eq!(q.take_ready(now).unwrap().record.seq, 2);
        assert!(q.take_ready(now).is_none());
    }

    #[test]
    fn a_record_forgotten_in_flight_is_dropped_when_its_try_fails() {
        let now = Utc::now();
        let mut q = queue(&[(1, Some("c")), (2, Some("c"))], now);
        let id = message(1);
        assert_eq!(q.take_ready(now).unwrap().record.seq, 1);
        q.forget(id);
        assert!(q.is_forgotten(id));
        assert!(!q.retry(id, 1, now), "not held for a retry");
        assert!(!q.contains(id) && !q.is_forgotten(id));
        assert_eq!(
            q.take_first().unwrap().record.seq,
            2,
            "the next of its conversation goes"
        );
        assert!(q.take_first().is_none());
        // One not forgotten is held.
        assert!(q.retry(message(2), 1, now));
        assert_eq!(q.take_ready(now).unwrap().record.seq, 2);
    }

    #[test]
    fn woken_records_go_now_in_order_and_keep_their_own_time() {
        let now = Utc::now();
        let later = now + Duration::seconds(60);
        let mut q = queue(&[(1, Some("e")), (2, Some("e"))], later);
        q.insert(record(3, Some("f"), later + Duration::seconds(1)));
        assert!(q.take_ready(now).is_none(), "nothing due yet");
        let probe = q.take_first().unwrap();
        assert_eq!(probe.record.seq, 1, "the earliest goes first");
        q.retry(message(1), 0, later);
        q.wake(now);
        let first = q.take_ready(now).unwrap();
        let second = q.take_ready(now).unwrap();
        assert_eq!((first.record.seq, second.record.seq), (1, 3));
        assert_eq!(first.next_at, later, "its own time is kept");
        assert!(q.take_ready(now).is_none(), "2 waits for 1");
        q.done(message(1));
        assert_eq!(
            q.take_ready(now).unwrap().record.seq,
            2,
            "woken with the rest"
        );
    }

    #[test]
    fn records_without_a_key_go_side_by_side() {
        let now = Utc::now();
        let mut q = queue(&[(1, None), (2, None)], now);
        assert!(q.take_ready(now).is_some());
        assert!(q.take_ready(now).is_some());
    }
}
