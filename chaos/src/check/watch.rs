//! Watch guarantees, checked against the revision history (etcd's API guarantees, as its
//! robustness tests state them):
//!
//! - **ordered**: events arrive in revision order, a revision never after a later one;
//! - **unique**: no event arrives twice;
//! - **atomic**: all events of one revision in the watched range arrive in one response (unless
//!   the watcher asked for fragments and the response says it was split);
//! - **reliable**: no event is missed between the start revision and the last revision the
//!   watcher heard of (the last event or progress notification);
//! - **resumable**: a watcher that reconnects at the revision after the last one it saw gets
//!   everything from there (so a session that starts where the previous one ended is held to
//!   the same rule, and the watcher's sessions must join up);
//! - **bookmarkable**: a progress notification at revision R means every event up to R has been
//!   sent, and none at or below R follows;
//! - **prev_kv**: the previous key-value an event carries is what the key held just before.
//!   It may be missing when a compaction at or above the event's revision (which removes the
//!   superseded previous version) ran before the event was delivered to a lagging watcher:
//!   the store reads it when it sends the event, as etcd does, and etcd leaves it out then too.
//!
//! Every delivered event must also equal the history's event exactly (value, create and mod
//! revision, version, lease). A cancellation with `compact_revision` is accepted only when the
//! start revision really was compacted.

use std::collections::{BTreeMap, HashSet};

use super::revisions::Revisions;
use super::CheckResult;
use crate::history::{Event, History, WatchSession};

pub fn check(h: &History, revs: &Revisions<'_>) -> CheckResult {
    let mut r = CheckResult::new("watch");
    let compactions = h.compactions.as_slice();
    let mut compacted_prev = 0usize;
    let mut by_watcher: BTreeMap<u32, Vec<&WatchSession>> = BTreeMap::new();
    for s in &h.watches {
        by_watcher.entry(s.watcher).or_default().push(s);
        r.checked += s.responses.iter().map(|x| x.events.len()).sum::<usize>();
    }
    for (w, sessions) in &by_watcher {
        let mut expect_start: Option<i64> = None;
        for s in sessions {
            let outcome = check_session(s, revs, compactions, &mut compacted_prev, &mut r);
            if let Some(want) = expect_start {
                if s.start_revision > want {
                    r.violation(format!(
                        "watcher {w}: resumed at revision {} but had only seen up to {} (events in between are skipped)",
                        s.start_revision,
                        want - 1
                    ));
                }
            }
            expect_start = match outcome.compacted {
                Some(_) => None,
                None => Some(outcome.seen_up_to.max(s.start_revision - 1) + 1),
            };
        }
    }
    r.notes.push(format!(
        "{} watchers, {} sessions, {} events",
        by_watcher.len(),
        h.watches.len(),
        r.checked
    ));
    if compacted_prev > 0 {
        r.notes.push(format!(
            "{compacted_prev} events came without prev_kv because a compaction had removed the previous version before they were delivered (as with etcd)"
        ));
    }
    r
}

struct Outcome {
    /// Highest revision the watcher knows it has everything up to.
    seen_up_to: i64,
    compacted: Option<i64>,
}

fn label(s: &WatchSession) -> String {
    let range = if s.range_end.is_empty() {
        s.key.clone()
    } else {
        format!("[{}, {})", s.key, s.range_end.escape_debug())
    };
    format!(
        "watcher {} on n{} ({range} from revision {})",
        s.watcher,
        s.member + 1,
        s.start_revision
    )
}

