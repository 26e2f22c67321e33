//! The Raft log in the engine: raft-rs' `Storage` as an adapter over [`Engine`].
//!
//! Layout in the Raft column family: `e` + index (8 bytes, big-endian) for entries, `hs` for the
//! hard state, `cs` for the conf state, `snap` for the index and term of the last entry that was
//! compacted away (the log starts right after it). A small in-memory tail of recent entries
//! serves the common reads (committed entries to apply, entries to replicate) without the engine.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

use super::SnapshotSource;
use crate::engine::{Cf, Engine, WriteBatch};
use crate::error::{Error, Result};

/// How long a captured snapshot is offered again to other followers that need one.
const SNAPSHOT_REUSE: Duration = Duration::from_secs(30);

const HARD_STATE: &[u8] = b"hs";
const CONF_STATE: &[u8] = b"cs";
const SNAP_META: &[u8] = b"snap";
const TAIL: usize = 4096;

fn entry_key(index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(b'e');
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn decode<M: protobuf::Message>(bytes: &[u8]) -> Result<M> {
    M::parse_from_bytes(bytes).map_err(Error::corrupt)
}

fn encode<M: protobuf::Message>(m: &M) -> Vec<u8> {
    m.write_to_bytes()
        .expect("encoding a raft message into memory cannot fail")
}

pub struct LogStore {
    engine: Arc<dyn Engine>,
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the last compacted entry.
    snap: SnapshotMetadata,
    last_index: u64,
    tail: VecDeque<Entry>,
    source: Option<Arc<dyn SnapshotSource>>,
    /// The last snapshot captured for a follower, and when.
    captured: Mutex<Option<(Snapshot, Instant)>>,
}

impl LogStore {
    pub fn open(engine: Arc<dyn Engine>) -> Result<Self> {
        let hard_state = match engine.get(Cf::Raft, HARD_STATE)? {
            Some(b) => decode(&b)?,
            None => HardState::default(),
        };
        let conf_state = match engine.get(Cf::Raft, CONF_STATE)? {
            Some(b) => decode(&b)?,
            None => ConfState::default(),
        };
        let snap = match engine.get(Cf::Raft, SNAP_META)? {
            Some(b) => decode(&b)?,
            None => SnapshotMetadata::default(),
        };
        let last_index = match engine.last_in_range(Cf::Raft, b"e", b"f")? {
            Some((k, _)) if k.len() == 9 => {
                u64::from_be_bytes(k[1..9].try_into().expect("length checked"))
            }
            Some(_) => return Err(Error::corrupt("malformed raft entry key")),
            None => snap.index,
        };
        Ok(Self {
            engine,
            hard_state,
            conf_state,
            snap,
            last_index,
            tail: VecDeque::new(),
            source: None,
            captured: Mutex::new(None),
        })
    }

    /// Where snapshots for lagging followers come from (none: followers must catch up from the log).
    pub fn set_snapshot_source(&mut self, source: Arc<dyn SnapshotSource>) {
        self.source = Some(source);
    }

    /// True when the log has never been written (a brand-new member).
    pub fn is_empty(&self) -> bool {
        self.last_index == 0
            && self.conf_state.voters.is_empty()
            && self.conf_state.learners.is_empty()
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Bootstraps a new cluster's log with its initial configuration, as if a snapshot at index 1
    /// (term 1) had been applied: every founding member starts identically, and a member that
    /// joins later, with an empty log, is necessarily brought up by a snapshot carrying the
    /// configuration (entries before index 2 do not exist).
    pub fn bootstrap(&mut self, voters: Vec<u64>) -> Result<()> {
        let cs = ConfState {
            voters,
            ..Default::default()
        };
        let meta = SnapshotMetadata {
            index: 1,
            term: 1,
            conf_state: protobuf::SingularPtrField::some(cs.clone()),
            ..Default::default()
        };
        let hs = HardState {
            term: 1,
            commit: 1,
            ..Default::default()
        };
        let mut b = WriteBatch::new();
        b.put(Cf::Raft, CONF_STATE, encode(&cs));
        b.put(Cf::Raft, SNAP_META, encode(&meta));
        b.put(Cf::Raft, HARD_STATE, encode(&hs));
        self.engine.write(b, true)?;
        self.conf_state = cs;
        self.snap = meta;
        self.hard_state = hs;
        self.last_index = 1;
        Ok(())
    }

    /// Moves the in-memory view to a snapshot's position after the state machine committed
    /// [`reset_to_snapshot`]'s writes with its restore: every entry is gone, the log continues
    /// after the snapshot's index.
    pub fn apply_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        let meta = snap.get_metadata();
        let reopened = LogStore::open(self.engine.clone())?;
        if reopened.snap.index != meta.index || reopened.last_index != meta.index {
            return Err(Error::corrupt(format!(
                "snapshot {} restored but the log was not reset (log at {}..{})",
                meta.index, reopened.snap.index, reopened.last_index
            )));
        }
        self.snap = reopened.snap;
        self.conf_state = reopened.conf_state;
        self.hard_state = reopened.hard_state;
        self.last_index = meta.index;
        self.tail.clear();
        *self.captured.lock() = None;
        Ok(())
    }

    pub fn set_conf_state(&mut self, cs: ConfState) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(Cf::Raft, CONF_STATE, encode(&cs));
        self.engine.write(b, true)?;
        self.conf_state = cs;
        Ok(())
    }

    /// Adds the writes persisting `entries` and `hs` to `batch`, and updates the in-memory view.
    /// The caller writes the batch (synced) before anything depends on it.
    pub fn append(&mut self, entries: &[Entry], hs: Option<&HardState>, batch: &mut WriteBatch) {
        if let Some(first) = entries.first() {
            // Entries from `first.index` on replace whatever the log had there.
            if first.index <= self.last_index {
                batch.delete_range(
                    Cf::Raft,
                    entry_key(first.index),
                    entry_key(self.last_index + 1),
                );
                while self.tail.back().is_some_and(|e| e.index >= first.index) {
                    self.tail.pop_back();
                }
            }
            if self.tail.back().is_some_and(|e| e.index + 1 != first.index) {
                self.tail.clear();
            }
            for e in entries {
                batch.put(Cf::Raft, entry_key(e.index), encode(e));
                self.tail.push_back(e.clone());
            }
            while self.tail.len() > TAIL {
                self.tail.pop_front();
            }
            self.last_index = entries.last().expect("checked non-empty").index;
        }
        if let Some(hs) = hs {
            batch.put(Cf::Raft, HARD_STATE, encode(hs));
            self.hard_state = hs.clone();
        }
    }

    /// Records a new commit index (persisted with the next append, like etcd's WAL).
    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = commit;
    }

    /// Drops log entries up to and including `index` (which must be applied).
    pub fn compact(&mut self, index: u64) -> Result<()> {
        if index <= self.snap.index || index > self.last_index {
            return Ok(());
        }
        let term = raft::Storage::term(self, index).map_err(Error::storage)?;
        let meta = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        let mut b = WriteBatch::new();
        b.delete_range(
            Cf::Raft,
            entry_key(self.snap.index + 1),
            entry_key(index + 1),
        );
        b.put(Cf::Raft, SNAP_META, encode(&meta));
        self.engine.write(b, false)?;
        self.snap = meta;
        while self.tail.front().is_some_and(|e| e.index <= index) {
            self.tail.pop_front();
        }
        Ok(())
    }

    pub fn first_index(&self) -> u64 {
        self.snap.index + 1
    }

    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    fn load(&self, low: u64, high: u64, max_size: u64) -> raft::Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut size = 0u64;
        let tail_start = self.tail.front().map_or(u64::MAX, |e| e.index);
        if low >= tail_start {
            for e in self.tail.iter().skip((low - tail_start) as usize) {
                if e.index >= high {
                    break;
                }
                size += e.compute_size() as u64;
                if !out.is_empty() && size > max_size {
                    break;
                }
                out.push(e.clone());
            }
            return Ok(out);
        }
        let mut failure = None;
        let end = entry_key(high);
        let scanned =
            self.engine.scan(
                Cf::Raft,
                &entry_key(low),
                Some(&end),
                &mut |_, v| match decode::<Entry>(v) {
                    Ok(e) => {
                        size += v.len() as u64;
                        if !out.is_empty() && size > max_size {
                            return false;
                        }
                        out.push(e);
                        true
                    }
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                },
            );
        if let Err(e) = scanned
            .map_err(Some)
            .and(failure.map_or(Ok(()), |e| Err(Some(e))))
        {
            let msg = e.map(|e| e.to_string()).unwrap_or_default();
            return Err(raft::Error::Store(StorageError::Other(msg.into())));
        }
        if out.first().is_some_and(|e| e.index != low) {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(out)
    }
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.snap.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        self.load(low, high, max_size.into().unwrap_or(u64::MAX))
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snap.index {
            return Ok(self.snap.term);
        }
        if idx < self.snap.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last_index {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self
            .load(idx, idx + 1, u64::MAX)?
            .first()
            .map_or(0, |e| e.term))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.snap.index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index)
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let unavailable = || raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable);
        let Some(source) = &self.source else {
            return Err(unavailable());
        };
        let mut captured = self.captured.lock();
        if let Some((snap, at)) = captured.as_ref() {
            let index = snap.get_metadata().index;
            // Reusable while recent, still ahead of the log's start (a follower that installs
            // it can continue from the log), and taken with `to` in the configuration: Raft
            // refuses a snapshot that does not list it, so a member added (or re-added under a
            // new id) after the capture needs a new one.
            let cs = snap.get_metadata().get_conf_state();
            let lists_to = cs.voters.contains(&to) || cs.learners.contains(&to);
            if lists_to
                && index >= request_index
                && index >= self.snap.index
                && at.elapsed() < SNAPSHOT_REUSE
            {
                return Ok(snap.clone());
            }
        }
        let (applied, data) = source.capture().map_err(|e| {
            tracing::warn!(error = %e, to, "cannot capture a snapshot for a lagging member");
            unavailable()
        })?;
        // A state machine that has applied nothing yet is the bootstrap state at the log's start.
        let index = applied.max(self.snap.index);
        let term = raft::Storage::term(self, index).map_err(|_| unavailable())?;
        let mut snap = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        tracing::info!(index, term, to, "captured a snapshot for a lagging member");
        *captured = Some((snap.clone(), Instant::now()));
        Ok(snap)
    }
}

