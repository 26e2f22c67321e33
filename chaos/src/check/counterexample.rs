//! Counterexamples: a failing per-key history shrunk to a few operations that still have no
//! linearization, printed one operation per line.
//!
//! Shrinking is delta debugging over operations (drop a chunk, keep the drop if the rest still
//! fails, halve the chunks when nothing can go), with one rule that keeps the result readable:
//! a write is only dropped together with every operation that observed its value, so no read
//! is left that "saw a value nobody wrote" — which would fail for a trivial reason.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::linearizable::{KvModel, Resolved};
use super::porcupine::{self, Timed, Verdict};
use crate::history::{Input, Op, Output};

/// The value an operation needs some write to have produced.
fn observed(r: &Resolved) -> Option<&str> {
    match (&r.input, &r.output) {
        (_, Output::Get { kv: Some(kv), .. }) => Some(&kv.value),
        (
            _,
            Output::Cas {
                succeeded: false,
                current: Some(kv),
                ..
            },
        ) => Some(&kv.value),
        (
            Input::Cas {
                expect: Some(v), ..
            },
            Output::Cas {
                succeeded: true, ..
            },
        ) => Some(v),
        (Input::Revoke { value, .. }, _) => Some(value),
        _ => None,
    }
}

fn fails(ops: &[Resolved], budget: Duration) -> bool {
    let timed: Vec<Timed<'_, Resolved>> = ops
        .iter()
        .map(|r| Timed {
            call: r.call,
            ret: r.ret,
            op: r,
        })
        .collect();
    matches!(
        porcupine::check(&KvModel, &timed, budget),
        Verdict::Violation { .. }
    )
}

/// Removes `drop` and, transitively, every operation that observed a value one of them wrote.
fn without(ops: &[Resolved], drop: &HashSet<usize>) -> Vec<Resolved> {
    let mut gone: HashSet<usize> = drop.clone();
    loop {
        let lost: HashSet<&str> = ops
            .iter()
            .filter(|o| gone.contains(&o.idx))
            .filter_map(|o| o.input.written_value())
            .collect();
        let more: Vec<usize> = ops
            .iter()
            .filter(|o| !gone.contains(&o.idx))
            .filter(|o| observed(o).is_some_and(|v| lost.contains(v)))
            .map(|o| o.idx)
            .collect();
        if more.is_empty() {
            break;
        }
        gone.extend(more);
    }
    ops.iter()
        .filter(|o| !gone.contains(&o.idx))
        .cloned()
        .collect()
}

/// Delta debugging: the smallest subset found (within `budget`) that still has no linearization.
pub fn shrink(ops: &[Resolved], stuck: usize, budget: Duration) -> Vec<Resolved> {
    let started = Instant::now();
    let per_try = Duration::from_secs(5);
    let mut cur: Vec<Resolved> = ops.to_vec();
    // Nothing invoked after the operation that could not be placed is needed to show it.
    if let Some(limit) = ops.get(stuck).map(|s| s.ret.unwrap_or(u64::MAX)) {
        let late: HashSet<usize> = cur
            .iter()
            .filter(|o| o.call > limit)
            .map(|o| o.idx)
            .collect();
        let cropped = without(&cur, &late);
        if !cropped.is_empty() && fails(&cropped, per_try) {
            cur = cropped;
        }
    }
    let mut n = 2usize;
    while cur.len() > 1 && started.elapsed() < budget {
        let chunk = cur.len().div_ceil(n);
        let mut reduced = false;
        let parts = n;
        for c in 0..parts {
            let part: HashSet<usize> = cur
                .iter()
                .skip(c * chunk)
                .take(chunk)
                .map(|o| o.idx)
                .collect();
            if part.is_empty() {
                continue;
            }
            let candidate = without(&cur, &part);
            if !candidate.is_empty() && candidate.len() < cur.len() && fails(&candidate, per_try) {
                cur = candidate;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
            if started.elapsed() > budget {
                break;
            }
        }
        if !reduced {
            if n >= cur.len() {
                break;
            }
            n = (n * 2).min(cur.len());
        }
    }
    cur
}

fn ms(t: u64) -> String {
    format!("{:10.3} ms", t as f64 / 1e6)
}

/// One operation as a line of a counterexample.
pub fn describe_op(op: &Op, r: Option<&Resolved>) -> String {
    let ret = r
        .map_or(op.ret, |r| r.ret)
        .map_or_else(|| format!("{:>13}", "never"), ms);
    let what = match &op.input {
        Input::Put { value, lease, .. } if *lease != 0 => format!("put {value:?} lease {lease:x}"),
        Input::Put { value, .. } => format!("put {value:?}"),
        Input::Get { serializable, .. } => {
            if *serializable {
                "get (serializable)".into()
            } else {
                "get".into()
            }
        }
        Input::Delete { .. } => "delete".into(),
        Input::Cas { expect, value, .. } => match expect {
            Some(e) => format!("if value == {e:?} then put {value:?}"),
            None => format!("if absent then put {value:?}"),
        },
        Input::Revoke { lease, .. } => format!("revoke lease {lease:x}"),
    };
    let got = match &op.output {
        Output::Put { rev } => format!("ok, revision {rev}"),
        Output::Get { rev, kv } => match kv {
            Some(kv) => format!("{:?} (mod {}) at revision {rev}", kv.value, kv.mod_revision),
            None => format!("absent at revision {rev}"),
        },
        Output::Delete { rev, deleted } => format!("deleted {deleted}, revision {rev}"),
        Output::Cas {
            rev,
            succeeded,
            current,
        } => match (succeeded, current) {
            (true, _) => format!("succeeded, revision {rev}"),
            (false, Some(kv)) => format!("failed, current {:?}, revision {rev}", kv.value),
            (false, None) => format!("failed, absent, revision {rev}"),
        },
        Output::Revoke { rev } => format!("ok, revision {rev}"),
        Output::Refused { error } => format!("refused: {error}"),
        Output::Unknown { error } => format!("unknown: {error}"),
    };
    let note = r
        .and_then(|r| r.note.as_deref())
        .map(|n| format!(" [{n}]"))
        .unwrap_or_default();
    format!(
        "[{} .. {}] client {:>3} -> n{}  {what}  =>  {got}{note}",
        ms(op.call),
        ret,
        op.client,
        op.member + 1
    )
}

pub fn describe(key: &str, small: &[Resolved], ops: &[Op], total: usize) -> String {
    let mut lines = vec![format!(
        "key {key}: these {} of its {total} operations have no linearization (times since the run started):",
        small.len()
    )];
    let mut sorted: Vec<&Resolved> = small.iter().collect();
    sorted.sort_by_key(|r| r.call);
    let by_idx: HashMap<usize, &Resolved> = sorted.iter().map(|r| (r.idx, *r)).collect();
    for r in &sorted {
        lines.push(format!(
            "  {}",
            describe_op(&ops[r.idx], by_idx.get(&r.idx).copied())
        ));
    }
    lines.join("\n")
}
