//! The comparison's markdown report: the machine and its load, one row per workload with both
//! servers' figures, the ratio and whether the target is met, the memory row of the
//! watch workload, every round when there are several, and the commands.
//!
//! With several rounds the table shows each server's median round (by throughput) and the
//! range over rounds, since one run on a shared two-core machine proves little.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::chart::Row;
use super::workloads::{Spec, Target};
use super::Results;
use crate::Summary;

/// Where and when the comparison ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
    pub etcd_version: String,
    pub strata_version: String,
    pub minutes: f64,
}

fn first_line(cmd: &Path, arg: &str) -> String {
    Command::new(cmd)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    pub fn probe(etcd: &Path, strata: &Path) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        Machine {
            date: first_line(Path::new("date"), "-u"),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            load_before: load_average(),
            load_after: String::new(),
            etcd_version: first_line(etcd, "--version"),
            strata_version: first_line(strata, "--version"),
            minutes: 0.0,
        }
    }

    pub fn finish(&mut self, took: Duration) {
        self.load_after = load_average();
        self.minutes = took.as_secs_f64() / 60.0;
    }
}

fn is_watch(spec: &Spec) -> bool {
    matches!(spec.target, Target::Watch { .. })
}

/// The throughput a row compares: requests/s, or delivered events/s for watch.
fn rate(spec: &Spec, s: &Summary) -> f64 {
    if is_watch(spec) {
        s.extra("events_per_sec")
    } else {
        s.report.requests_per_sec
    }
}

fn unit(spec: &Spec) -> &'static str {
    if is_watch(spec) {
        "events/s"
    } else {
        "req/s"
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// A one-line summary for the console while the comparison runs.
pub fn one_line(spec: &Spec, s: &Summary) -> String {
    let mut line = format!(
        "{} {}, p50 {}, p99 {}, {} errors",
        thousands(rate(spec, s)),
        unit(spec),
        ms(s.report.percentile_ms(50.0)),
        ms(s.report.p99_ms()),
        s.report.errors
    );
    if is_watch(spec) {
        let _ = write!(
            line,
            ", {} of {} events, {} MiB per 10k watchers",
            thousands(s.extra("events_delivered")),
            thousands(s.extra("events_expected")),
            thousands(s.extra("rss_kib_per_10k_watchers") / 1024.0)
        );
    }
    line
}

/// The median summary by throughput, and the throughput range over rounds.
fn median<'a>(spec: &Spec, runs: &[&'a Summary]) -> Option<(&'a Summary, f64, f64)> {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| rate(spec, a).total_cmp(&rate(spec, b)));
    let mid = *sorted.get(sorted.len().checked_sub(1)? / 2)?;
    let lo = rate(spec, sorted.first()?);
    let hi = rate(spec, sorted.last()?);
    Some((mid, lo, hi))
}

fn yes(b: bool) -> &'static str {
    if b {
        "**yes**"
    } else {
        "no"
    }
}