/// The writes that restart the log after a snapshot: drop every entry, start after the
/// snapshot's index and term with its configuration, and raise the commit index to it.
pub fn reset_to_snapshot(engine: &dyn Engine, meta: &SnapshotMetadata) -> Result<WriteBatch> {
    let mut hs = match engine.get(Cf::Raft, HARD_STATE)? {
        Some(b) => decode::<HardState>(&b)?,
        None => HardState::default(),
    };
    hs.commit = hs.commit.max(meta.index);
    let mark = SnapshotMetadata {
        index: meta.index,
        term: meta.term,
        ..Default::default()
    };
    let mut b = WriteBatch::new();
    b.delete_range(Cf::Raft, b"e".to_vec(), b"f".to_vec());
    b.put(Cf::Raft, SNAP_META, encode(&mark));
    b.put(Cf::Raft, CONF_STATE, encode(meta.get_conf_state()));
    b.put(Cf::Raft, HARD_STATE, encode(&hs));
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RocksEngine;
    use raft::Storage;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8].into(),
            ..Default::default()
        }
    }

    #[test]
    fn append_overwrite_compact_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("open"));
        let mut log = LogStore::open(engine.clone()).expect("log");
        assert!(log.is_empty());
        log.bootstrap(vec![1]).expect("bootstrap");
        let mut b = WriteBatch::new();
        let ents: Vec<Entry> = (2..=5).map(|i| entry(i, 1)).collect();
        let hs = HardState {
            term: 1,
            ..Default::default()
        };
        log.append(&ents, Some(&hs), &mut b);
        engine.write(b, true).expect("write");
        // A new leader overwrites 4..5 with a higher term.
        let mut b = WriteBatch::new();
        log.append(&[entry(4, 2)], None, &mut b);
        engine.write(b, true).expect("write");
        assert_eq!(log.last_index(), 4);
        assert_eq!(log.term(4).expect("term"), 2);
        log.compact(2).expect("compact");
        assert_eq!(Storage::first_index(&log).expect("first"), 3);
        assert!(log
            .entries(2, 4, None, GetEntriesContext::empty(false))
            .is_err());

        let log = LogStore::open(engine).expect("reopen");
        assert_eq!(log.last_index(), 4);
        assert_eq!(log.hard_state().term, 1);
        let got = log
            .entries(3, 5, None, GetEntriesContext::empty(false))
            .expect("entries");
        assert_eq!(
            got.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
            vec![(3, 1), (4, 2)]
        );
        assert_eq!(log.term(2).expect("term of compacted boundary"), 1);
    }

    struct Counting(std::sync::atomic::AtomicU64);

    impl SnapshotSource for Counting {
        fn capture(&self) -> Result<(u64, Vec<u8>)> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok((1, format!("capture-{n}").into_bytes()))
        }
    }

    #[test]
    fn a_reused_snapshot_must_list_the_member_it_is_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("open"));
        let mut log = LogStore::open(engine).expect("log");
        log.bootstrap(vec![1, 2, 3]).expect("bootstrap");
        log.set_snapshot_source(Arc::new(Counting(Default::default())));
        let first = log.snapshot(1, 3).expect("snapshot for 3");
        // Another lagging voter gets the same capture.
        assert_eq!(log.snapshot(1, 2).expect("snapshot for 2").data, first.data);
        // A member added after the capture (4) needs a capture that lists it: raft-rs refuses
        // to restore a snapshot whose configuration leaves it out.
        log.set_conf_state(ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            ..Default::default()
        })
        .expect("conf state");
        let fresh = log.snapshot(1, 4).expect("snapshot for 4");
        assert_ne!(fresh.data, first.data);
        assert!(fresh.get_metadata().get_conf_state().learners.contains(&4));
    }
}