fn check_session(
    s: &WatchSession,
    revs: &Revisions<'_>,
    compactions: &[(i64, u64)],
    compacted_prev: &mut usize,
    r: &mut CheckResult,
) -> Outcome {
    let name = label(s);
    let mut delivered: Vec<(&Event, usize)> = Vec::new();
    let mut seen: HashSet<(&str, i64)> = HashSet::new();
    let mut last_rev = s.start_revision - 1;
    let mut progress_floor = 0i64;
    let mut seen_up_to = s.start_revision - 1;
    let mut compacted = None;
    let mut in_fragment = false;
    for (ri, resp) in s.responses.iter().enumerate() {
        if resp.compact_revision > 0 {
            compacted = Some(resp.compact_revision);
            let requested = compactions
                .iter()
                .any(|(c, t)| *c == resp.compact_revision && *t <= resp.at);
            if s.start_revision >= resp.compact_revision || !requested {
                r.violation(format!(
                    "{name}: cancelled as compacted at {} (start {}), but no such compaction had been requested by then",
                    resp.compact_revision, s.start_revision
                ));
            }
            continue;
        }
        if resp.is_progress() {
            // Everything at or below the notified revision must have been sent already.
            let missing = revs
                .range(&s.key, &s.range_end, last_rev + 1, resp.rev)
                .len();
            if resp.rev > last_rev && missing > 0 && !in_fragment {
                r.violation(format!(
                    "{name}: progress notification at revision {} but {missing} events up to it were not sent yet",
                    resp.rev
                ));
            }
            progress_floor = progress_floor.max(resp.rev);
            seen_up_to = seen_up_to.max(resp.rev);
            continue;
        }
        let mut first_in_resp = true;
        for e in &resp.events {
            let rev = e.kv.mod_revision;
            if rev < s.start_revision {
                r.violation(format!(
                    "{name}: event at revision {rev} before the start revision"
                ));
            }
            if rev < last_rev || (rev == last_rev && first_in_resp && !in_fragment) {
                r.violation(format!(
                    "{name}: out of order: revision {rev} ({}) after revision {last_rev}",
                    e.kv.key
                ));
            }
            if rev <= progress_floor {
                r.violation(format!(
                    "{name}: event at revision {rev} after a progress notification at {progress_floor}"
                ));
            }
            if !seen.insert((e.kv.key.as_str(), rev)) {
                r.violation(format!(
                    "{name}: {} at revision {rev} delivered twice",
                    e.kv.key
                ));
            }
            if !s.covers(&e.kv.key) {
                r.violation(format!(
                    "{name}: event for {} outside the watched range",
                    e.kv.key
                ));
            }
            let compacted_before = compactions.iter().any(|(c, t)| *c >= rev && *t <= resp.at);
            if compare_event(&name, s.prev_kv, e, revs, compacted_before, r) {
                *compacted_prev += 1;
            }
            last_rev = last_rev.max(rev);
            first_in_resp = false;
            delivered.push((e, ri));
        }
        seen_up_to = seen_up_to.max(last_rev);
        in_fragment = resp.fragment;
    }
    // Reliable and atomic: every event of the range from the start to the last revision heard
    // of was delivered, each revision's events in one response.
    let want = revs.range(&s.key, &s.range_end, s.start_revision, seen_up_to);
    let got: HashSet<(&str, i64)> = delivered
        .iter()
        .map(|(e, _)| (e.kv.key.as_str(), e.kv.mod_revision))
        .collect();
    let missed: Vec<&Event> = want
        .iter()
        .filter(|e| !got.contains(&(e.kv.key.as_str(), e.kv.mod_revision)))
        .copied()
        .collect();
    if let Some(first) = missed.first() {
        r.violation(format!(
            "{name}: missed {} events up to revision {seen_up_to}, the first {} at revision {}",
            missed.len(),
            first.kv.key,
            first.kv.mod_revision
        ));
    }
    let mut resp_of_rev: BTreeMap<i64, HashSet<usize>> = BTreeMap::new();
    for (e, ri) in &delivered {
        resp_of_rev
            .entry(e.kv.mod_revision)
            .or_default()
            .insert(*ri);
    }
    for (rev, resps) in resp_of_rev {
        let fragmented = resps.iter().any(|ri| s.responses[*ri].fragment);
        if resps.len() > 1 && !fragmented {
            r.violation(format!(
                "{name}: the events of revision {rev} were split over {} responses",
                resps.len()
            ));
        }
    }
    Outcome {
        seen_up_to,
        compacted,
    }
}

