//! Linearizability of the KV history, key by key.
//!
//! Every operation touches one key (a delete's marker write is part of the same transaction and
//! only names it), so the history splits into independent per-key histories, each checked against
//! a register model whose state is the key's current value ([`KvModel`]). Values are unique, so
//! the model needs nothing else; that a value comes with the right revision is checked across
//! keys by [`super::consistency`].
//!
//! Failed operations are resolved from the revision history first, as etcd's robustness tests do,
//! because an unknown outcome (completion at +infinity) keeps every later moment open and makes
//! the search slow: a write whose unique value is in the history was applied, at that revision,
//! so it completed no later than the first operation that saw a revision at or above it; a write
//! whose value is absent from a complete history never took effect and is dropped. This is only
//! done when the revision history passed its own integrity check.
//!
//! A violation is shrunk (delta debugging over operations, never removing a write whose value a
//! kept read observed) to a small history that still has no linearization, and printed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::porcupine::{self, Model, Timed, Verdict};
use super::revisions::Revisions;
use super::{CheckOptions, CheckResult};
use crate::history::{History, Input, Op, Output};

/// An operation as the model sees it, after resolving unknown outcomes.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Index into `History::ops`.
    pub idx: usize,
    pub call: u64,
    pub ret: Option<u64>,
    pub input: Input,
    pub output: Output,
    /// How an unknown outcome was resolved, for counterexamples.
    pub note: Option<String>,
}

/// A key's value as a register; the operations of [`Input`].
pub struct KvModel;

impl Model for KvModel {
    type State = Option<String>;
    type Op = Resolved;

    fn init(&self) -> Option<String> {
        None
    }

    fn step(&self, s: &Option<String>, op: &Resolved) -> Option<Option<String>> {
        let unknown = op.output.is_unknown();
        match (&op.input, &op.output) {
            (Input::Put { value, .. }, Output::Put { .. }) => Some(Some(value.clone())),
            (Input::Put { value, .. }, _) if unknown => Some(Some(value.clone())),
            (Input::Get { .. }, Output::Get { kv, .. }) => {
                (kv.as_ref().map(|k| &k.value) == s.as_ref()).then(|| s.clone())
            }
            (Input::Delete { .. }, Output::Delete { deleted, .. }) => {
                ((*deleted > 0) == s.is_some()).then_some(None)
            }
            (Input::Delete { .. }, _) if unknown => Some(None),
            (
                Input::Cas { expect, value, .. },
                Output::Cas {
                    succeeded, current, ..
                },
            ) => {
                if *succeeded {
                    (s == expect).then(|| Some(value.clone()))
                } else {
                    let seen = current.as_ref().map(|k| &k.value);
                    (s != expect && seen == s.as_ref()).then(|| s.clone())
                }
            }
            (Input::Cas { expect, value, .. }, _) if unknown => Some(if s == expect {
                Some(value.clone())
            } else {
                s.clone()
            }),
            (Input::Revoke { value, .. }, Output::Revoke { .. }) => {
                Some(if s.as_deref() == Some(value) {
                    None
                } else {
                    s.clone()
                })
            }
            (Input::Revoke { value, .. }, _) if unknown => Some(if s.as_deref() == Some(value) {
                None
            } else {
                s.clone()
            }),
            _ => None,
        }
    }
}

/// For each revision, the earliest completion of an operation that saw that revision or a later
/// one: a change applied at revision r was applied before that moment.
pub(crate) struct SeenBy {
    revs: Vec<i64>,
    /// suffix minimum of completion times
    min_ret: Vec<u64>,
}

impl SeenBy {
    fn new(ops: &[Op]) -> Self {
        Self::from_pairs(
            ops.iter()
                .filter_map(|o| Some((o.output.revision()?, o.ret?)))
                .collect(),
        )
    }

    /// From (revision seen, completion time) pairs.
    pub(crate) fn from_pairs(mut pairs: Vec<(i64, u64)>) -> Self {
        pairs.sort();
        let mut min_ret = vec![u64::MAX; pairs.len()];
        let mut m = u64::MAX;
        for i in (0..pairs.len()).rev() {
            m = m.min(pairs[i].1);
            min_ret[i] = m;
        }
        Self {
            revs: pairs.iter().map(|p| p.0).collect(),
            min_ret,
        }
    }

