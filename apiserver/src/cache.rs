//! The watch cache: one store watch per resource feeds an in-memory copy of every object and a
//! ring of recent events. Watches and most lists are served from memory. Each event is
//! serialized once, as the exact JSON line watchers receive, and those bytes are shared by
//! every watcher (and by lists, which slice the object out of the line). Watchers receive events
//! through one bounded broadcast channel: a watcher that falls a whole channel behind is closed
//! (its client re-watches from its last resourceVersion), so it never stalls the others and
//! memory stays bounded by the channel, not by the number of watchers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::RwLock;
use serde_json::Value;
use strata_proto::etcdserverpb::{
    watch_request::RequestUnion, WatchCreateRequest, WatchProgressRequest, WatchRequest,
};
use strata_proto::mvccpb::{event::EventType as StoreEventType, KeyValue};
use tokio::sync::{broadcast, mpsc, watch};

use crate::metrics::Metrics;
use crate::registry::Resource;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::{prefix_end, Store, StoreError};

/// One object as the cache holds it: decoded (for selectors) and encoded (for clients).
pub struct Obj {
    pub key: String,
    pub rv: i64,
    pub value: Arc<Value>,
    /// The object's JSON, with metadata.resourceVersion set.
    pub json: Bytes,
    added_line: OnceLock<Bytes>,
}

impl Obj {
    /// Decodes a stored value and stamps its resourceVersion.
    pub fn decode(key: &str, raw: &[u8], rv: i64) -> Result<Obj, String> {
        let mut value: Value =
            serde_json::from_slice(raw).map_err(|e| format!("stored object {key}: {e}"))?;
        set_resource_version(&mut value, rv);
        let json = Bytes::from(serde_json::to_vec(&value).map_err(|e| e.to_string())?);
        Ok(Obj {
            key: key.to_string(),
            rv,
            value: Arc::new(value),
            json,
            added_line: OnceLock::new(),
        })
    }

    /// From an already-stamped value and its encoding (a slice of an event line).
    fn with_json(key: &str, rv: i64, value: Value, json: Bytes) -> Obj {
        Obj {
            key: key.to_string(),
            rv,
            value: Arc::new(value),
            json,
            added_line: OnceLock::new(),
        }
    }

    /// `{"type":"ADDED","object":...}\n`, built once per object.
    pub fn added_line(&self) -> Bytes {
        self.added_line
            .get_or_init(|| event_line("ADDED", &self.json))
            .clone()
    }
}

/// Sets metadata.resourceVersion.
pub fn set_resource_version(value: &mut Value, rv: i64) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

const LINE_SUFFIX: &[u8] = b"}\n";

fn line_prefix(ty: &str) -> String {
    format!("{{\"type\":\"{ty}\",\"object\":")
}

/// One watch event line.
pub fn event_line(ty: &str, object_json: &[u8]) -> Bytes {
    let prefix = line_prefix(ty);
    let mut b = BytesMut::with_capacity(prefix.len() + object_json.len() + LINE_SUFFIX.len());
    b.put_slice(prefix.as_bytes());
    b.put_slice(object_json);
    b.put_slice(LINE_SUFFIX);
    b.freeze()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as every watcher receives it.
pub struct Event {
    pub ty: EventType,
    pub rv: i64,
    /// The object after the change (for DELETED: its last state, stamped with the deletion's
    /// revision, as Kubernetes does).
    pub obj: Arc<Obj>,
    /// The object before the change, for selector transitions.
    pub prev: Option<Arc<Obj>>,
    /// The encoded line, shared by every watcher.
    pub line: Bytes,
}

/// Which objects a list or watch wants.
#[derive(Clone)]
pub struct Filter {
    /// Key prefix: the resource's, or a namespace's.
    pub prefix: String,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn matches(&self, obj: &Obj) -> bool {
        obj.key.starts_with(&self.prefix)
            && (self.labels.is_empty() || self.labels.matches_object(&obj.value))
            && (self.fields.is_empty() || self.fields.matches(&obj.value))
    }

    fn selects_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// What a watcher with this filter sees of `ev`: the shared line, a rewritten one (an object
    /// moving into or out of the selection is ADDED or DELETED for this watcher, as in
    /// Kubernetes), or nothing.
    pub fn view(&self, ev: &Event) -> Option<Bytes> {
        if !ev.obj.key.starts_with(&self.prefix) {
            return None;
        }
        if self.selects_everything() {
            return Some(ev.line.clone());
        }
        let now = self.matches(&ev.obj);
        match ev.ty {
            EventType::Added | EventType::Deleted => now.then(|| ev.line.clone()),
            EventType::Modified => {
                let before = ev.prev.as_ref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => Some(ev.line.clone()),
                    (false, true) => Some(event_line("ADDED", &ev.obj.json)),
                    (true, false) => {
                        let prev = ev.prev.as_ref()?;
                        let mut value = (*prev.value).clone();
                        set_resource_version(&mut value, ev.rv);
                        Some(event_line("DELETED", &serde_json::to_vec(&value).ok()?))
                    }
                    (false, false) => None,
                }
            }
        }
    }
}

