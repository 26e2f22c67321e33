//! A work queue of keys, with client-go's guarantees: a key waiting is queued once however
//! often it is added; a key being processed is never handed to a second worker, and if it is
//! added meanwhile it is processed again afterwards; failed keys come back after an
//! exponential back-off; keys can be scheduled for later.
//!
//! Controllers put keys (not objects) here from informer handlers and read the current state
//! from the cache when they process one, so a burst of changes to one object costs one
//! reconcile.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Back-off of a failing key: `base * 2^(failures-1)`, at most `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// client-go's default controller rate limiter: 5 ms doubling to 1000 s; capped here at
    /// 60 s so a controller recovers within a minute of the apiserver coming back.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

struct State<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
    delayed: BinaryHeap<Reverse<(Instant, u64, T)>>,
    seq: u64,
    failures: HashMap<T, u32>,
    shut_down: bool,
}

/// The queue; share it with `Arc`.
pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    backoff: Backoff,
}

impl<T: Hash + Eq + Clone + Ord> WorkQueue<T> {
    pub fn new(backoff: Backoff) -> Arc<WorkQueue<T>> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                delayed: BinaryHeap::new(),
                seq: 0,
                failures: HashMap::new(),
                shut_down: false,
            }),
            notify: Notify::new(),
            backoff,
        })
    }

    /// Queues `key` (once, however often it is added before a worker takes it).
    pub fn add(&self, key: T) {
        let mut s = self.state.lock();
        if Self::add_locked(&mut s, key) {
            drop(s);
            self.notify.notify_one();
        }
    }

    fn add_locked(s: &mut State<T>, key: T) -> bool {
        if s.shut_down || s.dirty.contains(&key) {
            return false;
        }
        s.dirty.insert(key.clone());
        if s.processing.contains(&key) {
            // Queued again by `done`.
            return false;
        }
        s.queue.push_back(key);
        true
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let mut s = self.state.lock();
        if s.shut_down {
            return;
        }
        s.seq += 1;
        let seq = s.seq;
        s.delayed.push(Reverse((Instant::now() + delay, seq, key)));
        drop(s);
        // A waiting worker recomputes when to wake up.
        self.notify.notify_one();
    }

    /// Queues `key` after its back-off, which grows with every call until `forget`.
    pub fn add_rate_limited(&self, key: T) {
        let failures = {
            let mut s = self.state.lock();
            let f = s.failures.entry(key.clone()).or_insert(0);
            *f += 1;
            *f
        };
        self.add_after(key, self.backoff.delay(failures));
    }

    /// Clears `key`'s back-off.
    pub fn forget(&self, key: &T) {
        self.state.lock().failures.remove(key);
    }

    /// How often `key` failed since it was last forgotten.
    pub fn failures(&self, key: &T) -> u32 {
        self.state.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Keys waiting (not counting delayed ones).
    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next key to process; None once the queue is shut down. Call `done` after.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut s = self.state.lock();
                if s.shut_down {
                    return None;
                }
                let now = Instant::now();
                while let Some(Reverse((at, _, _))) = s.delayed.peek() {
                    if *at > now {
                        break;
                    }
                    let Some(Reverse((_, _, key))) = s.delayed.pop() else {
                        break;
                    };
                    Self::add_locked(&mut s, key);
                }
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        // Pass the wake-up on so idle workers pick up the rest.
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
                s.delayed.peek().map(|Reverse((at, _, _))| *at)
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &T) {
        let mut s = self.state.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) && !s.shut_down {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Stops handing out keys; every `get` returns None.
    pub fn shut_down(&self) {
        self.state.lock().shut_down = true;
        self.notify.notify_waiters();
    }
}

/// What a reconcile asks for after it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Nothing until the key is added again.
    No,
    /// Process the key again after this long.
    After(Duration),
}

/// Runs `workers` workers over `queue` until it is shut down: each takes a key, runs
/// `reconcile`, and requeues the key as asked (after its back-off on failure).
pub async fn run_workers<T, F, Fut, E>(
    name: &'static str,
    queue: Arc<WorkQueue<T>>,
    workers: usize,
    reconcile: F,
) where
    T: Hash + Eq + Clone + Ord + std::fmt::Display + Send + Sync + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Requeue, E>> + Send,
    E: std::fmt::Display + Send,
{
    let reconcile = Arc::new(reconcile);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let reconcile = reconcile.clone();
        tasks.spawn(async move {
            while let Some(key) = queue.get().await {
                match reconcile(key.clone()).await {
                    Ok(Requeue::No) => queue.forget(&key),
                    Ok(Requeue::After(d)) => {
                        queue.forget(&key);
                        queue.add_after(key.clone(), d);
                    }
                    Err(e) => {
                        let n = queue.failures(&key);
                        if n < 3 {
                            tracing::debug!(controller = name, %key, error = %e, "reconcile failed; retrying");
                        } else {
                            tracing::warn!(controller = name, %key, error = %e, failures = n + 1, "reconcile failed; retrying");
                        }
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_queued_once_and_requeued_if_added_while_processing() {
        let q = WorkQueue::new(Backoff::default());
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let a = q.get().await.unwrap();
        assert_eq!(a, "a");
        q.add("a"); // while processing: not handed out again yet
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.get().await.unwrap(), "a");
        q.done(&"a");
        q.done(&"b");
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_and_rate_limited_keys_come_back_later() {
        let q = WorkQueue::new(Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(4),
        });
        let start = Instant::now();
        q.add_after("late", Duration::from_secs(10));
        q.add_rate_limited("fail");
        assert_eq!(q.get().await.unwrap(), "fail");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        q.done(&"fail");
        q.add_rate_limited("fail");
        assert_eq!(q.get().await.unwrap(), "fail");
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        q.done(&"fail");
        assert_eq!(q.failures(&"fail"), 2);
        q.forget(&"fail");
        assert_eq!(q.failures(&"fail"), 0);
        assert_eq!(q.get().await.unwrap(), "late");
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(1), Duration::from_millis(5));
        assert_eq!(b.delay(2), Duration::from_millis(10));
        assert_eq!(b.delay(9), Duration::from_millis(1000));
        assert_eq!(b.delay(1000), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let q: Arc<WorkQueue<u32>> = WorkQueue::new(Backoff::default());
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.get().await });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
