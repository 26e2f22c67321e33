//! The Kubernetes traffic, checked like the KV traffic, through the store keys the apiserver
//! writes (`/registry/configmaps/<namespace>/<name>`, an object's resourceVersion being the key's
//! mod revision):
//!
//! - **kube-linearizability**: each object's history against a model of one object (absent, or a
//!   marker at a resourceVersion): creates need it absent, updates and deletes need the
//!   resourceVersion they carry, gets return the current version; 404 and 409 answers are held
//!   to the same state. Failed writes are resolved from the revision history by their marker
//!   (deletes by their precondition), as for the KV history.
//! - **kube-consistency**: acknowledged writes are in the history at their resourceVersion; no
//!   write appears that no client made; a list at resourceVersion R holds exactly what the store
//!   held at R, and a list without a resourceVersion is not older than anything that completed
//!   before it was sent.
//! - **kube-watch**: events in resourceVersion order, none missed or repeated between the start
//!   and the last resourceVersion seen, each with the right type and object; a bookmark at R
//!   means nothing at or below R follows; a watcher's next watch starts where the last ended.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::linearizable::SeenBy;
use super::porcupine::{self, Model, Timed, Verdict};
use super::revisions::Revisions;
use super::{CheckOptions, CheckResult};
use crate::history::{History, Kv};
use crate::traffic::kube::{KubeInput, KubeObject, KubeOp, KubeOutput};

/// The marker of a stored object (JSON, `data.marker`).
pub fn stored_marker(kv: &Kv) -> String {
    serde_json::from_str::<Value>(&kv.value)
        .ok()
        .and_then(|v| v.pointer("/data/marker")?.as_str().map(str::to_string))
        .unwrap_or_default()
}

struct Index<'a> {
    prefix: &'a str,
    /// marker -> (revision, name)
    markers: HashMap<String, (i64, String)>,
    revs: &'a Revisions<'a>,
}

