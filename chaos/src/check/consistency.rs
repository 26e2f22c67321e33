//! The promises revisions make across keys, checked against the revision history.
//!
//! The per-key linearizability check cannot see an order between keys; etcd's revisions make one
//! visible. So, for every operation:
//! - an acknowledged write is in the history at the revision the client was told, with its value
//!   (a write the client saw succeed and the history lacks is a lost write);
//! - every value in the history under the run's prefix was written by some client (no phantom
//!   writes);
//! - a read returns exactly what the key held at the revision in its header (serializable reads
//!   may be stale, but never inconsistent);
//! - revisions follow real time: an operation invoked after another completed sees at least its
//!   revision (a write gets a higher one; a linearizable read is never older), and nothing shows
//!   a revision whose write had not even been invoked when the operation returned.

use std::collections::HashSet;

use super::revisions::Revisions;
use super::CheckResult;
use crate::check::counterexample::describe_op;
use crate::history::{History, Input, Kv, Op, Output};

/// What an operation's revision means for real-time order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Created this revision: must exceed everything visible before it was invoked.
    Write,
    /// Observed this revision as current: must not be older than what was visible before.
    Fresh,
    /// Observed this revision, possibly stale (serializable read).
    Stale,
}

/// The revision an operation is known to have applied at or observed, and what kind.
fn revision_of(op: &Op, revs: &Revisions<'_>) -> Option<(i64, Kind)> {
    match (&op.input, &op.output) {
        (Input::Get { serializable, .. }, Output::Get { rev, .. }) => Some((
            *rev,
            if *serializable {
                Kind::Stale
            } else {
                Kind::Fresh
            },
        )),
        (_, Output::Put { rev } | Output::Delete { rev, .. }) => Some((*rev, Kind::Write)),
        (_, Output::Cas { rev, succeeded, .. }) => {
            Some((*rev, if *succeeded { Kind::Write } else { Kind::Fresh }))
        }
        (_, Output::Revoke { rev }) => Some((*rev, Kind::Fresh)),
        (input, Output::Unknown { .. }) => {
            let v = input.written_value()?;
            revs.put_of(v).map(|(rev, _)| (rev, Kind::Write))
        }
        _ => None,
    }
}

fn same_kv(a: Option<&Kv>, b: Option<&Kv>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.key == b.key
                && a.value == b.value
                && a.mod_revision == b.mod_revision
                && a.create_revision == b.create_revision
                && a.version == b.version
                && a.lease == b.lease
        }
        _ => false,
    }
}

fn show(kv: Option<&Kv>) -> String {
    match kv {
        None => "absent".into(),
        Some(kv) => format!(
            "{:?} (create {}, mod {}, version {}, lease {:x})",
            kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease
        ),
    }
}

pub fn check(h: &History, revs: &Revisions<'_>) -> CheckResult {
    let mut r = CheckResult::new("revision-consistency");
    r.checked = h.ops.len();
    acknowledged_writes(h, revs, &mut r);
    phantom_writes(h, revs, &mut r);
    reads(h, revs, &mut r);
    real_time(h, revs, &mut r);
    r
}

fn acknowledged_writes(h: &History, revs: &Revisions<'_>, r: &mut CheckResult) {
    for op in &h.ops {
        // (unique value, revision, whether the value was written to the operation's key itself
        // rather than to a delete's marker key)
        let (value, rev, own_key) = match (&op.input, &op.output) {
            (Input::Put { value, .. }, Output::Put { rev }) => (value, *rev, true),
            (
                Input::Cas { value, .. },
                Output::Cas {
                    rev,
                    succeeded: true,
                    ..
                },
            ) => (value, *rev, true),
            (Input::Delete { marker, key }, Output::Delete { rev, deleted }) => {
                let was = revs.state_at(key, rev - 1).is_some();
                let now = revs.state_at(key, *rev).is_some();
                if (*deleted > 0) != (was && !now) {
                    r.violation(format!(
                        "delete answered deleted={deleted} at revision {rev}, but the history has {key} {} before and {} after: {}",
                        if was { "present" } else { "absent" },
                        if now { "present" } else { "absent" },
                        describe_op(op, None)
                    ));
                }
                (marker, *rev, false)
            }
            _ => continue,
        };
        match revs.put_of(value) {
            Some((at, key)) if at == rev && (!own_key || key == op.input.key()) => {}
            Some((at, key)) => r.violation(format!(
                "acknowledged at revision {rev} but the history applied it to {key} at revision {at}: {}",
                describe_op(op, None)
            )),
            None => r.violation(format!(
                "lost write: acknowledged at revision {rev}, not in the revision history: {}",
                describe_op(op, None)
            )),
        }
    }
}

