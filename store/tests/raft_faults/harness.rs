//! The harness of the Raft fault tests: a recording state machine, a leadership ledger, the
//! fault-injecting router, and a cluster of in-process nodes wired through it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::eraftpb::MessageType;
use strata_store::engine::{Engine, RocksEngine};
use strata_store::error::Result;
use strata_store::metrics::Metrics;
use strata_store::raft::node::{Node, RaftConfig};
use strata_store::raft::{
    ConfChange, ConfState, Entry, Message, RaftHandle, RaftStatus, Snapshot, StateMachine,
    Transport,
};
use tempfile::TempDir;

pub(crate) const HEARTBEAT: Duration = Duration::from_millis(25);
pub(crate) const ELECTION_TICKS: usize = 10;
/// How long any awaited condition may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);
/// How long one proposal attempt waits to be applied before it is retried with a new payload.
pub(crate) const ATTEMPT_WAIT: Duration = Duration::from_millis(1500);

/// One test at a time (see the module comment).
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("a thread panicked holding a test mutex")
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// xorshift64*: enough for fault injection, and no extra dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams (never zero).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub(crate) fn test_seed(name: &str) -> u64 {
    let seed = std::env::var("RAFT_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("[{name}] RAFT_FAULTS_SEED={seed}");
    seed
}

// ---------------------------------------------------------------------------------------------
// The state machine: records what it applies

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) data: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct AppliedLog {
    pub(crate) entries: Vec<Applied>,
    /// Payload -> indexes it was applied at (more than one would be a duplicate).
    pub(crate) at: HashMap<Vec<u8>, Vec<u64>>,
    /// Contract violations seen by the state machine (checked at the end of each test).
    pub(crate) problems: Vec<String>,
}

pub(crate) struct RecordingSm {
    pub(crate) id: u64,
    pub(crate) applied: u64,
    pub(crate) log: Arc<Mutex<AppliedLog>>,
}

impl StateMachine for RecordingSm {
    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        let mut log = lock(&self.log);
        for e in entries {
            // The bootstrap snapshot covers index 1, so the first entry applied is 2; after that
            // the indexes must follow each other without gaps.
            let expected_ok = if self.applied == 0 {
                e.index >= 1
            } else {
                e.index == self.applied + 1
            };
            if !expected_ok {
                let msg = format!(
                    "node {}: applied index {} after {}",
                    self.id, e.index, self.applied
                );
                log.problems.push(msg);
            }
            self.applied = e.index;
            let data = e.data.to_vec();
            if !data.is_empty() {
                log.at.entry(data.clone()).or_default().push(e.index);
            }
            log.entries.push(Applied {
                index: e.index,
                term: e.term,
                data,
            });
        }
        Ok(())
    }

    fn apply_conf_change(
        &mut self,
        index: u64,
        _cc: &ConfChange,
        _raft: &mut dyn FnMut(&ConfChange) -> Result<ConfState>,
    ) -> Result<()> {
        lock(&self.log).problems.push(format!(
            "node {}: unexpected conf change at {index}",
            self.id
        ));
        self.applied = index;
        Ok(())
    }

    fn restore(
        &mut self,
        snapshot: &Snapshot,
        _log_reset: strata_store::raft::LogReset,
    ) -> Result<()> {
        let index = snapshot.get_metadata().index;
        lock(&self.log)
            .problems
            .push(format!("node {}: unexpected snapshot at {index}", self.id));
        self.applied = index;
        Ok(())
    }

    fn leader_changed(&mut self, _leader: u64, _is_self: bool) {}
}

// ---------------------------------------------------------------------------------------------
// Leadership ledger

