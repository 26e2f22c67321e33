//! The object model for the Kubernetes history, and the search (see the parent module).

use std::collections::{BTreeMap, HashMap};

use super::Index;
use crate::check::linearizable::SeenBy;
use crate::check::porcupine::{self, Model, Timed, Verdict};
use crate::check::{CheckOptions, CheckResult};
use crate::history::History;
use crate::traffic::kube::{KubeInput, KubeObject, KubeOutput};

#[derive(Clone, Debug)]
struct Resolved {
    call: u64,
    ret: Option<u64>,
    input: KubeInput,
    output: KubeOutput,
}

struct ObjectModel;

impl Model for ObjectModel {
    /// (marker, resourceVersion) of the object, or None when absent.
    type State = Option<(String, i64)>;
    type Op = Resolved;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, s: &Self::State, op: &Resolved) -> Option<Self::State> {
        let cur_rv = s.as_ref().map(|(_, rv)| *rv);
        match (&op.input, &op.output) {
            (KubeInput::Create { .. }, KubeOutput::Object { obj }) => {
                s.is_none().then(|| Some((obj.marker.clone(), obj.rv)))
            }
            (KubeInput::Create { .. }, KubeOutput::Rejected { code: 409, .. }) => {
                s.is_some().then(|| s.clone())
            }
            (KubeInput::Update { rv, .. }, KubeOutput::Object { obj }) => {
                (cur_rv == Some(*rv)).then(|| Some((obj.marker.clone(), obj.rv)))
            }
            (
                KubeInput::Update { rv, .. } | KubeInput::Delete { rv, .. },
                KubeOutput::Rejected { code: 409, .. },
            ) => (cur_rv.is_some() && cur_rv != Some(*rv)).then(|| s.clone()),
            (KubeInput::Delete { rv, .. }, KubeOutput::Deleted) => {
                (cur_rv == Some(*rv)).then_some(None)
            }
            // An unresolved delete (one of several that carried the same precondition): it
            // deletes if it runs while that version is current, else its precondition fails.
            (KubeInput::Delete { rv, .. }, KubeOutput::Unknown { .. }) => {
                Some(if cur_rv == Some(*rv) { None } else { s.clone() })
            }
            (KubeInput::Get { .. }, KubeOutput::Object { obj }) => {
                (s.as_ref() == Some(&(obj.marker.clone(), obj.rv))).then(|| s.clone())
            }
            (_, KubeOutput::Rejected { code: 404, .. }) => s.is_none().then_some(None),
            _ => None,
        }
    }
}

/// (revision seen, completion) of every operation of the run, KV and Kubernetes alike.
pub(crate) fn seen_pairs(h: &History) -> Vec<(i64, u64)> {
    let mut pairs: Vec<(i64, u64)> = h
        .ops
        .iter()
        .filter_map(|o| Some((o.output.revision()?, o.ret?)))
        .collect();
    for o in &h.kube_ops {
        let rev = match &o.output {
            KubeOutput::Object { obj } => obj.rv,
            KubeOutput::List { rv, .. } => *rv,
            _ => continue,
        };
        if let Some(ret) = o.ret {
            pairs.push((rev, ret));
        }
    }
    pairs
}

