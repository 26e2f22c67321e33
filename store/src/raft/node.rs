//! The Ready loop: one thread owns the `RawNode`, the log store and the state machine.
//!
//! That thread runs a single-threaded tokio runtime of its own, and the peer transport (the
//! links to other members and the server of their streams) runs on it too: a Raft message goes
//! from the loop to a link, and from a peer's stream to the loop, without waking another thread.
//! A one-client write crosses members four times (forward, append, acknowledgement, commit), and
//! each cross-thread wake-up costs tens of microseconds on a small virtual machine.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, EntryType};
use raft::{RawNode, SnapshotStatus, StateRole};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{oneshot, watch};

use super::handle::{Accept, Msg, Shared};
pub use super::handle::{OnRefusal, PeerProgress, RaftHandle, RaftStatus};
use super::storage::LogStore;
use super::{SnapshotSource, StateMachine, TracingDrain, Transport};
use crate::busy_poll::BusyPoll;
use crate::engine::{Engine, WriteBatch};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// Messages handled per loop turn at most, so ticks and Readies are never starved.
const MAX_BATCH: usize = 8192;

/// Raft ticks per heartbeat interval.
const TICKS_PER_HEARTBEAT: usize = 10;
/// How much later each surviving voter (by id order) campaigns after its leader's stream broke.
const EARLY_CAMPAIGN_STAGGER: Duration = Duration::from_millis(60);

#[derive(Debug, Clone)]
pub struct RaftConfig {
    pub id: u64,
    /// Voters of a new cluster (ignored when the log already exists). Empty for a member joining
    /// an existing cluster: it waits for the leader to contact it.
    pub initial_voters: Vec<u64>,
    pub heartbeat: Duration,
    pub election_ticks: usize,
    /// Compact the log once this many entries are applied beyond its start.
    pub snapshot_count: u64,
    /// Entries kept behind the applied index when compacting, for slow followers.
    pub catch_up_entries: u64,
    /// How long a single-voter leader polls for a client's next proposal before sleeping
    /// ([`crate::busy_poll`]); zero never polls.
    pub busy_poll: Duration,
}

/// How long the Raft thread polls for a proposal before it offers its CPU to other threads.
const POLL_SHARE: Duration = Duration::from_micros(250);

/// The running node: its thread and a handle to it.
pub struct Node {
    pub handle: RaftHandle,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Node {
    /// Opens the log, bootstraps it for a new cluster, and starts the Ready loop thread.
    pub fn start<S: StateMachine, T: Transport>(
        cfg: RaftConfig,
        engine: Arc<dyn Engine>,
        sm: S,
        transport: T,
        snapshots: Option<Arc<dyn SnapshotSource>>,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let mut log = LogStore::open(engine.clone())?;
        if log.is_empty() && !cfg.initial_voters.is_empty() {
            log.bootstrap(cfg.initial_voters.clone())?;
        }
        if let Some(s) = snapshots {
            log.set_snapshot_source(s);
        }
        let applied = sm.applied_index();
        // Entries up to `applied` were committed before they were applied, even if the hard
        // state persisted with an older commit index.
        if log.hard_state().commit < applied {
            log.set_commit(applied);
        }
        let config = raft::Config {
            id: cfg.id,
            // Raft ticks at a tenth of the heartbeat interval, so the randomised election timeout
            // has fine granularity (two followers rarely time out in the same tick and split the
            // vote), and in [1, 1.5) election timeouts rather than raft-rs' default [1, 2): a
            // lost leader is replaced sooner; pre-vote keeps disruptions rare.
            election_tick: cfg.election_ticks * TICKS_PER_HEARTBEAT,
            min_election_tick: cfg.election_ticks * TICKS_PER_HEARTBEAT,
            max_election_tick: cfg.election_ticks * TICKS_PER_HEARTBEAT * 3 / 2,
            heartbeat_tick: TICKS_PER_HEARTBEAT,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let logger = slog::Logger::root(TracingDrain, slog::o!("raft_id" => cfg.id));
        let single = log.conf_state().voters == [cfg.id];
        let mut raw = RawNode::new(&config, log, &logger).map_err(Error::storage)?;
        if single {
            // Nobody to wait for: become leader now rather than after an election timeout.
            raw.campaign().map_err(Error::storage)?;
        }

        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::storage)?;
        let (applied_tx, applied_rx) = watch::channel(applied);
        let (leader_tx, leader_rx) = watch::channel(0);
        let (stopped_tx, stopped_rx) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let read_timeout = cfg.heartbeat * (cfg.election_ticks as u32) * 2 + Duration::from_secs(3);
        let handle = RaftHandle {
            id: cfg.id,
            tx,
            runtime: runtime.handle().clone(),
            applied: applied_rx,
            leader: leader_rx,
            stopped: stopped_rx,
            shared: shared.clone(),
            read_timeout,
        };
        let poll = BusyPoll::new(cfg.busy_poll);
        let mut lp = Loop {
            raw,
            engine,
            sm,
            transport,
            metrics,
            rx,
            shared,
            applied_tx,
            leader_tx,
            cfg,
            reads: Vec::new(),
            read_batches: HashMap::new(),
            // Counting from the clock: a restarted member does not reuse the contexts of rounds
            // the leader may still hold from before the restart.
            next_read: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            leader: 0,
            early_campaign: None,
            applied_writes: false,
            idle_since: None,
            poll,
        };
        let thread = std::thread::Builder::new()
            .name("raft".into())
            .spawn(move || {
                let r = runtime.block_on(lp.run());
                lp.shared.stopped.store(true, Ordering::Release);
                stopped_tx.send_replace(true);
                if let Err(e) = &r {
                    tracing::error!(error = %e, "raft loop stopped on a storage failure");
                }
                // Peer links and streams end with the runtime; a snapshot still being packed
                // on a blocking thread is not waited for long.
                runtime.shutdown_timeout(Duration::from_secs(1));
                r
            })
            .map_err(Error::storage)?;
        Ok(Self {
            handle,
            thread: Some(thread),
        })
    }

    /// Stops the loop and waits for the thread.
    pub fn stop(mut self) -> Result<()> {
        self.handle.shutdown();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::storage("raft thread panicked")),
            None => Ok(()),
        }
    }
}

