//! Availability: for each fault, how long until writes succeeded again.
//!
//! The recovery time of a fault injected at t is the time from t to the completion of the first
//! successful write invoked at or after t (the probe clients invoke a write every few
//! milliseconds, independently of slow ones, so this is not hidden behind a stuck request).
//! A fault that does not disturb writes (a follower killed) recovers in a write's latency.
//! Unavailable windows are the gaps between successful writes longer than a threshold, for the
//! timeline. This is measured and reported; it fails only when writes never succeeded again
//! after a fault, or when a limit was given (`--max-recovery`) and a recovery exceeded it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::CheckResult;
use crate::history::{History, Input, Output};

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Faults after which writes never succeeded again before the run ended.
    pub unrecovered: usize,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Availability {
    /// Per fault kind.
    pub by_fault: BTreeMap<String, Stats>,
    /// Per fault, in order: (kind, start, recovery in ms; None: never).
    pub recoveries: Vec<(String, u64, Option<f64>)>,
    /// [start, end) of each window without a successful write longer than the threshold.
    pub windows: Vec<(u64, u64)>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// (call, ret) of every write that succeeded, sorted by completion.
fn successful_writes(h: &History) -> Vec<(u64, u64)> {
    let mut w: Vec<(u64, u64)> = h
        .ops
        .iter()
        .filter(|o| !matches!(o.input, Input::Get { .. }))
        .filter(|o| {
            matches!(
                o.output,
                Output::Put { .. }
                    | Output::Delete { .. }
                    | Output::Cas {
                        succeeded: true,
                        ..
                    }
            )
        })
        .filter_map(|o| Some((o.call, o.ret?)))
        .collect();
    w.sort_by_key(|(_, r)| *r);
    w
}

pub fn measure(h: &History, gap_ms: u64) -> Availability {
    let writes = successful_writes(h);
    let mut a = Availability::default();
    let mut by_kind: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    for f in &h.faults {
        let rec = writes
            .iter()
            .filter(|(call, _)| *call >= f.start)
            .map(|(_, ret)| *ret)
            .min()
            .map(|ret| (ret - f.start) as f64 / 1e6);
        let entry = by_kind.entry(f.kind.clone()).or_default();
        match rec {
            Some(ms) => entry.0.push(ms),
            None => entry.1 += 1,
        }
        a.recoveries.push((f.kind.clone(), f.start, rec));
    }
    for (kind, (mut v, unrecovered)) in by_kind {
        v.sort_by(f64::total_cmp);
        a.by_fault.insert(
            kind,
            Stats {
                count: v.len() + unrecovered,
                p50_ms: percentile(&v, 50.0),
                p99_ms: percentile(&v, 99.0),
                max_ms: v.last().copied().unwrap_or(0.0),
                unrecovered,
            },
        );
    }
    let gap = gap_ms * 1_000_000;
    let mut last = writes.first().map_or(0, |w| w.1);
    for (_, ret) in &writes {
        if *ret > last + gap {
            a.windows.push((last, *ret));
        }
        last = last.max(*ret);
    }
    a
}

pub fn check(a: &Availability, max_recovery_ms: Option<f64>) -> CheckResult {
    let mut r = CheckResult::new("availability");
    r.checked = a.recoveries.len();
    for (kind, start, rec) in &a.recoveries {
        match rec {
            None => r.violation(format!(
                "{kind} at {:.3} s: writes never succeeded again before the run ended",
                *start as f64 / 1e9
            )),
            Some(ms) if max_recovery_ms.is_some_and(|m| *ms > m) => r.violation(format!(
                "{kind} at {:.3} s: writes resumed after {ms:.0} ms (limit {:.0} ms)",
                *start as f64 / 1e9,
                max_recovery_ms.unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    for (kind, s) in &a.by_fault {
        r.notes.push(format!(
            "{kind}: {} faults, writes resumed after p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            s.count, s.p50_ms, s.p99_ms, s.max_ms
        ));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{FaultRecord, Op};

    fn write(call_ms: u64, ret_ms: u64) -> Op {
        Op {
            id: 0,
            client: 0,
            member: 0,
            call: call_ms * 1_000_000,
            ret: Some(ret_ms * 1_000_000),
            input: Input::Put {
                key: "k".into(),
                value: format!("{call_ms}"),
                lease: 0,
            },
            output: Output::Put { rev: 2 },
        }
    }

    #[test]
    fn recovery_is_the_first_write_invoked_after_the_fault() {
        let h = History {
            ops: vec![
                write(0, 5),
                write(990, 2500),
                write(1000, 1010),
                write(1500, 1600),
                write(1700, 1710),
            ],
            faults: vec![FaultRecord {
                kind: "leader-kill".into(),
                target: "n1".into(),
                start: 1_000_000_000,
                end: Some(1_100_000_000),
                members: vec![0],
            }],
            ..Default::default()
        };
        // The write invoked at 1000 ms is the first after the fault... but it completed at
        // 1010 ms; the one invoked before the fault does not count.
        let a = measure(&h, 1000);
        assert_eq!(a.recoveries[0].2, Some(10.0));
        assert_eq!(a.windows, vec![(5_000_000, 1_010_000_000)]);
        assert!(check(&a, None).passed);
        assert!(!check(&a, Some(5.0)).passed);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 99.0), 4.0);
    }
}
