//! Watch: delivering the store's changes to watchers, in order, exactly once, never blocking the
//! writer.
//!
//! Watchers live in a [`WatchHub`]. A *synced* watcher is up to date: when the applier publishes a
//! revision, the hub hands it the revision's matching events with a non-blocking send into its
//! stream's bounded queue. If the queue is full the watcher becomes *unsynced* and a catch-up task
//! replays history from the engine (the revisions are durable there) at the reader's pace, then
//! rejoins the synced set under the hub lock at exactly the next unpublished revision. So a slow
//! watcher never blocks writers or other watchers and loses nothing; if the history it needs has
//! been compacted away, it is cancelled with the compact revision, which clients act on.
//!
//! Guarantees as etcd states them: events are ordered by revision, never duplicated, all events of
//! one revision travel in one message, and a watch resumes from any retained revision.

mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use strata_proto::mvccpb::{event::EventType, Event};
use tokio::sync::mpsc;

pub use stream::{StreamMsg, WatchStream};

use crate::error::Error;
use crate::mvcc::{in_range, MvccStore, RevisionEvents};

/// Queue length of one watch stream (shared by the watchers on it).
pub const STREAM_QUEUE: usize = 1024;
/// Events replayed per step of a catch-up, so a catch-up holds a bounded amount of memory.
const CATCH_UP_BATCH: usize = 1000;

/// What a watcher wants; from a WatchCreateRequest.
#[derive(Debug, Clone, Default)]
pub struct WatchSpec {
    pub key: Bytes,
    pub range_end: Bytes,
    /// First revision to deliver (0 = the next one).
    pub start_revision: i64,
    pub no_put: bool,
    pub no_delete: bool,
    pub prev_kv: bool,
    pub progress_notify: bool,
    pub fragment: bool,
}

impl WatchSpec {
    fn wants(&self, ev: &Event) -> bool {
        let put = ev.r#type == EventType::Put as i32;
        if (put && self.no_put) || (!put && self.no_delete) {
            return false;
        }
        ev.kv
            .as_ref()
            .is_some_and(|kv| in_range(&kv.key, &self.key, &self.range_end))
    }

    /// The events of `batch` this watcher wants, sharing the batch when it wants all of them.
    fn select(&self, batch: &RevisionEvents) -> Option<Arc<[Event]>> {
        let n = batch.events.iter().filter(|e| self.wants(e)).count();
        if n == 0 {
            None
        } else if n == batch.events.len() {
            Some(batch.events.clone())
        } else {
            Some(
                batch
                    .events
                    .iter()
                    .filter(|e| self.wants(e))
                    .cloned()
                    .collect(),
            )
        }
    }
}

type WatcherKey = (u64, i64);

struct Watcher {
    spec: Arc<WatchSpec>,
    tx: mpsc::Sender<StreamMsg>,
    /// Next revision this watcher needs; events below it are not for it.
    next_rev: i64,
    synced: bool,
}

struct HubInner {
    watchers: HashMap<WatcherKey, Watcher>,
    /// The last revision handed to watchers.
    rev: i64,
    /// Bumped when a snapshot restore starts and when it ends (odd while one runs): a catch-up
    /// read that overlapped a restore may have seen a half-copied history and is read again.
    generation: u64,
}

pub struct WatchHub {
    store: Arc<MvccStore>,
    /// Catch-up tasks run here: `publish` is called from the Raft thread, outside any runtime.
    runtime: tokio::runtime::Handle,
    inner: Mutex<HubInner>,
    next_stream: AtomicU64,
    /// Watchers that fell behind into catch-up, ever (etcd_debugging_mvcc_slow_watcher_total).
    pub slow_total: AtomicU64,
    /// Events handed to watchers (etcd_debugging_mvcc_events_total).
    pub events_total: AtomicU64,
}

impl WatchHub {
    /// Creates the hub; must be called within a Tokio runtime, where catch-up tasks will run.
    pub fn new(store: Arc<MvccStore>) -> Arc<Self> {
        let rev = store.current_revision();
        Arc::new(Self {
            store,
            runtime: tokio::runtime::Handle::current(),
            inner: Mutex::new(HubInner {
                watchers: HashMap::new(),
                rev,
                generation: 0,
            }),
            next_stream: AtomicU64::new(1),
            slow_total: AtomicU64::new(0),
            events_total: AtomicU64::new(0),
        })
    }

    /// Opens a watch stream: a queue that several watchers share.
    pub fn open_stream(self: &Arc<Self>) -> (WatchStream, mpsc::Receiver<StreamMsg>) {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        (WatchStream::new(self.clone(), id, tx), rx)
    }

