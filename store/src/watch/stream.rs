//! One watch stream: the watchers a client created on one Watch RPC, sharing one bounded queue.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use strata_proto::mvccpb::Event;
use tokio::sync::mpsc;

use super::{WatchHub, WatchSpec};

/// What a stream's queue carries to the code that writes WatchResponses.
#[derive(Debug)]
pub enum StreamMsg {
    /// All events of revision `rev` that the watcher wants.
    Events {
        watch_id: i64,
        rev: i64,
        events: Arc<[Event]>,
        spec: Arc<WatchSpec>,
    },
    /// The watcher needs history below the compact revision; it is cancelled.
    Compacted { watch_id: i64, compact_rev: i64 },
    /// The watcher was cancelled by the server.
    Canceled { watch_id: i64, reason: String },
    /// Progress notification: the watcher has seen everything up to `rev`.
    Progress { watch_id: i64, rev: i64 },
}

pub struct WatchStream {
    hub: Arc<WatchHub>,
    id: u64,
    tx: mpsc::Sender<StreamMsg>,
    ids: Mutex<(HashSet<i64>, i64)>,
}

/// Why a watch could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateError {
    /// The requested watch id is already used on this stream.
    DuplicateId,
}

impl WatchStream {
    pub(super) fn new(hub: Arc<WatchHub>, id: u64, tx: mpsc::Sender<StreamMsg>) -> Self {
        Self {
            hub,
            id,
            tx,
            ids: Mutex::new((HashSet::new(), 0)),
        }
    }

    /// Reserves `watch_id` (or the next free id when `watch_id` is 0, as etcd's AutoWatchID) for
    /// a watcher that [`WatchStream::start`] then registers.
    pub fn reserve(&self, watch_id: i64) -> Result<i64, CreateError> {
        let mut ids = self.ids.lock();
        let id = if watch_id != 0 {
            if ids.0.contains(&watch_id) {
                return Err(CreateError::DuplicateId);
            }
            watch_id
        } else {
            while ids.0.contains(&ids.1) {
                ids.1 += 1;
            }
            ids.1
        };
        ids.0.insert(id);
        Ok(id)
    }

    /// Registers the watcher `watch_id` (reserved before) with the hub.
    pub fn start(&self, watch_id: i64, spec: WatchSpec) {
        self.hub.add((self.id, watch_id), spec, self.tx.clone());
    }

    /// Reserves an id and starts the watcher in one step.
    pub fn create(&self, watch_id: i64, spec: WatchSpec) -> Result<i64, CreateError> {
        let id = self.reserve(watch_id)?;
        self.start(id, spec);
        Ok(id)
    }

    /// Cancels a watcher; false when no such watcher exists on this stream.
    pub fn cancel(&self, watch_id: i64) -> bool {
        self.ids.lock().0.remove(&watch_id);
        self.hub.remove((self.id, watch_id))
    }

    /// Whether every watcher on this stream is up to date, and the hub's revision.
    pub fn synced(&self) -> (bool, i64) {
        self.hub.stream_synced(self.id)
    }

    /// RequestProgress: queues a progress notification (watch id -1) behind the events already
    /// queued, if every watcher on the stream is synced; whether one was queued.
    pub fn request_progress(&self) -> bool {
        self.hub.request_progress(self.id, &self.tx)
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.hub.remove_stream(self.id);
    }
}
