//! `strata bench compare` (and `make bench`): a three-member etcd and a three-member Strata on
//! loopback, each started fresh, the same workloads run against each in turn by the same
//! in-process client, and a report: `report.md` (a table of etcd vs Strata with ratios and the
//! issue's targets, the machine and its load), `results.json` (every run's full summary) and
//! two SVG charts.
//!
//! Fairness rules: both servers get the same flags (etcd's names), default timeouts, fresh data
//! directories on the same disk, the same client code and connection counts; rounds alternate
//! etcd then Strata, so slow drifts of a shared machine hit both. Nothing is tuned per server.

mod chart;
mod cluster;
mod markdown;
mod workloads;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::conn::ConnArgs;
use crate::progress::Progress;
use crate::{Summary, Workload};
pub use cluster::{ProcCluster, Server};

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Directory the report, the results and the charts are written to.
    #[arg(long, default_value = "bench-report")]
    pub out_dir: PathBuf,
    /// Rounds: each starts a fresh etcd cluster, runs every workload, then the same with Strata.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// The etcd binary (Debian's etcd-server).
    #[arg(long, default_value = "etcd")]
    pub etcd_bin: PathBuf,
    /// The strata binary the members run (default: this one).
    #[arg(long)]
    pub strata_bin: Option<PathBuf>,
    /// Members per cluster.
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Watchers in the watch workload (all on one prefix).
    #[arg(long, default_value_t = 10_000)]
    pub watchers: usize,
    /// Multiply every workload's request count by this (e.g. 0.05 for a quick check).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Run only these workloads (comma separated: put-100,put-1,range-l-100,range-s-100,watch).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Where the members' data directories and logs go (emptied per cluster).
    #[arg(long, default_value = "/tmp/strata-bench-compare")]
    pub work_dir: PathBuf,
    /// First port: members use base+10i (client) and base+10i+1 (peer).
    #[arg(long, default_value_t = 41000)]
    pub base_port: u16,
}

/// One workload run against one cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub server: String,
    pub workload: String,
    pub round: usize,
    pub summary: Summary,
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub machine: markdown::Machine,
    /// Members per cluster.
    #[serde(default = "three")]
    pub members: usize,
    pub command: String,
    pub runs: Vec<RunRecord>,
}

pub async fn run(args: CompareArgs) -> Result<(), String> {
    let strata_bin = match &args.strata_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| format!("finding this binary: {e}"))?,
    };
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| format!("--out-dir {}: {e}", args.out_dir.display()))?;
    let specs: Vec<_> = workloads::specs(args.scale, args.watchers, args.members)
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name))
        .filter(|s| s.route != workloads::Route::Follower || args.members > 1)
        .collect();
    if specs.is_empty() {
        return Err("--only matches no workload".into());
    }
    let mut machine = markdown::Machine::probe(&args.etcd_bin, &strata_bin);
    let mut runs = Vec::new();
    let started = Instant::now();
    for round in 1..=args.rounds.max(1) {
        for server in [Server::Etcd, Server::Strata] {
            let bin = match server {
                Server::Etcd => args.etcd_bin.clone(),
                Server::Strata => strata_bin.clone(),
            };
            let dir = args.work_dir.join(server.name());
            eprintln!(
                "== round {round}: starting a {}-member {}",
                args.members,
                server.name()
            );
            let cluster =
                ProcCluster::start(server, &bin, &dir, args.base_port, args.members).await?;
            for spec in &specs {
                eprintln!("-- {} {}: {}", server.name(), spec.name, spec.command);
                let summary = run_one(&cluster, spec).await?;
                eprintln!("   {}", markdown::one_line(spec, &summary));
                runs.push(RunRecord {
                    server: server.name().into(),
                    workload: spec.name.into(),
                    round,
                    summary,
                });
            }
            drop(cluster);
        }
    }
    machine.finish(started.elapsed());
    let results = Results {
        machine,
        members: args.members,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        runs,
    };
    let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    write(&args.out_dir.join("results.json"), &json)?;
    let (md, rows) = markdown::report(&results, &specs);
    write(&args.out_dir.join("report.md"), &md)?;
    chart::throughput(&args.out_dir.join("throughput.svg"), &rows)?;
    chart::latency(&args.out_dir.join("latency.svg"), &rows)?;
    print!("{md}");
    eprintln!(
        "report written to {}",
        args.out_dir.join("report.md").display()
    );
    Ok(())
}

fn three() -> usize {
    3
}

fn write(path: &std::path::Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// How long after the last watcher is created the members' memory is sampled.
const RSS_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one workload against a cluster; the watch workload also samples the members' memory
/// before the watchers exist and once they are all created (it runs first on each fresh
/// cluster, so the heaps have not been grown by the other workloads).
async fn run_one(cluster: &ProcCluster, spec: &workloads::Spec) -> Result<Summary, String> {
    let mut conn = ConnArgs {
        endpoints: cluster.endpoints(),
        conns: spec.conns,
        clients: spec.clients,
        target_leader: false,
        dial_timeout: 10,
        cacert: None,
        cert: None,
        key: None,
    };
    match spec.route {
        workloads::Route::All => {}
        workloads::Route::Leader => conn.target_leader = true,
        workloads::Route::Follower => {
            let leader = conn.leader().await?;
            let follower = conn.endpoints.iter().find(|e| **e != leader).cloned();
            conn.endpoints = vec![follower.ok_or("no follower to send to")?];
        }
    }
    let progress = Progress::hidden();
    match &spec.workload {
        Workload::Watch(w) => {
            let idle = cluster.rss_kib();
            let watching = AtomicU64::new(0);
            let mut s = crate::watch::watch_with(&conn, w.clone(), conn.clients, &progress, || {
                // Let the servers finish setting the watchers up before sampling.
                tokio::task::block_in_place(|| std::thread::sleep(RSS_SETTLE));
                watching.store(cluster.rss_kib(), Ordering::Relaxed)
            })
            .await?;
            let watching = watching.load(Ordering::Relaxed);
            let watchers = s.extra("watchers").max(1.0);
            let delta = watching.saturating_sub(idle) as f64;
            s.extra.insert("rss_kib_idle".into(), idle as f64);
            s.extra.insert("rss_kib_watching".into(), watching as f64);
            s.extra.insert(
                "rss_kib_per_10k_watchers".into(),
                delta * 10_000.0 / watchers,
            );
            Ok(s)
        }
        w => crate::run_workload(&conn, w.clone(), &progress).await,
    }
}