struct State {
    objects: BTreeMap<String, Arc<Obj>>,
    /// The store revision the cache reflects.
    rv: i64,
    ring: VecDeque<Arc<Event>>,
    /// Watches from a resourceVersion >= this can be served from the ring.
    window_start: i64,
    tx: broadcast::Sender<Arc<Event>>,
    ready: bool,
}

/// Where a watch starts.
pub enum WatchStart {
    /// Synthetic ADDED events for these objects (at `rv`), then live events.
    Snapshot { objects: Vec<Arc<Obj>>, rv: i64 },
    /// Replay these events, then live.
    Replay { events: Vec<Arc<Event>>, rv: i64 },
}

/// A watch's start and its live feed, taken together under the cache lock so nothing falls
/// between them.
pub struct Subscription {
    pub start: WatchStart,
    pub rx: broadcast::Receiver<Arc<Event>>,
}

pub enum SubscribeError {
    /// The requested resourceVersion is older than the cache's window.
    TooOld {
        requested: i64,
        oldest: i64,
    },
    NotReady,
}

/// The cache of one resource.
pub struct Cache {
    pub resource: &'static Resource,
    state: RwLock<State>,
    capacity: usize,
    rv_tx: watch::Sender<i64>,
    progress_tx: mpsc::Sender<()>,
    metrics: Metrics,
}

