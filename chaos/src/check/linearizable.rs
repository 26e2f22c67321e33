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

use std::collections::BTreeMap;
use std::time::Duration;

use super::counterexample::{describe, shrink};
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
        if ops.iter().all(|r| matches!(r.input, Input::Put { .. })) {
            // Only writes (the availability probes' keys): a put succeeds in every state, so
            // any order that respects real time (by completion, say) is a linearization. The
            // search would still enumerate every set of concurrent puts a window could have
            // applied, which the probes' dozens of puts in flight during a fault make
            // exponential. Their revisions are checked by revision-consistency.
            continue;
        }
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
    fn a_key_with_only_puts_is_linearizable_however_concurrent() {
        // 400 puts all in flight at once (probes stuck in a fault): the search would have to
        // enumerate the subsets of them; with only writes there is nothing to search.
        let ops: Vec<Op> = (0..400u64)
            .map(|i| {
                let v = format!("p.{i}");
                op(
                    0,
                    i,
                    Some(100_000 + i),
                    put(&v),
                    Output::Put { rev: 2 + i as i64 },
                )
            })
            .collect();
        let events = (0..400i64)
            .map(|i| ev_put("k", &format!("p.{i}"), 2 + i, 2, 1 + i))
            .collect();
        let h = history(ops, events);
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