/// Compares a delivered event with the history; true when its prev_kv is missing only because
/// a compaction removed it.
fn compare_event(
    name: &str,
    prev_kv: bool,
    e: &Event,
    revs: &Revisions<'_>,
    compacted_before: bool,
    r: &mut CheckResult,
) -> bool {
    let rev = e.kv.mod_revision;
    let Some(want) = revs.at(rev).find(|x| x.kv.key == e.kv.key) else {
        r.violation(format!(
            "{name}: {} at revision {rev} is not in the revision history",
            e.kv.key
        ));
        return false;
    };
    if want.delete != e.delete || (!e.delete && want.kv != e.kv) {
        r.violation(format!(
            "{name}: {} at revision {rev} is {:?}, the history has {:?}",
            e.kv.key,
            (e.delete, &e.kv.value, e.kv.version, e.kv.create_revision),
            (
                want.delete,
                &want.kv.value,
                want.kv.version,
                want.kv.create_revision
            )
        ));
    }
    if prev_kv {
        let before = revs.state_at(&e.kv.key, rev - 1);
        if e.prev.is_none() && before.is_some() && compacted_before {
            return true;
        }
        if e.prev.as_ref() != before {
            r.violation(format!(
                "{name}: prev_kv of {} at revision {rev} is {:?}, the key held {:?}",
                e.kv.key,
                e.prev.as_ref().map(|p| (&p.value, p.mod_revision)),
                before.map(|p| (&p.value, p.mod_revision))
            ));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::revisions::tests::{del, put};
    use crate::history::WatchResponse;

    fn resp(at: u64, events: Vec<Event>) -> WatchResponse {
        let rev = events.last().map_or(0, |e| e.kv.mod_revision);
        WatchResponse {
            at,
            rev,
            created: false,
            canceled: false,
            compact_revision: 0,
            fragment: false,
            events,
        }
    }

    fn session(
        watcher: u32,
        start: i64,
        prev_kv: bool,
        responses: Vec<WatchResponse>,
    ) -> WatchSession {
        WatchSession {
            watcher,
            member: 0,
            key: "a".into(),
            range_end: "z".into(),
            start_revision: start,
            prev_kv,
            progress_notify: true,
            broken: false,
            responses,
        }
    }

    fn history() -> Vec<Event> {
        vec![
            put("a", "1", 2, 2, 1),
            put("b", "1", 3, 3, 1),
            put("b", "2", 4, 3, 2),
            del("a", 5),
        ]
    }

    fn run(sessions: Vec<WatchSession>) -> CheckResult {
        let h = History {
            watches: sessions,
            revisions: history(),
            ..Default::default()
        };
        let revs = Revisions::new(&h.revisions);
        check(&h, &revs)
    }

    #[test]
    fn a_complete_ordered_watch_passes() {
        let ev = history();
        let r = run(vec![session(
            1,
            2,
            false,
            vec![
                resp(1, vec![ev[0].clone(), ev[1].clone()]),
                resp(2, vec![ev[2].clone()]),
                resp(3, vec![ev[3].clone()]),
            ],
        )]);
        assert!(r.passed, "{r:?}");
    }

    #[test]
    fn a_reordered_watch_is_rejected() {
        let ev = history();
        let r = run(vec![session(
            1,
            2,
            false,
            vec![
                resp(1, vec![ev[1].clone()]),
                resp(2, vec![ev[0].clone()]),
                resp(3, vec![ev[2].clone(), ev[3].clone()]),
            ],
        )]);
        assert!(
            r.violations.iter().any(|v| v.contains("out of order")),
            "{r:?}"
        );
    }

    #[test]
    fn gaps_duplicates_and_bad_progress_are_rejected() {
        let ev = history();
        // Missing revision 3, then a duplicate.
        let r = run(vec![session(
            1,
            2,
            false,
            vec![
                resp(1, vec![ev[0].clone()]),
                resp(2, vec![ev[2].clone()]),
                resp(3, vec![ev[2].clone()]),
            ],
        )]);
        assert!(
            r.violations.iter().any(|v| v.contains("missed 1 events")),
            "{r:?}"
        );
        assert!(r.violations.iter().any(|v| v.contains("twice")), "{r:?}");
        // A progress notification claiming revision 4 while revision 3 was not sent.
        let mut progress = resp(2, vec![]);
        progress.rev = 4;
        let r = run(vec![session(
            1,
            2,
            false,
            vec![resp(1, vec![ev[0].clone()]), progress],
        )]);
        assert!(
            r.violations
                .iter()
                .any(|v| v.contains("progress notification")),
            "{r:?}"
        );
    }

    #[test]
    fn wrong_prev_kv_and_split_revisions_are_rejected() {
        let ev = history();
        let mut bad = ev[2].clone();
        bad.prev = Some(put("b", "0", 1, 1, 1).kv);
        let r = run(vec![session(1, 4, true, vec![resp(1, vec![bad])])]);
        assert!(r.violations.iter().any(|v| v.contains("prev_kv")), "{r:?}");
        let two = vec![put("a", "1", 2, 2, 1), put("b", "1", 2, 2, 1)];
        let h = History {
            watches: vec![session(
                1,
                2,
                false,
                vec![resp(1, vec![two[0].clone()]), resp(2, vec![two[1].clone()])],
            )],
            revisions: two,
            ..Default::default()
        };
        let r = check(&h, &Revisions::new(&h.revisions));
        assert!(r.violations.iter().any(|v| v.contains("split")), "{r:?}");
    }

    #[test]
    fn prev_kv_may_be_missing_only_after_a_compaction() {
        let ev = history();
        let mut no_prev = ev[2].clone();
        no_prev.prev = None;
        let mut h = History {
            watches: vec![session(1, 4, true, vec![resp(1, vec![no_prev])])],
            revisions: history(),
            ..Default::default()
        };
        assert!(!check(&h, &Revisions::new(&history())).passed);
        h.compactions = vec![(4, 0)];
        let r = check(&h, &Revisions::new(&history()));
        assert!(r.passed, "{r:?}");
        assert!(r.notes.iter().any(|n| n.contains("compaction")), "{r:?}");
    }

    #[test]
    fn resuming_past_unseen_events_is_rejected() {
        let ev = history();
        let r = run(vec![
            session(1, 2, false, vec![resp(1, vec![ev[0].clone()])]),
            session(1, 4, false, vec![resp(2, vec![ev[2].clone()])]),
        ]);
        assert!(
            r.violations
                .iter()
                .any(|v| v.contains("resumed at revision 4")),
            "{r:?}"
        );
    }
}
