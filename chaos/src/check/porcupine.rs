//! A linearizability checker: Wing & Gong's search with Lowe's memoisation, as Porcupine does it.
//!
//! A history is linearizable when every operation can be given a point between its invocation
//! and its completion such that applying them in that order to a sequential model yields the
//! outputs the clients saw. The search walks the history's call and return events in time order,
//! tentatively linearizing pending calls; reaching a return whose call is not linearized yet
//! means the current choice failed, so it backtracks. Lowe's improvement caches every (set of
//! linearized operations, model state) pair already explored, which turns the exponential search
//! into something that finishes on long histories with little concurrency.
//!
//! An operation whose outcome is unknown (failed or timed out) returns at +infinity (`ret:
//! None`): it may take effect at any point after its call, or never — never is the same as
//! "at the very end", where nothing observes it.
//!
//! The model is deterministic: `step` answers the next state, or `None` when the output is
//! impossible in that state.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash;
    type Op;
    fn init(&self) -> Self::State;
    /// The state after `op` (input and output together), or None if `op`'s output cannot
    /// happen in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

/// One operation: invocation time, completion time (None: unknown outcome), the operation.
pub struct Timed<'a, O> {
    pub call: u64,
    pub ret: Option<u64>,
    pub op: &'a O,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// Not linearizable. `longest` is the longest linearizable prefix found (operation indices,
    /// in linearization order); `stuck` the operation that had to complete before any order of
    /// the others could include it.
    Violation {
        longest: Vec<usize>,
        stuck: usize,
    },
    /// The search ran out of time.
    Inconclusive,
}

#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    /// For a call: its return entry.
    partner: usize,
    prev: usize,
    next: usize,
}

const NIL: usize = usize::MAX;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The linked list of entries, with a sentinel head at index `n` (2 entries per op before it).
struct List {
    e: Vec<Entry>,
    head: usize,
}

impl List {
    fn build<O>(ops: &[Timed<'_, O>]) -> List {
        // (time, kind: 0 = call, 1 = return, op). Calls sort before returns at equal times, which
        // makes such operations concurrent (the permissive choice Porcupine makes).
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            events.push((o.call, 0, i));
            events.push((o.ret.unwrap_or(u64::MAX), 1, i));
        }
        events.sort();
        let mut e = Vec::with_capacity(events.len() + 1);
        let mut ret_at = vec![NIL; ops.len()];
        for (idx, (_, kind, op)) in events.iter().enumerate() {
            if *kind == 1 {
                ret_at[*op] = idx;
            }
            e.push(Entry {
                op: *op,
                is_call: *kind == 0,
                partner: NIL,
                prev: if idx == 0 { NIL } else { idx - 1 },
                next: idx + 1,
            });
        }
        let head = e.len();
        for i in 0..head {
            if e[i].is_call {
                e[i].partner = ret_at[e[i].op];
            }
        }
        if head > 0 {
            e[0].prev = head;
            e[head - 1].next = NIL;
        }
        e.push(Entry {
            op: NIL,
            is_call: false,
            partner: NIL,
            prev: NIL,
            next: if head > 0 { 0 } else { NIL },
        });
        List { e, head }
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.e[i].prev, self.e[i].next);
        self.e[p].next = n;
        if n != NIL {
            self.e[n].prev = p;
        }
    }

    fn relink(&mut self, i: usize) {
        let (p, n) = (self.e[i].prev, self.e[i].next);
        self.e[p].next = i;
        if n != NIL {
            self.e[n].prev = i;
        }
    }

    /// Removes a call and its return (the call is linearized).
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.e[call].partner);
    }

    /// Undoes `lift` (in reverse order, so the links come back exactly).
    fn unlift(&mut self, call: usize) {
        self.relink(self.e[call].partner);
        self.relink(call);
    }
}