/// The report, and the rows the charts draw.
pub fn report(results: &Results, specs: &[Spec]) -> (String, Vec<Row>) {
    let m = &results.machine;
    let rounds = results.runs.iter().map(|r| r.round).max().unwrap_or(0);
    let mut s = String::new();
    let members = match results.members {
        1 => "one member".to_string(),
        3 => "three members".to_string(),
        n => format!("{n} members"),
    };
    let _ = writeln!(s, "## etcd vs Strata, {members} each\n");
    let _ = writeln!(
        s,
        "`{}` on {} ({} cores, {:.0} GiB, Linux {}), {}; {} round(s), {:.0} minutes. \
         Load average before {}, after {}. {}; {}.\n",
        results.command,
        m.cpu,
        m.cores,
        m.memory_gib,
        m.kernel,
        m.date,
        rounds,
        m.minutes,
        m.load_before,
        m.load_after,
        m.etcd_version,
        m.strata_version
    );
    let _ = writeln!(
        s,
        "Each round starts a fresh etcd of {members}, runs every workload, stops it, then does \
         the same with a fresh Strata of {members}: loopback, default timeouts, the same client \
         (`strata bench`, in process), spread over every member's endpoint except where a row \
         names the member (one client's puts go to the leader, or to a follower). \
         {}\n",
        if rounds > 1 {
            "Figures are each server's median round by throughput; the range over rounds follows in brackets."
        } else {
            "One round: treat single figures on a shared machine with care."
        }
    );
    let _ = writeln!(
        s,
        "| workload | etcd | Strata | ratio | etcd p99 | Strata p99 | target | met |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for spec in specs {
        let pick = |server: &str| -> Vec<&Summary> {
            results
                .runs
                .iter()
                .filter(|r| r.server == server && r.workload == spec.name)
                .map(|r| &r.summary)
                .collect()
        };
        let (Some((e, elo, ehi)), Some((st, slo, shi))) =
            (median(spec, &pick("etcd")), median(spec, &pick("strata")))
        else {
            continue;
        };
        let (er, sr) = (rate(spec, e), rate(spec, st));
        let ratio = sr / er.max(1e-9);
        let range = |lo: f64, hi: f64| {
            if rounds > 1 {
                format!(" ({}-{})", thousands(lo), thousands(hi))
            } else {
                String::new()
            }
        };
        let lower_p99 = st.report.p99_ms() < e.report.p99_ms();
        let (met, target_ratio) = match spec.target {
            Target::Throughput {
                ratio: t,
                lower_p99: need,
            } => (ratio >= t && (!need || lower_p99), Some(t)),
            Target::Watch { ratio: t } => (ratio >= t && lower_p99, Some(t)),
        };
        let title = if is_watch(spec) {
            format!(
                "{}, {} watchers",
                spec.title,
                thousands(st.extra("watchers"))
            )
        } else {
            spec.title.to_string()
        };
        let _ = writeln!(
            s,
            "| {title} | {} {}{} | {} {}{} | {ratio:.2}x | {} | {} | {} | {} |",
            thousands(er),
            unit(spec),
            range(elo, ehi),
            thousands(sr),
            unit(spec),
            range(slo, shi),
            ms(e.report.p99_ms()),
            ms(st.report.p99_ms()),
            spec.target.describe(),
            yes(met)
        );
        if is_watch(spec) {
            let (em, sm) = (
                e.extra("rss_kib_per_10k_watchers") / 1024.0,
                st.extra("rss_kib_per_10k_watchers") / 1024.0,
            );
            let _ = writeln!(
                s,
                "| memory per 10,000 watchers (RSS growth, all members) | {em:.1} MiB | {sm:.1} MiB | {:.2}x | | | below etcd's | {} |",
                sm / em.max(1e-9),
                yes(sm < em)
            );
            let _ = writeln!(
                s,
                "| events delivered | {} of {} | {} of {} | | | | every event | {} |",
                thousands(e.extra("events_delivered")),
                thousands(e.extra("events_expected")),
                thousands(st.extra("events_delivered")),
                thousands(st.extra("events_expected")),
                yes(st.extra("events_delivered") >= st.extra("events_expected"))
            );
        }
        rows.push(Row {
            name: spec.name.to_string(),
            ratio,
            target: target_ratio,
            etcd: e.report.percentiles.clone(),
            strata: st.report.percentiles.clone(),
        });
    }
    let errors: u64 = results.runs.iter().map(|r| r.summary.report.errors).sum();
    let _ = writeln!(
        s,
        "\n{} request errors over all runs.{}\n",
        errors,
        if errors > 0 {
            " See results.json for their distribution."
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "![throughput relative to etcd](throughput.svg)\n![latency percentiles](latency.svg)\n"
    );
    if rounds > 1 {
        let _ = writeln!(s, "Every round:\n");
        let _ = writeln!(
            s,
            "| workload | round | etcd | Strata | ratio | etcd p99 | Strata p99 |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for spec in specs {
            for round in 1..=rounds {
                let find = |server: &str| {
                    results
                        .runs
                        .iter()
                        .find(|r| r.server == server && r.workload == spec.name && r.round == round)
                };
                if let (Some(e), Some(st)) = (find("etcd"), find("strata")) {
                    let (er, sr) = (rate(spec, &e.summary), rate(spec, &st.summary));
                    let _ = writeln!(
                        s,
                        "| {} | {round} | {} | {} | {:.2}x | {} | {} |",
                        spec.name,
                        thousands(er),
                        thousands(sr),
                        sr / er.max(1e-9),
                        ms(e.summary.report.p99_ms()),
                        ms(st.summary.report.p99_ms())
                    );
                }
            }
        }
        s.push('\n');
    }
    let _ = writeln!(s, "Workloads (`strata bench --endpoints A,B,C ...`):\n");
    for spec in specs {
        let _ = writeln!(s, "- {}: `{}`", spec.name, spec.command);
    }
    (s, rows)
}
