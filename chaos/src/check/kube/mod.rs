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

mod model;
mod watch;

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::revisions::Revisions;
use super::{CheckOptions, CheckResult};
use crate::history::{History, Kv};
use crate::traffic::kube::{KubeInput, KubeObject, KubeOutput};

/// The marker of a stored object (JSON, `data.marker`).
pub fn stored_marker(kv: &Kv) -> String {
    serde_json::from_str::<Value>(&kv.value)
        .ok()
        .and_then(|v| v.pointer("/data/marker")?.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) struct Index<'a> {
    pub(crate) prefix: &'a str,
    /// marker -> (revision, name)
    pub(crate) markers: HashMap<String, (i64, String)>,
    pub(crate) revs: &'a Revisions<'a>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(h: &'a History, revs: &'a Revisions<'a>) -> Self {
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

    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The object at revision `rev`.
    pub(crate) fn at(&self, name: &str, rev: i64) -> Option<KubeObject> {
        self.revs
            .state_at(&self.key(name), rev)
            .map(|kv| KubeObject {
                name: name.to_string(),
                rv: kv.mod_revision,
                marker: stored_marker(kv),
            })
    }

    /// The revision at which a delete with precondition `rv` removed `name`.
    pub(crate) fn deleted_at(&self, name: &str, rv: i64) -> Option<i64> {
        let changes = self.revs.changes(&self.key(name));
        changes.windows(2).find_map(|w| match (w[0], w[1]) {
            ((_, Some(before)), (at, None)) if before.mod_revision == rv => Some(at),
            _ => None,
        })
    }
}

pub fn check(
    h: &History,
    revs: &Revisions<'_>,
    trusted: bool,
    opts: &CheckOptions,
) -> Vec<CheckResult> {
    let idx = Index::new(h, revs);
    vec![
        model::linearizability(h, &idx, trusted, opts),
        consistency(h, &idx),
        watch::check(h, &idx),
    ]
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
    let mut visible = model::seen_pairs(h);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::kube::KubeOp;

    fn op(call: u64, ret: Option<u64>, input: KubeInput, output: KubeOutput) -> KubeOp {
        KubeOp {
            client: 1,
            call,
            ret,
            input,
            output,
        }
    }
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