#[derive(Default)]
pub(crate) struct Ledger {
    /// Term -> nodes that sent leader-only messages in that term (recorded by the router before
    /// any fault applies, so a cut-off leader counts too).
    pub(crate) acting: BTreeMap<u64, BTreeSet<u64>>,
    /// Term -> nodes whose own `status()` said they lead in that term (two identical samples).
    pub(crate) claimed: BTreeMap<u64, BTreeSet<u64>>,
    /// Term -> leader -> followers whose `status()` reported it (two identical samples).
    pub(crate) views: BTreeMap<u64, BTreeMap<u64, BTreeSet<u64>>>,
    pub(crate) samples: u64,
}

impl Ledger {
    /// Panics if a term had two leaders; returns a summary.
    pub(crate) fn check(&self) -> String {
        let mut leaders: BTreeMap<u64, BTreeSet<u64>> = self.acting.clone();
        for (term, ids) in &self.claimed {
            leaders.entry(*term).or_default().extend(ids);
        }
        for (term, ids) in &leaders {
            assert!(
                ids.len() <= 1,
                "term {term} had {} leaders: {ids:?} (acting per messages: {:?}, claimed per \
                 status: {:?})",
                ids.len(),
                self.acting.get(term),
                self.claimed.get(term)
            );
        }
        // A follower's view (term, leader) must name that term's leader. `status()` loads the
        // leader and the term from two atomics that the Ready loop updates at different points
        // of one Ready (the leader when it reads the soft state, the term only after the fsync of
        // the hard state), so a follower moving to a new leader in a new term can be sampled with
        // the new leader and the old term. Such a torn view is tolerated (and counted) when the
        // leader it names did lead a later term; anything else fails.
        let mut torn = Vec::new();
        for (term, seen) in &self.views {
            for (id, by) in seen {
                let leader_of_term = leaders.get(term).and_then(|s| s.iter().next());
                if leader_of_term == Some(id) {
                    continue;
                }
                let led_later = leaders
                    .range(term + 1..)
                    .any(|(_, ids_later)| ids_later.contains(id));
                assert!(
                    led_later,
                    "followers {by:?} saw {id} as the leader of term {term}, whose leader was \
                     {leader_of_term:?}; leaders per term: {leaders:?}"
                );
                torn.push(format!(
                    "node(s) {by:?} reported term {term} with leader {id}"
                ));
            }
        }
        format!(
            "leaders per term {:?}; {} status samples; torn follower views {torn:?}",
            leaders
                .iter()
                .map(|(t, ids)| (*t, ids.iter().next().copied().unwrap_or(0)))
                .collect::<Vec<_>>(),
            self.samples
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The fault-injecting router

#[derive(Default)]
pub(crate) struct Faults {
    /// Directed links (from, to) that lose every message.
    pub(crate) cut: HashSet<(u64, u64)>,
    /// Probability of losing a message, per mille.
    pub(crate) drop_per_mille: u64,
    /// Each message is delayed uniformly in 0..=max_delay_ms.
    pub(crate) max_delay_ms: u64,
}

pub(crate) struct Pending {
    pub(crate) due: Instant,
    pub(crate) seq: u64,
    pub(crate) msg: Message,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

#[derive(Default)]
pub(crate) struct Router {
    pub(crate) handles: Mutex<HashMap<u64, RaftHandle>>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) queue: Mutex<BinaryHeap<Reverse<Pending>>>,
    pub(crate) wake: Condvar,
    pub(crate) stop: AtomicBool,
    pub(crate) seq: AtomicU64,
    pub(crate) ledger: Arc<Mutex<Ledger>>,
    pub(crate) sent: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) delayed: AtomicU64,
}

impl Router {
    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    pub(crate) fn cut(&self, a: &[u64], b: &[u64]) {
        let mut f = lock(&self.faults);
        for x in a {
            for y in b {
                if x != y {
                    f.cut.insert((*x, *y));
                    f.cut.insert((*y, *x));
                }
            }
        }
    }

    pub(crate) fn uncut_all(&self) {
        lock(&self.faults).cut.clear();
    }

    pub(crate) fn is_cut(&self, from: u64, to: u64) -> bool {
        lock(&self.faults).cut.contains(&(from, to))
    }

    pub(crate) fn route(&self, rng: &mut Rng, msgs: Vec<Message>) {
        {
            let mut ledger = lock(&self.ledger);
            for m in &msgs {
                if matches!(
                    m.get_msg_type(),
                    MessageType::MsgAppend
                        | MessageType::MsgHeartbeat
                        | MessageType::MsgSnapshot
                        | MessageType::MsgTimeoutNow
                ) {
                    ledger.acting.entry(m.term).or_default().insert(m.from);
                }
            }
        }
        for m in msgs {
            self.sent.fetch_add(1, Ordering::Relaxed);
            let delay = {
                let f = lock(&self.faults);
                if f.cut.contains(&(m.from, m.to))
                    || (f.drop_per_mille > 0 && rng.below(1000) < f.drop_per_mille)
                {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if f.max_delay_ms > 0 {
                    Duration::from_millis(rng.below(f.max_delay_ms + 1))
                } else {
                    Duration::ZERO
                }
            };
            if delay.is_zero() {
                self.deliver(m);
            } else {
                self.delayed.fetch_add(1, Ordering::Relaxed);
                let p = Pending {
                    due: Instant::now() + delay,
                    seq: self.seq.fetch_add(1, Ordering::Relaxed),
                    msg: m,
                };
                lock(&self.queue).push(Reverse(p));
                self.wake.notify_one();
            }
        }
    }

    /// Hands a message to its destination, unless its link was cut while it was in flight.
    pub(crate) fn deliver(&self, m: Message) {
        if self.is_cut(m.from, m.to) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(h) = lock(&self.handles).get(&m.to) {
            // A stopped node cannot take messages; that is a lost message like any other.
            let _ = h.step(vec![m]);
        }
    }

    /// The delivery thread for delayed messages, in due order.
    pub(crate) fn run_delivery(&self) {
        let mut q = lock(&self.queue);
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let next_due = q.peek().map(|Reverse(p)| p.due);
            match next_due {
                Some(due) if due <= now => {
                    let Some(Reverse(p)) = q.pop() else { continue };
                    drop(q);
                    self.deliver(p.msg);
                    q = lock(&self.queue);
                }
                Some(due) => {
                    q = self
                        .wake
                        .wait_timeout(q, due - now)
                        .expect("delivery queue poisoned")
                        .0;
                }
                None => {
                    q = self
                        .wake
                        .wait_timeout(q, Duration::from_millis(50))
                        .expect("delivery queue poisoned")
                        .0;
                }
            }
        }
    }

    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let _q = lock(&self.queue);
        self.wake.notify_all();
    }
}

/// One node's end of the router.
pub(crate) struct RouterTransport {
    pub(crate) router: Arc<Router>,
    pub(crate) rng: Rng,
}

impl Transport for RouterTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        self.router.route(&mut self.rng, msgs);
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster

/// What proposers need; shared with spawned tasks.
pub(crate) struct Shared {
    pub(crate) handles: BTreeMap<u64, RaftHandle>,
    pub(crate) logs: BTreeMap<u64, Arc<Mutex<AppliedLog>>>,
    /// Every payload ever proposed (one per attempt).
    pub(crate) attempts: Mutex<HashSet<Vec<u8>>>,
}

impl Shared {
    pub(crate) fn handle(&self, id: u64) -> &RaftHandle {
        self.handles.get(&id).expect("no such node")
    }