impl Cache {
    /// Creates the cache and starts its feed from the store.
    pub fn start(
        resource: &'static Resource,
        store: Store,
        capacity: usize,
        metrics: Metrics,
    ) -> Arc<Cache> {
        let capacity = capacity.max(16);
        let (tx, _) = broadcast::channel(capacity);
        let (rv_tx, _) = watch::channel(0);
        let (progress_tx, progress_rx) = mpsc::channel(1);
        let cache = Arc::new(Cache {
            resource,
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                rv: 0,
                ring: VecDeque::with_capacity(capacity),
                window_start: 0,
                tx,
                ready: false,
            }),
            capacity,
            rv_tx,
            progress_tx,
            metrics,
        });
        tokio::spawn(feed(cache.clone(), store, progress_rx));
        cache
    }

    pub fn ready(&self) -> bool {
        self.state.read().ready
    }

    /// The revision the cache reflects.
    pub fn revision(&self) -> i64 {
        self.state.read().rv
    }

    /// Waits until the cache reflects at least revision `rev`, asking the store for progress
    /// notifications while it waits. False on timeout.
    pub async fn wait_for(&self, rev: i64, timeout: Duration) -> bool {
        let mut rx = self.rv_tx.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let st = self.state.read();
                if st.ready && st.rv >= rev {
                    return true;
                }
            }
            let _ = self.progress_tx.try_send(());
            let wait = tokio::time::timeout_at(deadline, rx.changed());
            match wait.await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    let st = self.state.read();
                    return st.ready && st.rv >= rev;
                }
            }
        }
    }

    /// One object, if cached.
    pub fn get(&self, key: &str) -> Option<Arc<Obj>> {
        self.state.read().objects.get(key).cloned()
    }

    /// Every object matching `filter`, in key order, and the revision they reflect.
    pub fn list(&self, filter: &Filter) -> (Vec<Arc<Obj>>, i64) {
        let st = self.state.read();
        let items = st
            .objects
            .range(filter.prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&filter.prefix))
            .filter(|(_, o)| filter.matches(o))
            .map(|(_, o)| o.clone())
            .collect();
        (items, st.rv)
    }

    /// All objects under a prefix (used by the authorizer's policy source).
    pub fn under(&self, prefix: &str) -> Vec<Arc<Obj>> {
        let st = self.state.read();
        st.objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Starts a watch: from a snapshot of the current state (`from` None) or after revision
    /// `from`.
    pub fn subscribe(
        &self,
        from: Option<i64>,
        filter: &Filter,
    ) -> Result<Subscription, SubscribeError> {
        let st = self.state.read();
        if !st.ready {
            return Err(SubscribeError::NotReady);
        }
        let rx = st.tx.subscribe();
        let start = match from {
            None => WatchStart::Snapshot {
                objects: st
                    .objects
                    .range(filter.prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&filter.prefix))
                    .filter(|(_, o)| filter.matches(o))
                    .map(|(_, o)| o.clone())
                    .collect(),
                rv: st.rv,
            },
            Some(rv) => {
                if rv < st.window_start {
                    return Err(SubscribeError::TooOld {
                        requested: rv,
                        oldest: st.window_start,
                    });
                }
                let first = st.ring.partition_point(|e| e.rv <= rv);
                WatchStart::Replay {
                    events: st.ring.iter().skip(first).cloned().collect(),
                    rv: st.rv.max(rv),
                }
            }
        };
        Ok(Subscription { start, rx })
    }

    /// Replaces the whole state after a (re)list at `rv`. Existing watchers are closed: they
    /// re-watch, and get 410 if they are older than the new window.
    fn reset(&self, objects: BTreeMap<String, Arc<Obj>>, rv: i64) {
        let mut st = self.state.write();
        st.objects = objects;
        st.rv = rv;
        st.ring.clear();
        st.window_start = rv;
        let (tx, _) = broadcast::channel(self.capacity);
        st.tx = tx;
        st.ready = true;
        drop(st);
        self.rv_tx.send_replace(rv);
    }

    /// Applies one watch response's events under one lock, so a revision that touched several
    /// keys is seen whole by every list and subscription.
    fn apply_batch(&self, events: Vec<(StoreEventType, KeyValue)>) {
        let mut st = self.state.write();
        for (ty, kv) in events {
            self.apply_locked(&mut st, ty, &kv);
        }
    }

    fn deleted_event(key: &str, old: Arc<Obj>, rv: i64) -> Option<Event> {
        let mut value = (*old.value).clone();
        set_resource_version(&mut value, rv);
        let json = serde_json::to_vec(&value).ok()?;
        let line = event_line("DELETED", &json);
        let start = line_prefix("DELETED").len();
        let obj_json = line.slice(start..line.len() - LINE_SUFFIX.len());
        Some(Event {
            ty: EventType::Deleted,
            rv,
            obj: Arc::new(Obj::with_json(key, rv, value, obj_json)),
            prev: Some(old),
            line,
        })
    }

    fn apply_locked(&self, st: &mut State, ty: StoreEventType, kv: &KeyValue) {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        let rv = kv.mod_revision;
        st.rv = st.rv.max(rv);
        let prev = st.objects.get(&key).cloned();
        let decoded = match ty {
            StoreEventType::Put => match serde_json::from_slice::<Value>(&kv.value) {
                Ok(mut value) => {
                    set_resource_version(&mut value, rv);
                    serde_json::to_vec(&value).ok().map(|j| (value, j))
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "undecodable stored object; dropping it from the cache");
                    None
                }
            },
            StoreEventType::Delete => None,
        };
        let event = match decoded {
            Some((value, json)) => {
                let ty = if kv.create_revision == kv.mod_revision || prev.is_none() {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                let line = event_line(ty.as_str(), &json);
                let start = line_prefix(ty.as_str()).len();
                let obj_json = line.slice(start..line.len() - LINE_SUFFIX.len());
                let obj = Arc::new(Obj::with_json(&key, rv, value, obj_json));
                if ty == EventType::Added {
                    let _ = obj.added_line.set(line.clone());
                }
                st.objects.insert(key, obj.clone());
                Event {
                    ty,
                    rv,
                    obj,
                    prev,
                    line,
                }
            }
            // A delete, or a value that cannot be decoded: the object is gone for clients.
            None => {
                let Some(old) = st.objects.remove(&key) else {
                    return;
                };
                match Self::deleted_event(&key, old, rv) {
                    Some(ev) => ev,
                    None => return,
                }
            }
        };
        let event = Arc::new(event);
        if st.ring.len() == self.capacity {
            if let Some(old) = st.ring.pop_front() {
                st.window_start = st.window_start.max(old.rv);
            }
        }
        st.ring.push_back(event.clone());
        let _ = st.tx.send(event);
    }

    fn advance(&self, rv: i64) {
        let mut st = self.state.write();
        if rv > st.rv {
            st.rv = rv;
        }
        let rv = st.rv;
        drop(st);
        self.rv_tx.send_if_modified(|cur| {
            if *cur != rv {
                *cur = rv;
                true
            } else {
                false
            }
        });
    }
}

