//! Raft propose-to-commit in process: the raft-rs Ready loop with its log on the real RocksDB
//! engine (one fsync per Ready), and a state machine that only counts what it applies, so the
//! figure is replication alone: propose, append and fsync, (with three members) send to the
//! followers, their append and fsync and answer, commit, apply.
//!
//! `one_at_a_time` is the latency of a lone proposal; `batch_of_100` sends 100 at once and
//! waits for all, which shows group commit (many proposals per Ready, one fsync).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_store::engine::{Engine, RocksEngine};
use strata_store::error::Result;
use strata_store::metrics::Metrics;
use strata_store::raft::node::{Node, RaftConfig};
use strata_store::raft::{
    ConfChange, ConfState, Entry, LogReset, Message, RaftHandle, Snapshot, StateMachine, Transport,
};
use tokio::sync::watch;

/// Counts applied entries that carry a payload.
struct Counting {
    applied: u64,
    payloads: watch::Sender<u64>,
}

impl StateMachine for Counting {
    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        let mut n = 0;
        for e in entries {
            self.applied = e.index;
            if !e.data.is_empty() {
                n += 1;
            }
        }
        if n > 0 {
            self.payloads.send_modify(|c| *c += n);
        }
        Ok(())
    }

    fn apply_conf_change(
        &mut self,
        index: u64,
        _cc: &ConfChange,
        _raft: &mut dyn FnMut(&ConfChange) -> Result<ConfState>,
    ) -> Result<()> {
        self.applied = index;
        Ok(())
    }

    fn restore(&mut self, snapshot: &Snapshot, _log_reset: LogReset) -> Result<()> {
        self.applied = snapshot.get_metadata().index;
        Ok(())
    }

    fn leader_changed(&mut self, _leader: u64, _is_self: bool) {}
}

/// Hands each message straight to its recipient's node, in process.
struct Router(Arc<OnceLock<HashMap<u64, RaftHandle>>>);

impl Transport for Router {
    fn send(&mut self, msgs: Vec<Message>) {
        let Some(handles) = self.0.get() else { return };
        let mut by_peer: HashMap<u64, Vec<Message>> = HashMap::new();
        for m in msgs {
            by_peer.entry(m.to).or_default().push(m);
        }
        for (to, batch) in by_peer {
            if let Some(h) = handles.get(&to) {
                let _ = h.step(batch);
            }
        }
    }
}

struct Group {
    _dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Node>,
    leader: RaftHandle,
    /// Payload entries applied on the leader.
    applied: watch::Receiver<u64>,
}

fn start(members: u64) -> Group {
    let routes = Arc::new(OnceLock::new());
    let ids: Vec<u64> = (1..=members).collect();
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    let mut counters = HashMap::new();
    for &id in &ids {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("engine"));
        let (tx, rx) = watch::channel(0);
        counters.insert(id, rx);
        let cfg = RaftConfig {
            id,
            initial_voters: ids.clone(),
            heartbeat: Duration::from_millis(100),
            election_ticks: 10,
            snapshot_count: 100_000,
            catch_up_entries: 5_000,
            busy_poll: std::time::Duration::ZERO,
        };
        let sm = Counting {
            applied: 0,
            payloads: tx,
        };
        let node = Node::start(
            cfg,
            engine,
            sm,
            Router(routes.clone()),
            None,
            Arc::new(Metrics::default()),
        )
        .expect("start node");
        dirs.push(dir);
        nodes.push(node);
    }
    let _ = routes.set(
        nodes
            .iter()
            .map(|n| (n.handle.id(), n.handle.clone()))
            .collect(),
    );
    let started = Instant::now();
    let leader = loop {
        if let Some(n) = nodes.iter().find(|n| n.handle.is_leader()) {
            break n.handle.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no leader elected"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let applied = counters.remove(&leader.id()).expect("leader's counter");
    Group {
        _dirs: dirs,
        nodes,
        leader,
        applied,
    }
}

fn bench_raft(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let payload = vec![b'p'; 256];
    let mut g = c.benchmark_group("raft_propose_to_commit");
    for members in [1u64, 3] {
        let mut grp = start(members);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{members}_members_one_at_a_time"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let target = *grp.applied.borrow() + 1;
                    grp.leader.propose(payload.clone()).await.expect("propose");
                    grp.applied
                        .wait_for(|n| *n >= target)
                        .await
                        .expect("applied");
                })
            })
        });
        g.throughput(Throughput::Elements(100));
        g.bench_function(format!("{members}_members_batch_of_100"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let target = *grp.applied.borrow() + 100;
                    let proposals = (0..100).map(|_| grp.leader.propose(payload.clone()));
                    for r in futures::future::join_all(proposals).await {
                        r.expect("propose");
                    }
                    grp.applied
                        .wait_for(|n| *n >= target)
                        .await
                        .expect("applied");
                })
            })
        });
        for n in grp.nodes.drain(..) {
            n.stop().expect("node stops");
        }
    }
    g.finish();
}

criterion_group!(benches, bench_raft);
criterion_main!(benches);