    pub(crate) fn bound(&self, rev: i64) -> Option<u64> {
        let i = self.revs.partition_point(|r| *r < rev);
        self.min_ret.get(i).copied().filter(|t| *t != u64::MAX)
    }
}

/// Resolves unknown outcomes from the revision history (see the module docs). Serializable
/// reads, refused operations and failed reads are left out: they cannot change state, and
/// serializable reads may be stale by design (they are checked in [`super::consistency`]).
pub fn resolve(h: &History, revs: &Revisions<'_>, trusted: bool) -> Vec<Resolved> {
    let seen = SeenBy::new(&h.ops);
    let marker_prefix = format!("{}marker/", h.prefix);
    let mut out = Vec::with_capacity(h.ops.len());
    for (idx, op) in h.ops.iter().enumerate() {
        let mut r = Resolved {
            idx,
            call: op.call,
            ret: op.ret,
            input: op.input.clone(),
            output: op.output.clone(),
            note: None,
        };
        match (&op.input, &op.output) {
            (
                Input::Get {
                    serializable: true, ..
                },
                _,
            )
            | (_, Output::Refused { .. }) => continue,
            (Input::Get { .. }, Output::Unknown { .. }) => continue,
            (input, Output::Unknown { .. }) if trusted => {
                let applied: Option<(i64, Output)> = match input {
                    Input::Put { value, .. } => revs
                        .put_of(value)
                        .map(|(rev, _)| (rev, Output::Put { rev })),
                    Input::Cas { value, .. } => revs.put_of(value).map(|(rev, _)| {
                        (
                            rev,
                            Output::Cas {
                                rev,
                                succeeded: true,
                                current: None,
                            },
                        )
                    }),
                    Input::Delete { key, marker } => revs.put_of(marker).map(|(rev, _)| {
                        let deleted = i64::from(revs.state_at(key, rev - 1).is_some());
                        (rev, Output::Delete { rev, deleted })
                    }),
                    Input::Revoke { key, value, .. } => {
                        revoked_at(revs, key, value, &marker_prefix)
                            .map(|rev| (rev, Output::Revoke { rev }))
                    }
                    Input::Get { .. } => None,
                };
                match applied {
                    Some((rev, output)) => {
                        r.output = output;
                        r.ret = seen.bound(rev);
                        r.note = Some(format!(
                            "failed, but applied at revision {rev} per the revision history"
                        ));
                    }
                    // Not in a complete history: it never took effect.
                    None => continue,
                }
            }
            _ => {}
        }
        out.push(r);
    }
    out
}

/// The revision at which revoking the lease of the put that wrote `value` deleted `key`: a
/// deletion of that value that no delete operation's marker accounts for.
fn revoked_at(revs: &Revisions<'_>, key: &str, value: &str, marker_prefix: &str) -> Option<i64> {
    let changes = revs.changes(key);
    for w in changes.windows(2) {
        if let ((_, Some(before)), (rev, None)) = (w[0], w[1]) {
            if before.value == value && !revs.at(rev).any(|e| e.kv.key.starts_with(marker_prefix)) {
                return Some(rev);
            }
        }
    }
    None
}

pub fn check(h: &History, revs: &Revisions<'_>, trusted: bool, opts: &CheckOptions) -> CheckResult {
    let mut result = CheckResult::new("linearizability");
    let resolved = resolve(h, revs, trusted);
    let mut by_key: BTreeMap<&str, Vec<&Resolved>> = BTreeMap::new();
    for r in &resolved {
        by_key.entry(r.input.key()).or_default().push(r);
    }
    result.checked = resolved.len();
    let unknown = resolved.iter().filter(|r| r.ret.is_none()).count();
    result.notes.push(format!(
        "{} operations on {} keys ({} failed ones resolved from the revision history, {} left open)",
        resolved.len(),
        by_key.len(),
        resolved.iter().filter(|r| r.note.is_some()).count(),
        unknown
    ));
    for (key, ops) in by_key {
        let timed: Vec<Timed<'_, Resolved>> = ops
            .iter()
            .map(|r| Timed {
                call: r.call,
                ret: r.ret,
                op: *r,
            })
            .collect();
        match porcupine::check(&KvModel, &timed, opts.budget) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => {
                result.passed = false;
                result.inconclusive = true;
                result.violation(format!(
                    "{key}: the search did not finish within {:?} ({} operations)",
                    opts.budget,
                    ops.len()
                ));
            }
            Verdict::Violation { stuck, .. } => {
                let owned: Vec<Resolved> = ops.iter().map(|r| (*r).clone()).collect();
                let small = shrink(&owned, stuck, Duration::from_secs(30));
                result.violation(format!(
                    "{key}: no linearization of its {} operations; shrunk to {}",
                    ops.len(),
                    small.len()
                ));
                if result.counterexample.is_none() {
                    result.counterexample = Some(describe(key, &small, &h.ops, ops.len()));
                }
            }
        }
    }
    result
}

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