fn resolve(h: &History, idx: &Index<'_>, trusted: bool) -> Vec<Resolved> {
    let seen = SeenBy::from_pairs(seen_pairs(h));
    // At most one delete with a given (name, precondition) can succeed: after it, no object of
    // that name has that resourceVersion again. So an acknowledged one owns the deletion, and
    // failed ones with the same precondition are resolved only if they are alone.
    let mut deletes: HashMap<(&str, i64), (usize, usize)> = HashMap::new();
    for o in &h.kube_ops {
        if let KubeInput::Delete { name, rv } = &o.input {
            let e = deletes.entry((name.as_str(), *rv)).or_default();
            match o.output {
                KubeOutput::Deleted => e.0 += 1,
                KubeOutput::Unknown { .. } => e.1 += 1,
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for o in &h.kube_ops {
        let mut r = Resolved {
            call: o.call,
            ret: o.ret,
            input: o.input.clone(),
            output: o.output.clone(),
        };
        match (&o.input, &o.output) {
            (KubeInput::List, _) | (KubeInput::Get { .. }, KubeOutput::Unknown { .. }) => continue,
            (_, KubeOutput::Rejected { code, .. }) if *code != 404 && *code != 409 => continue,
            (input, KubeOutput::Unknown { .. }) => {
                if !trusted {
                    // Without a trusted history an unknown write cannot be resolved; the model
                    // cannot take an arbitrary resourceVersion, so such runs skip it (noted).
                    continue;
                }
                let applied = match input {
                    KubeInput::Create { name, marker } | KubeInput::Update { name, marker, .. } => {
                        idx.markers
                            .get(marker)
                            .filter(|(_, n)| n == name)
                            .map(|(rev, _)| {
                                (
                                    *rev,
                                    KubeOutput::Object {
                                        obj: KubeObject {
                                            name: name.clone(),
                                            rv: *rev,
                                            marker: marker.clone(),
                                        },
                                    },
                                )
                            })
                    }
                    KubeInput::Delete { name, rv } => {
                        let (acked, unknown) = deletes
                            .get(&(name.as_str(), *rv))
                            .copied()
                            .unwrap_or_default();
                        match idx.deleted_at(name, *rv) {
                            // Another delete did it, or none did: this one had no effect.
                            _ if acked > 0 => None,
                            None => None,
                            Some(at) if unknown == 1 => Some((at, KubeOutput::Deleted)),
                            // Several could have: leave it open for the search to place.
                            Some(_) => {
                                out.push(r);
                                continue;
                            }
                        }
                    }
                    _ => None,
                };
                match applied {
                    Some((rev, output)) => {
                        r.output = output;
                        r.ret = seen.bound(rev);
                    }
                    None => continue,
                }
            }
            _ => {}
        }
        out.push(r);
    }
    out
}

fn describe(o: &Resolved) -> String {
    let ret = o.ret.map_or_else(
        || "never".to_string(),
        |r| format!("{:.3} ms", r as f64 / 1e6),
    );
    format!(
        "[{:.3} ms .. {ret}] {:?} => {:?}",
        o.call as f64 / 1e6,
        o.input,
        o.output
    )
}

pub(crate) fn linearizability(
    h: &History,
    idx: &Index<'_>,
    trusted: bool,
    opts: &CheckOptions,
) -> CheckResult {
    let mut r = CheckResult::new("kube-linearizability");
    let resolved = resolve(h, idx, trusted);
    r.checked = resolved.len();
    let mut by_name: BTreeMap<&str, Vec<&Resolved>> = BTreeMap::new();
    for o in &resolved {
        if let Some(n) = o.input.name() {
            by_name.entry(n).or_default().push(o);
        }
    }
    for (name, ops) in by_name {
        let timed: Vec<Timed<'_, Resolved>> = ops
            .iter()
            .map(|o| Timed {
                call: o.call,
                ret: o.ret,
                op: *o,
            })
            .collect();
        match porcupine::check(&ObjectModel, &timed, opts.budget) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => {
                r.inconclusive = true;
                r.violation(format!(
                    "{name}: the search did not finish within {:?}",
                    opts.budget
                ));
            }
            Verdict::Violation { longest, stuck } => {
                r.violation(format!(
                    "{name}: no linearization of its {} operations",
                    ops.len()
                ));
                if r.counterexample.is_none() {
                    let mut lines = vec![format!("configmap {name}: the longest linearizable prefix, then the operation that cannot follow it:")];
                    let tail = longest.len().saturating_sub(6);
                    for i in &longest[tail..] {
                        lines.push(format!("  {}", describe(ops[*i])));
                    }
                    lines.push(format!("  cannot place: {}", describe(ops[stuck])));
                    r.counterexample = Some(lines.join("\n"));
                }
            }
        }
    }
    r
}