/// Lists the whole resource at one revision, page by page.
async fn relist(cache: &Cache, store: &Store) -> Result<(), StoreError> {
    let prefix = cache.resource.prefix();
    let end = prefix_end(prefix.as_bytes());
    let mut objects = BTreeMap::new();
    let mut start = prefix.as_bytes().to_vec();
    let mut rev = 0;
    loop {
        let page = store.range(&start, &end, rev, 1000).await?;
        if rev == 0 {
            rev = page.revision;
        }
        for kv in &page.kvs {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            match Obj::decode(&key, &kv.value, kv.mod_revision) {
                Ok(o) => {
                    objects.insert(key, Arc::new(o));
                }
                Err(e) => tracing::warn!(error = %e, "skipping undecodable stored object"),
            }
        }
        match (page.more, page.kvs.last()) {
            (true, Some(last)) => {
                start = last.key.to_vec();
                start.push(0);
            }
            _ => break,
        }
    }
    let n = objects.len();
    cache.reset(objects, rev);
    tracing::info!(
        resource = cache.resource.plural,
        objects = n,
        revision = rev,
        "watch cache listed"
    );
    Ok(())
}

/// How often the cache asks the store for a progress notification while idle, so that its
/// revision (and the bookmarks it sends) keep up with writes to other resources.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Feeds the cache: list, then watch from the next revision; re-watch after a broken stream;
/// re-list after compaction.
async fn feed(cache: Arc<Cache>, store: Store, mut progress_rx: mpsc::Receiver<()>) {
    let mut backoff = Duration::from_millis(100);
    let mut need_list = true;
    loop {
        if need_list {
            if let Err(e) = relist(&cache, &store).await {
                tracing::warn!(resource = cache.resource.plural, error = %e, "watch cache list failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            need_list = false;
        }
        let from = cache.revision() + 1;
        let prefix = cache.resource.prefix();
        let (req_tx, req_rx) = mpsc::channel::<WatchRequest>(8);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: Bytes::from(prefix.clone().into_bytes()),
                range_end: Bytes::from(prefix_end(prefix.as_bytes())),
                start_revision: from,
                progress_notify: true,
                ..Default::default()
            })),
        };
        if req_tx.send(create).await.is_err() {
            continue;
        }
        let mut client = store.watch_client();
        let mut stream = match client
            .watch(tokio_stream::wrappers::ReceiverStream::new(req_rx))
            .await
        {
            Ok(s) => s.into_inner(),
            Err(e) => {
                tracing::warn!(resource = cache.resource.plural, error = %e, "store watch failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.message() => {
                    let resp = match msg {
                        Ok(Some(r)) => r,
                        Ok(None) => {
                            tracing::info!(resource = cache.resource.plural, "store watch ended; re-watching");
                            break;
                        }
                        Err(e) => {
                            let err = StoreError::from(e);
                            tracing::info!(resource = cache.resource.plural, error = %err, "store watch broke; re-watching");
                            if matches!(err, StoreError::Compacted) {
                                need_list = true;
                            }
                            tokio::time::sleep(backoff).await;
                            break;
                        }
                    };
                    backoff = Duration::from_millis(100);
                    if resp.compact_revision > 0 || (resp.canceled && !resp.created) {
                        tracing::info!(resource = cache.resource.plural, compacted = resp.compact_revision, reason = %resp.cancel_reason, "store watch cancelled; re-listing");
                        need_list = true;
                        break;
                    }
                    if resp.events.is_empty() {
                        if !resp.created {
                            // A progress notification: every event up to this revision has
                            // been delivered.
                            if let Some(h) = resp.header {
                                cache.advance(h.revision);
                            }
                        }
                        continue;
                    }
                    let n = resp.events.len();
                    let batch = resp
                        .events
                        .into_iter()
                        .filter_map(|ev| {
                            let ty = StoreEventType::try_from(ev.r#type).unwrap_or(StoreEventType::Put);
                            ev.kv.map(|kv| (ty, kv))
                        })
                        .collect();
                    cache.apply_batch(batch);
                    cache.metrics.watch_events(cache.resource.plural, n as u64);
                    let rv = cache.revision();
                    cache.rv_tx.send_replace(rv);
                }
                Some(()) = progress_rx.recv() => {
                    let req = WatchRequest { request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})) };
                    if req_tx.send(req).await.is_err() {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    let req = WatchRequest { request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})) };
                    if req_tx.send(req).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_embed_the_object_once() {
        let obj = br#"{"kind":"Pod","metadata":{"name":"a"}}"#;
        let line = event_line("MODIFIED", obj);
        assert_eq!(
            &line[..],
            br#"{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a"}}}
"#
        );
        let start = line_prefix("MODIFIED").len();
        assert_eq!(&line.slice(start..line.len() - 2)[..], &obj[..]);
    }
}
