//! The scheduling queue, kube-scheduler's three queues in one structure:
//!
//! - active: pods to try now, highest priority first, then in arrival order;
//! - backoff: pods waiting out a back-off (1 s doubling to 10 s per failed attempt) before
//!   they return to active;
//! - unschedulable: pods that fit nowhere; they stay until the cluster changes (a node is
//!   added or changes, a pod goes away) and are then retried after their back-off, or after
//!   `max_unschedulable` at the latest in case a change was missed.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Entry {
    priority: i32,
    seq: u64,
    attempts: u32,
    last_attempt: Option<Instant>,
    place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Active,
    Backoff(Instant),
    Unschedulable(Instant),
    /// Handed out, not yet back.
    InFlight,
}

/// The queue, keyed by pod (`namespace/name`).
pub struct SchedulingQueue {
    entries: HashMap<String, Entry>,
    /// (Reverse(priority), seq, key): the first is the next to try.
    active: BTreeSet<(Reverse<i32>, u64, String)>,
    /// When parked pods are due: (due, seq of the parking, key); stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, u64, String)>>,
    unschedulable: HashSet<String>,
    seq: u64,
    max_unschedulable: Duration,
}

impl SchedulingQueue {
    pub fn new(max_unschedulable: Duration) -> SchedulingQueue {
        SchedulingQueue {
            entries: HashMap::new(),
            active: BTreeSet::new(),
            timers: BinaryHeap::new(),
            unschedulable: HashSet::new(),
            seq: 0,
            max_unschedulable,
        }
    }