/// Checks one history (one partition) against `model`; `budget` bounds the search time.
///
/// The history is cut at quiescent points (no operation pending, none with an unknown outcome
/// still open) into segments that are searched one after another, each from every state the
/// previous segments can end in. That keeps the memoisation cache (whose entries hold one bit per
/// operation of the segment) small on long runs.
pub fn check<M: Model>(model: &M, ops: &[Timed<'_, M::Op>], budget: Duration) -> Verdict {
    let started = Instant::now();
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|i| (ops[*i].call, ops[*i].ret.unwrap_or(u64::MAX)));
    let mut states: Vec<M::State> = vec![model.init()];
    let mut seg_start = 0;
    let mut open_until = 0u64;
    for pos in 0..=order.len() {
        let cut = pos == order.len() || (pos > seg_start && ops[order[pos]].call > open_until);
        if cut && pos > seg_start {
            let seg: Vec<usize> = order[seg_start..pos].to_vec();
            let sub: Vec<Timed<'_, M::Op>> = seg
                .iter()
                .map(|i| Timed {
                    call: ops[*i].call,
                    ret: ops[*i].ret,
                    op: ops[*i].op,
                })
                .collect();
            let mut ends: Vec<M::State> = Vec::new();
            let mut first_failure = None;
            for s in &states {
                let left = budget.saturating_sub(started.elapsed());
                match explore(model, s.clone(), &sub, left, true) {
                    Explored::Ends(e) => {
                        for st in e {
                            if !ends.contains(&st) {
                                ends.push(st);
                            }
                        }
                    }
                    Explored::Stuck { longest, stuck } => {
                        first_failure.get_or_insert((longest, stuck));
                    }
                    Explored::OutOfTime => return Verdict::Inconclusive,
                }
            }
            if ends.is_empty() {
                let (longest, stuck) = first_failure.expect("no end state means a failure");
                return Verdict::Violation {
                    longest: longest.iter().map(|i| seg[*i]).collect(),
                    stuck: seg[stuck],
                };
            }
            states = ends;
            seg_start = pos;
        }
        if pos < order.len() {
            let o = &ops[order[pos]];
            open_until = open_until.max(o.ret.unwrap_or(u64::MAX));
        }
    }
    Verdict::Linearizable
}