fn phantom_writes(h: &History, revs: &Revisions<'_>, r: &mut CheckResult) {
    let issued: HashSet<&str> = h
        .ops
        .iter()
        .filter_map(|o| o.input.written_value())
        .collect();
    for e in revs.events() {
        if !e.delete && e.kv.key.starts_with(&h.prefix) && !issued.contains(e.kv.value.as_str()) {
            r.violation(format!(
                "phantom write: {} = {:?} at revision {} was never written by a client",
                e.kv.key, e.kv.value, e.kv.mod_revision
            ));
        }
    }
}

fn reads(h: &History, revs: &Revisions<'_>, r: &mut CheckResult) {
    for op in &h.ops {
        let (rev, kv) = match &op.output {
            Output::Get { rev, kv } => (*rev, kv.as_ref()),
            Output::Cas {
                rev,
                succeeded: false,
                current,
            } => (*rev, current.as_ref()),
            _ => continue,
        };
        if rev > revs.last.max(h.final_revision) {
            r.violation(format!(
                "read at revision {rev}, beyond the last revision the history has ({}): {}",
                revs.last.max(h.final_revision),
                describe_op(op, None)
            ));
            continue;
        }
        let want = revs.state_at(op.input.key(), rev);
        if !same_kv(kv, want) {
            r.violation(format!(
                "read {} at revision {rev}, but the history has {} there: {}",
                show(kv),
                show(want),
                describe_op(op, None)
            ));
        }
    }
}

