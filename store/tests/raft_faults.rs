//! In-process fault tests of the Raft layer: several `Node`s in one process, their messages routed
//! through an in-memory router that can cut links (partitions, an isolated leader), drop and
//! delay messages, and heal.
//!
//! Every test checks, besides its own scenario:
//! - at most one leader per term. Two independent sources feed a ledger: the router records the
//!   sender and term of every leader-only message (append, heartbeat, snapshot, timeout-now), and
//!   a monitor thread samples every node's `status()` every 2 ms;
//! - the state machine of every node applies entries in strictly increasing, gap-free order;
//! - after healing, every node applies the same sequence of entries.
//!
//! Randomness (drops, delays, which node proposes) comes from a seed printed at the start of each
//! test; set `RAFT_FAULTS_SEED` to reuse one (thread timing still varies from run to run).
//!
//! The tests run one at a time (they share two cores with each other otherwise, and slow fsyncs
//! make spurious elections likely; those are tolerated, but they make the tests slower).

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

const HEARTBEAT: Duration = Duration::from_millis(25);
const ELECTION_TICKS: usize = 10;
/// How long any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);
/// How long one proposal attempt waits to be applied before it is retried with a new payload.
const ATTEMPT_WAIT: Duration = Duration::from_millis(1500);

/// One test at a time (see the module comment).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("a thread panicked holding a test mutex")
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// xorshift64*: enough for fault injection, and no extra dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams (never zero).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn test_seed(name: &str) -> u64 {
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
struct Applied {
    index: u64,
    term: u64,
    data: Vec<u8>,
}

#[derive(Default)]
struct AppliedLog {
    entries: Vec<Applied>,
    /// Payload -> indexes it was applied at (more than one would be a duplicate).
    at: HashMap<Vec<u8>, Vec<u64>>,
    /// Contract violations seen by the state machine (checked at the end of each test).
    problems: Vec<String>,
}