/// The round number of one of this member's read contexts (member id, then round, big-endian).
fn read_ctx(ctx: &[u8], id: u64) -> Option<u64> {
    let (member, round) = ctx.split_at_checked(8)?;
    let member = u64::from_be_bytes(member.try_into().ok()?);
    (member == id).then_some(u64::from_be_bytes(round.try_into().ok()?))
}

/// One ReadIndex round in flight: when it was issued and who waits for it.
type ReadRound = (Instant, Vec<oneshot::Sender<Result<u64>>>);

struct Loop<S, T> {
    raw: RawNode<LogStore>,
    engine: Arc<dyn Engine>,
    sm: S,
    transport: T,
    metrics: Arc<Metrics>,
    rx: UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
    applied_tx: watch::Sender<u64>,
    leader_tx: watch::Sender<u64>,
    cfg: RaftConfig,
    /// Read requests waiting for the next ReadIndex round.
    reads: Vec<oneshot::Sender<Result<u64>>>,
    /// ReadIndex rounds in flight, by context.
    read_batches: HashMap<u64, ReadRound>,
    next_read: u64,
    /// A campaign due early because the leader's stream broke: (that leader, when).
    early_campaign: Option<(u64, Instant)>,
    leader: u64,
    /// Whether the last turn applied client writes.
    applied_writes: bool,
    /// When this leader started waiting for the next proposal, and how long such waits take.
    idle_since: Option<Instant>,
    poll: BusyPoll,
}

