//! The Kubernetes watch checks (see the parent module).

use std::collections::{HashMap, HashSet};

use super::{stored_marker, Index};
use crate::check::CheckResult;
use crate::history::History;

pub(crate) fn check(h: &History, idx: &Index<'_>) -> CheckResult {
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