struct RecordingSm {
    id: u64,
    applied: u64,
    log: Arc<Mutex<AppliedLog>>,
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
struct Ledger {
    /// Term -> nodes that sent leader-only messages in that term (recorded by the router before
    /// any fault applies, so a cut-off leader counts too).
    acting: BTreeMap<u64, BTreeSet<u64>>,
    /// Term -> nodes whose own `status()` said they lead in that term (two identical samples).
    claimed: BTreeMap<u64, BTreeSet<u64>>,
    /// Term -> leader -> followers whose `status()` reported it (two identical samples).
    views: BTreeMap<u64, BTreeMap<u64, BTreeSet<u64>>>,
    samples: u64,
}

impl Ledger {
    /// Panics if a term had two leaders; returns a summary.
    fn check(&self) -> String {
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
struct Faults {
    /// Directed links (from, to) that lose every message.
    cut: HashSet<(u64, u64)>,
    /// Probability of losing a message, per mille.
    drop_per_mille: u64,
    /// Each message is delayed uniformly in 0..=max_delay_ms.
    max_delay_ms: u64,
}

struct Pending {
    due: Instant,
    seq: u64,
    msg: Message,
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
struct Router {
    handles: Mutex<HashMap<u64, RaftHandle>>,
    faults: Mutex<Faults>,
    queue: Mutex<BinaryHeap<Reverse<Pending>>>,
    wake: Condvar,
    stop: AtomicBool,
    seq: AtomicU64,
    ledger: Arc<Mutex<Ledger>>,
    sent: AtomicU64,
    dropped: AtomicU64,
    delayed: AtomicU64,
}

impl Router {
    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    fn cut(&self, a: &[u64], b: &[u64]) {
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

    fn uncut_all(&self) {
        lock(&self.faults).cut.clear();
    }

    fn is_cut(&self, from: u64, to: u64) -> bool {
        lock(&self.faults).cut.contains(&(from, to))
    }

    fn route(&self, rng: &mut Rng, msgs: Vec<Message>) {
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
    fn deliver(&self, m: Message) {
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
    fn run_delivery(&self) {
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

    fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let _q = lock(&self.queue);
        self.wake.notify_all();
    }
}

/// One node's end of the router.
struct RouterTransport {
    router: Arc<Router>,
    rng: Rng,
}

impl Transport for RouterTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        self.router.route(&mut self.rng, msgs);
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster

/// What proposers need; shared with spawned tasks.
struct Shared {
    handles: BTreeMap<u64, RaftHandle>,
    logs: BTreeMap<u64, Arc<Mutex<AppliedLog>>>,
    /// Every payload ever proposed (one per attempt).
    attempts: Mutex<HashSet<Vec<u8>>>,
}

impl Shared {
    fn handle(&self, id: u64) -> &RaftHandle {
        self.handles.get(&id).expect("no such node")
    }

    fn applied_anywhere(&self, payload: &[u8]) -> bool {
        self.logs.values().any(|l| lock(l).at.contains_key(payload))
    }

    /// Proposes `op` through node `from` until one attempt (each with its own payload, `op/aN`)
    /// is applied somewhere (so committed); returns that payload. `propose` returning Ok only
    /// means the node accepted it, and a forwarded proposal can be lost, hence the retries.
    async fn commit(&self, from: u64, op: &str) -> Vec<u8> {
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

struct Cluster {
    name: &'static str,
    ids: Vec<u64>,
    nodes: BTreeMap<u64, Node>,
    shared: Arc<Shared>,
    router: Arc<Router>,
    ledger: Arc<Mutex<Ledger>>,
    monitor_stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    /// Starts nodes 1..=n of a new cluster, all voters.
    fn start(name: &'static str, n: u64, seed: u64) -> Self {
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

    fn status(&self, id: u64) -> RaftStatus {
        self.shared.handle(id).status()
    }

    fn entries(&self, id: u64) -> Vec<Applied> {
        lock(&self.shared.logs[&id]).entries.clone()
    }

    /// Non-empty payloads node `id` applied, in order.
    fn payloads(&self, id: u64) -> Vec<Vec<u8>> {
        lock(&self.shared.logs[&id])
            .entries
            .iter()
            .filter(|e| !e.data.is_empty())
            .map(|e| e.data.clone())
            .collect()
    }

    fn dump(&self) -> String {
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
    async fn wait_for(&self, what: &str, mut cond: impl FnMut(&Self) -> bool) {
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
    async fn stable_leader(&self, group: &[u64], after_term: u64) -> (u64, u64) {
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
    async fn converge(&self, group: &[u64]) -> Vec<Applied> {
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

    fn cut(&self, a: &[u64], b: &[u64]) {
        self.router.cut(a, b);
    }

    fn isolate(&self, id: u64) {
        self.cut(&[id], &self.ids);
    }

    fn set_flaky(&self, drop_per_mille: u64, max_delay_ms: u64) {
        let mut f = lock(&self.router.faults);
        f.drop_per_mille = drop_per_mille;
        f.max_delay_ms = max_delay_ms;
    }

    fn heal(&self) {
        *lock(&self.router.faults) = Faults::default();
    }

    /// Every node applied each of `payloads` exactly once, and none of `never`.
    fn assert_applied(&self, payloads: &[Vec<u8>], never: &[Vec<u8>]) {
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
    fn finish(mut self) {
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

    fn stop_threads(&mut self) {
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
fn monitor(handles: &[RaftHandle], ledger: &Mutex<Ledger>, stop: &AtomicBool) {
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

fn text(p: &[Vec<u8>]) -> Vec<String> {
    p.iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Three nodes elect one leader; proposals through every node, the followers included, are
/// applied by all three in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_one_leader_same_order() {
    let _serial = SERIAL.lock().await;
    let seed = test_seed("healthy");
    let c = Cluster::start("healthy", 3, seed);
    let (leader, term) = c.stable_leader(&c.ids, 0).await;
    eprintln!("[healthy] leader {leader} in term {term}");

    // One at a time, round robin over the nodes: the applied order is the proposal order.
    let mut sequential = Vec::new();
    for i in 0..30u64 {
        let from = 1 + i % 3;
        sequential.push(c.shared.commit(from, &format!("seq-{i}-via-{from}")).await);
    }
    // Then concurrently from all nodes.
    let mut tasks = Vec::new();
    for from in c.ids.clone() {
        let s = c.shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0..20 {
                done.push(s.commit(from, &format!("conc-{i}-via-{from}")).await);
            }
            done
        }));
    }
    let mut concurrent = Vec::new();
    for t in tasks {
        concurrent.extend(t.await.expect("proposer task"));
    }

    let entries = c.converge(&c.ids).await;
    c.assert_applied(&sequential, &[]);
    c.assert_applied(&concurrent, &[]);
    let applied = c.payloads(1);
    // Only the confirmed attempts: one that timed out may still have been applied later.
    let in_order: Vec<_> = applied
        .iter()
        .filter(|p| sequential.contains(*p))
        .cloned()
        .collect();
    assert_eq!(
        text(&in_order),
        text(&sequential),
        "sequential proposals applied out of order"
    );
    for id in [2, 3] {
        assert_eq!(c.entries(id), entries, "node {id} applied other entries");
    }
    c.finish();
}

/// The leader is cut off from both others: they elect a leader in a higher term and commit
/// through it; what the old leader accepts while cut off is never applied anywhere; after healing
/// the old leader follows and every node applies the same entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_is_replaced_and_rejoins() {
    let _serial = SERIAL.lock().await;
    let seed = test_seed("isolate");
    let c = Cluster::start("isolate", 3, seed);
    c.stable_leader(&c.ids, 0).await;
    let mut committed = Vec::new();
    for i in 0..10u64 {
        committed.push(c.shared.commit(1 + i % 3, &format!("before-{i}")).await);
    }
    c.converge(&c.ids).await;
    // The leader now (a slow machine may have caused an election meanwhile).
    let (old, old_term) = c.stable_leader(&c.ids, 0).await;
    let before = c.status(old);
    let before_entries = c.entries(old);
    let rest: Vec<u64> = c.ids.iter().copied().filter(|id| *id != old).collect();

    c.isolate(old);
    // The old leader still believes it leads for a while: it accepts proposals it cannot commit.
    let mut stranded = Vec::new();
    let mut accepted = 0;
    for i in 0..5 {
        let p = format!("stranded-{i}").into_bytes();
        lock(&c.shared.attempts).insert(p.clone());
        if c.shared.handle(old).propose(p.clone()).await.is_ok() {
            accepted += 1;
        }
        stranded.push(p);
    }

    let (new, new_term) = c.stable_leader(&rest, old_term).await;
    eprintln!(
        "[isolate] leader {old} (term {old_term}) isolated; {accepted} proposals accepted by it; \
         {new} leads term {new_term}"
    );
    for i in 0..20usize {
        committed.push(c.shared.commit(rest[i % 2], &format!("majority-{i}")).await);
    }
    c.converge(&rest).await;

    // check_quorum: the cut-off leader steps down, after which it refuses proposals.
    c.wait_for("the isolated leader to step down", |c| {
        c.status(old).leader != old
    })
    .await;
    assert!(
        c.shared
            .handle(old)
            .propose(b"refused".to_vec())
            .await
            .is_err(),
        "an isolated node that knows no leader accepted a proposal"
    );
    let during = c.status(old);
    assert_eq!(
        during.commit, before.commit,
        "the isolated leader committed something"
    );
    assert_eq!(
        during.last_index,
        before.last_index + accepted,
        "the isolated leader did not append what it accepted"
    );
    assert_eq!(
        c.entries(old),
        before_entries,
        "the isolated leader applied something"
    );
    c.assert_applied(&[], &stranded);

    c.heal();
    let entries = c.converge(&c.ids).await;
    let st = c.status(old);
    assert!(
        st.leader != old && st.term > old_term,
        "the old leader did not rejoin as a follower: {st:?}"
    );
    c.assert_applied(&committed, &stranded);
    for id in &c.ids {
        assert_eq!(c.entries(*id), entries, "node {id} applied other entries");
    }
    c.finish();
}

/// Five nodes split {leader, one follower} | {three others}: the minority (with the old leader)
/// cannot commit, the majority elects a leader and commits; after healing all converge and what
/// the minority accepted is never applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_partition_cannot_commit() {
    let _serial = SERIAL.lock().await;
    let seed = test_seed("partition");
    let c = Cluster::start("partition", 5, seed);
    c.stable_leader(&c.ids, 0).await;
    let mut committed = Vec::new();
    for i in 0..10u64 {
        committed.push(c.shared.commit(1 + i % 5, &format!("before-{i}")).await);
    }
    c.converge(&c.ids).await;
    // The leader now (a slow machine may have caused an election meanwhile).
    let (old, old_term) = c.stable_leader(&c.ids, 0).await;

    let buddy = if old == 1 { 2 } else { 1 };
    let minority = vec![old, buddy];
    let majority: Vec<u64> = c
        .ids
        .iter()
        .copied()
        .filter(|id| !minority.contains(id))
        .collect();
    let frozen: Vec<(u64, RaftStatus, Vec<Applied>)> = minority
        .iter()
        .map(|id| (*id, c.status(*id), c.entries(*id)))
        .collect();
    c.cut(&minority, &majority);

    // Proposals in the minority, directly on its leader and forwarded by the follower.
    let mut stranded = Vec::new();
    for i in 0..6 {
        let via = minority[i % 2];
        let p = format!("minority-{i}-via-{via}").into_bytes();
        lock(&c.shared.attempts).insert(p.clone());
        let _ = c.shared.handle(via).propose(p.clone()).await;
        stranded.push(p);
    }

    let (new, new_term) = c.stable_leader(&majority, old_term).await;
    eprintln!(
        "[partition] {minority:?} | {majority:?}; old leader {old} (term {old_term}); {new} leads \
         term {new_term}"
    );
    for i in 0..20usize {
        committed.push(
            c.shared
                .commit(majority[i % 3], &format!("majority-{i}"))
                .await,
        );
    }
    c.converge(&majority).await;
    // Give the minority time to (wrongly) commit: wait until its leader has stepped down.
    c.wait_for("the minority leader to step down", |c| {
        c.status(old).leader != old
    })
    .await;
    for (id, st, entries) in &frozen {
        assert_eq!(
            c.status(*id).commit,
            st.commit,
            "minority node {id} committed during the partition"
        );
        assert_eq!(
            &c.entries(*id),
            entries,
            "minority node {id} applied during the partition"
        );
    }
    c.assert_applied(&[], &stranded);

    c.heal();
    let entries = c.converge(&c.ids).await;
    c.assert_applied(&committed, &stranded);
    for id in &c.ids {
        assert_eq!(c.entries(*id), entries, "node {id} applied other entries");
        assert!(c.status(*id).term >= new_term);
    }
    c.finish();
}

/// 15% of messages lost and the rest delayed 0-20 ms (so also reordered) on every link while
/// several proposers commit 300 operations through random nodes, and leadership churns (handed
/// to a random follower, or the leader cut off for half a second, alternately every 1.2 s);
/// after healing every node applies the same entries, each payload at most once, and every
/// operation at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_links_converge() {
    let _serial = SERIAL.lock().await;
    let seed = test_seed("flaky");
    let c = Cluster::start("flaky", 3, seed);
    c.stable_leader(&c.ids, 0).await;
    c.set_flaky(150, 20);

    const WORKERS: u64 = 20;
    const OPS: u64 = 15;
    let started = Instant::now();
    let stop_chaos = Arc::new(AtomicBool::new(false));
    let chaos = {
        let (s, router, stop) = (c.shared.clone(), c.router.clone(), stop_chaos.clone());
        let ids = c.ids.clone();
        let mut rng = Rng::new(seed.wrapping_add(7));
        tokio::spawn(async move {
            let mut events = Vec::new();
            for round in 0u64.. {
                tokio::time::sleep(Duration::from_millis(1200)).await;
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let leader = s
                    .handles
                    .values()
                    .map(RaftHandle::status)
                    .find(|st| st.leader == st.id)
                    .map(|st| st.id);
                let Some(leader) = leader else { continue };
                if round % 2 == 0 {
                    let others: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
                    let to = others[rng.below(others.len() as u64) as usize];
                    let _ = s.handle(leader).transfer_leader(to);
                    events.push(format!("transfer {leader}->{to}"));
                } else {
                    router.cut(&[leader], &ids);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    router.uncut_all();
                    events.push(format!("isolate {leader}"));
                }
            }
            events
        })
    };
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let s = c.shared.clone();
        let mut rng = Rng::new(seed.wrapping_add(1000 + w));
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0..OPS {
                let from = 1 + rng.below(3);
                done.push(s.commit(from, &format!("w{w}-op{i}")).await);
            }
            done
        }));
    }
    let mut committed = Vec::new();
    for t in tasks {
        committed.extend(t.await.expect("proposer task"));
    }
    stop_chaos.store(true, Ordering::Release);
    let events = chaos.await.expect("chaos task");
    let attempts = lock(&c.shared.attempts).len();
    eprintln!(
        "[flaky] {} operations committed in {:?} with {attempts} attempts; churn {events:?}:{}",
        committed.len(),
        started.elapsed(),
        c.dump()
    );

    c.heal();
    let entries = c.converge(&c.ids).await;
    c.assert_applied(&committed, &[]);
    for id in &c.ids {
        assert_eq!(c.entries(*id), entries, "node {id} applied other entries");
    }
    // Each operation at least once; a retried one may legitimately be applied twice (as two
    // distinct payloads), which is reported rather than failed.
    let mut per_op: BTreeMap<String, usize> = BTreeMap::new();
    for e in &entries {
        if e.data.is_empty() {
            continue;
        }
        let p = String::from_utf8_lossy(&e.data).into_owned();
        let op = p
            .rsplit_once('/')
            .map_or(p.clone(), |(op, _)| op.to_owned());
        *per_op.entry(op).or_default() += 1;
    }
    assert_eq!(per_op.len() as u64, WORKERS * OPS, "operations missing");
    let retried = per_op.values().filter(|n| **n > 1).count();
    eprintln!("[flaky] {retried} operations applied more than once (as distinct attempts)");
    c.finish();
}