impl<'a> Index<'a> {
    fn new(h: &'a History, revs: &'a Revisions<'a>) -> Self {
        let mut markers = HashMap::new();
        for e in revs.events() {
            if let Some(name) = e.kv.key.strip_prefix(h.kube_prefix.as_str()) {
                if !e.delete {
                    markers.insert(stored_marker(&e.kv), (e.kv.mod_revision, name.to_string()));
                }
            }
        }
        Index {
            prefix: &h.kube_prefix,
            markers,
            revs,
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The object at revision `rev`.
    fn at(&self, name: &str, rev: i64) -> Option<KubeObject> {
        self.revs
            .state_at(&self.key(name), rev)
            .map(|kv| KubeObject {
                name: name.to_string(),
                rv: kv.mod_revision,
                marker: stored_marker(kv),
            })
    }

    /// The revision at which a delete with precondition `rv` removed `name`.
    fn deleted_at(&self, name: &str, rv: i64) -> Option<i64> {
        let changes = self.revs.changes(&self.key(name));
        changes.windows(2).find_map(|w| match (w[0], w[1]) {
            ((_, Some(before)), (at, None)) if before.mod_revision == rv => Some(at),
            _ => None,
        })
    }
}

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
fn seen_pairs(h: &History) -> Vec<(i64, u64)> {
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

pub fn check(
    h: &History,
    revs: &Revisions<'_>,
    trusted: bool,
    opts: &CheckOptions,
) -> Vec<CheckResult> {
    let idx = Index::new(h, revs);
    vec![
        linearizability(h, &idx, trusted, opts),
        consistency(h, &idx),
        watch(h, &idx),
    ]
}

fn linearizability(
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

fn consistency(h: &History, idx: &Index<'_>) -> CheckResult {
    let mut r = CheckResult::new("kube-consistency");
    r.checked = h.kube_ops.len();
    let issued: HashSet<&str> = h.kube_ops.iter().filter_map(|o| o.input.marker()).collect();
    for e in idx.revs.events() {
        if !e.delete && e.kv.key.starts_with(idx.prefix) {
            let m = stored_marker(&e.kv);
            if !issued.contains(m.as_str()) {
                r.violation(format!(
                    "phantom write: {} at revision {} (marker {m:?}) was never written by a client",
                    e.kv.key, e.kv.mod_revision
                ));
            }
        }
    }
    // Revisions visible by each completion time, for list freshness.
    let mut visible = seen_pairs(h);
    visible.sort_by_key(|(_, ret)| *ret);
    let mut floor = Vec::with_capacity(visible.len());
    let mut best = 0;
    for (rev, _) in &visible {
        best = best.max(*rev);
        floor.push(best);
    }
    for o in &h.kube_ops {
        match (&o.input, &o.output) {
            (KubeInput::Create { name, marker } | KubeInput::Update { name, marker, .. }, KubeOutput::Object { obj }) => {
                match idx.markers.get(marker) {
                    Some((rev, n)) if *rev == obj.rv && n == name => {}
                    Some((rev, n)) => r.violation(format!("{name}: acknowledged at resourceVersion {} but the history has {marker} on {n} at {rev}", obj.rv)),
                    None => r.violation(format!("lost write: {name} acknowledged at resourceVersion {} (marker {marker}) is not in the revision history", obj.rv)),
                }
            }
            (KubeInput::Get { name }, KubeOutput::Object { obj }) if idx.at(name, obj.rv).as_ref() != Some(obj) => {
                r.violation(format!("get {name} returned {obj:?}, which the history never held at that resourceVersion"));
            }
            (KubeInput::List, KubeOutput::List { rv, items }) => {
                let mut want: Vec<KubeObject> = idx
                    .revs
                    .snapshot(idx.prefix, *rv)
                    .into_iter()
                    .map(|(k, kv)| KubeObject { name: k[idx.prefix.len()..].to_string(), rv: kv.mod_revision, marker: stored_marker(kv) })
                    .collect();
                let mut got = items.clone();
                want.sort_by(|a, b| a.name.cmp(&b.name));
                got.sort_by(|a, b| a.name.cmp(&b.name));
                if want != got {
                    r.violation(format!("list at resourceVersion {rv} returned {} objects {:?}, the history has {:?}", got.len(), brief(&got), brief(&want)));
                }
                let n = visible.partition_point(|(_, ret)| *ret < o.call);
                if n > 0 && *rv < floor[n - 1] {
                    r.violation(format!("stale list: resourceVersion {rv}, but revision {} was visible before it was sent (at {:.3} s)", floor[n - 1], o.call as f64 / 1e9));
                }
            }
            _ => {}
        }
    }
    r
}

fn brief(objs: &[KubeObject]) -> Vec<String> {
    objs.iter()
        .map(|o| format!("{}@{}", o.name, o.rv))
        .collect()
}

fn watch(h: &History, idx: &Index<'_>) -> CheckResult {
    let mut r = CheckResult::new("kube-watch");
    let mut next_start: HashMap<u32, i64> = HashMap::new();
    for s in &h.kube_watches {
        let name = format!(
            "kube watcher {} from resourceVersion {}",
            s.watcher, s.start_rv
        );
        if let Some(want) = next_start.get(&s.watcher) {
            if s.start_rv > *want {
                r.violation(format!(
                    "{name}: resumed after {want}, skipping what came between"
                ));
            }
        }
        let mut last = s.start_rv;
        let mut bookmark = 0;
        let mut got: HashSet<i64> = HashSet::new();
        let mut gone = false;
        for e in &s.events {
            match e.kind.as_str() {
                "ERROR" => {
                    gone = e.code == Some(410);
                    continue;
                }
                "BOOKMARK" => {
                    let missing = idx
                        .revs
                        .range(idx.prefix, &prefix_end(idx.prefix), last + 1, e.rv)
                        .len();
                    if e.rv > last && missing > 0 {
                        r.violation(format!(
                            "{name}: bookmark at {} but {missing} events up to it were not sent",
                            e.rv
                        ));
                    }
                    bookmark = bookmark.max(e.rv);
                    last = last.max(e.rv);
                    continue;
                }
                _ => {}
            }
            r.checked += 1;
            if e.rv <= last {
                r.violation(format!(
                    "{name}: {} at resourceVersion {} after {last} (out of order or repeated)",
                    e.kind, e.rv
                ));
            }
            if e.rv <= bookmark {
                r.violation(format!(
                    "{name}: event at {} after a bookmark at {bookmark}",
                    e.rv
                ));
            }
            got.insert(e.rv);
            last = last.max(e.rv);
            let Some(obj) = &e.obj else {
                r.violation(format!("{name}: {} at {} without an object", e.kind, e.rv));
                continue;
            };
            let key = idx.key(&obj.name);
            let change = idx
                .revs
                .changes(&key)
                .iter()
                .find(|(rev, _)| *rev == e.rv)
                .copied();
            let before = idx.at(&obj.name, e.rv - 1);
            let ok = match (e.kind.as_str(), change) {
                ("ADDED", Some((_, Some(kv)))) => {
                    before.is_none() && stored_marker(kv) == obj.marker
                }
                ("MODIFIED", Some((_, Some(kv)))) => {
                    before.is_some() && stored_marker(kv) == obj.marker
                }
                ("DELETED", Some((_, None))) => {
                    before.as_ref().is_some_and(|b| b.marker == obj.marker)
                }
                _ => false,
            };
            if !ok {
                r.violation(format!(
                    "{name}: {} {} at {} does not match the history ({change:?})",
                    e.kind, obj.name, e.rv
                ));
            }
        }
        let want = idx
            .revs
            .range(idx.prefix, &prefix_end(idx.prefix), s.start_rv + 1, last);
        let missed: Vec<i64> = want
            .iter()
            .map(|e| e.kv.mod_revision)
            .filter(|rev| !got.contains(rev))
            .collect();
        if let Some(first) = missed.first() {
            r.violation(format!(
                "{name}: missed {} events up to {last}, the first at {first}",
                missed.len()
            ));
        }
        if gone {
            next_start.remove(&s.watcher);
        } else {
            next_start.insert(s.watcher, last);
        }
    }
    r.notes
        .push(format!("{} watch sessions", h.kube_watches.len()));
    r
}

fn prefix_end(p: &str) -> String {
    let mut b = p.as_bytes().to_vec();
    if let Some(l) = b.last_mut() {
        *l += 1;
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Used by the self-tests: a KubeOp.
pub fn op(call: u64, ret: Option<u64>, input: KubeInput, output: KubeOutput) -> KubeOp {
    KubeOp {
        client: 1,
        call,
        ret,
        input,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;

    fn stored(name: &str, marker: &str, rev: i64, create: i64, version: i64) -> Event {
        Event {
            delete: false,
            kv: Kv {
                key: format!("/registry/configmaps/ns/{name}"),
                value: format!(r#"{{"kind":"ConfigMap","data":{{"marker":"{marker}"}}}}"#),
                create_revision: create,
                mod_revision: rev,
                version,
                lease: 0,
            },
            prev: None,
        }
    }

    fn obj(rv: i64, marker: &str) -> KubeOutput {
        KubeOutput::Object {
            obj: KubeObject {
                name: "a".into(),
                rv,
                marker: marker.into(),
            },
        }
    }

    fn run(ops: Vec<KubeOp>, events: Vec<Event>) -> Vec<CheckResult> {
        let h = History {
            kube_ops: ops,
            revisions: events,
            kube_prefix: "/registry/configmaps/ns/".into(),
            ..Default::default()
        };
        let revs = Revisions::new(&h.revisions);
        check(&h, &revs, true, &CheckOptions::default())
    }

    #[test]
    fn create_update_get_list_pass_and_a_stale_get_fails() {
        let events = vec![stored("a", "m1", 2, 2, 1), stored("a", "m2", 3, 2, 2)];
        let good = vec![
            op(
                0,
                Some(10),
                KubeInput::Create {
                    name: "a".into(),
                    marker: "m1".into(),
                },
                obj(2, "m1"),
            ),
            op(
                20,
                Some(30),
                KubeInput::Update {
                    name: "a".into(),
                    marker: "m2".into(),
                    rv: 2,
                },
                obj(3, "m2"),
            ),
            op(
                40,
                Some(50),
                KubeInput::Get { name: "a".into() },
                obj(3, "m2"),
            ),
            op(
                60,
                Some(70),
                KubeInput::List,
                KubeOutput::List {
                    rv: 3,
                    items: vec![KubeObject {
                        name: "a".into(),
                        rv: 3,
                        marker: "m2".into(),
                    }],
                },
            ),
        ];
        for r in run(good.clone(), events.clone()) {
            assert!(r.passed, "{r:?}");
        }
        let mut bad = good;
        bad.push(op(
            80,
            Some(90),
            KubeInput::Get { name: "a".into() },
            obj(2, "m1"),
        ));
        bad.push(op(
            95,
            Some(99),
            KubeInput::List,
            KubeOutput::List {
                rv: 2,
                items: vec![KubeObject {
                    name: "a".into(),
                    rv: 2,
                    marker: "m1".into(),
                }],
            },
        ));
        let rs = run(bad, events);
        assert!(!rs[0].passed, "stale get: {:?}", rs[0]);
        assert!(
            rs[1].violations.iter().any(|v| v.starts_with("stale list")),
            "{:?}",
            rs[1]
        );
    }

    #[test]
    fn of_two_deletes_with_one_precondition_only_the_acknowledged_one_deleted() {
        let mut gone = stored("a", "", 3, 0, 0);
        gone.delete = true;
        let events = vec![stored("a", "m1", 2, 2, 1), gone];
        let del = || KubeInput::Delete {
            name: "a".into(),
            rv: 2,
        };
        let ops = vec![
            op(
                0,
                Some(10),
                KubeInput::Create {
                    name: "a".into(),
                    marker: "m1".into(),
                },
                obj(2, "m1"),
            ),
            op(
                20,
                None,
                del(),
                KubeOutput::Unknown {
                    error: "connection refused".into(),
                },
            ),
            op(30, Some(40), del(), KubeOutput::Deleted),
            op(
                50,
                Some(60),
                KubeInput::Get { name: "a".into() },
                KubeOutput::Rejected {
                    code: 404,
                    reason: "NotFound".into(),
                },
            ),
        ];
        for r in run(ops, events) {
            assert!(r.passed, "{r:?}");
        }
    }
}
