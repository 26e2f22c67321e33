//! `strata chaos`: start a real cluster, throw faults at it while clients hammer it, record
//! everything, and decide — with evidence — whether the store stayed correct.
//!
//! The shape follows etcd's robustness tests: **traffic -> faults -> history -> checkers**.
//! A run starts `strata store` members as child processes (and `strata apiserver` for the
//! Kubernetes traffic) with every directed peer link behind a fault proxy ([`net`]), runs
//! recorded client traffic ([`traffic`]) while a scenario injects faults ([`faults`],
//! [`scenario`]), then kills every member at once, restarts them and reads everything back
//! ([`finish`]). The recorded [`history`] is then judged by the [`check`]ers; the verdict, a
//! JSON report and an SVG timeline are written to the run directory ([`report`], [`timeline`]).
//!
//! The checkers never talk to the cluster, so `strata chaos check DIR` re-judges a saved
//! history, and `strata chaos selftest` shows them rejecting known-bad histories.
//!
//! This crate reaches the store only through the etcd v3 API and the apiserver only over
//! HTTPS; it does not link the store (or RocksDB).

pub mod apiserver;
pub mod check;
pub mod cluster;
pub mod faults;
pub mod finish;
pub mod history;
pub mod net;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod selftest;
pub mod stop;
pub mod timeline;
pub mod traffic;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    #[command(subcommand)]
    pub command: ChaosCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ChaosCommand {
    /// Run a scenario against a new cluster and check the recorded history.
    Run(Box<RunArgs>),
    /// Check a saved run again (its history.json).
    Check {
        /// The run directory (or its history.json).
        dir: PathBuf,
        /// Longest the linearizability search may take per key.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        check_budget: Duration,
    },
    /// Show the checkers rejecting known-bad histories (a stale read, a lost write, a
    /// reordered watch, ...) and accepting a good one.
    Selftest,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// leader-kill, random-kill, pause, partition-leader, partition-minority, flaky-network,
    /// member-replace, rolling-restart, apiserver-kill (with --kube) or all.
    #[arg(long, default_value = "all")]
    pub scenario: String,
    /// How long to inject faults ("90s", "30m"), not counting start-up and the final checks.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Store members (3 or 5).
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Where the run's report, timeline, history, logs and data go
    /// (default: chaos-runs/<scenario>-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// proxy (a fault proxy per directed peer link, no privileges) or netns (a network
    /// namespace per member, root only).
    #[arg(long, value_enum, default_value = "proxy")]
    pub network: net::Mode,
    /// Concurrent KV clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Concurrent watchers (plus the historian).
    #[arg(long, default_value_t = 4)]
    pub watchers: usize,
    /// Keys the KV clients share (few keys: more contention).
    #[arg(long, default_value_t = 8)]
    pub keys: usize,
    /// Also run Kubernetes traffic through a `strata apiserver` (and its kill fault in `all`).
    #[arg(long, default_value_t = false)]
    pub kube: bool,
    /// Kubernetes clients (with --kube).
    #[arg(long, default_value_t = 3)]
    pub kube_clients: usize,
    /// Seed of the fault schedule and the clients' choices.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Client-side deadline of each request.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub op_timeout: Duration,
    /// Shortest time a fault is held.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub hold_min: Duration,
    /// Longest time a fault is held.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub hold_max: Duration,
    /// Pause between faults (after the cluster is healthy again).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Members' --heartbeat-interval in ms (the store's default when not given).
    #[arg(long)]
    pub heartbeat_interval: Option<u64>,
    /// Members' --election-timeout in ms (the store's default, 1000, when not given).
    #[arg(long)]
    pub election_timeout: Option<u64>,
    /// Members' --snapshot-count: small, so restarted and replaced members catch up from
    /// snapshots during the run.
    #[arg(long, default_value_t = 2000)]
    pub snapshot_count: u64,
    /// Compact this often, behind the historian.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub compact_every: Duration,
    /// Fail the availability check if writes take longer than this to resume after a fault.
    #[arg(long, value_parser = parse_duration)]
    pub max_recovery: Option<Duration>,
    /// Longest the linearizability search may take per key.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub check_budget: Duration,
    /// Keep the members' data directories after the run.
    #[arg(long)]
    pub keep_data: bool,
    /// The strata binary to start members with (default: this one).
    #[arg(long, hide = true)]
    pub strata_bin: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    /// Defaults as the command line would give them, for tests.
    pub fn for_scenario(scenario: &str, duration: Duration) -> RunArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: RunArgs,
        }
        let mut a = Wrapper::parse_from(["strata-chaos"]).args;
        a.scenario = scenario.to_string();
        a.duration = duration;
        a
    }
}

/// "90s", "30m", "1h", "500ms", or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return Ok(Duration::from_secs_f64(n));
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("invalid duration {s:?}"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration {s:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Runs a `strata chaos` subcommand; Ok(true) when every check passed.
pub async fn main(args: ChaosArgs) -> Result<bool, String> {
    match args.command {
        ChaosCommand::Run(a) => run::run(*a).await.map(|r| r.passed),
        ChaosCommand::Check { dir, check_budget } => {
            let path = if dir.is_dir() {
                dir.join("history.json")
            } else {
                dir
            };
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let h: history::History =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let opts = check::CheckOptions {
                budget: check_budget,
            };
            let results = tokio::task::spawn_blocking(move || check::check_all(&h, &opts))
                .await
                .map_err(|e| e.to_string())?;
            let passed = results.iter().all(|r| r.passed);
            report::print_checks(&results);
            println!("{}", if passed { "PASS" } else { "FAIL" });
            Ok(passed)
        }
        ChaosCommand::Selftest => Ok(selftest::run_and_print()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5x").is_err());
        let a = RunArgs::for_scenario("pause", Duration::from_secs(5));
        assert_eq!((a.scenario.as_str(), a.members), ("pause", 3));
    }
}
