//! The lessor: leases, their TTLs and the keys attached to them.
//!
//! Grants and revocations are Raft entries, applied on every member in log order, so every member
//! knows the same leases and keys. Time is not replicated: each member tracks expiry on its own
//! clock, but only the leader acts on it, by *proposing* a revocation (so keys of an expired
//! lease vanish on every member at one revision). Keep-alives go to the leader and only move its
//! in-memory deadline. When a member becomes leader it restarts every lease's clock (etcd's
//! "promote"), so a lease never expires merely because leadership moved.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::engine::{Cf, Engine, WriteBatch};
use crate::error::{Error, Result};

/// etcd's upper bound on a lease TTL, in seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

#[derive(Debug)]
struct Lease {
    ttl: i64,
    /// When the lease runs out; `None` while this member is not the leader.
    deadline: Option<Instant>,
    keys: HashSet<Bytes>,
}

/// What LeaseTimeToLive reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub id: i64,
    pub granted_ttl: i64,
    /// Seconds left (rounded up), or the granted TTL on a member that is not the leader.
    pub remaining: i64,
    pub keys: Vec<Bytes>,
}

pub struct Lessor {
    leases: Mutex<Inner>,
    min_ttl: i64,
}

struct Inner {
    map: HashMap<i64, Lease>,
    leader: bool,
}

fn lease_key(id: i64) -> [u8; 8] {
    id.to_be_bytes()
}

impl Lessor {
    /// Loads the granted leases from the engine. `min_ttl` is the shortest TTL granted (etcd
    /// derives it from the election timeout so a lease outlives a leader change).
    pub fn open(engine: &dyn Engine, min_ttl: i64) -> Result<Self> {
        Ok(Self {
            leases: Mutex::new(Inner {
                map: Self::read(engine)?,
                leader: false,
            }),
            min_ttl,
        })
    }

    /// Replaces every lease with those in the engine (after a snapshot restore); keys are
    /// attached again by the caller. A leader restarts every lease's clock.
    pub fn reload(&self, engine: &dyn Engine) -> Result<()> {
        let mut map = Self::read(engine)?;
        let mut inner = self.leases.lock();
        if inner.leader {
            let now = Instant::now();
            for l in map.values_mut() {
                l.deadline = Some(now + Duration::from_secs(l.ttl as u64));
            }
        }
        inner.map = map;
        Ok(())
    }

    fn read(engine: &dyn Engine) -> Result<HashMap<i64, Lease>> {
        let mut map = HashMap::new();
        let mut bad = None;
        engine.scan(Cf::Lease, &[], None, &mut |k, v| match (
            <[u8; 8]>::try_from(k),
            <[u8; 8]>::try_from(v),
        ) {
            (Ok(k), Ok(v)) => {
                let lease = Lease {
                    ttl: i64::from_be_bytes(v),
                    deadline: None,
                    keys: HashSet::new(),
                };
                map.insert(i64::from_be_bytes(k), lease);
                true
            }
            _ => {
                bad = Some(Error::corrupt("malformed lease record"));
                false
            }
        })?;
        if let Some(e) = bad {
            return Err(e);
        }
        Ok(map)
    }

    /// The TTL a grant of `ttl` seconds actually gets.
    pub fn effective_ttl(&self, ttl: i64) -> i64 {
        ttl.max(self.min_ttl)
    }

    pub fn exists(&self, id: i64) -> bool {
        self.leases.lock().map.contains_key(&id)
    }

    /// Applies a grant. Deterministic: fails the same way on every member.
    pub fn grant(&self, id: i64, ttl: i64, batch: &mut WriteBatch) -> Result<i64> {
        if ttl > MAX_LEASE_TTL {
            return Err(Error::LeaseTtlTooLarge);
        }
        let ttl = self.effective_ttl(ttl);
        let mut inner = self.leases.lock();
        if inner.map.contains_key(&id) {
            return Err(Error::LeaseExists);
        }
        let deadline = inner
            .leader
            .then(|| Instant::now() + Duration::from_secs(ttl as u64));
        inner.map.insert(
            id,
            Lease {
                ttl,
                deadline,
                keys: HashSet::new(),
            },
        );
        batch.put(
            Cf::Lease,
            lease_key(id).to_vec(),
            ttl.to_be_bytes().to_vec(),
        );
        Ok(ttl)
    }

