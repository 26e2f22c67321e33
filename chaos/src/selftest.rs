//! `strata chaos selftest`: the checkers against known histories, so a pass means something.
//!
//! A small correct history must pass every check; each known-bad variant of it (a stale read, a
//! lost write, a reordered watch, a request applied twice, a write lost in the restart, a lost
//! lease) must be rejected by the check that is responsible for it.

use crate::check::{check_all, CheckOptions};
use crate::history::{
    Event, History, Input, KeepAlive, Kv, LeaseRecord, Op, Output, WatchResponse, WatchSession,
};

fn kv(key: &str, value: &str, rev: i64, create: i64, version: i64) -> Kv {
    Kv {
        key: key.into(),
        value: value.into(),
        create_revision: create,
        mod_revision: rev,
        version,
        lease: 0,
    }
}

fn op(client: u32, call: u64, ret: u64, input: Input, output: Output) -> Op {
    Op {
        id: 0,
        client,
        member: 0,
        call,
        ret: Some(ret),
        input,
        output,
    }
}

const K: &str = "/chaos/t/kv/k00";

/// A small correct run: two puts and reads of one key, a watcher, the final phase.
pub fn good() -> History {
    let a = kv(K, "c1.1", 2, 2, 1);
    let b = kv(K, "c1.2", 3, 2, 2);
    let put = |v: &str| Input::Put {
        key: K.into(),
        value: v.into(),
        lease: 0,
    };
    let get = Input::Get {
        key: K.into(),
        serializable: false,
    };
    let events = vec![
        Event {
            delete: false,
            kv: a.clone(),
            prev: None,
        },
        Event {
            delete: false,
            kv: b.clone(),
            prev: Some(a.clone()),
        },
    ];
    History {
        prefix: "/chaos/t/".into(),
        ops: vec![
            op(1, 0, 10, put("c1.1"), Output::Put { rev: 2 }),
            op(
                2,
                5,
                15,
                get.clone(),
                Output::Get {
                    rev: 2,
                    kv: Some(a.clone()),
                },
            ),
            op(1, 20, 30, put("c1.2"), Output::Put { rev: 3 }),
            op(
                2,
                40,
                50,
                get,
                Output::Get {
                    rev: 3,
                    kv: Some(b.clone()),
                },
            ),
        ],
        watches: vec![WatchSession {
            watcher: 1,
            member: 0,
            key: "/chaos/t/kv/".into(),
            range_end: "/chaos/t/kv0".into(),
            start_revision: 2,
            prev_kv: true,
            progress_notify: true,
            broken: false,
            responses: vec![
                WatchResponse {
                    at: 11,
                    rev: 2,
                    created: false,
                    canceled: false,
                    compact_revision: 0,
                    fragment: false,
                    events: vec![events[0].clone()],
                },
                WatchResponse {
                    at: 31,
                    rev: 3,
                    created: false,
                    canceled: false,
                    compact_revision: 0,
                    fragment: false,
                    events: vec![events[1].clone()],
                },
            ],
        }],
        leases: vec![LeaseRecord {
            id: 9,
            client: 3,
            ttl: 10,
            grant_call: 0,
            grant_ret: Some(5),
            keepalives: vec![KeepAlive {
                call: 10,
                ret: Some(12),
                ttl: Some(10),
            }],
            revoke_call: Some(20),
        }],
        revisions: events.clone(),
        final_revision: 3,
        restart_revision: 3,
        final_state: vec![b],
        replayed: vec![("n1".into(), events.clone()), ("n2".into(), events)],
        replay_from: 1,
        hashes: vec![("n1".into(), 1), ("n2".into(), 1)],
        end: 100,
        ..Default::default()
    }
}

/// (what is wrong, the history, the check that must reject it).
pub fn bad_cases() -> Vec<(&'static str, History, &'static str)> {
    let mut out = Vec::new();

    let mut stale = good();
    let old = stale.revisions[0].kv.clone();
    stale.ops.push(op(
        3,
        60,
        70,
        Input::Get {
            key: K.into(),
            serializable: false,
        },
        Output::Get {
            rev: 2,
            kv: Some(old),
        },
    ));
    out.push((
        "a stale read (the old value after the new one was read)",
        stale.clone(),
        "linearizability",
    ));
    out.push((
        "a stale read (at an old revision)",
        stale,
        "revision-consistency",
    ));

    let mut lost = good();
    lost.ops.push(op(
        4,
        60,
        70,
        Input::Put {
            key: K.into(),
            value: "c4.1".into(),
            lease: 0,
        },
        Output::Put { rev: 4 },
    ));
    out.push((
        "a lost write (acknowledged, not in the history)",
        lost,
        "revision-consistency",
    ));

    let mut reordered = good();
    reordered.watches[0].responses.swap(0, 1);
    out.push(("a reordered watch", reordered, "watch"));

    let mut twice = good();
    let mut again = twice.revisions[0].clone();
    again.kv = kv(K, "c1.1", 4, 2, 3);
    again.prev = Some(twice.revisions[1].kv.clone());
    twice.revisions.push(again);
    out.push(("a request applied twice", twice, "revision-history"));

    let mut forgot = good();
    forgot.final_state.clear();
    out.push((
        "a write lost when every member restarted",
        forgot,
        "durability",
    ));

    let mut lease = good();
    lease.leases[0].keepalives[0].ttl = Some(0);
    out.push(("a lease lost before it could expire", lease, "leases"));
    out
}

/// Runs every case; prints what each check said; whether they all behaved.
pub fn run_and_print() -> bool {
    let opts = CheckOptions::default();
    let mut all = true;
    let good_results = check_all(&good(), &opts);
    let failed: Vec<&str> = good_results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name)
        .collect();
    if failed.is_empty() {
        println!("ok    a correct history passes every check");
    } else {
        all = false;
        println!("WRONG a correct history fails {failed:?}");
    }
    for (what, h, check) in bad_cases() {
        let results = check_all(&h, &opts);
        let r = results.iter().find(|r| r.name == check);
        match r {
            Some(r) if !r.passed => {
                println!(
                    "ok    {what}: rejected by {check}: {}",
                    r.violations
                        .first()
                        .cloned()
                        .unwrap_or_default()
                        .lines()
                        .next()
                        .unwrap_or_default()
                );
            }
            _ => {
                all = false;
                println!("WRONG {what}: {check} did not reject it");
            }
        }
    }
    println!(
        "{}",
        if all {
            "selftest: PASS"
        } else {
            "selftest: FAIL"
        }
    );
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkers_reject_every_known_bad_history() {
        let opts = CheckOptions::default();
        for r in check_all(&good(), &opts) {
            assert!(
                r.passed,
                "the good history fails {}: {:?}",
                r.name, r.violations
            );
        }
        for (what, h, check) in bad_cases() {
            let results = check_all(&h, &opts);
            let r = results.iter().find(|r| r.name == check).expect("check ran");
            assert!(!r.passed, "{what}: {check} accepted it");
        }
    }
}