fn describe(key: &str, small: &[Resolved], ops: &[Op], total: usize) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::revisions::tests::put as ev_put;
    use crate::history::Kv;

    fn op(client: u32, call: u64, ret: Option<u64>, input: Input, output: Output) -> Op {
        Op {
            id: 0,
            client,
            member: 0,
            call,
            ret,
            input,
            output,
        }
    }

    fn put(v: &str) -> Input {
        Input::Put {
            key: "k".into(),
            value: v.into(),
            lease: 0,
        }
    }

    fn get() -> Input {
        Input::Get {
            key: "k".into(),
            serializable: false,
        }
    }

    fn got(v: &str, rev: i64) -> Output {
        Output::Get {
            rev,
            kv: Some(Kv {
                key: "k".into(),
                value: v.into(),
                create_revision: 2,
                mod_revision: rev,
                version: 1,
                lease: 0,
            }),
        }
    }

    fn history(ops: Vec<Op>, revisions: Vec<crate::history::Event>) -> History {
        History {
            ops,
            revisions,
            ..Default::default()
        }
    }

    fn run(h: &History) -> CheckResult {
        let revs = Revisions::new(&h.revisions);
        check(h, &revs, true, &CheckOptions::default())
    }

    #[test]
    fn accepts_a_correct_history() {
        let h = history(
            vec![
                op(1, 0, Some(10), put("a"), Output::Put { rev: 2 }),
                op(2, 5, Some(15), get(), got("a", 2)),
                op(1, 20, Some(30), put("b"), Output::Put { rev: 3 }),
                op(2, 25, Some(28), get(), got("a", 2)),
                op(2, 31, Some(40), get(), got("b", 3)),
            ],
            vec![ev_put("k", "a", 2, 2, 1), ev_put("k", "b", 3, 2, 2)],
        );
        let r = run(&h);
        assert!(r.passed, "{r:?}");
    }

    #[test]
    fn rejects_a_stale_read_and_prints_a_small_counterexample() {
        let mut ops = vec![
            op(1, 0, Some(10), put("a"), Output::Put { rev: 2 }),
            op(1, 20, Some(30), put("b"), Output::Put { rev: 3 }),
        ];
        // Noise that must be shrunk away.
        for i in 0..30 {
            ops.push(op(3, 31 + i * 10, Some(35 + i * 10), get(), got("b", 3)));
        }
        ops.push(op(2, 400, Some(410), get(), got("a", 2)));
        let h = history(
            ops,
            vec![ev_put("k", "a", 2, 2, 1), ev_put("k", "b", 3, 2, 2)],
        );
        let r = run(&h);
        assert!(!r.passed);
        let ce = r.counterexample.expect("a counterexample");
        assert!(ce.contains("these 3 of its 33"), "{ce}");
        assert!(ce.contains("put \"b\""), "{ce}");
    }

    #[test]
    fn unknown_writes_resolve_from_the_revision_history() {
        // "x" failed but is in the history: the read that saw it is fine. "y" failed and is not:
        // it never happened, so a read of "y" is not explained by anything.
        let h = history(
            vec![
                op(
                    1,
                    0,
                    None,
                    put("x"),
                    Output::Unknown {
                        error: "timeout".into(),
                    },
                ),
                op(2, 50, Some(60), get(), got("x", 2)),
                op(
                    1,
                    70,
                    None,
                    put("y"),
                    Output::Unknown {
                        error: "timeout".into(),
                    },
                ),
            ],
            vec![ev_put("k", "x", 2, 2, 1)],
        );
        assert!(run(&h).passed);
        let mut bad = h.clone();
        bad.ops.push(op(2, 80, Some(90), get(), got("y", 3)));
        assert!(!run(&bad).passed);
    }
}
