//! `strata bench`: a load tool that speaks the etcd v3 API, with subcommands and flags after
//! etcd's own `benchmark` tool, so it drives Strata and a real etcd alike and the numbers compare;
//! `strata bench apiserver` loads the Kubernetes API; `strata bench compare` runs the same
//! workloads against a three-member etcd and a three-member Strata and writes the report.
//!
//! Layout: [`conn`] (the global connection flags), [`load`] (the closed-loop client driver and
//! `--rate`), [`report`] (etcd's summary, histogram and percentiles; JSON), [`progress`] (the bar
//! on stderr), the workloads in [`kv`], [`watch`] and [`lease`], then [`apiserver`] and
//! [`compare`]. A workload returns a [`Summary`]; printing is done once, here.

pub mod apiserver;
pub mod compare;
pub mod conn;
pub mod kv;
pub mod lease;
pub mod load;
pub mod progress;
pub mod report;
pub mod watch;

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

pub use conn::ConnArgs;
pub use progress::Progress;
pub use report::{Recorder, Report};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print the summary as JSON (on stdout; the progress bar stays on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub workload: Workload,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Workload {
    /// Benchmark puts.
    Put(kv::PutArgs),
    /// Benchmark ranges of one key or a key range.
    Range(kv::RangeArgs),
    /// Benchmark transactions of --txn-ops puts each.
    TxnPut(kv::TxnPutArgs),
    /// Benchmark a mix of one-put and one-range transactions (--rw-ratio reads per write).
    TxnMixed(kv::TxnMixedArgs),
    /// Benchmark watch fan-out: --streams x --watch-per-stream watchers, puts at --put-rate.
    Watch(watch::WatchArgs),
    /// Benchmark watch latency: one watcher per client on one key, puts at --put-rate.
    WatchLatency(watch::WatchLatencyArgs),
    /// Benchmark serializable gets while many unsynced watchers catch up from history.
    WatchGet(watch::WatchGetArgs),
    /// Benchmark lease keepalives.
    LeaseKeepalive(lease::LeaseKeepaliveArgs),
    /// Load on the Kubernetes API of `strata apiserver` (pod writes, lists, watch fan-out).
    Apiserver(apiserver::ApiserverArgs),
    /// Three-member etcd vs three-member Strata on loopback: the same workloads against each,
    /// then a markdown report with ratios and SVG charts.
    Compare(compare::CompareArgs),
}

/// What a workload measured: the main report (flattened, so `requests_per_sec` and
/// `percentiles` sit at the top of the JSON as they always have), further named reports, and
/// scalar figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub workload: String,
    #[serde(flatten)]
    pub report: Report,
    /// e.g. txn-mixed's "read" and "write"; watch's "create" and "put".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, Report>,
    /// e.g. watch's "events_per_sec", "watchers_missing_events".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

impl Summary {
    pub fn new(workload: &str, report: Report) -> Self {
        Summary {
            workload: workload.into(),
            report,
            parts: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// The summary of a one-class run.
    pub fn single(workload: &str, run: &load::Run) -> Self {
        Self::new(workload, run.recorders[0].report(run.elapsed))
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let title = match self.workload.as_str() {
            "watch" | "watch-latency" => "Watch events received (delivery latency)",
            "watch-get" => "Get during watch",
            _ => "",
        };
        if !title.is_empty() {
            s.push_str(&format!("\n{title} summary:"));
        }
        s.push_str(&self.report.text());
        for (name, r) in &self.parts {
            s.push_str(&format!("\n{} summary:", part_title(name)));
            s.push_str(&r.text());
        }
        if !self.extra.is_empty() {
            s.push('\n');
            for (k, v) in &self.extra {
                s.push_str(&format!("  {k}:\t{}\n", fmt_num(*v)));
            }
        }
        s
    }

    pub fn extra(&self, key: &str) -> f64 {
        self.extra.get(key).copied().unwrap_or(0.0)
    }
}

fn part_title(name: &str) -> String {
    match name {
        "create" => "Watch creation".into(),
        "put" => "Put".into(),
        "read" => "Read".into(),
        "write" => "Write".into(),
        other => other.to_string(),
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

/// Runs one workload against `conn`'s endpoints.
pub async fn run_workload(
    conn: &ConnArgs,
    w: Workload,
    progress: &Progress,
) -> Result<Summary, String> {
    match w {
        Workload::Put(a) => kv::put(conn, a, progress).await,
        Workload::Range(a) => kv::range(conn, a, progress).await,
        Workload::TxnPut(a) => kv::txn_put(conn, a, progress).await,
        Workload::TxnMixed(a) => kv::txn_mixed(conn, a, progress).await,
        Workload::Watch(a) => watch::watch(conn, a, progress).await,
        Workload::WatchLatency(a) => watch::watch_latency(conn, a, progress).await,
        Workload::WatchGet(a) => watch::watch_get(conn, a, progress).await,
        Workload::LeaseKeepalive(a) => lease::keepalive(conn, a, progress).await,
        Workload::Apiserver(_) | Workload::Compare(_) => Err("not an etcd v3 workload".to_string()),
    }
}

/// How many units a workload's progress bar counts (requests, or delivered events).
fn progress_total(w: &Workload, conn: &ConnArgs) -> (&'static str, u64) {
    match w {
        Workload::Put(a) => ("put", a.total),
        Workload::Range(a) => ("range", a.total),
        Workload::TxnPut(a) => ("txn-put", a.total),
        Workload::TxnMixed(a) => ("txn-mixed", a.total),
        Workload::Watch(a) => {
            let watchers = (a.streams.max(1) * a.watch_per_stream.max(1)) as u64;
            let per = if a.watched_key_total == 0 {
                a.put_total
            } else {
                a.put_total * watchers / a.watched_key_total.max(1) / watchers.max(1)
            };
            ("events", per * watchers)
        }
        Workload::WatchLatency(a) => ("events", a.total * conn.clients.max(1) as u64),
        Workload::WatchGet(a) => ("events", a.events.max(1) * a.watchers.max(1) as u64),
        Workload::LeaseKeepalive(a) => ("keepalive", a.total),
        Workload::Apiserver(_) | Workload::Compare(_) => ("", 0),
    }
}

/// `strata bench ...`.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    match args.workload {
        Workload::Apiserver(a) => return apiserver::run(a, args.conn.clients, args.json).await,
        Workload::Compare(a) => return compare::run(a).await,
        _ => {}
    }
    let (label, total) = progress_total(&args.workload, &args.conn);
    let progress = Progress::start(label, total);
    let summary = run_workload(&args.conn, args.workload, &progress).await?;
    progress.finish();
    if args.json {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", summary.text());
    }
    if summary.report.requests == 0 && summary.report.errors > 0 {
        return Err(format!("all {} requests failed", summary.report.errors));
    }
    Ok(())
}
