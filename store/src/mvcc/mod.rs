//! Multi-version concurrency control: the revisioned key-value history.
//!
//! Split by concern as etcd splits it: [`revision`] (the revision type and its on-disk key),
//! [`key_index`] (which revision of which key is visible when), [`store`] (reads, recovery,
//! compaction bookkeeping) and [`txn`] (the write transaction the applier runs, one main revision
//! per transaction). Watch is layered on top, in `crate::watch`, not mixed in here.

pub mod key_index;
pub mod revision;
pub mod store;
pub mod txn;

pub use key_index::{in_range, KeyIndex};
pub use revision::Revision;
pub use store::{ApplyRound, MvccStore, RevisionEvents};
pub use txn::{LeaseChange, WriteTxn};

/// A view that can list key-values in a range: the committed store at some revision, or a
/// write transaction that also sees its own uncommitted changes. Range requests (sorting, limits,
/// filters) are executed once, over this trait, for both.
pub trait ReadView {
    /// The revision reported in the response header.
    fn header_revision(&self) -> i64;

    /// The key-values visible at `rev` (0 = latest) in the range, in key order, stopping after
    /// `limit` (0 = no limit); with `count_only` no values are read. Returns them with the total
    /// number of visible keys in range.
    fn range_kvs(
        &self,
        key: &[u8],
        end: &[u8],
        rev: i64,
        limit: usize,
        count_only: bool,
    ) -> crate::error::Result<(Vec<strata_proto::mvccpb::KeyValue>, usize)>;
}

/// Meta-family keys the MVCC layer owns.
pub(crate) mod meta {
    pub const CURRENT_REV: &[u8] = b"mvcc/current_rev";
    pub const COMPACT_REV: &[u8] = b"mvcc/compact_rev";
}
