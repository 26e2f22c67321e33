//! `strata chaos` against the real binary: every scenario for a short, bounded time (a few
//! faults each), and Strata must pass every check. The runs are serialised (one cluster at a
//! time on a 2-core machine), and each asserts that it actually did something — faults
//! injected, operations acknowledged, watch events delivered — so a pass cannot be vacuous.
//! Longer runs are for the CLI (`strata chaos run --scenario all --duration 30m`).

use std::time::Duration;

use strata_chaos::run::{run, RunResult};
use strata_chaos::RunArgs;
use strata_tests::strata_bin;

/// One chaos run at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn scenario(name: &str, secs: u64, tweak: impl FnOnce(&mut RunArgs)) -> RunResult {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = RunArgs::for_scenario(name, Duration::from_secs(secs));
    a.out = Some(dir.path().join("run"));
    a.strata_bin = Some(strata_bin());
    a.quiet = true;
    a.seed = Some(8);
    tweak(&mut a);
    let r = run(a).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    let logs = ["n1", "n2", "n3", "n4", "n5"]
        .iter()
        .filter_map(|n| {
            let p = r.dir.join("logs").join(format!("{n}.log"));
            let text = std::fs::read_to_string(p).ok()?;
            let lines: Vec<&str> = text.lines().collect();
            Some(format!(
                "----- {n} -----\n{}",
                lines[lines.len().saturating_sub(30)..].join("\n")
            ))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let report = serde_json::to_string_pretty(&r.report).expect("report");
    assert!(r.passed, "{name} failed:\n{report}\n{logs}");
    let c = &r.report.counts;
    assert!(c.faults >= 1, "{name}: no fault was injected:\n{report}");
    assert!(
        c.ok >= 100,
        "{name}: only {} operations succeeded:\n{report}",
        c.ok
    );
    assert!(
        c.watch_events >= 50,
        "{name}: only {} watch events:\n{report}",
        c.watch_events
    );
    assert!(
        c.revisions >= 100,
        "{name}: the revision history has {} events",
        c.revisions
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill() {
    let r = scenario("leader-kill", 8, |_| {}).await;
    let s = &r.report.availability.by_fault["leader-kill"];
    assert_eq!(s.unrecovered, 0);
    eprintln!(
        "leader-kill: writes resumed after p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} kills)",
        s.p50_ms, s.p99_ms, s.max_ms, s.count
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kill() {
    scenario("random-kill", 8, |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause() {
    scenario("pause", 8, |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_leader() {
    scenario("partition-leader", 10, |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_minority_of_five() {
    scenario("partition-minority", 8, |a| a.members = 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_network() {
    scenario("flaky-network", 8, |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_replace() {
    // A small snapshot count, so the wiped member is caught up by a snapshot.
    scenario("member-replace", 8, |a| a.snapshot_count = 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart() {
    scenario("rolling-restart", 4, |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_killed_under_kubernetes_traffic() {
    let r = scenario("apiserver-kill", 8, |a| a.kube = true).await;
    assert!(
        r.report.counts.kube_ops >= 50,
        "only {} Kubernetes operations",
        r.report.counts.kube_ops
    );
    for name in ["kube-linearizability", "kube-consistency", "kube-watch"] {
        assert!(
            r.report.checks.iter().any(|c| c.name == name),
            "{name} did not run"
        );
    }
}

/// The network-namespace mode, where this machine allows it (root and iproute2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_leader_in_network_namespaces() {
    if let Err(why) = strata_chaos::net::netns::available() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    scenario("partition-leader", 8, |a| {
        a.network = strata_chaos::net::Mode::Netns
    })
    .await;
}