    /// Applies a revocation: forgets the lease and returns its keys, which the caller deletes
    /// in the same revision.
    pub fn revoke(&self, id: i64, batch: &mut WriteBatch) -> Result<Vec<Bytes>> {
        let lease = self
            .leases
            .lock()
            .map
            .remove(&id)
            .ok_or(Error::LeaseNotFound)?;
        batch.delete(Cf::Lease, lease_key(id).to_vec());
        let mut keys: Vec<Bytes> = lease.keys.into_iter().collect();
        keys.sort();
        Ok(keys)
    }

    /// Moves `key` from lease `old` to lease `new` (0 = none).
    pub fn reattach(&self, key: &Bytes, old: i64, new: i64) {
        let mut inner = self.leases.lock();
        if let Some(l) = inner.map.get_mut(&old) {
            l.keys.remove(key);
        }
        if let Some(l) = inner.map.get_mut(&new) {
            l.keys.insert(key.clone());
        }
    }

    /// Leader only: restarts the lease's clock and returns its TTL.
    pub fn renew(&self, id: i64) -> Result<i64> {
        let mut inner = self.leases.lock();
        if !inner.leader {
            return Err(Error::NotLeader);
        }
        let l = inner.map.get_mut(&id).ok_or(Error::LeaseNotFound)?;
        l.deadline = Some(Instant::now() + Duration::from_secs(l.ttl as u64));
        Ok(l.ttl)
    }

    pub fn info(&self, id: i64, with_keys: bool) -> Option<LeaseInfo> {
        let inner = self.leases.lock();
        let l = inner.map.get(&id)?;
        let remaining = match l.deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                left.as_secs() as i64 + i64::from(left.subsec_nanos() > 0)
            }
            None => l.ttl,
        };
        let mut keys: Vec<Bytes> = if with_keys {
            l.keys.iter().cloned().collect()
        } else {
            vec![]
        };
        keys.sort();
        Some(LeaseInfo {
            id,
            granted_ttl: l.ttl,
            remaining,
            keys,
        })
    }

    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.leases.lock().map.keys().copied().collect();
        ids.sort();
        ids
    }

    pub fn len(&self) -> usize {
        self.leases.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This member became leader: every lease gets a full TTL from now.
    pub fn promote(&self) {
        let mut inner = self.leases.lock();
        inner.leader = true;
        let now = Instant::now();
        for l in inner.map.values_mut() {
            l.deadline = Some(now + Duration::from_secs(l.ttl as u64));
        }
    }

    /// This member stopped being leader: it no longer tracks deadlines.
    pub fn demote(&self) {
        let mut inner = self.leases.lock();
        inner.leader = false;
        for l in inner.map.values_mut() {
            l.deadline = None;
        }
    }

    /// Leader only: up to `max` leases past their deadline, to be proposed for revocation.
    pub fn expired(&self, max: usize) -> Vec<i64> {
        let inner = self.leases.lock();
        let now = Instant::now();
        inner
            .map
            .iter()
            .filter(|(_, l)| l.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .take(max)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RocksEngine;

    #[test]
    fn grant_attach_revoke_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = RocksEngine::open(dir.path()).expect("open");
        let lessor = Lessor::open(&engine, 2).expect("lessor");
        let mut b = WriteBatch::new();
        assert_eq!(
            lessor.grant(7, 1, &mut b),
            Ok(2),
            "raised to the minimum TTL"
        );
        assert_eq!(lessor.grant(7, 5, &mut b), Err(Error::LeaseExists));
        assert_eq!(
            lessor.grant(8, MAX_LEASE_TTL + 1, &mut b),
            Err(Error::LeaseTtlTooLarge)
        );
        engine.write(b, false).expect("write");
        let key = Bytes::from_static(b"k");
        lessor.reattach(&key, 0, 7);
        assert_eq!(lessor.info(7, true).expect("info").keys, vec![key.clone()]);
        assert_eq!(lessor.renew(7), Err(Error::NotLeader));
        lessor.promote();
        assert_eq!(lessor.renew(7), Ok(2));
        assert!(lessor.expired(10).is_empty());

        let reloaded = Lessor::open(&engine, 2).expect("reload");
        assert_eq!(reloaded.ids(), vec![7]);
        let mut b = WriteBatch::new();
        assert_eq!(lessor.revoke(7, &mut b).expect("revoke"), vec![key]);
        assert_eq!(lessor.revoke(7, &mut b), Err(Error::LeaseNotFound));
    }
}
