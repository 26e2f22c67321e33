//! Storage engine: what the store needs from a disk, and nothing about how RocksDB does it.
//!
//! Everything durable lives in one engine, split into column families so that each concern can be
//! scanned and compacted on its own: the MVCC key-value history, store metadata (applied index,
//! revisions), leases, and the Raft log with its hard state. One engine means one write-ahead log:
//! a synced write (the Raft log append) also makes every earlier unsynced write durable, which is
//! what lets the state machine apply without its own fsync.
//!
//! Contract of every method: an `Err` is a non-deterministic storage failure (the caller stops the
//! member if it happens while applying); nothing here panics on bad data from disk.

mod rocks;

use std::path::Path;

pub use rocks::RocksEngine;

use crate::error::Result;

/// The column families. Their names are on disk; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cf {
    /// `revision -> mvccpb::KeyValue`, etcd's "key" bucket.
    Kv,
    /// Store metadata: applied index, current and compacted revision, alarms, members.
    Meta,
    /// `lease id -> ttl`.
    Lease,
    /// Raft log entries, hard state, conf state, snapshot metadata.
    Raft,
}

impl Cf {
    pub const ALL: [Cf; 4] = [Cf::Kv, Cf::Meta, Cf::Lease, Cf::Raft];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Kv => "kv",
            Cf::Meta => "meta",
            Cf::Lease => "lease",
            Cf::Raft => "raft",
        }
    }
}

/// One change inside a [`WriteBatch`].
#[derive(Debug, Clone)]
pub enum BatchOp {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
    /// Deletes `[start, end)`.
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

/// Changes applied atomically by [`Engine::write`].
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub ops: Vec<BatchOp>,
    pub bytes: usize,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let (key, value) = (key.into(), value.into());
        self.bytes += key.len() + value.len();
        self.ops.push(BatchOp::Put(cf, key, value));
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        let key = key.into();
        self.bytes += key.len();
        self.ops.push(BatchOp::Delete(cf, key));
    }

    pub fn delete_range(&mut self, cf: Cf, start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) {
        self.ops
            .push(BatchOp::DeleteRange(cf, start.into(), end.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn append(&mut self, other: WriteBatch) {
        self.bytes += other.bytes;
        self.ops.extend(other.ops);
    }
}

/// Sizes the store reports (etcd's db size and db size in use).
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineSize {
    /// Bytes the engine occupies on disk and in memtables.
    pub total: u64,
    /// Estimated bytes of live data.
    pub in_use: u64,
}

/// A durable, ordered key-value engine with column families.
pub trait Engine: Send + Sync + 'static {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Point lookups in one call; results are in the order of `keys`.
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Visits `[start, end)` in key order (to the end of the family when `end` is None) until
    /// `visit` returns false.
    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()>;

    /// The last key-value pair in `[start, end)`, if any.
    fn last_in_range(&self, cf: Cf, start: &[u8], end: &[u8])
        -> Result<Option<(Vec<u8>, Vec<u8>)>>;

    /// Applies `batch` atomically; with `sync` the write-ahead log is fsynced before returning.
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<()>;

    /// Writes a consistent point-in-time copy of the whole engine into `dir` (which must not exist).
    fn checkpoint(&self, dir: &Path) -> Result<()>;

    fn size(&self) -> EngineSize;

    /// Rewrites the files of every family to reclaim space (etcd's defragment).
    fn compact_all(&self) -> Result<()>;
}
