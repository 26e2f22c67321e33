//! Nothing acknowledged is lost after every member has restarted.
//!
//! At the end of a run every member is killed with SIGKILL at once and started again (so only
//! what was fsynced survives), then:
//! - the cluster's revision must be at least every revision a client was ever told;
//! - the run's keys, read at the final revision, must be exactly what the revision history says
//!   they hold there (an acknowledged write the history has but the store lost shows up here;
//!   one the history lacks is reported by the consistency check);
//! - each member, watched from its oldest retained revision, must replay exactly the history's
//!   events up to the final revision (its own copy of the history survived, not just the
//!   latest values);
//! - every member's HashKV at the final revision must agree (the replicas are identical).

use std::collections::BTreeMap;

use super::revisions::Revisions;
use super::CheckResult;
use crate::history::{Event, History};

pub fn check(h: &History, revs: &Revisions<'_>) -> CheckResult {
    let mut r = CheckResult::new("durability");
    if h.final_revision == 0 {
        r.violation(
            "the final phase (restart every member, read everything back) did not complete".into(),
        );
        return r;
    }
    let max_told = h
        .ops
        .iter()
        .filter_map(|o| o.output.revision())
        .max()
        .unwrap_or(0);
    let before = h.final_revision.max(max_told);
    if h.restart_revision < before {
        r.violation(format!(
            "after the restart the cluster is at revision {}, but it had reached revision {before} before (clients were told up to {max_told})",
            h.restart_revision
        ));
    }
    let want = revs.snapshot(&h.prefix, h.final_revision);
    let got: BTreeMap<&str, &crate::history::Kv> = h
        .final_state
        .iter()
        .map(|kv| (kv.key.as_str(), kv))
        .collect();
    r.checked = want.len().max(got.len());
    for (k, kv) in &want {
        match got.get(k) {
            None => r.violation(format!(
                "lost after the restart: {k} = {:?} (revision {})",
                kv.value, kv.mod_revision
            )),
            Some(g) if *g != *kv => r.violation(format!(
                "{k} after the restart is {:?} (mod {}, version {}), the history has {:?} (mod {}, version {})",
                g.value, g.mod_revision, g.version, kv.value, kv.mod_revision, kv.version
            )),
            Some(_) => {}
        }
    }
    for (k, g) in &got {
        if !want.contains_key(k) {
            r.violation(format!(
                "{k} = {:?} (revision {}) exists after the restart but not in the history",
                g.value, g.mod_revision
            ));
        }
    }
    let expected: Vec<&Event> = revs.range("\0", "\0", h.replay_from, h.final_revision);
    for (name, events) in &h.replayed {
        let mut problems = 0;
        let mut first = None;
        if events.len() != expected.len() {
            first = Some(format!(
                "{name} replays {} events from revision {} to {}, the history has {}",
                events.len(),
                h.replay_from,
                h.final_revision,
                expected.len()
            ));
            problems += 1;
        }
        for (a, b) in events.iter().zip(expected.iter()) {
            if a.delete != b.delete || a.kv != b.kv {
                problems += 1;
                first.get_or_insert_with(|| {
                    format!(
                        "{name} replays {} at revision {} as {:?}, the history has {} at {} as {:?}",
                        a.kv.key, a.kv.mod_revision, a.kv.value, b.kv.key, b.kv.mod_revision, b.kv.value
                    )
                });
            }
        }
        if let Some(f) = first {
            r.violation(format!("{f} ({problems} differences)"));
        }
    }
    if let Some((n0, h0)) = h.hashes.first() {
        for (n, hash) in &h.hashes[1..] {
            if hash != h0 {
                r.violation(format!(
                    "HashKV at revision {} differs: {n0} has {h0:08x}, {n} has {hash:08x}",
                    h.final_revision
                ));
            }
        }
    }
    r.notes.push(format!(
        "final revision {}, {} keys, {} members replayed {} events each",
        h.final_revision,
        want.len(),
        h.replayed.len(),
        expected.len()
    ));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::revisions::tests::put;
    use crate::history::{Input, Op, Output};

    #[test]
    fn a_write_lost_in_the_restart_is_reported() {
        let events = vec![put("p/a", "1", 2, 2, 1), put("p/b", "2", 3, 3, 1)];
        let mut h = History {
            prefix: "p/".into(),
            revisions: events.clone(),
            final_revision: 3,
            final_state: vec![events[0].kv.clone(), events[1].kv.clone()],
            replayed: vec![("n1".into(), events.clone())],
            replay_from: 1,
            hashes: vec![("n1".into(), 7), ("n2".into(), 7)],
            restart_revision: 3,
            ops: vec![Op {
                id: 0,
                client: 1,
                member: 0,
                call: 0,
                ret: Some(1),
                input: Input::Put {
                    key: "p/b".into(),
                    value: "2".into(),
                    lease: 0,
                },
                output: Output::Put { rev: 3 },
            }],
            ..Default::default()
        };
        let revs = Revisions::new(&h.revisions);
        let r = check(&h, &revs);
        assert!(r.passed, "{r:?}");
        h.final_state.pop();
        h.replayed[0].1.pop();
        h.hashes[1].1 = 8;
        h.restart_revision = 2;
        let r = check(&h, &revs);
        assert!(
            r.violations.iter().any(|v| v.contains("told up to 3")),
            "{r:?}"
        );
        let h2 = History {
            restart_revision: 3,
            ..h.clone()
        };
        let r = check(&h2, &revs);
        assert!(
            r.violations
                .iter()
                .any(|v| v.starts_with("lost after the restart: p/b")),
            "{r:?}"
        );
        assert!(
            r.violations.iter().any(|v| v.contains("replays 1 events")),
            "{r:?}"
        );
        assert!(r.violations.iter().any(|v| v.contains("HashKV")), "{r:?}");
    }
}