    pub(crate) fn applied_anywhere(&self, payload: &[u8]) -> bool {
        self.logs.values().any(|l| lock(l).at.contains_key(payload))
    }

    /// Proposes `op` through node `from` until one attempt (each with its own payload, `op/aN`)
    /// is applied somewhere (so committed); returns that payload. `propose` returning Ok only
    /// means the node accepted it, and a forwarded proposal can be lost, hence the retries.
    pub(crate) async fn commit(&self, from: u64, op: &str) -> Vec<u8> {
        let deadline = Instant::now() + DEADLINE;
        let h = self.handle(from);
        for attempt in 0u32.. {
            assert!(
                Instant::now() < deadline,
                "{op} was not committed through node {from} within {DEADLINE:?}"
            );
            let payload = format!("{op}/a{attempt}").into_bytes();
            lock(&self.attempts).insert(payload.clone());
            if h.propose(payload.clone()).await.is_err() {
                // No leader known right now.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let until = Instant::now() + ATTEMPT_WAIT;
            while Instant::now() < until {
                if self.applied_anywhere(&payload) {
                    return payload;
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
        unreachable!()
    }
}

pub(crate) struct Cluster {
    pub(crate) name: &'static str,
    pub(crate) ids: Vec<u64>,
    pub(crate) nodes: BTreeMap<u64, Node>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) router: Arc<Router>,
    pub(crate) ledger: Arc<Mutex<Ledger>>,
    pub(crate) monitor_stop: Arc<AtomicBool>,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) started: Instant,
    pub(crate) _dirs: Vec<TempDir>,
}

impl Cluster {
    /// Starts nodes 1..=n of a new cluster, all voters.
    pub(crate) fn start(name: &'static str, n: u64, seed: u64) -> Self {
        let started = Instant::now();
        let ids: Vec<u64> = (1..=n).collect();
        let dirs: Vec<TempDir> = ids
            .iter()
            .map(|_| tempfile::tempdir().expect("temp dir"))
            .collect();
        // Opening an engine writes a 32 MiB WAL warm-up file: open them in parallel.
        let engines: Vec<Arc<dyn Engine>> = std::thread::scope(|s| {
            let opening: Vec<_> = dirs
                .iter()
                .map(|d| s.spawn(move || RocksEngine::open(d.path()).expect("open RocksDB")))
                .collect();
            opening
                .into_iter()
                .map(|t| Arc::new(t.join().expect("engine open thread")) as Arc<dyn Engine>)
                .collect()
        });
        let opened = started.elapsed();

        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let router = Arc::new(Router {
            ledger: ledger.clone(),
            ..Default::default()
        });
        let mut nodes = BTreeMap::new();
        let mut handles = BTreeMap::new();
        let mut logs = BTreeMap::new();
        for (id, engine) in ids.iter().copied().zip(engines) {
            let log = Arc::new(Mutex::new(AppliedLog::default()));
            let sm = RecordingSm {
                id,
                applied: 0,
                log: log.clone(),
            };
            let cfg = RaftConfig {
                id,
                initial_voters: ids.clone(),
                heartbeat: HEARTBEAT,
                election_ticks: ELECTION_TICKS,
                snapshot_count: 1_000_000,
                catch_up_entries: 5000,
                busy_poll: std::time::Duration::ZERO,
            };
            let transport = RouterTransport {
                router: router.clone(),
                rng: Rng::new(seed ^ id.wrapping_mul(0x1000_0000_01B3)),
            };
            let node = Node::start(
                cfg,
                engine,
                sm,
                transport,
                None,
                Arc::new(Metrics::default()),
            )
            .expect("start raft node");
            handles.insert(id, node.handle.clone());
            logs.insert(id, log);
            nodes.insert(id, node);
        }
        lock(&router.handles).extend(handles.iter().map(|(id, h)| (*id, h.clone())));

        let mut threads = Vec::new();
        let r = router.clone();
        threads.push(
            std::thread::Builder::new()
                .name("router".into())
                .spawn(move || r.run_delivery())
                .expect("spawn delivery thread"),
        );
        let monitor_stop = Arc::new(AtomicBool::new(false));
        let (stop, l, hs) = (
            monitor_stop.clone(),
            ledger.clone(),
            handles.values().cloned().collect::<Vec<_>>(),
        );
        threads.push(
            std::thread::Builder::new()
                .name("monitor".into())
                .spawn(move || monitor(&hs, &l, &stop))
                .expect("spawn monitor thread"),
        );
        eprintln!("[{name}] {n} nodes started (engines opened in {opened:?})");
        Self {
            name,
            ids,
            nodes,
            shared: Arc::new(Shared {
                handles,
                logs,
                attempts: Mutex::new(HashSet::new()),
            }),
            router,
            ledger,
            monitor_stop,
            threads,
            started,
            _dirs: dirs,
        }
    }

    pub(crate) fn status(&self, id: u64) -> RaftStatus {
        self.shared.handle(id).status()
    }

    pub(crate) fn entries(&self, id: u64) -> Vec<Applied> {
        lock(&self.shared.logs[&id]).entries.clone()
    }

    /// Non-empty payloads node `id` applied, in order.
    pub(crate) fn payloads(&self, id: u64) -> Vec<Vec<u8>> {
        lock(&self.shared.logs[&id])
            .entries
            .iter()
            .filter(|e| !e.data.is_empty())
            .map(|e| e.data.clone())
            .collect()
    }

    pub(crate) fn dump(&self) -> String {
        let mut s = String::new();
        for id in &self.ids {
            let st = self.status(*id);
            let n = lock(&self.shared.logs[id]).entries.len();
            s.push_str(&format!(
                "\n  node {id}: leader {} term {} commit {} applied {} last {} ({n} applied \
                 entries)",
                st.leader, st.term, st.commit, st.applied, st.last_index
            ));
        }
        s.push_str(&format!(
            "\n  router: {} sent, {} dropped, {} delayed",
            self.router.sent.load(Ordering::Relaxed),
            self.router.dropped.load(Ordering::Relaxed),
            self.router.delayed.load(Ordering::Relaxed)
        ));
        s
    }

    /// Polls `cond` until it holds; fails the test after `DEADLINE`.
    pub(crate) async fn wait_for(&self, what: &str, mut cond: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if cond(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] timed out after {DEADLINE:?} waiting for {what}:{}",
                self.name,
                self.dump()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every node of `group` follows one leader from `group`, in one term above
    /// `after_term`, and that leader says so itself. Returns (leader, term).
    pub(crate) async fn stable_leader(&self, group: &[u64], after_term: u64) -> (u64, u64) {
        let mut found = (0, 0);
        self.wait_for(
            &format!("one leader among {group:?} in a term above {after_term}"),
            |c| {
                let st: Vec<RaftStatus> = group.iter().map(|id| c.status(*id)).collect();
                let (leader, term) = (st[0].leader, st[0].term);
                let ok = leader != 0
                    && group.contains(&leader)
                    && term > after_term
                    && st.iter().all(|s| s.leader == leader && s.term == term)
                    && st.iter().filter(|s| s.leader == s.id).count() == 1;
                if ok {
                    found = (leader, term);
                }
                ok
            },
        )
        .await;
        found
    }

    /// Waits until every node of `group` follows one leader, has applied everything that leader
    /// has in its log, and all applied the very same entries; returns them.
    pub(crate) async fn converge(&self, group: &[u64]) -> Vec<Applied> {
        self.wait_for(&format!("{group:?} to converge"), |c| {
            let st: Vec<RaftStatus> = group.iter().map(|id| c.status(*id)).collect();
            let leader = st[0].leader;
            if leader == 0 || !group.contains(&leader) {
                return false;
            }
            let ls = c.status(leader);
            if ls.leader != leader
                || ls.commit != ls.last_index
                || !st
                    .iter()
                    .all(|s| s.leader == leader && s.applied == ls.last_index)
            {
                return false;
            }
            let first = c.entries(group[0]);
            first.last().map(|e| e.index) == Some(ls.last_index)
                && group[1..].iter().all(|id| {
                    let l = lock(&c.shared.logs[id]);
                    l.entries == first
                })
        })
        .await;
        self.entries(group[0])
    }

    pub(crate) fn cut(&self, a: &[u64], b: &[u64]) {
        self.router.cut(a, b);
    }

    pub(crate) fn isolate(&self, id: u64) {
        self.cut(&[id], &self.ids);
    }

    pub(crate) fn set_flaky(&self, drop_per_mille: u64, max_delay_ms: u64) {
        let mut f = lock(&self.router.faults);
        f.drop_per_mille = drop_per_mille;
        f.max_delay_ms = max_delay_ms;
    }

    pub(crate) fn heal(&self) {
        *lock(&self.router.faults) = Faults::default();
    }

    /// Every node applied each of `payloads` exactly once, and none of `never`.
    pub(crate) fn assert_applied(&self, payloads: &[Vec<u8>], never: &[Vec<u8>]) {
        for id in &self.ids {
            let l = lock(&self.shared.logs[id]);
            for p in payloads {
                let at = l.at.get(p).map_or(&[][..], |v| v.as_slice());
                assert_eq!(
                    at.len(),
                    1,
                    "node {id} applied {} at indexes {at:?}",
                    String::from_utf8_lossy(p)
                );
            }
            for p in never {
                assert!(
                    !l.at.contains_key(p),
                    "node {id} applied {}, which must never commit",
                    String::from_utf8_lossy(p)
                );
            }
        }
    }

    /// Stops everything and runs the checks common to all tests.
    pub(crate) fn finish(mut self) {
        self.stop_threads();
        for (id, node) in std::mem::take(&mut self.nodes) {
            node.stop()
                .unwrap_or_else(|e| panic!("node {id} stopped with an error: {e}"));
        }
        for (id, log) in &self.shared.logs {
            let l = lock(log);
            assert!(l.problems.is_empty(), "node {id}: {:?}", l.problems);
            for (p, at) in &l.at {
                assert_eq!(
                    at.len(),
                    1,
                    "node {id} applied {} at indexes {at:?}",
                    String::from_utf8_lossy(p)
                );
                assert!(
                    lock(&self.shared.attempts).contains(p),
                    "node {id} applied {}, which nobody proposed",
                    String::from_utf8_lossy(p)
                );
            }
        }
        let summary = lock(&self.ledger).check();
        eprintln!(
            "[{}] done in {:?}: {summary}; router {} sent, {} dropped, {} delayed",
            self.name,
            self.started.elapsed(),
            self.router.sent.load(Ordering::Relaxed),
            self.router.dropped.load(Ordering::Relaxed),
            self.router.delayed.load(Ordering::Relaxed)
        );
    }

    pub(crate) fn stop_threads(&mut self) {
        self.monitor_stop.store(true, Ordering::Release);
        self.router.shutdown();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Cluster {
    /// A failed test still stops its nodes, so the next test does not compete with them.
    fn drop(&mut self) {
        self.stop_threads();
        for (_, node) in std::mem::take(&mut self.nodes) {
            let _ = node.stop();
        }
    }
}

/// Samples every node's status every 2 ms into the ledger. A (term, leader) pair is recorded only
/// when two consecutive samples agree, which rules out a torn read in which the leader was loaded
/// before a change and the term after it (the reverse tear is handled in `Ledger::check`).
pub(crate) fn monitor(handles: &[RaftHandle], ledger: &Mutex<Ledger>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        for h in handles {
            let s1 = h.status();
            if s1.leader == 0 {
                continue;
            }
            let s2 = h.status();
            if (s1.leader, s1.term) != (s2.leader, s2.term) {
                continue;
            }
            let mut l = lock(ledger);
            l.samples += 1;
            if s1.leader == s1.id {
                l.claimed.entry(s1.term).or_default().insert(s1.id);
            } else {
                let seen = l.views.entry(s1.term).or_default();
                seen.entry(s1.leader).or_default().insert(s1.id);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) fn text(p: &[Vec<u8>]) -> Vec<String> {
    p.iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}
