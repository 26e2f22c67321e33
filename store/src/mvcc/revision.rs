//! Revisions: `{main, sub}`. Every write transaction gets one main revision; each change inside it
//! gets the next sub revision. On disk a revision is etcd's 17-byte key (8-byte big-endian main,
//! `_`, 8-byte big-endian sub) so the history sorts by revision; a deletion (tombstone) appends `t`.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

/// Length of an encoded revision without the tombstone mark.
pub const REV_BYTES: usize = 17;

impl Revision {
    pub fn new(main: i64, sub: i64) -> Self {
        Self { main, sub }
    }

    /// The engine key for this revision, with the tombstone mark when `tombstone`.
    pub fn to_key(self, tombstone: bool) -> Vec<u8> {
        let mut k = Vec::with_capacity(REV_BYTES + 1);
        k.extend_from_slice(&self.main.to_be_bytes());
        k.push(b'_');
        k.extend_from_slice(&self.sub.to_be_bytes());
        if tombstone {
            k.push(b't');
        }
        k
    }

    /// The smallest engine key of main revision `main` (for scans by revision).
    pub fn start_key(main: i64) -> Vec<u8> {
        Revision::new(main, 0).to_key(false)
    }

    /// Decodes an engine key into the revision and whether it is a tombstone.
    pub fn from_key(k: &[u8]) -> Result<(Revision, bool)> {
        if k.len() != REV_BYTES && k.len() != REV_BYTES + 1 {
            return Err(Error::corrupt(format!("revision key of {} bytes", k.len())));
        }
        let main = i64::from_be_bytes(k[0..8].try_into().expect("length checked above"));
        let sub = i64::from_be_bytes(k[9..17].try_into().expect("length checked above"));
        Ok((Revision { main, sub }, k.len() == REV_BYTES + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_revision_and_round_trip() {
        let a = Revision::new(2, 9).to_key(false);
        let b = Revision::new(3, 0).to_key(true);
        let c = Revision::new(3, 1).to_key(false);
        assert!(a < b && b < c);
        assert_eq!(
            Revision::from_key(&b).expect("decode"),
            (Revision::new(3, 0), true)
        );
        assert!(Revision::from_key(b"short").is_err());
    }
}
