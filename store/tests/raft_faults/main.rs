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

mod harness;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use strata_store::raft::{RaftHandle, RaftStatus};

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
