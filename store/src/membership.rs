//! The replicated membership table: who is in the cluster, their URLs, who was removed.
//!
//! Every member keeps the same table, changed only by applied log entries (Raft configuration
//! changes for add/promote/remove, normal entries for attributes and peer-URL updates), so
//! MemberList answers the same everywhere. The table lives in the Meta column family next to the
//! applied index and is written in the same batch, so it always matches the applied state (and
//! travels inside snapshots). Keys under `local/` describe this process only (its own member id)
//! and are never replaced by a snapshot.

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::RwLock;
use prost::Message;
use strata_proto::peer::Member;
use tokio::sync::watch;

use crate::engine::{Cf, Engine, WriteBatch};
use crate::error::{Error, Result};

const MEMBER_PREFIX: &[u8] = b"member/";
const REMOVED_PREFIX: &[u8] = b"removed/";
const CLUSTER_ID: &[u8] = b"cluster_id";
/// This process's member id (not replicated).
pub const LOCAL_ID: &[u8] = b"local/member_id";
/// Meta keys that belong to this process and survive a snapshot restore.
pub const LOCAL_PREFIXES: [&[u8]; 2] = [b"local/", b"engine/"];

fn key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

#[derive(Default, Clone)]
struct Table {
    cluster_id: u64,
    members: BTreeMap<u64, Member>,
    removed: BTreeSet<u64>,
}

/// The kind of a membership configuration change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    AddVoter,
    AddLearner,
    Promote,
    Remove,
}

pub struct Membership {
    table: RwLock<Table>,
    /// Bumped on every change, so the transport and others can follow the table.
    version: watch::Sender<u64>,
}

fn read_u64(engine: &dyn Engine, key: &[u8]) -> Result<Option<u64>> {
    match engine.get(Cf::Meta, key)? {
        Some(v) => Ok(Some(u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| Error::corrupt("malformed u64 in meta"))?,
        ))),
        None => Ok(None),
    }
}

/// This process's member id, if it was ever recorded.
pub fn local_id(engine: &dyn Engine) -> Result<Option<u64>> {
    read_u64(engine, LOCAL_ID)
}

impl Membership {
    pub fn load(engine: &dyn Engine) -> Result<Self> {
        let table = Self::read(engine)?;
        Ok(Self {
            table: RwLock::new(table),
            version: watch::channel(0).0,
        })
    }

    fn read(engine: &dyn Engine) -> Result<Table> {
        let mut t = Table {
            cluster_id: read_u64(engine, CLUSTER_ID)?.unwrap_or(0),
            ..Default::default()
        };
        let mut bad = None;
        engine.scan(
            Cf::Meta,
            MEMBER_PREFIX,
            Some(&prefix_end(MEMBER_PREFIX)),
            &mut |_, v| match Member::decode(v) {
                Ok(m) => {
                    t.members.insert(m.id, m);
                    true
                }
                Err(e) => {
                    bad = Some(Error::from(e));
                    false
                }
            },
        )?;
        if let Some(e) = bad {
            return Err(e);
        }
        engine.scan(
            Cf::Meta,
            REMOVED_PREFIX,
            Some(&prefix_end(REMOVED_PREFIX)),
            &mut |k, _| {
                if let Ok(id) = <[u8; 8]>::try_from(&k[REMOVED_PREFIX.len()..]) {
                    t.removed.insert(u64::from_be_bytes(id));
                }
                true
            },
        )?;
        Ok(t)
    }

    /// Re-reads the table (after a snapshot replaced the applied state).
    pub fn reload(&self, engine: &dyn Engine) -> Result<()> {
        let t = Self::read(engine)?;
        *self.table.write() = t;
        self.bump();
        Ok(())
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Writes the table of a new cluster (or one learned from peers when joining) and this
    /// process's id.
    pub fn bootstrap(
        &self,
        engine: &dyn Engine,
        cluster_id: u64,
        members: Vec<Member>,
        removed: &[u64],
        local: u64,
    ) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(Cf::Meta, CLUSTER_ID, cluster_id.to_be_bytes().to_vec());
        for m in &members {
            b.put(Cf::Meta, key(MEMBER_PREFIX, m.id), m.encode_to_vec());
        }
        for id in removed {
            b.put(Cf::Meta, key(REMOVED_PREFIX, *id), Vec::new());
        }
        b.put(Cf::Meta, LOCAL_ID, local.to_be_bytes().to_vec());
        engine.write(b, true)?;
        let mut t = self.table.write();
        t.cluster_id = cluster_id;
        t.members = members.into_iter().map(|m| (m.id, m)).collect();
        t.removed = removed.iter().copied().collect();
        drop(t);
        self.bump();
        Ok(())
    }

    pub fn cluster_id(&self) -> u64 {
        self.table.read().cluster_id
    }

    pub fn list(&self) -> Vec<Member> {
        self.table.read().members.values().cloned().collect()
    }

    pub fn removed(&self) -> Vec<u64> {
        self.table.read().removed.iter().copied().collect()
    }

    pub fn get(&self, id: u64) -> Option<Member> {
        self.table.read().members.get(&id).cloned()
    }

    pub fn is_learner(&self, id: u64) -> bool {
        self.table
            .read()
            .members
            .get(&id)
            .is_some_and(|m| m.is_learner)
    }

    pub fn is_removed(&self, id: u64) -> bool {
        self.table.read().removed.contains(&id)
    }

    pub fn peer_urls(&self, id: u64) -> Vec<String> {
        self.get(id).map(|m| m.peer_urls).unwrap_or_default()
    }

    /// Voting members (not learners).
    pub fn voters(&self) -> Vec<u64> {
        let t = self.table.read();
        t.members
            .values()
            .filter(|m| !m.is_learner)
            .map(|m| m.id)
            .collect()
    }

