//! A set of watchers spread over gRPC watch streams, each stream read by its own task.
//!
//! Every stream has a sender (the creates, in order) and a reader. The reader matches each
//! `created` response to the oldest outstanding create (a stream answers its creates in order),
//! which times watch creation, then counts the events each watcher receives and records their
//! delivery latency from the send time stamped in the value. Nothing is shared between streams
//! but two counters, so readers scale with the streams.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use strata_proto::etcdserverpb::{
    watch_client::WatchClient, watch_request::RequestUnion, WatchCreateRequest, WatchRequest,
    WatchResponse,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::Streaming;

use crate::progress::Progress;
use crate::report::Recorder;

/// What one watcher watches: a key, or a range [key, range_end).
#[derive(Debug, Clone)]
pub struct Target {
    pub key: Bytes,
    pub range_end: Bytes,
}

impl Target {
    pub fn key(key: Bytes) -> Target {
        Target {
            key,
            range_end: Bytes::new(),
        }
    }

    /// Every key starting with `prefix` (etcd's prefix end: the last byte below 0xff, plus one).
    pub fn prefix(prefix: &[u8]) -> Target {
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < 0xff {
                end.push(last + 1);
                break;
            }
        }
        if end.is_empty() {
            end.push(0);
        }
        Target {
            key: Bytes::copy_from_slice(prefix),
            range_end: end.into(),
        }
    }
}

/// Counters every reader updates.
#[derive(Default)]
struct Shared {
    created: AtomicUsize,
    delivered: AtomicU64,
    progress: OnceLock<Progress>,
}

struct Stream {
    /// Kept open for the stream's life: dropping it half-closes the stream.
    requests: mpsc::Sender<WatchRequest>,
    reader: JoinHandle<Reader>,
    /// Global indexes of this stream's watchers, in creation order.
    owned: Vec<usize>,
}

/// One reader's findings.
struct Reader {
    delivery: Recorder,
    create: Recorder,
    /// Events per watcher, in creation order.
    counts: Vec<u64>,
    last_event: Option<Instant>,
}

/// The merged findings of every stream.
pub struct SetResult {
    pub delivery: Recorder,
    pub create: Recorder,
    /// How long creating every watcher took.
    pub create_elapsed: Duration,
    /// Events received per watcher, in target order.
    pub counts: Vec<u64>,
    pub delivered: u64,
    pub last_event: Option<Instant>,
}

pub struct WatchSet {
    streams: Vec<Stream>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    create_elapsed: Duration,
    watchers: usize,
}

/// How long watch creation may take before the run is abandoned.
const CREATE_DEADLINE: Duration = Duration::from_secs(300);

