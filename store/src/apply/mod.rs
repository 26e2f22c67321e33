//! The applier: turns committed log entries into changes of the MVCC store and the lessor.
//!
//! This is the one place where replicated requests take effect, so it is the one place that
//! decides deterministic errors (a failed precondition, a compacted revision, an unknown lease):
//! those become the client's answer, identical on every member. A non-deterministic failure (the
//! engine cannot write) is returned to the Raft loop, which stops the member.
//!
//! One apply round covers every entry of a Ready: the MVCC changes, lease records and the applied
//! index go to the engine in one write batch, then the new revision is published to readers and
//! watchers, and only then are the waiting clients answered.

pub mod range;
pub mod read_txn;
mod request;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use prost::Message;
use strata_proto::etcdserverpb::{alarm_request::AlarmAction, AlarmMember, AlarmType};
use strata_proto::peer::{ConfChangeContext, RaftRequest};
use tokio::sync::oneshot;

pub use request::Response;

use crate::engine::{Cf, Engine, RocksEngine, WriteBatch};
use crate::error::{Error, Result};
use crate::lease::Lessor;
use crate::membership::{Change, Membership, LOCAL_PREFIXES};
use crate::metrics::Metrics;
use crate::mvcc::MvccStore;
use crate::raft::{
    ConfChange, ConfChangeType, ConfState, Entry, LogReset, Snapshot, SnapshotMetadata,
    SnapshotSource, StateMachine,
};
use crate::watch::WatchHub;

const APPLIED_INDEX: &[u8] = b"raft/applied_index";
const ALARM_PREFIX: &[u8] = b"alarm/";
/// Set while a snapshot is being copied into the engine; names the snapshot directory.
const RESTORING: &[u8] = b"local/restoring";
/// The Raft metadata of the snapshot being restored (to reset the log when the copy completes).
const RESTORING_META: &[u8] = b"local/restoring_meta";
/// The column families a snapshot carries (the Raft log is each member's own).
const STATE_CFS: [Cf; 3] = [Cf::Kv, Cf::Lease, Cf::Meta];
/// Write batches of a snapshot restore are cut at about this size.
const RESTORE_BATCH_BYTES: usize = 4 << 20;

fn read_applied(engine: &dyn Engine) -> Result<u64> {
    match engine.get(Cf::Meta, APPLIED_INDEX)? {
        Some(v) => Ok(u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| Error::corrupt("malformed applied index"))?,
        )),
        None => Ok(0),
    }
}