    /// Checks a configuration change against the table; deterministic, so every member decides
    /// the same. Called both before proposing (to answer early) and when applying.
    pub fn check(&self, change: Change, m: &Member) -> Result<()> {
        let t = self.table.read();
        if t.removed.contains(&m.id) {
            // etcd answers a change of a removed id with ErrIDRemoved, shown as "member not found".
            return Err(Error::MemberNotFound);
        }
        let existing = t.members.get(&m.id);
        match change {
            Change::AddVoter | Change::AddLearner => {
                if existing.is_some() {
                    return Err(Error::MemberExists);
                }
                let taken = t
                    .members
                    .values()
                    .any(|o| o.peer_urls.iter().any(|u| m.peer_urls.contains(u)));
                if taken {
                    return Err(Error::PeerUrlExists);
                }
                if change == Change::AddLearner
                    && t.members.values().filter(|o| o.is_learner).count() >= 1
                {
                    // etcd allows one learner at a time by default.
                    return Err(Error::TooManyLearners);
                }
            }
            Change::Promote => match existing {
                None => return Err(Error::MemberNotFound),
                Some(e) if !e.is_learner => return Err(Error::MemberNotLearner),
                Some(_) => {}
            },
            Change::Remove => {
                if existing.is_none() {
                    return Err(Error::MemberNotFound);
                }
            }
        }
        Ok(())
    }

    /// Applies a checked configuration change, adding its writes to `batch`.
    pub fn apply_change(&self, change: Change, m: Member, batch: &mut WriteBatch) {
        let mut t = self.table.write();
        match change {
            Change::AddVoter | Change::AddLearner => {
                let m = Member {
                    is_learner: change == Change::AddLearner,
                    ..m
                };
                batch.put(Cf::Meta, key(MEMBER_PREFIX, m.id), m.encode_to_vec());
                t.members.insert(m.id, m);
            }
            Change::Promote => {
                if let Some(e) = t.members.get_mut(&m.id) {
                    e.is_learner = false;
                    batch.put(Cf::Meta, key(MEMBER_PREFIX, e.id), e.encode_to_vec());
                }
            }
            Change::Remove => {
                t.members.remove(&m.id);
                t.removed.insert(m.id);
                batch.delete(Cf::Meta, key(MEMBER_PREFIX, m.id));
                batch.put(Cf::Meta, key(REMOVED_PREFIX, m.id), Vec::new());
            }
        }
        drop(t);
        self.bump();
    }

    /// A member published its name and client URLs.
    pub fn apply_attributes(&self, a: &Member, batch: &mut WriteBatch) -> Result<()> {
        let mut t = self.table.write();
        let Some(e) = t.members.get_mut(&a.id) else {
            return Err(Error::MemberNotFound);
        };
        e.name = a.name.clone();
        e.client_urls = a.client_urls.clone();
        batch.put(Cf::Meta, key(MEMBER_PREFIX, e.id), e.encode_to_vec());
        drop(t);
        self.bump();
        Ok(())
    }

    /// MemberUpdate: new peer URLs.
    pub fn apply_update(&self, u: &Member, batch: &mut WriteBatch) -> Result<()> {
        let mut t = self.table.write();
        if t.members
            .values()
            .any(|o| o.id != u.id && o.peer_urls.iter().any(|x| u.peer_urls.contains(x)))
        {
            return Err(Error::PeerUrlExists);
        }
        let Some(e) = t.members.get_mut(&u.id) else {
            return Err(Error::MemberNotFound);
        };
        e.peer_urls = u.peer_urls.clone();
        batch.put(Cf::Meta, key(MEMBER_PREFIX, e.id), e.encode_to_vec());
        drop(t);
        self.bump();
        Ok(())
    }
}

impl crate::raft::PeerDirectory for Membership {
    fn peer_urls(&self, id: u64) -> Vec<String> {
        Membership::peer_urls(self, id)
    }

    fn is_member(&self, id: u64) -> bool {
        !self.is_removed(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RocksEngine;

    fn member(id: u64, url: &str) -> Member {
        Member {
            id,
            name: format!("m{id}"),
            peer_urls: vec![url.into()],
            ..Default::default()
        }
    }

    #[test]
    fn changes_are_checked_persisted_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = RocksEngine::open(dir.path()).expect("open");
        let t = Membership::load(&engine).expect("load");
        t.bootstrap(&engine, 9, vec![member(1, "http://a:1")], &[], 1)
            .expect("bootstrap");
        assert_eq!(
            t.check(Change::AddVoter, &member(1, "http://b:1")),
            Err(Error::MemberExists)
        );
        assert_eq!(
            t.check(Change::AddVoter, &member(2, "http://a:1")),
            Err(Error::PeerUrlExists)
        );
        assert_eq!(
            t.check(Change::Promote, &member(1, "")),
            Err(Error::MemberNotLearner)
        );
        let mut b = WriteBatch::new();
        t.check(Change::AddLearner, &member(2, "http://b:1"))
            .expect("add learner");
        t.apply_change(Change::AddLearner, member(2, "http://b:1"), &mut b);
        assert!(t.get(2).expect("added").is_learner);
        t.apply_change(Change::Promote, member(2, ""), &mut b);
        t.apply_change(Change::Remove, member(1, ""), &mut b);
        engine.write(b, false).expect("write");
        assert_eq!(
            t.check(Change::AddVoter, &member(1, "http://c:1")),
            Err(Error::MemberNotFound)
        );
        let again = Membership::load(&engine).expect("reload");
        assert_eq!(again.cluster_id(), 9);
        assert_eq!(again.voters(), vec![2]);
        assert!(again.is_removed(1));
        assert_eq!(local_id(&engine).expect("local"), Some(1));
    }
}
