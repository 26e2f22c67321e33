//! The committed MVCC store: reads at any retained revision, recovery from the engine, and the
//! apply round through which the single applier writes.
//!
//! Concurrency: one applier thread writes, any number of readers read. Writers update the index
//! as they go but publish a new current revision only after the engine write of the round has
//! returned; readers read at (at most) the published revision, so they never look for a value
//! that is not on disk yet. Compaction raises the compacted revision *before* it prunes the
//! index, and readers re-check it after reading, so a read racing a compaction fails with
//! `Compacted` instead of returning a partial answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use prost::Message;
use strata_proto::mvccpb::{Event, KeyValue};

use super::key_index::KeyIndex;
use super::revision::Revision;
use super::{meta, ReadView};
use crate::engine::{Cf, Engine, WriteBatch};
use crate::error::{Error, Result};

/// The events of one main revision, shared by every watcher that receives them.
#[derive(Debug, Clone)]
pub struct RevisionEvents {
    pub rev: i64,
    pub events: Arc<[Event]>,
}

pub struct MvccStore {
    engine: Arc<dyn Engine>,
    pub(crate) index: RwLock<KeyIndex>,
    current: AtomicI64,
    compacted: AtomicI64,
}

fn read_i64(engine: &dyn Engine, key: &[u8]) -> Result<i64> {
    Ok(match engine.get(Cf::Meta, key)? {
        Some(v) if v.len() == 8 => i64::from_be_bytes(v.try_into().expect("length checked")),
        Some(v) => return Err(Error::corrupt(format!("meta value of {} bytes", v.len()))),
        None => 0,
    })
}

impl MvccStore {
    /// Opens the store over `engine`, rebuilding the key index from the stored history.
    pub fn open(engine: Arc<dyn Engine>) -> Result<Self> {
        let (index, current, compacted) = Self::load(engine.as_ref())?;
        Ok(Self {
            engine,
            index: RwLock::new(index),
            current: AtomicI64::new(current),
            compacted: AtomicI64::new(compacted),
        })
    }

    /// Rebuilds everything from the engine (after a snapshot replaced its contents). Only the
    /// applier calls this, on its own thread, so no apply round is in progress.
    pub fn reload(&self) -> Result<()> {
        self.replace_with(|| Ok(())).map(|_| ())
    }

    /// Runs `rewrite` (which replaces the engine's history, e.g. a snapshot restore) with the
    /// key index locked, then rebuilds the index: readers wait rather than see a half-written
    /// history.
    pub fn replace_with<T>(&self, rewrite: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut ix = self.index.write();
        let out = rewrite()?;
        let (index, current, compacted) = Self::load(self.engine.as_ref())?;
        *ix = index;
        self.compacted.store(compacted, Ordering::Release);
        self.current.store(current, Ordering::Release);
        Ok(out)
    }