    /// Number of watchers and of those catching up.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        let unsynced = inner.watchers.values().filter(|w| !w.synced).count();
        (inner.watchers.len(), unsynced)
    }

    fn add(self: &Arc<Self>, key: WatcherKey, spec: WatchSpec, tx: mpsc::Sender<StreamMsg>) {
        let spec = Arc::new(spec);
        let mut inner = self.inner.lock();
        let next_rev = if spec.start_revision > 0 {
            spec.start_revision
        } else {
            inner.rev + 1
        };
        let synced = next_rev > inner.rev;
        inner.watchers.insert(
            key,
            Watcher {
                spec,
                tx,
                next_rev,
                synced,
            },
        );
        if !synced {
            drop(inner);
            self.spawn_catch_up(key);
        }
    }

    fn remove(&self, key: WatcherKey) -> bool {
        self.inner.lock().watchers.remove(&key).is_some()
    }

    fn remove_stream(&self, stream: u64) {
        self.inner.lock().watchers.retain(|k, _| k.0 != stream);
    }

    /// True when every watcher of `stream` is synced (progress can then be reported).
    fn stream_synced(&self, stream: u64) -> (bool, i64) {
        let inner = self.inner.lock();
        let all = inner
            .watchers
            .iter()
            .filter(|(k, _)| k.0 == stream)
            .all(|(_, w)| w.synced);
        (all, inner.rev)
    }

    /// Answers a RequestProgress on `stream`: if every watcher on it is synced, queues a
    /// progress notification at the hub's revision on the stream's queue, behind the events
    /// already queued. Both happen under the hub lock, which `publish` holds while it queues a
    /// revision's events and raises the revision, so every event up to that revision is ahead
    /// of the notification (etcd's "bookmarkable" guarantee). False when some watcher is
    /// catching up or the queue is full (no notification, as etcd does then).
    fn request_progress(&self, stream: u64, tx: &mpsc::Sender<StreamMsg>) -> bool {
        let inner = self.inner.lock();
        let all = inner
            .watchers
            .iter()
            .filter(|(k, _)| k.0 == stream)
            .all(|(_, w)| w.synced);
        all && tx
            .try_send(StreamMsg::Progress {
                watch_id: -1,
                rev: inner.rev,
            })
            .is_ok()
    }

    /// Hands the events of newly applied revisions to the synced watchers. Never blocks: a
    /// watcher whose queue is full is moved to catch-up. Called by the applier, in revision order,
    /// after the revisions are durable in the engine.
    pub fn publish(self: &Arc<Self>, batches: &[RevisionEvents], rev: i64) {
        let mut behind = Vec::new();
        {
            let mut inner = self.inner.lock();
            let mut closed = Vec::new();
            for batch in batches {
                for (key, w) in inner.watchers.iter_mut() {
                    if !w.synced || batch.rev < w.next_rev {
                        continue;
                    }
                    let Some(events) = w.spec.select(batch) else {
                        continue;
                    };
                    let n = events.len() as u64;
                    let msg = StreamMsg::Events {
                        watch_id: key.1,
                        rev: batch.rev,
                        events,
                        spec: w.spec.clone(),
                    };
                    match w.tx.try_send(msg) {
                        Ok(()) => {
                            w.next_rev = batch.rev + 1;
                            self.events_total.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            w.synced = false;
                            w.next_rev = batch.rev;
                            behind.push(*key);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => closed.push(*key),
                    }
                }
            }
            for key in closed {
                inner.watchers.remove(&key);
            }
            inner.rev = inner.rev.max(rev);
        }
        for key in behind {
            self.slow_total.fetch_add(1, Ordering::Relaxed);
            self.spawn_catch_up(key);
        }
    }

    /// Sends a progress notification to every synced watcher that asked for them.
    pub fn notify_progress(&self) {
        let inner = self.inner.lock();
        for (key, w) in inner.watchers.iter() {
            if w.synced && w.spec.progress_notify {
                let _ = w.tx.try_send(StreamMsg::Progress {
                    watch_id: key.1,
                    rev: inner.rev,
                });
            }
        }
    }

    fn spawn_catch_up(self: &Arc<Self>, key: WatcherKey) {
        let hub = self.clone();
        self.runtime.spawn(async move { hub.catch_up(key).await });
    }

    /// A snapshot restore is about to rewrite the store's history.
    pub fn begin_restore(&self) {
        let mut inner = self.inner.lock();
        if inner.generation & 1 == 0 {
            inner.generation += 1;
        }
    }

    /// The store was replaced by a snapshot at revision `rev`: every watcher catches up from
    /// the new store (or learns its revision was compacted away).
    pub fn reset(self: &Arc<Self>, rev: i64) {
        let keys: Vec<WatcherKey> = {
            let mut inner = self.inner.lock();
            if inner.generation & 1 == 1 {
                inner.generation += 1;
            }
            inner.rev = rev;
            inner
                .watchers
                .iter_mut()
                .filter(|(_, w)| w.synced)
                .map(|(k, w)| {
                    w.synced = false;
                    *k
                })
                .collect()
        };
        for key in keys {
            self.spawn_catch_up(key);
        }
    }

    /// Replays history to an unsynced watcher until it reaches the published revision.
    async fn catch_up(self: Arc<Self>, key: WatcherKey) {
        loop {
            let (spec, tx, next_rev, target, generation) = {
                let mut inner = self.inner.lock();
                let target = inner.rev;
                let generation = inner.generation;
                let Some(w) = inner.watchers.get_mut(&key) else {
                    return;
                };
                if w.next_rev > target {
                    w.synced = true;
                    return;
                }
                (w.spec.clone(), w.tx.clone(), w.next_rev, target, generation)
            };
            if generation & 1 == 1 {
                // A restore is rewriting the history: wait for it to finish.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
            let store = self.store.clone();
            let filter = spec.clone();
            let read = tokio::task::spawn_blocking(move || {
                store.events_between(next_rev, target, CATCH_UP_BATCH, &|k: &[u8]| {
                    in_range(k, &filter.key, &filter.range_end)
                })
            })
            .await;
            if self.inner.lock().generation != generation {
                // The read overlapped a restore: read again from the new history.
                continue;
            }
            let (batches, last) = match read {
                Ok(Ok(r)) => r,
                Ok(Err(Error::Compacted)) => {
                    let compact_rev = self.store.compact_revision();
                    if self.remove(key) {
                        let _ = tx
                            .send(StreamMsg::Compacted {
                                watch_id: key.1,
                                compact_rev,
                            })
                            .await;
                    }
                    return;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "watch catch-up failed to read history");
                    if self.remove(key) {
                        let reason = format!("etcdserver: watch catch-up failed: {e}");
                        let _ = tx
                            .send(StreamMsg::Canceled {
                                watch_id: key.1,
                                reason,
                            })
                            .await;
                    }
                    return;
                }
                Err(_) => return,
            };
            for batch in &batches {
                let Some(events) = spec.select(batch) else {
                    continue;
                };
                let n = events.len() as u64;
                let msg = StreamMsg::Events {
                    watch_id: key.1,
                    rev: batch.rev,
                    events,
                    spec: spec.clone(),
                };
                if tx.send(msg).await.is_err() {
                    self.remove(key);
                    return;
                }
                self.events_total.fetch_add(n, Ordering::Relaxed);
            }
            let mut inner = self.inner.lock();
            let Some(w) = inner.watchers.get_mut(&key) else {
                return;
            };
            w.next_rev = last + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, RocksEngine};
    use crate::mvcc::WriteTxn;

    /// Found by `strata chaos`: the answer to RequestProgress went through the stream's control
    /// queue, which is sent before its event queue, so it could overtake events at or below
    /// the revision it announced.
    #[tokio::test]
    async fn requested_progress_follows_the_events_already_queued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("open"));
        let store = Arc::new(MvccStore::open(engine.clone()).expect("mvcc"));
        let hub = WatchHub::new(store.clone());
        let (stream, mut rx) = hub.open_stream();
        let spec = WatchSpec {
            key: Bytes::from_static(b"k"),
            ..Default::default()
        };
        let id = stream.create(0, spec).expect("watch");
        let mut round = store.begin_round();
        let mut txn = WriteTxn::new(&mut round);
        txn.put(Bytes::from_static(b"k"), Bytes::from_static(b"v"), 0);
        txn.commit();
        let (batch, rev, events) = round.finish();
        engine.write(batch, false).expect("write");
        store.publish(rev);
        hub.publish(&events, rev);
        assert!(stream.request_progress());
        match rx.recv().await {
            Some(StreamMsg::Events {
                watch_id, rev: r, ..
            }) => assert_eq!((watch_id, r), (id, rev)),
            other => panic!("expected the event first, got {other:?}"),
        }
        match rx.recv().await {
            Some(StreamMsg::Progress { watch_id, rev: r }) => assert_eq!((watch_id, r), (-1, rev)),
            other => panic!("expected the progress notification, got {other:?}"),
        }
    }
}
