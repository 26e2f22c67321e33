//! The in-memory key index: for every key, the revisions at which it changed.
//!
//! Values live in the engine under their revision; the index answers "which revision of which
//! keys is visible at revision R" without touching the disk, which is what makes ranges, counts
//! and historical reads cheap. It is rebuilt from the engine when a member starts.
//!
//! Like etcd's treeIndex, but flat: a key's history is one sorted vector of changes, each a put or
//! a tombstone, plus the state of the key's live generation (create revision, version, lease),
//! so a put never has to read the previous value from disk.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use super::revision::Revision;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub rev: Revision,
    pub tombstone: bool,
}

/// The history of one key.
#[derive(Debug, Clone, Default)]
pub struct KeyHistory {
    /// Retained changes in increasing revision order.
    pub changes: Vec<Change>,
    /// Create revision of the live generation (0 when the key is deleted).
    pub create: i64,
    /// Version of the live generation (0 when the key is deleted).
    pub version: i64,
    /// Lease of the live value (0 for none).
    pub lease: i64,
}

impl KeyHistory {
    /// The revision visible at `at` (the last change at or before it), unless that is a deletion.
    pub fn visible_at(&self, at: i64) -> Option<Revision> {
        let n = self.changes.partition_point(|c| c.rev.main <= at);
        let c = self.changes.get(n.checked_sub(1)?)?;
        (!c.tombstone).then_some(c.rev)
    }

    pub fn latest(&self) -> Option<Revision> {
        self.visible_at(i64::MAX)
    }
}

#[derive(Debug, Default)]
pub struct KeyIndex {
    keys: BTreeMap<Bytes, KeyHistory>,
}

/// The bounds of a range request: one key when `end` is empty, every key from `key` on when
/// `end` is `\0`, else `[key, end)`.
pub fn range_bounds<'a>(key: &'a [u8], end: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    if end.is_empty() {
        (Bound::Included(key), Bound::Included(key))
    } else if end == [0] {
        (Bound::Included(key), Bound::Unbounded)
    } else {
        (Bound::Included(key), Bound::Excluded(end))
    }
}

/// True when `k` falls in the range `(key, end)` as [`range_bounds`] defines it.
pub fn in_range(k: &[u8], key: &[u8], end: &[u8]) -> bool {
    if end.is_empty() {
        k == key
    } else if end == [0] {
        k >= key
    } else {
        k >= key && k < end
    }
}

impl KeyIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &[u8]) -> Option<&KeyHistory> {
        self.keys.get(key)
    }

    /// Number of keys with any retained history.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Visits the keys in range with their history, in key order, until `visit` returns false.
    pub fn for_each_in<'s>(
        &'s self,
        key: &[u8],
        end: &[u8],
        mut visit: impl FnMut(&'s Bytes, &'s KeyHistory) -> bool,
    ) {
        if !end.is_empty() && end != [0] && key >= end {
            return;
        }
        for (k, h) in self.keys.range::<[u8], _>(range_bounds(key, end)) {
            if !visit(k, h) {
                break;
            }
        }
    }

    /// Keys visible at `at` in the range, with their revisions; stops after `limit` (0 = all).
    /// Returns the matches and the total number of visible keys in range.
    pub fn range(
        &self,
        key: &[u8],
        end: &[u8],
        at: i64,
        limit: usize,
    ) -> (Vec<(Bytes, Revision)>, usize) {
        let mut out = Vec::new();
        let mut count = 0;
        self.for_each_in(key, end, |k, h| {
            if let Some(rev) = h.visible_at(at) {
                count += 1;
                if limit == 0 || out.len() < limit {
                    out.push((k.clone(), rev));
                }
            }
            true
        });
        (out, count)
    }

    /// Records a put of `key` at `rev` with `lease`; the caller has worked out create/version.
    pub fn put(&mut self, key: &Bytes, rev: Revision, create: i64, version: i64, lease: i64) {
        let h = self.keys.entry(key.clone()).or_default();
        h.changes.push(Change {
            rev,
            tombstone: false,
        });
        h.create = create;
        h.version = version;
        h.lease = lease;
    }

    /// Records a deletion of `key` at `rev`.
    pub fn tombstone(&mut self, key: &Bytes, rev: Revision) {
        let h = self.keys.entry(key.clone()).or_default();
        h.changes.push(Change {
            rev,
            tombstone: true,
        });
        h.create = 0;
        h.version = 0;
        h.lease = 0;
    }

    /// Drops every change that no read at or after `at` can see, and returns them (with their
    /// tombstone flag) so the caller can delete their values from the engine.
    pub fn compact(&mut self, at: i64) -> Vec<Change> {
        let mut dropped = Vec::new();
        self.keys.retain(|_, h| {
            let n = h.changes.partition_point(|c| c.rev.main <= at);
            if n == 0 {
                return true;
            }
            // Keep the last change at or before `at` unless it is a deletion.
            let keep_from = if h.changes[n - 1].tombstone { n } else { n - 1 };
            dropped.extend(h.changes.drain(..keep_from));
            !h.changes.is_empty()
        });
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn visibility_and_compaction() {
        let mut ix = KeyIndex::new();
        ix.put(&b("a"), Revision::new(2, 0), 2, 1, 0);
        ix.put(&b("a"), Revision::new(3, 0), 2, 2, 0);
        ix.tombstone(&b("a"), Revision::new(4, 0));
        ix.put(&b("a"), Revision::new(6, 0), 6, 1, 0);
        ix.put(&b("b"), Revision::new(5, 0), 5, 1, 0);
        let h = ix.get(b"a").expect("a");
        assert_eq!(h.visible_at(1), None);
        assert_eq!(h.visible_at(3), Some(Revision::new(3, 0)));
        assert_eq!(h.visible_at(4), None);
        assert_eq!(h.visible_at(5), None);
        assert_eq!(h.latest(), Some(Revision::new(6, 0)));
        assert_eq!(ix.range(b"a", b"c", 5, 0).1, 1);
        assert_eq!(ix.range(b"a", &[0], 6, 1).0.len(), 1);

        let dropped = ix.compact(4);
        assert_eq!(dropped.len(), 3, "2, 3 and the tombstone at 4 go");
        assert_eq!(ix.get(b"a").expect("a").changes.len(), 1);
        assert_eq!(ix.get(b"a").expect("a").visible_at(5), None);
        let dropped = ix.compact(6);
        assert!(
            dropped.is_empty(),
            "the latest revision of each key survives"
        );
    }
}