    fn load(engine: &dyn Engine) -> Result<(KeyIndex, i64, i64)> {
        let mut index = KeyIndex::new();
        let mut last = 0i64;
        let mut failure = None;
        engine.scan(Cf::Kv, &[], None, &mut |k, v| {
            let step = (|| -> Result<()> {
                let (rev, tombstone) = Revision::from_key(k)?;
                let kv = KeyValue::decode(v)?;
                if tombstone {
                    index.tombstone(&kv.key, rev);
                } else {
                    index.put(&kv.key, rev, kv.create_revision, kv.version, kv.lease);
                }
                last = rev.main;
                Ok(())
            })();
            match step {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        let current = last.max(read_i64(engine, meta::CURRENT_REV)?).max(1);
        let compacted = read_i64(engine, meta::COMPACT_REV)?;
        Ok((index, current, compacted))
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The latest revision whose changes are durable in the engine and visible to reads.
    pub fn current_revision(&self) -> i64 {
        self.current.load(Ordering::Acquire)
    }

    pub fn compact_revision(&self) -> i64 {
        self.compacted.load(Ordering::Acquire)
    }

    /// Number of keys with a live value at the current revision.
    pub fn key_count(&self) -> usize {
        let ix = self.index.read();
        ix.range(&[0], &[0], self.current_revision(), 0).1
    }

    /// Checks that `rev` (0 = current) can be read and returns the revision to read at.
    pub fn check_revision(&self, rev: i64) -> Result<i64> {
        let current = self.current_revision();
        if rev > current {
            return Err(Error::FutureRev);
        }
        let rev = if rev <= 0 { current } else { rev };
        if rev < self.compact_revision() {
            return Err(Error::Compacted);
        }
        Ok(rev)
    }

    /// Reads the values of `revs` (each a put, never a tombstone).
    pub(crate) fn fetch(&self, revs: &[Revision]) -> Result<Vec<KeyValue>> {
        let keys: Vec<Vec<u8>> = revs.iter().map(|r| r.to_key(false)).collect();
        let values = self.engine.multi_get(Cf::Kv, &keys)?;
        let mut out = Vec::with_capacity(values.len());
        for (rev, v) in revs.iter().zip(values) {
            match v {
                Some(v) => out.push(KeyValue::decode(v.as_slice())?),
                None if rev.main <= self.compact_revision() => return Err(Error::Compacted),
                None => return Err(Error::corrupt(format!("no value for revision {rev:?}"))),
            }
        }
        Ok(out)
    }

    /// Reads the events of revisions `[from, to]` whose key satisfies `wanted`, in revision
    /// order, stopping once more than `max_events` were collected at a revision boundary (a
    /// revision's events are never split). Returns the events and the last revision examined.
    pub fn events_between(
        &self,
        from: i64,
        to: i64,
        max_events: usize,
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<(Vec<RevisionEvents>, i64)> {
        let mut out: Vec<RevisionEvents> = Vec::new();
        let mut cur: Option<(i64, Vec<Event>)> = None;
        let mut total = 0usize;
        let mut last = from - 1;
        let mut failure = None;
        let end = Revision::start_key(to.saturating_add(1));
        self.engine.scan(
            Cf::Kv,
            &Revision::start_key(from),
            Some(&end),
            &mut |k, v| {
                let (rev, tombstone) = match Revision::from_key(k) {
                    Ok(r) => r,
                    Err(e) => {
                        failure = Some(e);
                        return false;
                    }
                };
                if cur.as_ref().is_some_and(|(r, _)| *r != rev.main) {
                    let (r, evs) = cur.take().expect("checked above");
                    last = r;
                    if !evs.is_empty() {
                        total += evs.len();
                        out.push(RevisionEvents {
                            rev: r,
                            events: evs.into(),
                        });
                    }
                    if total >= max_events {
                        return false;
                    }
                }
                let entry = cur.get_or_insert_with(|| (rev.main, Vec::new()));
                let mut kv = match KeyValue::decode(v) {
                    Ok(kv) => kv,
                    Err(e) => {
                        failure = Some(e.into());
                        return false;
                    }
                };
                if wanted(&kv.key) {
                    let r#type = if tombstone {
                        kv = KeyValue {
                            key: kv.key,
                            mod_revision: rev.main,
                            ..Default::default()
                        };
                        strata_proto::mvccpb::event::EventType::Delete
                    } else {
                        strata_proto::mvccpb::event::EventType::Put
                    };
                    entry.1.push(Event {
                        r#type: r#type as i32,
                        kv: Some(kv),
                        prev_kv: None,
                    });
                }
                true
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        if total < max_events {
            if let Some((r, evs)) = cur.take() {
                if !evs.is_empty() {
                    out.push(RevisionEvents {
                        rev: r,
                        events: evs.into(),
                    });
                }
            }
            last = to;
        }
        if from < self.compact_revision() {
            return Err(Error::Compacted);
        }
        Ok((out, last))
    }

    /// The value of `key` visible just before revision `rev` (for watchers asking for prev_kv).
    pub fn prev_kv(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>> {
        let found = self
            .index
            .read()
            .get(key)
            .and_then(|h| h.visible_at(rev - 1));
        match found {
            Some(r) => Ok(self.fetch(&[r])?.pop()),
            None => Ok(None),
        }
    }

    /// The key-values visible at `at` in the range (values read with `fetch`), and the number of
    /// visible keys. Fails with `Compacted` if a compaction passed `at` meanwhile.
    pub(crate) fn range_at(
        &self,
        key: &[u8],
        end: &[u8],
        at: i64,
        limit: usize,
        count_only: bool,
        fetch: impl FnOnce(&[Revision]) -> Result<Vec<KeyValue>>,
    ) -> Result<(Vec<KeyValue>, usize)> {
        let (found, count) = self.index.read().range(key, end, at, limit);
        let kvs = if count_only {
            Vec::new()
        } else {
            let revs: Vec<Revision> = found.iter().map(|(_, r)| *r).collect();
            fetch(&revs)?
        };
        if at < self.compact_revision() {
            return Err(Error::Compacted);
        }
        Ok((kvs, count))
    }

    /// A read view of the committed store at revision `rev` (0 = current).
    pub fn read_at(&self, rev: i64) -> Result<StoreView<'_>> {
        let at = self.check_revision(rev)?;
        // The header names the revision the read is served at (for a historical read, the
        // store's revision when it started, as etcd does), never one published while the read
        // ran: a client that lists at the header's revision and then watches from it must not
        // miss the changes in between.
        let header = if rev <= 0 {
            at
        } else {
            self.current_revision().max(at)
        };
        Ok(StoreView {
            store: self,
            rev: at,
            header,
        })
    }

    /// Starts a round of writes by the applier.
    pub fn begin_round(&self) -> ApplyRound<'_> {
        ApplyRound {
            store: self,
            batch: WriteBatch::new(),
            pending: HashMap::new(),
            rev: self.current_revision(),
            events: Vec::new(),
        }
    }

    /// Makes `rev` visible to readers; called after the round's batch is in the engine.
    pub fn publish(&self, rev: i64) {
        self.current.store(rev, Ordering::Release);
    }
}

/// The committed store at one revision.
pub struct StoreView<'s> {
    store: &'s MvccStore,
    rev: i64,
    /// The revision reported in the response header.
    header: i64,
}

impl ReadView for StoreView<'_> {
    fn header_revision(&self) -> i64 {
        self.header
    }

    fn range_kvs(
        &self,
        key: &[u8],
        end: &[u8],
        rev: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<(Vec<KeyValue>, usize)> {
        let at = if rev <= 0 {
            self.rev
        } else {
            self.store.check_revision(rev)?
        };
        self.store
            .range_at(key, end, at, limit, count_only, |revs| {
                self.store.fetch(revs)
            })
    }
}

/// The writes of one apply round: any number of transactions (each one main revision) and
/// compactions, written to the engine in one batch by the applier.
pub struct ApplyRound<'s> {
    pub(crate) store: &'s MvccStore,
    pub(crate) batch: WriteBatch,
    /// Values written in this round but not yet in the engine.
    pub(crate) pending: HashMap<Revision, KeyValue>,
    /// The last main revision assigned in this round.
    pub(crate) rev: i64,
    pub(crate) events: Vec<RevisionEvents>,
}

impl<'s> ApplyRound<'s> {
    /// The latest revision, including transactions of this round.
    pub fn revision(&self) -> i64 {
        self.rev
    }

    pub(crate) fn fetch(&self, revs: &[Revision]) -> Result<Vec<KeyValue>> {
        if revs.iter().all(|r| !self.pending.contains_key(r)) {
            return self.store.fetch(revs);
        }
        revs.iter()
            .map(|r| match self.pending.get(r) {
                Some(kv) => Ok(kv.clone()),
                None => Ok(self.store.fetch(&[*r])?.remove(0)),
            })
            .collect()
    }

    /// Compacts the history at `rev`: afterwards no read below `rev` is possible and superseded
    /// values are gone from the engine.
    pub fn compact(&mut self, rev: i64) -> Result<()> {
        if rev > self.rev {
            return Err(Error::FutureRev);
        }
        if rev <= self.store.compact_revision() {
            return Err(Error::Compacted);
        }
        self.store.compacted.store(rev, Ordering::Release);
        let dropped = self.store.index.write().compact(rev);
        for c in dropped {
            self.pending.remove(&c.rev);
            self.batch.delete(Cf::Kv, c.rev.to_key(c.tombstone));
        }
        self.batch
            .put(Cf::Meta, meta::COMPACT_REV, rev.to_be_bytes().to_vec());
        Ok(())
    }

    /// Ends the round: the batch to write (with the current revision recorded) and the events
    /// to publish once it is written.
    pub fn finish(mut self) -> (WriteBatch, i64, Vec<RevisionEvents>) {
        if !self.events.is_empty() {
            self.batch
                .put(Cf::Meta, meta::CURRENT_REV, self.rev.to_be_bytes().to_vec());
        }
        (self.batch, self.rev, self.events)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::engine::RocksEngine;
    use crate::mvcc::WriteTxn;

    fn put(store: &MvccStore, key: &str, value: &str) {
        let mut round = store.begin_round();
        let mut txn = WriteTxn::new(&mut round);
        txn.put(
            Bytes::from(key.to_string()),
            Bytes::from(value.to_string()),
            0,
        );
        txn.commit();
        let (batch, rev, _) = round.finish();
        store.engine().write(batch, false).expect("write");
        store.publish(rev);
    }

    /// Found by `strata chaos`: a read's header named the revision current when the header was
    /// filled, so a write published during the read made the header newer than the data.
    #[test]
    fn header_revision_is_the_revision_read_at() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("open"));
        let store = MvccStore::open(engine).expect("mvcc");
        put(&store, "k", "1");
        let view = store.read_at(0).expect("view");
        let historical = store.read_at(2).expect("historical view");
        put(&store, "k", "2");
        let (kvs, _) = view.range_kvs(b"k", b"", 0, 0, false).expect("range");
        assert_eq!(kvs[0].value.as_ref(), b"1");
        assert_eq!(kvs[0].mod_revision, 2);
        assert_eq!(
            view.header_revision(),
            2,
            "the header must match the data read"
        );
        assert_eq!(historical.header_revision(), 2);
        assert_eq!(store.read_at(2).expect("view").header_revision(), 3);
    }
}
