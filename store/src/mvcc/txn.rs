//! A write transaction: every change it makes gets the same main revision.
//!
//! Changes are staged in an overlay until `commit`, so reads inside the transaction see its own
//! earlier writes (as etcd's do) and a transaction that fails half-way leaves nothing behind: the
//! applier simply drops it. `commit` moves the staged changes into the round's index, pending
//! values and engine batch, and records the revision's events.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message;
use strata_proto::mvccpb::{event::EventType, Event, KeyValue};

use super::key_index::in_range;
use super::revision::Revision;
use super::store::{ApplyRound, RevisionEvents};
use super::ReadView;
use crate::engine::Cf;
use crate::error::{Error, Result};

/// A key whose lease attachment changed, for the lessor to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseChange {
    pub key: Bytes,
    pub old: i64,
    pub new: i64,
}

pub struct WriteTxn<'r, 's> {
    round: &'r mut ApplyRound<'s>,
    rev: i64,
    /// The state of every key this transaction touched: `None` once deleted.
    overlay: BTreeMap<Bytes, Option<KeyValue>>,
    events: Vec<Event>,
    lease_changes: Vec<LeaseChange>,
}

impl<'r, 's> WriteTxn<'r, 's> {
    pub fn new(round: &'r mut ApplyRound<'s>) -> Self {
        let rev = round.rev + 1;
        Self {
            round,
            rev,
            overlay: BTreeMap::new(),
            events: Vec::new(),
            lease_changes: Vec::new(),
        }
    }

    /// The revision this transaction writes at (if it writes at all).
    pub fn revision(&self) -> i64 {
        self.rev
    }

    pub fn has_changes(&self) -> bool {
        !self.events.is_empty()
    }

    /// The current live value of `key`, including this transaction's changes.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        if let Some(state) = self.overlay.get(key) {
            return Ok(state.clone());
        }
        let latest = self
            .round
            .store
            .index
            .read()
            .get(key)
            .and_then(|h| h.latest());
        match latest {
            Some(rev) => Ok(self.round.fetch(&[rev])?.pop()),
            None => Ok(None),
        }
    }

    /// Create revision, version and lease of `key`'s live generation (zeros when absent),
    /// without reading its value.
    fn live_meta(&self, key: &[u8]) -> (i64, i64, i64) {
        if let Some(state) = self.overlay.get(key) {
            return state
                .as_ref()
                .map_or((0, 0, 0), |kv| (kv.create_revision, kv.version, kv.lease));
        }
        let ix = self.round.store.index.read();
        ix.get(key)
            .map_or((0, 0, 0), |h| (h.create, h.version, h.lease))
    }

    /// Puts `key = value` with `lease` and returns the new key-value.
    pub fn put(&mut self, key: Bytes, value: Bytes, lease: i64) -> KeyValue {
        let (create, version, old_lease) = self.live_meta(&key);
        let kv = KeyValue {
            key: key.clone(),
            create_revision: if version == 0 { self.rev } else { create },
            mod_revision: self.rev,
            version: version + 1,
            value,
            lease,
        };
        if old_lease != lease {
            self.lease_changes.push(LeaseChange {
                key: key.clone(),
                old: old_lease,
                new: lease,
            });
        }
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv.clone()),
            prev_kv: None,
        });
        self.overlay.insert(key, Some(kv.clone()));
        kv
    }

    /// The live keys in `[key, end)` (with etcd's range conventions), in key order.
    fn live_keys(&self, key: &[u8], end: &[u8]) -> Vec<Bytes> {
        let mut keys: BTreeMap<Bytes, bool> = BTreeMap::new();
        self.round.store.index.read().for_each_in(key, end, |k, h| {
            if h.latest().is_some() {
                keys.insert(k.clone(), true);
            }
            true
        });
        for (k, state) in &self.overlay {
            if in_range(k, key, end) {
                keys.insert(k.clone(), state.is_some());
            }
        }
        keys.into_iter()
            .filter(|(_, live)| *live)
            .map(|(k, _)| k)
            .collect()
    }

    /// Deletes every live key in the range; returns the deleted key-values when `want_prev`,
    /// and how many keys were deleted.
    pub fn delete_range(
        &mut self,
        key: &[u8],
        end: &[u8],
        want_prev: bool,
    ) -> Result<(usize, Vec<KeyValue>)> {
        let keys = self.live_keys(key, end);
        let mut prevs = Vec::new();
        for k in &keys {
            if want_prev {
                if let Some(kv) = self.get(k)? {
                    prevs.push(kv);
                }
            }
            let (_, _, old_lease) = self.live_meta(k);
            if old_lease != 0 {
                self.lease_changes.push(LeaseChange {
                    key: k.clone(),
                    old: old_lease,
                    new: 0,
                });
            }
            let kv = KeyValue {
                key: k.clone(),
                mod_revision: self.rev,
                ..Default::default()
            };
            self.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(kv),
                prev_kv: None,
            });
            self.overlay.insert(k.clone(), None);
        }
        Ok((keys.len(), prevs))
    }

    /// Writes the staged changes into the round. Returns the lease changes for the lessor.
    pub fn commit(self) -> Vec<LeaseChange> {
        if self.events.is_empty() {
            return Vec::new();
        }
        let round = self.round;
        {
            let mut ix = round.store.index.write();
            for (sub, ev) in self.events.iter().enumerate() {
                let kv = ev
                    .kv
                    .as_ref()
                    .expect("every staged event carries its key-value");
                let rev = Revision::new(self.rev, sub as i64);
                if ev.r#type == EventType::Delete as i32 {
                    ix.tombstone(&kv.key, rev);
                    let stored = KeyValue {
                        key: kv.key.clone(),
                        ..Default::default()
                    };
                    round
                        .batch
                        .put(Cf::Kv, rev.to_key(true), stored.encode_to_vec());
                } else {
                    ix.put(&kv.key, rev, kv.create_revision, kv.version, kv.lease);
                    round
                        .batch
                        .put(Cf::Kv, rev.to_key(false), kv.encode_to_vec());
                    round.pending.insert(rev, kv.clone());
                }
            }
        }
        round.rev = self.rev;
        round.events.push(RevisionEvents {
            rev: self.rev,
            events: self.events.into(),
        });
        self.lease_changes
    }
}

impl ReadView for WriteTxn<'_, '_> {
    fn header_revision(&self) -> i64 {
        if self.has_changes() {
            self.rev
        } else {
            self.round.rev
        }
    }

    fn range_kvs(
        &self,
        key: &[u8],
        end: &[u8],
        rev: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<(Vec<KeyValue>, usize)> {
        let head = self.header_revision();
        if rev > head {
            return Err(Error::FutureRev);
        }
        if rev > 0 && rev < head {
            // A historical read inside a transaction sees only committed revisions.
            if rev < self.round.store.compact_revision() {
                return Err(Error::Compacted);
            }
            let round = &*self.round;
            return round
                .store
                .range_at(key, end, rev, limit, count_only, |revs| round.fetch(revs));
        }
        let keys = self.live_keys(key, end);
        let count = keys.len();
        if count_only {
            return Ok((Vec::new(), count));
        }
        let take = if limit == 0 { count } else { limit.min(count) };
        let mut kvs = Vec::with_capacity(take);
        for k in keys.iter().take(take) {
            if let Some(kv) = self.get(k)? {
                kvs.push(kv);
            }
        }
        Ok((kvs, count))
    }
}