/// Whether `ops`, started from `init`, is linearizable (used to shrink counterexamples).
pub fn linearizable_from<M: Model>(
    model: &M,
    init: M::State,
    ops: &[Timed<'_, M::Op>],
    budget: Duration,
) -> Option<bool> {
    match explore(model, init, ops, budget, false) {
        Explored::Ends(_) => Some(true),
        Explored::Stuck { .. } => Some(false),
        Explored::OutOfTime => None,
    }
}

enum Explored<S> {
    /// Every state a complete linearization ends in (just the first one found unless asked).
    Ends(Vec<S>),
    Stuck {
        longest: Vec<usize>,
        stuck: usize,
    },
    OutOfTime,
}

/// The search itself. With `all_ends`, it keeps going after a complete linearization to find
/// every state one can end in (the cache makes each (linearized set, state) pair visited once).
fn explore<M: Model>(
    model: &M,
    init: M::State,
    ops: &[Timed<'_, M::Op>],
    budget: Duration,
    all_ends: bool,
) -> Explored<M::State> {
    if ops.is_empty() {
        return Explored::Ends(vec![init]);
    }
    let started = Instant::now();
    let mut list = List::build(ops);
    let head = list.head;
    let mut state = init;
    let mut linearized = Bits::new(ops.len());
    let mut cache: HashMap<u64, Vec<(Bits, M::State)>> = HashMap::new();
    // (call entry, state before it)
    let mut calls: Vec<(usize, M::State)> = Vec::new();
    let mut ends: Vec<M::State> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut stuck = NIL;
    let mut entry = list.e[head].next;
    let mut steps: u64 = 0;
    loop {
        steps += 1;
        if steps.is_multiple_of(4096) && started.elapsed() > budget {
            return Explored::OutOfTime;
        }
        let complete = list.e[head].next == NIL;
        if complete {
            if !ends.contains(&state) {
                ends.push(state.clone());
            }
            if !all_ends {
                return Explored::Ends(ends);
            }
        }
        let en = if complete { None } else { Some(list.e[entry]) };
        match en {
            Some(en) if en.is_call => {
                if let Some(next) = model.step(&state, ops[en.op].op) {
                    let mut bits = linearized.clone();
                    bits.set(en.op);
                    let h = hash_of(&bits, &next);
                    let seen = cache
                        .get(&h)
                        .is_some_and(|v| v.iter().any(|(b, s)| *b == bits && *s == next));
                    if !seen {
                        cache.entry(h).or_default().push((bits, next.clone()));
                        calls.push((entry, std::mem::replace(&mut state, next)));
                        linearized.set(en.op);
                        list.lift(entry);
                        entry = list.e[head].next;
                        continue;
                    }
                }
                entry = en.next;
            }
            _ => {
                // A return whose call is not linearized (or a complete linearization, when
                // looking for more): undo the last choice.
                if let Some(en) = en {
                    if calls.len() > longest.len() || stuck == NIL {
                        longest = calls.iter().map(|(c, _)| list.e[*c].op).collect();
                        stuck = en.op;
                    }
                }
                let Some((call, prev)) = calls.pop() else {
                    if ends.is_empty() {
                        return Explored::Stuck { longest, stuck };
                    }
                    return Explored::Ends(ends);
                };
                state = prev;
                linearized.clear(list.e[call].op);
                list.unlift(call);
                entry = list.e[call].next;
            }
        }
    }
}

fn hash_of<S: Hash>(bits: &Bits, state: &S) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bits.hash(&mut h);
    state.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: write(v) or read() -> v.
    struct Register;
    #[derive(Debug)]
    enum RegOp {
        W(u32),
        R(u32),
    }
    impl Model for Register {
        type State = u32;
        type Op = RegOp;
        fn init(&self) -> u32 {
            0
        }
        fn step(&self, s: &u32, op: &RegOp) -> Option<u32> {
            match op {
                RegOp::W(v) => Some(*v),
                RegOp::R(v) => (*v == *s).then_some(*s),
            }
        }
    }

    fn run(h: &[(u64, Option<u64>, RegOp)]) -> Verdict {
        let ops: Vec<Timed<'_, RegOp>> = h
            .iter()
            .map(|(c, r, o)| Timed {
                call: *c,
                ret: *r,
                op: o,
            })
            .collect();
        check(&Register, &ops, Duration::from_secs(10))
    }

    #[test]
    fn concurrent_write_may_be_seen_either_way() {
        use RegOp::*;
        assert_eq!(
            run(&[(0, Some(10), W(1)), (5, Some(6), R(1)), (7, Some(8), R(1))]),
            Verdict::Linearizable
        );
        assert_eq!(
            run(&[(0, Some(10), W(1)), (2, Some(3), R(0)), (5, Some(6), R(1))]),
            Verdict::Linearizable
        );
    }

    #[test]
    fn stale_read_after_completed_write_is_rejected() {
        use RegOp::*;
        let v = run(&[(0, Some(1), W(1)), (2, Some(3), W(2)), (4, Some(5), R(1))]);
        assert!(matches!(v, Verdict::Violation { stuck: 2, .. }), "{v:?}");
    }

    #[test]
    fn read_that_goes_back_is_rejected() {
        use RegOp::*;
        // The write is concurrent with both reads, but once one read saw it, a later read
        // cannot see the old value again.
        let v = run(&[
            (0, Some(100), W(1)),
            (10, Some(20), R(1)),
            (30, Some(40), R(0)),
        ]);
        assert!(matches!(v, Verdict::Violation { .. }), "{v:?}");
    }

    #[test]
    fn unknown_write_may_apply_late_or_never() {
        use RegOp::*;
        assert_eq!(
            run(&[(0, None, W(1)), (10, Some(20), R(0)), (30, Some(40), R(1))]),
            Verdict::Linearizable
        );
        assert_eq!(
            run(&[(0, None, W(1)), (10, Some(20), R(0)), (30, Some(40), R(0))]),
            Verdict::Linearizable
        );
        // ...but not before it was invoked.
        let v = run(&[(10, Some(20), R(1)), (30, None, W(1))]);
        assert!(matches!(v, Verdict::Violation { .. }), "{v:?}");
    }

    #[test]
    fn state_carries_across_segments() {
        use RegOp::*;
        // Two concurrent writes, then (after a quiescent point) reads of both values in turn:
        // whichever write was last, one of the two reads is wrong.
        let v = run(&[
            (0, Some(10), W(1)),
            (1, Some(9), W(2)),
            (20, Some(21), R(1)),
            (30, Some(31), R(2)),
        ]);
        assert!(matches!(v, Verdict::Violation { stuck: 3, .. }), "{v:?}");
        assert_eq!(
            run(&[
                (0, Some(10), W(1)),
                (1, Some(9), W(2)),
                (20, Some(21), R(2)),
                (30, Some(31), R(2)),
            ]),
            Verdict::Linearizable
        );
    }

    #[test]
    fn long_sequential_history_is_fast() {
        use RegOp::*;
        let mut h = Vec::new();
        for i in 0..5_000u64 {
            h.push((i * 10, Some(i * 10 + 5), W(i as u32 + 1)));
            h.push((i * 10 + 6, Some(i * 10 + 9), R(i as u32 + 1)));
        }
        assert_eq!(run(&h), Verdict::Linearizable);
    }
}