impl<S: StateMachine, T: Transport> Loop<S, T> {
    async fn run(&mut self) -> Result<()> {
        let tick = self.cfg.heartbeat / TICKS_PER_HEARTBEAT as u32;
        let mut next_tick = Instant::now() + tick;
        let timer = tokio::time::sleep_until(next_tick.into());
        tokio::pin!(timer);
        loop {
            let due = match self.early_campaign {
                Some((_, at)) => at.min(next_tick),
                None => next_tick,
            };
            timer.as_mut().reset(due.into());
            tokio::select! {
                biased;
                m = self.rx.recv() => {
                    let Some(m) = m else { return Ok(()) };
                    if !self.handle(m) {
                        return Ok(());
                    }
                    for _ in 0..MAX_BATCH {
                        match self.rx.try_recv() {
                            Ok(m) => {
                                if !self.handle(m) {
                                    return Ok(());
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                _ = &mut timer => {}
            }
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                next_tick = now + tick;
                self.expire_reads(now);
            }
            self.maybe_campaign_early(now);
            self.issue_reads();
            self.on_ready().await?;
            if std::mem::take(&mut self.applied_writes) {
                self.poll_for_next_proposal().await;
            }
        }
    }

    /// A single-voter leader's turn is the whole commit: once it has applied a write, the next
    /// event is most likely the same client's next proposal. Polls for it (letting the
    /// runtime's other tasks run) rather than sleeping, while proposals have been arriving
    /// within the busy-poll window ([`crate::busy_poll`]). In a larger group the wait is for
    /// other members, which need the CPU more than this thread does.
    async fn poll_for_next_proposal(&mut self) {
        if self.raw.raft.state != StateRole::Leader
            || self.raw.raft.prs().conf().voters().ids().len() != 1
        {
            return;
        }
        let now = Instant::now();
        self.idle_since = Some(now);
        if let Some(deadline) = self.poll.deadline(now) {
            let mut turn = now;
            while self.rx.is_empty() {
                tokio::task::yield_now().await;
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                // Now and then, the CPU too: on a machine with more runnable threads than
                // cores (the client's, the gRPC worker answering it), one queued behind this
                // thread would otherwise wait for the scheduler's tick (~1 ms at p99).
                if now - turn >= POLL_SHARE {
                    std::thread::yield_now();
                    turn = now;
                }
            }
        }
    }

    /// Handles one message; false to stop.
    fn handle(&mut self, m: Msg) -> bool {
        match m {
            Msg::Propose { data, accept } => {
                if let Some(since) = self.idle_since.take() {
                    self.poll.record(since, Instant::now());
                }
                let r = self.raw.propose(vec![], data).map_err(|_| self.no_leader());
                if r.is_err() {
                    self.metrics
                        .proposals_failed
                        .fetch_add(1, Ordering::Relaxed);
                }
                match accept {
                    Accept::Reply(done) => {
                        let _ = done.send(r);
                    }
                    Accept::Refusal(refused) => refused.answer(r),
                }
            }
            Msg::ProposeConfChange { cc, done } => {
                let r = self
                    .raw
                    .propose_conf_change(vec![], cc)
                    .map_err(|_| self.no_leader());
                let _ = done.send(r);
            }
            Msg::ReadIndex { done } => self.reads.push(done),
            Msg::Step(msgs) => {
                for m in msgs {
                    if let Err(e) = self.raw.step(m) {
                        tracing::debug!(error = %e, "dropped raft message");
                    }
                }
            }
            Msg::Unreachable(id) => self.raw.report_unreachable(id),
            Msg::LeaderStreamLost(from) => self.leader_stream_lost(from),
            Msg::SnapshotDone(id, ok) => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(id, status);
            }
            Msg::TransferLeader(to) => self.raw.transfer_leader(to),
            Msg::HandOver(done) => {
                let target = self.best_transferee();
                if target != 0 {
                    self.raw.transfer_leader(target);
                }
                let _ = done.send(target);
            }
            Msg::Progress(done) => {
                let _ = done.send(self.peer_progress());
            }
            Msg::Shutdown => return false,
        }
        true
    }

    /// The leader's stream to this follower broke. Its lease is no longer trusted (so this
    /// member grants the pre-votes of the others, who saw the same), and this member campaigns
    /// after a delay staggered by its rank among the surviving voters (lowest id first, a few
    /// milliseconds of jitter), so that two survivors never split the vote. Safety does not
    /// depend on it: the campaign is a pre-vote, which members still hearing a live leader
    /// refuse, and a heartbeat from the leader before the delay cancels it.
    fn leader_stream_lost(&mut self, from: u64) {
        let r = &mut self.raw.raft;
        if r.state != StateRole::Follower || r.leader_id != from || from == 0 {
            return;
        }
        let timeout = r.election_timeout();
        r.election_elapsed = r.election_elapsed.max(timeout);
        let mut survivors: Vec<u64> = r
            .prs()
            .conf()
            .voters()
            .ids()
            .iter()
            .filter(|id| *id != from)
            .collect();
        if !survivors.contains(&self.cfg.id) {
            return; // a learner does not campaign
        }
        survivors.sort_unstable();
        let rank = survivors
            .iter()
            .position(|id| *id == self.cfg.id)
            .unwrap_or(0) as u32;
        let jitter = {
            use std::hash::BuildHasher;
            let h = std::collections::hash_map::RandomState::new()
                .hash_one((self.cfg.id, Instant::now()));
            Duration::from_micros(h % 20_000)
        };
        let delay = EARLY_CAMPAIGN_STAGGER * rank + jitter;
        tracing::info!(
            leader = format!("{from:x}"),
            delay_ms = delay.as_millis() as u64,
            "the leader's stream broke; campaigning early"
        );
        self.early_campaign = Some((from, Instant::now() + delay));
    }

    /// Starts the early campaign when it is due, unless a leader was heard from meanwhile (a
    /// heartbeat resets the election clock) or another member already won.
    fn maybe_campaign_early(&mut self, now: Instant) {
        let Some((lost, at)) = self.early_campaign else {
            return;
        };
        if now < at {
            return;
        }
        self.early_campaign = None;
        let r = &self.raw.raft;
        let still_lost = r.state == StateRole::Follower
            && r.leader_id == lost
            && r.election_elapsed >= r.election_timeout();
        if still_lost {
            let _ = self.raw.campaign();
        }
    }

    fn peer_progress(&self) -> Vec<PeerProgress> {
        if self.raw.raft.state != StateRole::Leader {
            return Vec::new();
        }
        let learners = self.raw.raft.prs().conf().learners();
        self.raw
            .raft
            .prs()
            .iter()
            .map(|(id, pr)| PeerProgress {
                id: *id,
                matched: pr.matched,
                is_learner: learners.contains(id),
                active: pr.recent_active || *id == self.cfg.id,
            })
            .collect()
    }

    /// The voter (other than this leader) whose log matches the most.
    fn best_transferee(&self) -> u64 {
        self.peer_progress()
            .into_iter()
            .filter(|p| p.id != self.cfg.id && !p.is_learner)
            .max_by_key(|p| p.matched)
            .map_or(0, |p| p.id)
    }

    fn no_leader(&self) -> Error {
        if self.raw.raft.leader_id == 0 {
            Error::NoLeader
        } else {
            Error::Timeout
        }
    }

    /// Starts one ReadIndex round for every read that arrived since the last one.
    fn issue_reads(&mut self) {
        if self.reads.is_empty() {
            return;
        }
        if self.raw.raft.leader_id == 0 {
            for done in self.reads.drain(..) {
                let _ = done.send(Err(Error::NoLeader));
            }
            return;
        }
        // raft-rs ignores a ReadIndex on a leader that has not yet committed an entry of its own
        // term; hold the reads until it has (the new leader's empty entry commits promptly).
        if self.raw.raft.state == StateRole::Leader && !self.raw.raft.commit_to_current_term() {
            return;
        }
        let ctx = self.next_read;
        self.next_read += 1;
        // The leader keeps one pending read per context and drops a request whose context it
        // already holds, whoever sent it: contexts carry this member's id so that two members'
        // rounds never collide (a dropped round waits an election timeout for its retry).
        let mut c = Vec::with_capacity(16);
        c.extend_from_slice(&self.cfg.id.to_be_bytes());
        c.extend_from_slice(&ctx.to_be_bytes());
        self.raw.read_index(c);
        let waiting = std::mem::take(&mut self.reads);
        self.read_batches.insert(ctx, (Instant::now(), waiting));
    }

    /// Retries read rounds that got no answer in an election timeout (a dropped message, a
    /// leader change); callers give up on their own deadline.
    fn expire_reads(&mut self, now: Instant) {
        let limit = self.cfg.heartbeat * (self.cfg.election_ticks as u32);
        let mut retry = Vec::new();
        self.read_batches.retain(|_, (started, waiting)| {
            if now.duration_since(*started) < limit {
                return true;
            }
            retry.extend(waiting.drain(..).filter(|done| !done.is_closed()));
            false
        });
        self.reads.extend(retry);
    }

    async fn on_ready(&mut self) -> Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss() {
            // Publish the term with the leader, so Status never pairs a leader with a term it
            // did not lead (the hard state reaches `shared.term` only after it is persisted).
            self.shared
                .term
                .fetch_max(self.raw.raft.term, Ordering::AcqRel);
            self.leader_changed(ss.leader_id, ss.raft_state == StateRole::Leader);
        }
        if !rd.messages().is_empty() {
            self.transport.send(rd.take_messages());
            // Let the links put these (a leader's appends) on the wire before this thread
            // blocks in the fsync below: followers persist in parallel with the leader.
            tokio::task::yield_now().await;
        }
        if !rd.snapshot().is_empty() {
            // The leader sent the state machine: restore it, then restart the log after it.
            let snap = rd.snapshot().clone();
            let index = snap.get_metadata().index;
            tracing::info!(index, "installing a snapshot from the leader");
            self.sm.restore(&snap, super::storage::reset_to_snapshot)?;
            self.raw.mut_store().apply_snapshot(&snap)?;
            self.shared.commit.fetch_max(index, Ordering::AcqRel);
            self.applied_tx.send_replace(index);
        }
        for rs in rd.take_read_states() {
            let ctx = read_ctx(&rs.request_ctx, self.cfg.id);
            if let Some((_, waiting)) = ctx.and_then(|c| self.read_batches.remove(&c)) {
                for done in waiting {
                    let _ = done.send(Ok(rs.index));
                }
            }
        }
        let committed = rd.take_committed_entries();
        self.apply(committed)?;

        let mut batch = WriteBatch::new();
        let entries = rd.take_entries();
        let store = self.raw.mut_store();
        store.append(&entries, rd.hs(), &mut batch);
        if !batch.is_empty() {
            let started = Instant::now();
            self.engine.write(batch, rd.must_sync())?;
            self.metrics.wal_fsync.observe(started.elapsed());
        }
        self.shared
            .last_index
            .store(self.raw.store().last_index(), Ordering::Release);
        if let Some(hs) = rd.hs() {
            self.shared.term.fetch_max(hs.term, Ordering::AcqRel);
        }
        let mut sent = false;
        if !rd.persisted_messages().is_empty() {
            self.transport.send(rd.take_persisted_messages());
            sent = true;
        }

        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit);
            self.shared.commit.store(commit, Ordering::Release);
        }
        let messages = light.take_messages();
        if !messages.is_empty() {
            self.transport.send(messages);
            sent = true;
        }
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.maybe_compact_log()?;
        if sent {
            // Before the next turn (which may block in an fsync): let the links send.
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    fn apply(&mut self, entries: Vec<raft::eraftpb::Entry>) -> Result<()> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let mut normal = 0u64;
        let mut run = Vec::with_capacity(entries.len());
        for e in entries {
            match e.entry_type {
                EntryType::EntryNormal => {
                    normal += u64::from(!e.data.is_empty());
                    run.push(e);
                }
                EntryType::EntryConfChange => {
                    if !run.is_empty() {
                        self.sm.apply(std::mem::take(&mut run))?;
                    }
                    let mut cc = ConfChange::default();
                    cc.merge_from_bytes(&e.data).map_err(Error::corrupt)?;
                    let raw = &mut self.raw;
                    let mut change = |cc: &ConfChange| -> Result<raft::eraftpb::ConfState> {
                        let cs = raw
                            .apply_conf_change(cc)
                            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                        raw.mut_store().set_conf_state(cs.clone())?;
                        Ok(cs)
                    };
                    self.sm.apply_conf_change(e.index, &cc, &mut change)?;
                }
                EntryType::EntryConfChangeV2 => {
                    // Strata proposes only simple (v1) changes; apply any other to Raft alone.
                    if !run.is_empty() {
                        self.sm.apply(std::mem::take(&mut run))?;
                    }
                    let mut cc = ConfChangeV2::default();
                    cc.merge_from_bytes(&e.data).map_err(Error::corrupt)?;
                    match self.raw.apply_conf_change(&cc) {
                        Ok(cs) => self.raw.mut_store().set_conf_state(cs)?,
                        Err(e) => tracing::warn!(error = %e, "rejected configuration change"),
                    }
                    // Keep the applied index moving past it.
                    run.push(raft::eraftpb::Entry {
                        index: e.index,
                        term: e.term,
                        ..Default::default()
                    });
                }
            }
        }
        self.metrics
            .proposals_committed
            .fetch_add(normal, Ordering::Relaxed);
        if !run.is_empty() {
            self.sm.apply(run)?;
        }
        self.metrics
            .proposals_applied
            .fetch_add(normal, Ordering::Relaxed);
        self.applied_writes |= normal > 0;
        self.shared.commit.fetch_max(last, Ordering::AcqRel);
        self.applied_tx.send_replace(last);
        Ok(())
    }

    fn leader_changed(&mut self, leader: u64, is_self: bool) {
        if leader == self.leader {
            return;
        }
        if leader != 0 {
            self.metrics.leader_changes.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(leader, is_self, "raft leader changed");
        self.leader = leader;
        self.shared.leader.store(leader, Ordering::Release);
        self.leader_tx.send_replace(leader);
        self.sm.leader_changed(leader, is_self);
    }

    fn maybe_compact_log(&mut self) -> Result<()> {
        let applied = self.sm.applied_index();
        let first = self.raw.store().first_index();
        if applied.saturating_sub(first) < self.cfg.snapshot_count + self.cfg.catch_up_entries {
            return Ok(());
        }
        let to = applied.saturating_sub(self.cfg.catch_up_entries);
        self.raw.mut_store().compact(to)
    }
}