impl WatchSet {
    /// Opens `streams` streams round-robin over `channels` and creates one watcher per target
    /// (target i on stream i mod streams), from `start_revision` (0 = from now on). Returns once
    /// every watcher is created.
    pub async fn create(
        channels: &[Channel],
        streams: usize,
        targets: Vec<Target>,
        start_revision: i64,
    ) -> Result<WatchSet, String> {
        let shared = Arc::new(Shared::default());
        let (stop, stop_rx) = watch::channel(false);
        let watchers = targets.len();
        let progress = Progress::start("creating watchers", watchers as u64);
        let started = Instant::now();
        let mut per_stream: Vec<Vec<(usize, Target)>> = vec![Vec::new(); streams.max(1)];
        for (i, t) in targets.into_iter().enumerate() {
            per_stream[i % streams.max(1)].push((i, t));
        }
        let mut out = Vec::with_capacity(per_stream.len());
        for (s, mine) in per_stream.into_iter().enumerate() {
            if mine.is_empty() {
                continue;
            }
            let mut client = WatchClient::new(channels[s % channels.len()].clone())
                .max_decoding_message_size(64 << 20);
            let (tx, rx) = mpsc::channel::<WatchRequest>(256);
            let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
            let owned: Vec<usize> = mine.iter().map(|(i, _)| *i).collect();
            let count = mine.len();
            // The creates go out from their own task, queued before the call is made: etcd's
            // (Go) server sends the response headers only with its first message, and tonic
            // returns the stream only once it has them. So a stream with many watchers never
            // waits on its own reader either.
            let sender = tx.clone();
            let stamps = sent.clone();
            tokio::spawn(async move {
                for (_, t) in mine {
                    let req = WatchRequest {
                        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                            key: t.key,
                            range_end: t.range_end,
                            start_revision,
                            ..Default::default()
                        })),
                    };
                    stamps.lock().push_back(Instant::now());
                    if sender.send(req).await.is_err() {
                        return;
                    }
                }
            });
            let resp = client
                .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map_err(|e| format!("opening watch stream {s}: {}", e.message()))?
                .into_inner();
            let reader = tokio::spawn(read(
                resp,
                count,
                sent,
                shared.clone(),
                progress.clone(),
                stop_rx.clone(),
            ));
            out.push(Stream {
                requests: tx,
                reader,
                owned,
            });
        }
        let set = WatchSet {
            streams: out,
            shared,
            stop,
            create_elapsed: Duration::ZERO,
            watchers,
        };
        let deadline = Instant::now() + CREATE_DEADLINE;
        while set.shared.created.load(Ordering::Acquire) < watchers {
            if let Some(s) = set.streams.iter().find(|s| s.reader.is_finished()) {
                let _ = s;
                progress.finish();
                let n = set.shared.created.load(Ordering::Acquire);
                let _ = set.close().await;
                return Err(format!(
                    "a watch stream ended while creating watchers ({n} of {watchers} created)"
                ));
            }
            if Instant::now() > deadline {
                progress.finish();
                let _ = set.close().await;
                return Err(format!("watchers not created within {CREATE_DEADLINE:?}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        progress.finish();
        Ok(WatchSet {
            create_elapsed: started.elapsed(),
            ..set
        })
    }

    /// Counts delivered events into `progress` from now on.
    pub fn count_into(&self, progress: Progress) {
        let _ = self.shared.progress.set(progress);
    }

    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Acquire)
    }

    /// Waits until `expected` events were delivered in all, or `timeout` passes without a
    /// single new event; true if all arrived.
    pub async fn wait_delivered(&self, expected: u64, timeout: Duration) -> bool {
        let mut last = self.delivered();
        let mut since = Instant::now();
        loop {
            let now = self.delivered();
            if now >= expected {
                return true;
            }
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() > timeout {
                return false;
            }
            if self.streams.iter().all(|s| s.reader.is_finished()) {
                return self.delivered() >= expected;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops every reader, closes the streams and merges what they found.
    pub async fn close(self) -> Result<SetResult, String> {
        let _ = self.stop.send(true);
        let mut result = SetResult {
            delivery: Recorder::new(),
            create: Recorder::new(),
            create_elapsed: self.create_elapsed,
            counts: vec![0; self.watchers],
            delivered: self.shared.delivered.load(Ordering::Acquire),
            last_event: None,
        };
        for s in self.streams {
            drop(s.requests);
            let r = s
                .reader
                .await
                .map_err(|e| format!("a watch reader failed: {e}"))?;
            result.delivery.merge(&r.delivery);
            result.create.merge(&r.create);
            for (local, global) in s.owned.iter().enumerate() {
                result.counts[*global] = r.counts.get(local).copied().unwrap_or(0);
            }
            result.last_event = match (result.last_event, r.last_event) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(result)
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads one stream until told to stop or the server ends it.
async fn read(
    mut resp: Streaming<WatchResponse>,
    watchers: usize,
    sent: Arc<Mutex<VecDeque<Instant>>>,
    shared: Arc<Shared>,
    create_progress: Progress,
    mut stop: watch::Receiver<bool>,
) -> Reader {
    let mut r = Reader {
        delivery: Recorder::new(),
        create: Recorder::new(),
        counts: vec![0; watchers],
        last_event: None,
    };
    let mut ids: HashMap<i64, usize> = HashMap::with_capacity(watchers);
    loop {
        let msg = tokio::select! {
            m = resp.message() => m,
            _ = stop.wait_for(|s| *s) => break,
        };
        let m = match msg {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => {
                r.delivery.error(format!("watch stream: {}", e.message()));
                break;
            }
        };
        if m.created {
            let t = sent.lock().pop_front();
            if m.canceled {
                r.create
                    .error(format!("watch create refused: {}", m.cancel_reason));
                break;
            }
            if let Some(t) = t {
                r.create.ok(t.elapsed());
            }
            ids.insert(m.watch_id, ids.len());
            shared.created.fetch_add(1, Ordering::AcqRel);
            create_progress.inc(1);
        } else if m.canceled {
            r.delivery.error(format!(
                "watch cancelled: {} (compact {})",
                m.cancel_reason, m.compact_revision
            ));
        }
        if m.events.is_empty() {
            continue;
        }
        let received = now_ns();
        let n = m.events.len() as u64;
        for ev in &m.events {
            if let Some(kv) = &ev.kv {
                if let Some(stamp) = kv.value.get(..8) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(stamp);
                    let sent = u64::from_be_bytes(b);
                    r.delivery.record_us(received.saturating_sub(sent) / 1000);
                }
            }
        }
        if let Some(i) = ids.get(&m.watch_id) {
            r.counts[*i] += n;
        }
        r.last_event = Some(Instant::now());
        shared.delivered.fetch_add(n, Ordering::AcqRel);
        if let Some(p) = shared.progress.get() {
            p.inc(n);
        }
    }
    r
}
