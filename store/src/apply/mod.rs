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
mod request;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use prost::Message;
use strata_proto::etcdserverpb::{alarm_request::AlarmAction, AlarmMember, AlarmType};
use strata_proto::peer::RaftRequest;
use tokio::sync::oneshot;

pub use request::Response;

use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};
use crate::lease::Lessor;
use crate::metrics::Metrics;
use crate::mvcc::MvccStore;
use crate::raft::{Entry, StateMachine};
use crate::watch::WatchHub;

const APPLIED_INDEX: &[u8] = b"raft/applied_index";
const ALARM_PREFIX: &[u8] = b"alarm/";

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

    fn trigger(&self, id: u64, r: ApplyResult) {
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
        Ok(Self {
            set: Mutex::new(set),
        })
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
    applied: u64,
}

impl Applier {
    pub fn new(
        engine: Arc<dyn Engine>,
        mvcc: Arc<MvccStore>,
        lessor: Arc<Lessor>,
        hub: Arc<WatchHub>,
        waiters: Arc<Waiters>,
        alarms: Arc<Alarms>,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let applied = match engine.get(Cf::Meta, APPLIED_INDEX)? {
            Some(v) => u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| Error::corrupt("malformed applied index"))?,
            ),
            None => 0,
        };
        Ok(Self {
            engine,
            mvcc,
            lessor,
            hub,
            waiters,
            alarms,
            metrics,
            applied,
        })
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

    fn leader_changed(&mut self, _leader: u64, is_self: bool) {
        if is_self {
            self.lessor.promote();
        } else {
            self.lessor.demote();
        }
    }
}
