//! The handle through which the rest of the member talks to the Ready loop: proposals, reads,
//! membership changes, peer reports and status, all as messages to the Raft thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raft::eraftpb::{ConfChange, Message};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};

use crate::error::{Error, Result};

/// Called on the Raft thread if a proposal is refused (no leader, a leader transfer in
/// progress); an accepted proposal's outcome is learned from the state machine instead.
pub type OnRefusal = Box<dyn FnOnce(Error) + Send>;

/// Who hears whether a proposal was accepted.
pub(super) enum Accept {
    /// Answered either way.
    Reply(oneshot::Sender<Result<()>>),
    /// Told only of a refusal: the proposer waits for the applied result anyway, so telling it
    /// of every acceptance would wake it once more per request for nothing.
    Refusal(Refusal),
}

/// Runs its callback with [`Error::Stopped`] if dropped unanswered (the loop stopped with the
/// proposal still queued), so a proposer never waits out its timeout for a dead node.
pub(super) struct Refusal(pub(super) Option<OnRefusal>);

impl Refusal {
    pub(super) fn answer(mut self, r: Result<()>) {
        if let (Some(refused), Err(e)) = (self.0.take(), r) {
            refused(e);
        }
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        if let Some(refused) = self.0.take() {
            refused(Error::Stopped);
        }
    }
}

pub(super) enum Msg {
    Propose {
        data: Vec<u8>,
        accept: Accept,
    },
    ReadIndex {
        done: oneshot::Sender<Result<u64>>,
    },
    ProposeConfChange {
        cc: ConfChange,
        done: oneshot::Sender<Result<()>>,
    },
    Step(Vec<Message>),
    Unreachable(u64),
    LeaderStreamLost(u64),
    SnapshotDone(u64, bool),
    TransferLeader(u64),
    /// Leader only: hand leadership to the most up-to-date voter; answers its id (0 = none).
    HandOver(oneshot::Sender<u64>),
    Progress(oneshot::Sender<Vec<PeerProgress>>),
    Shutdown,
}

/// A leader's view of one member's replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerProgress {
    pub id: u64,
    pub matched: u64,
    pub is_learner: bool,
    /// Heard from within the last election timeout (raft-rs' `recent_active`).
    pub active: bool,
}

/// A snapshot of the node's Raft state for Status and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct RaftStatus {
    pub id: u64,
    pub leader: u64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
}

#[derive(Default)]
pub(super) struct Shared {
    pub(super) leader: AtomicU64,
    pub(super) term: AtomicU64,
    pub(super) commit: AtomicU64,
    pub(super) last_index: AtomicU64,
    pub(super) stopped: AtomicBool,
}

/// A cheap, cloneable handle for proposing, reading and observing the node.
#[derive(Clone)]
pub struct RaftHandle {
    pub(super) id: u64,
    pub(super) tx: UnboundedSender<Msg>,
    /// The Raft thread's runtime, for the tasks that carry its messages to and from peers.
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) applied: watch::Receiver<u64>,
    pub(super) leader: watch::Receiver<u64>,
    /// Becomes true (or its sender goes away) when the loop has stopped.
    pub(super) stopped: watch::Receiver<bool>,
    pub(super) shared: Arc<Shared>,
    pub(super) read_timeout: Duration,
}

