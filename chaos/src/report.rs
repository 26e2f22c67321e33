//! The verdict, the JSON report (`report.json`) and the saved history (`history.json`, which
//! `strata chaos check` reads back).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::check::availability::Availability;
use crate::check::CheckResult;
use crate::history::{History, Output};
use crate::RunArgs;

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub ops: usize,
    pub ok: usize,
    pub unknown: usize,
    pub refused: usize,
    pub kube_ops: usize,
    pub watch_sessions: usize,
    pub watch_events: usize,
    pub revisions: usize,
    pub faults: usize,
    pub leader_changes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: &'static str,
    pub passed: bool,
    pub scenario: String,
    pub members: usize,
    pub network: String,
    pub duration_s: f64,
    pub seed: u64,
    /// Wall time of the whole run (start-up, faults, final phase).
    pub run_s: f64,
    pub counts: Counts,
    pub checks: Vec<CheckResult>,
    pub availability: Availability,
    /// Steps of the run that failed (a fault the cluster did not recover from, ...).
    pub errors: Vec<String>,
    pub files: Files,
}

#[derive(Debug, Clone, Serialize)]
pub struct Files {
    pub history: &'static str,
    pub timeline: &'static str,
    pub logs: &'static str,
}

impl Report {
    pub fn new(
        a: &RunArgs,
        seed: u64,
        h: &History,
        checks: Vec<CheckResult>,
        availability: Availability,
        errors: Vec<String>,
    ) -> Report {
        let passed = errors.is_empty() && checks.iter().all(|c| c.passed);
        let count = |f: fn(&Output) -> bool| h.ops.iter().filter(|o| f(&o.output)).count();
        Report {
            verdict: if passed { "PASS" } else { "FAIL" },
            passed,
            scenario: a.scenario.clone(),
            members: a.members,
            network: format!("{:?}", a.network).to_lowercase(),
            duration_s: a.duration.as_secs_f64(),
            seed,
            run_s: h.end as f64 / 1e9,
            counts: Counts {
                ops: h.ops.len(),
                ok: count(|o| !matches!(o, Output::Unknown { .. } | Output::Refused { .. })),
                unknown: count(Output::is_unknown),
                refused: count(|o| matches!(o, Output::Refused { .. })),
                kube_ops: h.kube_ops.len(),
                watch_sessions: h.watches.len() + h.kube_watches.len(),
                watch_events: h
                    .watches
                    .iter()
                    .flat_map(|s| &s.responses)
                    .map(|r| r.events.len())
                    .sum(),
                revisions: h.revisions.len(),
                faults: h.faults.len(),
                leader_changes: h.leaders.len(),
            },
            checks,
            availability,
            errors,
            files: Files {
                history: "history.json",
                timeline: "timeline.svg",
                logs: "logs/",
            },
        }
    }
}

fn write_json<T: Serialize>(path: &Path, v: &T, pretty: bool) -> Result<(), String> {
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let r = if pretty {
        serde_json::to_writer_pretty(&mut w, v)
    } else {
        serde_json::to_writer(&mut w, v)
    };
    r.map_err(|e| format!("{}: {e}", path.display()))?;
    w.flush().map_err(|e| format!("{}: {e}", path.display()))
}

pub fn write(dir: &Path, h: &History, r: &Report) -> Result<(), String> {
    write_json(&dir.join("history.json"), h, false)?;
    write_json(&dir.join("report.json"), r, true)
}

pub fn print_checks(checks: &[CheckResult]) {
    for c in checks {
        let status = if c.passed {
            "PASS"
        } else if c.inconclusive {
            "????"
        } else {
            "FAIL"
        };
        println!("  {status}  {:<22} checked {}", c.name, c.checked);
        for n in &c.notes {
            println!("        {n}");
        }
        for v in &c.violations {
            println!("        - {}", v.replace('\n', "\n          "));
        }
        if c.more_violations > 0 {
            println!("        ... and {} more", c.more_violations);
        }
        if let Some(ce) = &c.counterexample {
            println!("        counterexample:");
            for l in ce.lines() {
                println!("          {l}");
            }
        }
    }
}

pub fn print(r: &Report, dir: &Path) {
    let c = &r.counts;
    println!(
        "strata chaos: {} for {:.0} s on {} members ({} network, seed {}): {} operations ({} ok, {} unknown, {} refused), {} Kubernetes operations, {} watch events, {} faults, {} leader changes",
        r.scenario, r.duration_s, r.members, r.network, r.seed, c.ops, c.ok, c.unknown, c.refused, c.kube_ops, c.watch_events, c.faults, c.leader_changes
    );
    print_checks(&r.checks);
    for e in &r.errors {
        println!("  ERROR {e}");
    }
    println!(
        "{}: {} (report.json, timeline.svg, history.json, logs/)",
        r.verdict,
        dir.display()
    );
}