fn real_time(h: &History, revs: &Revisions<'_>, r: &mut CheckResult) {
    let known: Vec<(usize, i64, Kind)> = h
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| revision_of(o, revs).map(|(rev, k)| (i, rev, k)))
        .collect();
    // Revisions visible by each completion time: (ret, rev, op index), sorted by ret.
    let mut visible: Vec<(u64, i64, usize)> = known
        .iter()
        .filter_map(|(i, rev, _)| Some((h.ops[*i].ret?, *rev, *i)))
        .collect();
    visible.sort();
    let mut best: Vec<(i64, usize)> = Vec::with_capacity(visible.len());
    for (_, rev, i) in &visible {
        let prev = best.last().copied().unwrap_or((0, usize::MAX));
        best.push(if *rev > prev.0 { (*rev, *i) } else { prev });
    }
    for (i, rev, kind) in &known {
        let op = &h.ops[*i];
        let n = visible.partition_point(|(ret, _, _)| *ret < op.call);
        if n == 0 || *kind == Kind::Stale {
            continue;
        }
        let (floor, by) = best[n - 1];
        let bad = match kind {
            Kind::Write => *rev <= floor,
            Kind::Fresh => *rev < floor,
            Kind::Stale => false,
        };
        if bad {
            r.violation(format!(
                "revision {rev} is older than revision {floor}, which was visible before this was invoked:\n    {}\n  after {}",
                describe_op(op, None),
                describe_op(&h.ops[by], None)
            ));
        }
    }
    // Nothing can show a revision whose write was invoked after it returned.
    let mut writes: Vec<(i64, u64, usize)> = known
        .iter()
        .filter(|(_, _, k)| *k == Kind::Write)
        .map(|(i, rev, _)| (*rev, h.ops[*i].call, *i))
        .collect();
    writes.sort();
    let mut latest: Vec<(u64, usize)> = Vec::with_capacity(writes.len());
    for (_, call, i) in &writes {
        let prev = latest.last().copied().unwrap_or((0, usize::MAX));
        latest.push(if *call > prev.0 { (*call, *i) } else { prev });
    }
    for (i, rev, _) in &known {
        let op = &h.ops[*i];
        let Some(ret) = op.ret else { continue };
        let n = writes.partition_point(|(w, _, _)| *w <= *rev);
        if n == 0 {
            continue;
        }
        let (call, w) = latest[n - 1];
        if call > ret {
            r.violation(format!(
                "saw revision {rev} before the write of revision {} was invoked:\n    {}\n  write {}",
                writes[n - 1].0.min(*rev),
                describe_op(op, None),
                describe_op(&h.ops[w], None)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::revisions::tests::put as ev;

    fn op(call: u64, ret: Option<u64>, input: Input, output: Output) -> Op {
        Op {
            id: 0,
            client: 1,
            member: 0,
            call,
            ret,
            input,
            output,
        }
    }

    fn put(k: &str, v: &str) -> Input {
        Input::Put {
            key: k.into(),
            value: v.into(),
            lease: 0,
        }
    }

    fn get(k: &str) -> Input {
        Input::Get {
            key: k.into(),
            serializable: false,
        }
    }

    fn run(ops: Vec<Op>, events: Vec<crate::history::Event>) -> CheckResult {
        let h = History {
            ops,
            revisions: events,
            prefix: "k".into(),
            ..Default::default()
        };
        let revs = Revisions::new(&h.revisions);
        check(&h, &revs)
    }

    #[test]
    fn a_lost_write_is_reported() {
        let r = run(
            vec![op(0, Some(5), put("k1", "a"), Output::Put { rev: 2 })],
            vec![],
        );
        assert!(
            r.violations.iter().any(|v| v.starts_with("lost write")),
            "{r:?}"
        );
    }

    #[test]
    fn a_stale_read_across_keys_is_reported() {
        // k1 = a at 2, k2 = b at 3 (completed before the read); the read of k1 at revision 2
        // is the right value for revision 2 but older than what was already visible.
        let events = vec![ev("k1", "a", 2, 2, 1), ev("k2", "b", 3, 3, 1)];
        let read = Output::Get {
            rev: 2,
            kv: Some(events[0].kv.clone()),
        };
        let r = run(
            vec![
                op(0, Some(5), put("k1", "a"), Output::Put { rev: 2 }),
                op(6, Some(9), put("k2", "b"), Output::Put { rev: 3 }),
                op(10, Some(12), get("k1"), read.clone()),
            ],
            events.clone(),
        );
        assert!(
            r.violations
                .iter()
                .any(|v| v.contains("older than revision 3")),
            "{r:?}"
        );
        // The same read, serializable, is allowed to be stale.
        let r = run(
            vec![
                op(0, Some(5), put("k1", "a"), Output::Put { rev: 2 }),
                op(6, Some(9), put("k2", "b"), Output::Put { rev: 3 }),
                op(
                    10,
                    Some(12),
                    Input::Get {
                        key: "k1".into(),
                        serializable: true,
                    },
                    read,
                ),
            ],
            events,
        );
        assert!(r.passed, "{r:?}");
    }

    #[test]
    fn phantom_and_inconsistent_reads_are_reported() {
        let events = vec![ev("k1", "a", 2, 2, 1), ev("k1", "zz", 3, 2, 2)];
        let mut wrong = events[0].kv.clone();
        wrong.version = 7;
        let r = run(
            vec![
                op(0, Some(5), put("k1", "a"), Output::Put { rev: 2 }),
                op(
                    6,
                    Some(9),
                    get("k1"),
                    Output::Get {
                        rev: 2,
                        kv: Some(wrong),
                    },
                ),
            ],
            events,
        );
        assert!(
            r.violations.iter().any(|v| v.starts_with("phantom")),
            "{r:?}"
        );
        assert!(
            r.violations.iter().any(|v| v.contains("version 7")),
            "{r:?}"
        );
    }

    #[test]
    fn a_read_from_the_future_is_reported() {
        let events = vec![ev("k1", "a", 2, 2, 1)];
        let r = run(
            vec![
                op(
                    0,
                    Some(5),
                    get("k1"),
                    Output::Get {
                        rev: 2,
                        kv: Some(events[0].kv.clone()),
                    },
                ),
                op(10, Some(15), put("k1", "a"), Output::Put { rev: 2 }),
            ],
            events,
        );
        assert!(
            r.violations.iter().any(|v| v.contains("before the write")),
            "{r:?}"
        );
    }
}
