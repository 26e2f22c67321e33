//! The comparison's workloads and the targets. Each workload is an ordinary
//! `strata bench` subcommand with fixed flags (the report prints the equivalent command line),
//! run in-process against one cluster; `--scale` shrinks the totals for a quick run.

use crate::kv::{PutArgs, RangeArgs};
use crate::watch::WatchArgs;
use crate::Workload;

/// One row of the comparison.
pub struct Spec {
    pub name: &'static str,
    pub title: &'static str,
    pub conns: usize,
    pub clients: usize,
    pub workload: Workload,
    /// Which members the client talks to.
    pub route: Route,
    /// The equivalent command line, for the report.
    pub command: String,
    pub target: Target,
}

/// Which endpoints a workload's client uses. A single connection goes to one member, and
/// whether that member leads changes a put's path (a follower forwards it and learns of its
/// commit one round trip later), so the one-client rows name the member instead of leaving it
/// to which member happened to win the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Every member's endpoint (connections round-robin over them).
    All,
    /// The leader's endpoint only (`--target-leader`).
    Leader,
    /// One follower's endpoint (skipped with one member).
    Follower,
}

/// What Strata must reach against etcd in the same run.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Throughput at least `ratio` x etcd's, and (when set) a lower p99.
    Throughput { ratio: f64, lower_p99: bool },
    /// Watch fan-out: delivered events/s at least `ratio` x etcd's, lower p99 delivery, and
    /// less memory per 10,000 watchers.
    Watch { ratio: f64 },
}

impl Target {
    pub fn describe(self) -> String {
        match self {
            Target::Throughput { ratio, lower_p99 } => {
                if lower_p99 {
                    format!(">= {ratio}x req/s, lower p99")
                } else {
                    format!(">= {ratio}x req/s")
                }
            }
            Target::Watch { ratio } => {
                format!(">= {ratio}x events/s, lower p99 delivery, less RSS per 10k watchers")
            }
        }
    }
}

fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(1)
}

/// The workloads, in the order they run on each cluster: watch first, on the fresh cluster, so
/// its memory figure is not skewed by heaps the other workloads grew. One client's target is
/// 1.3x etcd with three members and 1.5x with one (no round trip to other members).
pub fn specs(scale: f64, watchers: usize, members: usize) -> Vec<Spec> {
    let one_client = if members == 1 { 1.5 } else { 1.3 };
    let put = |total: u64| PutArgs {
        total: scaled(total, scale),
        key_size: 8,
        val_size: 256,
        key_space_size: 100_000,
        sequential_keys: false,
        rate: 0.0,
    };
    let range = |total: u64, c: &str| RangeArgs {
        key: "bench-ready".into(),
        end: String::new(),
        total: scaled(total, scale),
        consistency: c.into(),
        limit: 0,
        count_only: false,
        rate: 0.0,
    };
    let streams = (watchers / 100).max(1);
    let watch = WatchArgs {
        streams,
        watch_per_stream: watchers.div_ceil(streams),
        watched_key_total: 0,
        key_prefix: "watch-bench/".into(),
        // 300 puts/s to 10,000 watchers offers 3,000,000 events/s: more than either server
        // delivers here, so the figure is what each server can deliver, not the offered rate.
        put_rate: 300.0,
        put_total: scaled(3000, scale),
        key_size: 16,
        val_size: 64,
        timeout: 60,
    };
    let p100 = put(30_000);
    let p1 = put(3_000);
    let rl = range(30_000, "l");
    let rs = range(30_000, "s");
    vec![
        Spec {
            name: "watch",
            title: "watch, one prefix",
            conns: 10,
            clients: 1,
            command: format!(
                "--conns 10 --clients 1 watch --streams {} --watch-per-stream {} --put-rate {} --put-total {} --key-size {} --val-size {}",
                watch.streams, watch.watch_per_stream, watch.put_rate, watch.put_total, watch.key_size, watch.val_size
            ),
            workload: Workload::Watch(watch),
            route: Route::All,
            target: Target::Watch { ratio: 2.0 },
        },
        Spec {
            name: "put-100",
            title: "put, 256 B, 100 clients",
            conns: 10,
            clients: 100,
            command: format!("--conns 10 --clients 100 put --total {} --key-size 8 --val-size 256 --key-space-size 100000", p100.total),
            workload: Workload::Put(p100),
            route: Route::All,
            target: Target::Throughput { ratio: 1.5, lower_p99: true },
        },
        Spec {
            name: "put-1",
            title: "put, 256 B, 1 client, to the leader",
            conns: 1,
            clients: 1,
            command: format!("--target-leader --conns 1 --clients 1 put --total {} --key-size 8 --val-size 256 --key-space-size 100000", p1.total),
            workload: Workload::Put(p1.clone()),
            route: Route::Leader,
            target: Target::Throughput { ratio: one_client, lower_p99: false },
        },
        Spec {
            name: "put-1-f",
            title: "put, 256 B, 1 client, to a follower",
            conns: 1,
            clients: 1,
            command: format!("--endpoints <a follower> --conns 1 --clients 1 put --total {} --key-size 8 --val-size 256 --key-space-size 100000", p1.total),
            workload: Workload::Put(p1),
            route: Route::Follower,
            target: Target::Throughput { ratio: one_client, lower_p99: false },
        },
        Spec {
            name: "range-l-100",
            title: "range, linearizable, 100 clients",
            conns: 10,
            clients: 100,
            command: format!("--conns 10 --clients 100 range bench-ready --total {} --consistency l", rl.total),
            workload: Workload::Range(rl),
            route: Route::All,
            target: Target::Throughput { ratio: 1.0, lower_p99: false },
        },
        Spec {
            name: "range-s-100",
            title: "range, serializable, 100 clients",
            conns: 10,
            clients: 100,
            command: format!("--conns 10 --clients 100 range bench-ready --total {} --consistency s", rs.total),
            workload: Workload::Range(rs),
            route: Route::All,
            target: Target::Throughput { ratio: 1.0, lower_p99: false },
        },
    ]
}