fn is_local(cf: Cf, key: &[u8]) -> bool {
    cf == Cf::Meta && LOCAL_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Replaces the replicated state in `engine` (every family but the Raft log, and every Meta key
/// but this process's own) with the state in the checkpoint at `dir`, and restarts the Raft log
/// after the snapshot in the same write that completes it. Idempotent, so an interrupted restore
/// is simply run again (`finish_interrupted_restore`). Returns the new applied index.
fn copy_state(
    engine: &dyn Engine,
    dir: &Path,
    meta: &SnapshotMetadata,
    log_reset: LogReset,
) -> Result<u64> {
    let src = RocksEngine::open_existing(dir)?;
    let mut marker = WriteBatch::new();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    marker.put(Cf::Meta, RESTORING, name.into_bytes());
    marker.put(
        Cf::Meta,
        RESTORING_META,
        protobuf::Message::write_to_bytes(meta).map_err(Error::corrupt)?,
    );
    engine.write(marker, true)?;
    for cf in STATE_CFS {
        // Clear everything replicated: the local keys sort around it, so delete the gaps.
        let mut b = WriteBatch::new();
        let mut from: Vec<u8> = Vec::new();
        if cf == Cf::Meta {
            let mut locals: Vec<Vec<u8>> = LOCAL_PREFIXES.iter().map(|p| p.to_vec()).collect();
            locals.sort();
            for p in locals {
                b.delete_range(cf, from.clone(), p.clone());
                let mut end = p.clone();
                if let Some(last) = end.last_mut() {
                    *last += 1;
                }
                from = end;
            }
        }
        b.delete_range(cf, from, vec![0xff; 64]);
        engine.write(b, false)?;
        let mut b = WriteBatch::new();
        let mut failure = None;
        src.scan(cf, &[], None, &mut |k, v| {
            if is_local(cf, k) {
                return true;
            }
            b.put(cf, k.to_vec(), v.to_vec());
            if b.bytes >= RESTORE_BATCH_BYTES {
                if let Err(e) = engine.write(std::mem::take(&mut b), false) {
                    failure = Some(e);
                    return false;
                }
            }
            true
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        engine.write(b, false)?;
    }
    drop(src);
    // The restore completes atomically: applied index, log reset, marker removal.
    let applied = read_applied(engine)?.max(meta.index);
    let mut done = log_reset(engine, meta)?;
    done.put(Cf::Meta, APPLIED_INDEX, applied.to_be_bytes().to_vec());
    done.delete(Cf::Meta, RESTORING);
    done.delete(Cf::Meta, RESTORING_META);
    engine.write(done, true)?;
    Ok(applied)
}

/// Finishes a snapshot restore a crash interrupted (call before loading anything from `engine`
/// or opening the Raft log).
pub fn finish_interrupted_restore(
    engine: &dyn Engine,
    snap_dir: &Path,
    log_reset: LogReset,
) -> Result<()> {
    let Some(name) = engine.get(Cf::Meta, RESTORING)? else {
        return Ok(());
    };
    let meta: SnapshotMetadata = match engine.get(Cf::Meta, RESTORING_META)? {
        Some(b) => protobuf::Message::parse_from_bytes(&b).map_err(Error::corrupt)?,
        None => {
            return Err(Error::corrupt(
                "snapshot restore marker without its metadata",
            ))
        }
    };
    let dir = snap_dir.join(String::from_utf8_lossy(&name).as_ref());
    if !dir.exists() {
        return Err(Error::corrupt(format!(
            "a snapshot restore was interrupted and its data ({}) is gone; wipe this member's data directory and add it again",
            dir.display()
        )));
    }
    tracing::warn!(dir = %dir.display(), "finishing an interrupted snapshot restore");
    copy_state(engine, &dir, &meta, log_reset).map(|_| ())
}

/// Removes received snapshots that Raft never asked to restore (stale or superseded ones).
fn remove_unused_received(snap_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(snap_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() > std::time::Duration::from_secs(60))
            .unwrap_or(false);
        if name.starts_with("recv-") && old {
            let _ = std::fs::remove_dir_all(e.path());
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Attaches every live key with a lease to that lease in the lessor.
pub fn attach_lease_keys(mvcc: &MvccStore, lessor: &Lessor) {
    let index = mvcc.index.read();
    index.for_each_in(&[0], &[0], |k, h| {
        if h.lease != 0 && h.latest().is_some() {
            lessor.reattach(k, 0, h.lease);
        }
        true
    });
}

/// Captures the engine as a RocksDB checkpoint for a follower that needs a snapshot. The
/// descriptor is the checkpoint's directory name under the snapshot directory.
pub struct Snapshotter {
    engine: Arc<dyn Engine>,
    dir: PathBuf,
    latest: Mutex<Option<PathBuf>>,
}

impl Snapshotter {
    pub fn new(engine: Arc<dyn Engine>, dir: PathBuf) -> Self {
        Self {
            engine,
            dir,
            latest: Mutex::new(None),
        }
    }
}

impl SnapshotSource for Snapshotter {
    fn capture(&self) -> Result<(u64, Vec<u8>)> {
        std::fs::create_dir_all(&self.dir).map_err(Error::storage)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("send-{nanos}");
        let path = self.dir.join(&name);
        // Runs on the Raft thread, so no entry is applied between the checkpoint and the read.
        self.engine.checkpoint(&path)?;
        let applied = read_applied(self.engine.as_ref())?;
        if let Some(old) = self.latest.lock().replace(path) {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok((applied, name.into_bytes()))
    }
}

/// The outcome of one applied request, for the client that proposed it.
pub type ApplyResult = Result<Response>;

/// Clients waiting for their proposal to be applied, by request id.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<u64, oneshot::Sender<ApplyResult>>>,
}

impl Waiters {
    pub fn register(&self, id: u64) -> oneshot::Receiver<ApplyResult> {
        let (tx, rx) = oneshot::channel();
        self.map.lock().insert(id, tx);
        rx
    }

    pub fn cancel(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// Answers the waiter of request `id`, if it still waits.
    pub fn trigger(&self, id: u64, r: ApplyResult) {
        if let Some(tx) = self.map.lock().remove(&id) {
            let _ = tx.send(r);
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Raised alarms (etcd's NOSPACE and CORRUPT), replicated through the log.
#[derive(Default)]
pub struct Alarms {
    set: Mutex<BTreeSet<(u64, i32)>>,
}

impl Alarms {
    pub fn load(engine: &dyn Engine) -> Result<Self> {
        Ok(Self {
            set: Mutex::new(Self::read(engine)?),
        })
    }

    pub fn reload(&self, engine: &dyn Engine) -> Result<()> {
        *self.set.lock() = Self::read(engine)?;
        Ok(())
    }

    fn read(engine: &dyn Engine) -> Result<BTreeSet<(u64, i32)>> {
        let mut set = BTreeSet::new();
        let end = b"alarm0";
        engine.scan(Cf::Meta, ALARM_PREFIX, Some(end), &mut |k, _| {
            let rest = &k[ALARM_PREFIX.len()..];
            if rest.len() == 12 {
                let member = u64::from_be_bytes(rest[..8].try_into().expect("length checked"));
                let alarm = i32::from_be_bytes(rest[8..].try_into().expect("length checked"));
                set.insert((member, alarm));
            }
            true
        })?;
        Ok(set)
    }

    fn key(member: u64, alarm: i32) -> Vec<u8> {
        let mut k = ALARM_PREFIX.to_vec();
        k.extend_from_slice(&member.to_be_bytes());
        k.extend_from_slice(&alarm.to_be_bytes());
        k
    }

    pub fn list(&self) -> Vec<AlarmMember> {
        self.set
            .lock()
            .iter()
            .map(|(m, a)| AlarmMember {
                member_id: *m,
                alarm: *a,
            })
            .collect()
    }

    pub fn has(&self, alarm: AlarmType) -> bool {
        self.set.lock().iter().any(|(_, a)| *a == alarm as i32)
    }

    pub fn is_empty(&self) -> bool {
        self.set.lock().is_empty()
    }
}

pub struct Applier {
    engine: Arc<dyn Engine>,
    mvcc: Arc<MvccStore>,
    lessor: Arc<Lessor>,
    hub: Arc<WatchHub>,
    waiters: Arc<Waiters>,
    alarms: Arc<Alarms>,
    metrics: Arc<Metrics>,
    members: Arc<Membership>,
    snap_dir: PathBuf,
    applied: u64,
}

/// What the applier works on, shared with the rest of the member.
pub struct Parts {
    pub engine: Arc<dyn Engine>,
    pub mvcc: Arc<MvccStore>,
    pub lessor: Arc<Lessor>,
    pub hub: Arc<WatchHub>,
    pub waiters: Arc<Waiters>,
    pub alarms: Arc<Alarms>,
    pub metrics: Arc<Metrics>,
    pub members: Arc<Membership>,
    /// Where received snapshots are unpacked.
    pub snap_dir: PathBuf,
}

impl Applier {
    pub fn new(p: Parts) -> Result<Self> {
        let applied = read_applied(p.engine.as_ref())?;
        Ok(Self {
            engine: p.engine,
            mvcc: p.mvcc,
            lessor: p.lessor,
            hub: p.hub,
            waiters: p.waiters,
            alarms: p.alarms,
            metrics: p.metrics,
            members: p.members,
            snap_dir: p.snap_dir,
            applied,
        })
    }

    fn record_applied(&mut self, index: u64, mut batch: WriteBatch) -> Result<()> {
        batch.put(Cf::Meta, APPLIED_INDEX, index.to_be_bytes().to_vec());
        self.engine.write(batch, false)?;
        self.applied = index;
        Ok(())
    }

    fn apply_alarm(
        &self,
        r: &strata_proto::etcdserverpb::AlarmRequest,
        batch: &mut crate::engine::WriteBatch,
    ) -> Response {
        let key = (r.member_id, r.alarm);
        let mut set = self.alarms.set.lock();
        let mut changed = vec![];
        match AlarmAction::try_from(r.action) {
            Ok(AlarmAction::Activate) if r.alarm != AlarmType::None as i32 => {
                if set.insert(key) {
                    batch.put(Cf::Meta, Alarms::key(key.0, key.1), Vec::new());
                    tracing::warn!(member = r.member_id, alarm = r.alarm, "alarm raised");
                }
                changed.push(AlarmMember {
                    member_id: key.0,
                    alarm: key.1,
                });
            }
            Ok(AlarmAction::Deactivate) => {
                let gone: Vec<(u64, i32)> = set
                    .iter()
                    .filter(|(m, a)| {
                        (r.member_id == 0 || *m == r.member_id) && (r.alarm == 0 || *a == r.alarm)
                    })
                    .copied()
                    .collect();
                for (m, a) in gone {
                    set.remove(&(m, a));
                    batch.delete(Cf::Meta, Alarms::key(m, a));
                    changed.push(AlarmMember {
                        member_id: m,
                        alarm: a,
                    });
                }
            }
            _ => changed.extend(set.iter().map(|(m, a)| AlarmMember {
                member_id: *m,
                alarm: *a,
            })),
        }
        Response::Alarm(changed)
    }
}

impl StateMachine for Applier {
    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let mut round = self.mvcc.begin_round();
        let mut results: Vec<(u64, ApplyResult)> = Vec::new();
        for e in entries {
            if e.index <= self.applied
                || e.data.is_empty()
                || e.entry_type != raft::eraftpb::EntryType::EntryNormal
            {
                continue;
            }
            let req = RaftRequest::decode(e.data.as_ref())?;
            let id = req.id;
            let result = if let Some(alarm) = &req.alarm {
                Ok(self.apply_alarm(alarm, &mut round.batch))
            } else if let Some(a) = &req.member_attributes {
                self.members
                    .apply_attributes(a, &mut round.batch)
                    .map(|()| Response::Members(self.members.list()))
            } else if let Some(u) = &req.member_update {
                self.members
                    .apply_update(u, &mut round.batch)
                    .map(|()| Response::Members(self.members.list()))
            } else {
                let ctx = request::Ctx {
                    lessor: &self.lessor,
                    metrics: &self.metrics,
                    no_space: self.alarms.has(AlarmType::Nospace),
                };
                request::apply(&ctx, &mut round, req)
            };
            match result {
                Err(e) if !e.is_deterministic() => return Err(e),
                r => results.push((id, r)),
            }
        }
        let (mut batch, rev, events) = round.finish();
        batch.put(Cf::Meta, APPLIED_INDEX, last.to_be_bytes().to_vec());
        let started = Instant::now();
        self.engine.write(batch, false)?;
        self.metrics.backend_commit.observe(started.elapsed());
        self.applied = last;
        self.mvcc.publish(rev);
        if !events.is_empty() {
            self.hub.publish(&events, rev);
        }
        for (id, r) in results {
            self.waiters.trigger(id, r);
        }
        Ok(())
    }

    fn apply_conf_change(
        &mut self,
        index: u64,
        cc: &ConfChange,
        raft: &mut dyn FnMut(&ConfChange) -> Result<ConfState>,
    ) -> Result<()> {
        if index <= self.applied {
            return Ok(());
        }
        let ctx = ConfChangeContext::decode(cc.context.as_ref()).unwrap_or_default();
        let mut member = ctx.member.unwrap_or_default();
        member.id = cc.node_id;
        let is_learner = self.members.get(cc.node_id).is_some_and(|m| m.is_learner);
        let change = match cc.change_type {
            ConfChangeType::AddNode if is_learner => Change::Promote,
            ConfChangeType::AddNode => Change::AddVoter,
            ConfChangeType::AddLearnerNode => Change::AddLearner,
            ConfChangeType::RemoveNode => Change::Remove,
        };
        let result = self
            .members
            .check(change, &member)
            .and_then(|()| raft(cc).map(|_| ()));
        if let Err(e) = &result {
            if !e.is_deterministic() {
                return Err(e.clone());
            }
        }
        let mut batch = WriteBatch::new();
        match &result {
            Ok(()) => {
                tracing::info!(
                    ?change,
                    member = format!("{:x}", member.id),
                    "membership changed"
                );
                self.members.apply_change(change, member, &mut batch);
            }
            Err(e) => {
                tracing::warn!(error = %e, ?change, member = format!("{:x}", member.id), "membership change rejected")
            }
        }
        self.record_applied(index, batch)?;
        self.waiters.trigger(
            ctx.request_id,
            result.map(|()| Response::Members(self.members.list())),
        );
        Ok(())
    }

    fn restore(&mut self, snapshot: &Snapshot, log_reset: LogReset) -> Result<()> {
        let name = String::from_utf8_lossy(&snapshot.data).into_owned();
        let dir = self.snap_dir.join(&name);
        let index = snapshot.get_metadata().index;
        self.hub.begin_restore();
        let (engine, meta) = (self.engine.clone(), snapshot.get_metadata());
        let copied = self
            .mvcc
            .replace_with(|| copy_state(engine.as_ref(), &dir, meta, log_reset));
        let _ = std::fs::remove_dir_all(&dir);
        remove_unused_received(&self.snap_dir);
        self.applied = copied?;
        self.lessor.reload(self.engine.as_ref())?;
        attach_lease_keys(&self.mvcc, &self.lessor);
        self.alarms.reload(self.engine.as_ref())?;
        self.members.reload(self.engine.as_ref())?;
        self.hub.reset(self.mvcc.current_revision());
        tracing::info!(
            index,
            revision = self.mvcc.current_revision(),
            "restored the state machine from a snapshot"
        );
        Ok(())
    }

    fn leader_changed(&mut self, _leader: u64, is_self: bool) {
        if is_self {
            self.lessor.promote();
        } else {
            self.lessor.demote();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::storage::{reset_to_snapshot, LogStore};

    #[test]
    fn an_interrupted_restore_is_finished_with_the_log_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snap_dir = dir.path().join("snap");
        // The leader's state: one key, applied index 50, its own local id.
        let leader = RocksEngine::open(&dir.path().join("leader")).expect("leader");
        let mut b = WriteBatch::new();
        b.put(Cf::Kv, b"new-rev".to_vec(), b"new".to_vec());
        b.put(Cf::Meta, APPLIED_INDEX, 50u64.to_be_bytes().to_vec());
        b.put(
            Cf::Meta,
            crate::membership::LOCAL_ID,
            1u64.to_be_bytes().to_vec(),
        );
        leader.write(b, true).expect("write");
        std::fs::create_dir_all(&snap_dir).expect("snap dir");
        leader
            .checkpoint(&snap_dir.join("recv-1"))
            .expect("checkpoint");

        // The follower: older state, its own id, a log with entries 2..=10.
        let follower: Arc<dyn Engine> =
            Arc::new(RocksEngine::open(&dir.path().join("follower")).expect("follower"));
        let mut log = LogStore::open(follower.clone()).expect("log");
        log.bootstrap(vec![1, 2, 3]).expect("bootstrap");
        let entries: Vec<Entry> = (2..=10)
            .map(|i| Entry {
                index: i,
                term: 2,
                ..Default::default()
            })
            .collect();
        let mut b = WriteBatch::new();
        log.append(&entries, None, &mut b);
        b.put(Cf::Kv, b"old-rev".to_vec(), b"old".to_vec());
        b.put(Cf::Meta, APPLIED_INDEX, 10u64.to_be_bytes().to_vec());
        b.put(
            Cf::Meta,
            crate::membership::LOCAL_ID,
            2u64.to_be_bytes().to_vec(),
        );
        follower.write(b, true).expect("write");

        // A crash in the middle of a restore: the marker is written and the copy half done.
        let mut meta = SnapshotMetadata {
            index: 50,
            term: 3,
            ..Default::default()
        };
        meta.mut_conf_state().voters = vec![1, 2, 3];
        let mut b = WriteBatch::new();
        b.put(Cf::Meta, RESTORING, b"recv-1".to_vec());
        b.put(
            Cf::Meta,
            RESTORING_META,
            protobuf::Message::write_to_bytes(&meta).expect("encode"),
        );
        b.delete_range(Cf::Kv, Vec::new(), vec![0xff; 8]);
        follower.write(b, true).expect("write");

        finish_interrupted_restore(follower.as_ref(), &snap_dir, reset_to_snapshot)
            .expect("finish the restore");
        assert_eq!(
            follower.get(Cf::Kv, b"new-rev").expect("get"),
            Some(b"new".to_vec())
        );
        assert_eq!(follower.get(Cf::Kv, b"old-rev").expect("get"), None);
        assert_eq!(read_applied(follower.as_ref()).expect("applied"), 50);
        assert_eq!(
            crate::membership::local_id(follower.as_ref()).expect("local id"),
            Some(2),
            "this member's own keys survive a restore"
        );
        assert_eq!(follower.get(Cf::Meta, RESTORING).expect("get"), None);
        let log = LogStore::open(follower).expect("reopen log");
        assert_eq!((log.first_index(), log.last_index()), (51, 50));
        assert_eq!(log.conf_state().voters, vec![1, 2, 3]);
        assert!(log.hard_state().commit >= 50);
    }
}