    fn backoff(attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(10);
        INITIAL_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF)
    }

    fn activate(&mut self, key: &str) {
        self.unschedulable.remove(key);
        if let Some(e) = self.entries.get_mut(key) {
            self.seq += 1;
            e.seq = self.seq;
            e.place = Place::Active;
            self.active
                .insert((Reverse(e.priority), e.seq, key.to_string()));
        }
    }

    /// A new pending pod (or one whose spec changed): try it now.
    pub fn add(&mut self, key: &str, priority: i32) {
        match self.entries.get_mut(key) {
            Some(e) if e.place == Place::Active || e.place == Place::InFlight => {
                e.priority = priority;
            }
            Some(e) => {
                e.priority = priority;
                self.activate(key);
            }
            None => {
                self.entries.insert(
                    key.to_string(),
                    Entry {
                        priority,
                        seq: 0,
                        attempts: 0,
                        last_attempt: None,
                        place: Place::Active,
                    },
                );
                self.activate(key);
            }
        }
    }

    /// Forgets a pod (deleted, or bound by someone).
    pub fn remove(&mut self, key: &str) {
        self.unschedulable.remove(key);
        if let Some(e) = self.entries.remove(key) {
            self.active
                .remove(&(Reverse(e.priority), e.seq, key.to_string()));
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The next pod to try, if any is active.
    pub fn pop(&mut self, now: Instant) -> Option<String> {
        self.flush(now);
        let first = self.active.iter().next().cloned()?;
        self.active.remove(&first);
        let key = first.2;
        if let Some(e) = self.entries.get_mut(&key) {
            e.place = Place::InFlight;
            e.attempts += 1;
            e.last_attempt = Some(now);
        }
        Some(key)
    }

    /// The pod fit nowhere: park it until the cluster changes.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        let due = now + self.max_unschedulable;
        self.park(key, Place::Unschedulable(now), due);
    }

    /// An attempt failed for another reason (binding failed): retry after the back-off.
    pub fn backoff_retry(&mut self, key: &str, now: Instant) {
        let Some(attempts) = self.entries.get(key).map(|e| e.attempts) else {
            return;
        };
        let due = now + Self::backoff(attempts);
        self.park(key, Place::Backoff(due), due);
    }

    fn park(&mut self, key: &str, place: Place, due: Instant) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if e.place == Place::Active {
            self.active
                .remove(&(Reverse(e.priority), e.seq, key.to_string()));
        }
        self.seq += 1;
        e.seq = self.seq;
        e.place = place;
        if matches!(place, Place::Unschedulable(_)) {
            self.unschedulable.insert(key.to_string());
        } else {
            self.unschedulable.remove(key);
        }
        self.timers.push(Reverse((due, self.seq, key.to_string())));
    }

    /// The pod was bound: it leaves the queue.
    pub fn done(&mut self, key: &str) {
        self.remove(key);
    }

    /// The cluster changed: every unschedulable pod is retried once its back-off is over.
    pub fn move_all_unschedulable(&mut self) {
        for key in std::mem::take(&mut self.unschedulable) {
            let Some(e) = self.entries.get(&key) else {
                continue;
            };
            let since = e.last_attempt.unwrap_or_else(Instant::now);
            let due = since + Self::backoff(e.attempts);
            self.park(&key, Place::Backoff(due), due);
        }
    }

    /// Moves pods whose back-off is over, and pods unschedulable for too long, to active.
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((due, seq, _))) = self.timers.peek() {
            if *due > now {
                break;
            }
            let seq = *seq;
            let Some(Reverse((_, _, key))) = self.timers.pop() else {
                break;
            };
            let current = self.entries.get(&key).is_some_and(|e| {
                e.seq == seq && matches!(e.place, Place::Backoff(_) | Place::Unschedulable(_))
            });
            if current {
                self.activate(&key);
            }
        }
    }

    /// When `flush` next may have something to do.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// (active, backoff, unschedulable) counts, for logs.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in self.entries.values() {
            match e.place {
                Place::Active => c.0 += 1,
                Place::Backoff(_) => c.1 += 1,
                Place::Unschedulable(_) => c.2 += 1,
                Place::InFlight => {}
            }
        }
        c
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_first_then_arrival_order() {
        let now = Instant::now();
        let mut q = SchedulingQueue::new(Duration::from_secs(60));
        q.add("a", 0);
        q.add("b", 10);
        q.add("c", 0);
        q.add("a", 0); // again: no duplicate
        assert_eq!(q.pop(now).as_deref(), Some("b"));
        assert_eq!(q.pop(now).as_deref(), Some("a"));
        assert_eq!(q.pop(now).as_deref(), Some("c"));
        assert_eq!(q.pop(now), None);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_cluster_change_then_their_backoff() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(Duration::from_secs(60));
        q.add("p", 0);
        assert_eq!(q.pop(t0).as_deref(), Some("p"));
        q.unschedulable("p", t0);
        assert_eq!(q.pop(t0 + Duration::from_secs(30)), None);
        assert_eq!(q.next_wakeup(), Some(t0 + Duration::from_secs(60)));
        q.move_all_unschedulable();
        // First attempt: 1 s of back-off from the attempt.
        assert_eq!(q.pop(t0 + Duration::from_millis(500)), None);
        assert_eq!(q.pop(t0 + Duration::from_secs(1)).as_deref(), Some("p"));
        let t1 = t0 + Duration::from_secs(1);
        q.unschedulable("p", t1);
        q.move_all_unschedulable();
        assert_eq!(q.pop(t1 + Duration::from_millis(1999)), None);
        assert_eq!(q.pop(t1 + Duration::from_secs(2)).as_deref(), Some("p"));
        q.done("p");
        assert!(!q.contains("p"));
    }

    #[test]
    fn unschedulable_pods_are_retried_after_the_maximum_wait_anyway() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(Duration::from_secs(5));
        q.add("p", 0);
        q.pop(t0);
        q.unschedulable("p", t0);
        assert_eq!(q.counts(), (0, 0, 1));
        assert_eq!(q.pop(t0 + Duration::from_secs(5)).as_deref(), Some("p"));
    }

    #[test]
    fn backoff_caps_at_ten_seconds() {
        assert_eq!(SchedulingQueue::backoff(1), Duration::from_secs(1));
        assert_eq!(SchedulingQueue::backoff(3), Duration::from_secs(4));
        assert_eq!(SchedulingQueue::backoff(30), MAX_BACKOFF);
    }
}