impl RaftHandle {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The Raft thread's runtime: the peer transport's links and the server of peer streams
    /// run here, so messages reach the loop and leave it without a thread hand-off.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    fn send(&self, m: Msg) -> Result<()> {
        self.tx.send(m).map_err(|_| Error::Stopped)
    }

    /// Appends `data` to the log through the leader. Returns once the node accepted it; the
    /// state machine reports the outcome when the entry is applied.
    pub async fn propose(&self, data: Vec<u8>) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.send(Msg::Propose {
            data,
            accept: Accept::Reply(done),
        })?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Hands `data` to the node for the log without waiting: `refused` runs (on the Raft thread)
    /// only if the node refuses it. For proposers that wait for the applied result anyway.
    pub fn submit(&self, data: Vec<u8>, refused: OnRefusal) -> Result<()> {
        self.send(Msg::Propose {
            data,
            accept: Accept::Refusal(Refusal(Some(refused))),
        })
    }

    /// Linearizable read barrier (ReadIndex): returns once this member has applied everything
    /// committed at the time of the call. Concurrent callers share one quorum round.
    pub async fn read_index(&self) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.send(Msg::ReadIndex { done })?;
        let index = match tokio::time::timeout(self.read_timeout, rx).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(Error::Stopped),
            Err(_) => return Err(self.unavailable()),
        };
        self.wait_applied(index).await
    }

    /// Waits until the state machine has applied `index`.
    pub async fn wait_applied(&self, index: u64) -> Result<()> {
        let mut applied = self.applied.clone();
        let reached = tokio::time::timeout(self.read_timeout, async move {
            applied.wait_for(|a| *a >= index).await.map(|_| ())
        })
        .await;
        match reached {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// The error for a request that could not complete in time: no leader, or a timeout.
    pub fn unavailable(&self) -> Error {
        if self.shared.leader.load(Ordering::Acquire) == 0 {
            Error::NoLeader
        } else {
            Error::Timeout
        }
    }

    /// Proposes a configuration change; like `propose`, returns once the node accepted it.
    pub async fn propose_conf_change(&self, cc: ConfChange) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.send(Msg::ProposeConfChange { cc, done })?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Hands messages from other members to the node.
    pub fn step(&self, msgs: Vec<Message>) -> Result<()> {
        self.send(Msg::Step(msgs))
    }

    /// The transport could not reach `id`: Raft probes it again instead of streaming entries.
    pub fn report_unreachable(&self, id: u64) {
        let _ = self.tx.send(Msg::Unreachable(id));
    }

    /// The message stream from member `from` ended abnormally (its connection was reset or
    /// closed mid-stream: the process most likely died). If `from` is this follower's leader,
    /// the follower stops trusting its lease and campaigns (with pre-vote) after a short,
    /// rank-staggered delay, instead of waiting out a whole election timeout.
    pub fn report_stream_lost(&self, from: u64) {
        let _ = self.tx.send(Msg::LeaderStreamLost(from));
    }

    /// A snapshot sent to `id` arrived (`ok`) or failed.
    pub fn report_snapshot(&self, id: u64, ok: bool) {
        let _ = self.tx.send(Msg::SnapshotDone(id, ok));
    }

    pub fn transfer_leader(&self, to: u64) -> Result<()> {
        self.send(Msg::TransferLeader(to))
    }

    /// Leader only: starts handing leadership to the most up-to-date voter; returns its id, or 0
    /// when there is nobody to hand over to (or this member is not the leader).
    pub async fn hand_over(&self) -> u64 {
        let (done, rx) = oneshot::channel();
        if self.send(Msg::HandOver(done)).is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Leader only: how far each member's log matches the leader's (empty on a follower).
    pub async fn progress(&self) -> Result<Vec<PeerProgress>> {
        let (done, rx) = oneshot::channel();
        self.send(Msg::Progress(done))?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Index of the last entry in this member's log.
    pub fn last_index(&self) -> u64 {
        self.shared.last_index.load(Ordering::Acquire)
    }

    pub fn status(&self) -> RaftStatus {
        RaftStatus {
            id: self.id,
            leader: self.shared.leader.load(Ordering::Acquire),
            term: self.shared.term.load(Ordering::Acquire),
            commit: self.shared.commit.load(Ordering::Acquire),
            applied: *self.applied.borrow(),
            last_index: self.shared.last_index.load(Ordering::Acquire),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.shared.leader.load(Ordering::Acquire) == self.id
    }

    /// Follows the leader id (0 = none).
    pub fn leader_watch(&self) -> watch::Receiver<u64> {
        self.leader.clone()
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Completes once the loop has stopped (asked to, or on a storage failure). Unlike a watch
    /// on the applied index, waiting here costs no wake-up per applied entry.
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// Asks the loop to stop; `Node::join` waits for it.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}
