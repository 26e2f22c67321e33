//! WATCH: a chunked stream of `{"type":...,"object":...}` lines served from the watch cache.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderValue, StatusCode};
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use super::list::{filter_from_query, too_large};
use super::objects::{store_error, Ctx};
use crate::cache::{event_line, Cache, Event, Filter, SubscribeError, WatchStart};
use crate::metrics::Metrics;
use crate::registry::Resource;
use crate::status::{ApiError, ApiResult};

const FRESH_WAIT: Duration = Duration::from_secs(3);
/// Frames of initial events are coalesced up to this size.
const FRAME: usize = 64 * 1024;
/// At most this many queued live events are coalesced into one frame.
const BATCH: usize = 64;

fn flag(ctx: &Ctx<'_>, name: &str) -> bool {
    matches!(
        ctx.query.get(name).map(String::as_str),
        Some("true") | Some("1")
    )
}

/// A BOOKMARK line: an empty object of the kind carrying only the resourceVersion.
fn bookmark(res: &Resource, rv: i64, initial_events_end: bool) -> Bytes {
    let mut meta = json!({ "resourceVersion": rv.to_string(), "creationTimestamp": null });
    if initial_events_end {
        meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    let obj = json!({ "kind": res.kind, "apiVersion": res.api_version(), "metadata": meta });
    event_line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
}

fn error_line(e: &ApiError) -> Bytes {
    event_line(
        "ERROR",
        &serde_json::to_vec(&e.status()).unwrap_or_default(),
    )
}

/// Counts a registered watcher while it lives.
struct WatcherGuard {
    metrics: Metrics,
    resource: &'static str,
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.metrics.watcher_delta(self.resource, -1);
    }
}

/// The state of one watch stream.
struct Watcher {
    res: &'static Resource,
    cache: Arc<Cache>,
    filter: Filter,
    pending: VecDeque<Bytes>,
    /// Live events received while initial events were still being sent.
    backlog: VecDeque<Arc<Event>>,
    rx: Option<broadcast::Receiver<Arc<Event>>>,
    /// Events at or below this revision were already covered by the start.
    floor: i64,
    bookmarks: bool,
    bookmark_every: Duration,
    coalesce: Duration,
    last_bookmark_rv: i64,
    next_bookmark: tokio::time::Instant,
    deadline: tokio::time::Instant,
    metrics: Metrics,
    _guard: WatcherGuard,
}

impl Watcher {
    /// The next frame, or None when the watch is over.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.take_pending() {
            // Keep taking live events while a large initial state is being sent, so that a
            // watcher is not closed as too slow just because its start was big. Only
            // pointers are held; the events are shared.
            if !self.drain_into_backlog() {
                return self.too_slow();
            }
            return Some(frame);
        }
        if !self.backlog.is_empty() {
            let mut lines = Vec::new();
            while lines.len() < BATCH {
                let Some(ev) = self.backlog.pop_front() else {
                    break;
                };
                self.push_event(&ev, &mut lines);
            }
            if let Some(frame) = join(lines) {
                return Some(frame);
            }
        }
        loop {
            let rx = self.rx.as_mut()?;
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => {
                        let mut lines = Vec::new();
                        self.push_event(&ev, &mut lines);
                        if !self.coalesce.is_zero() && !lines.is_empty() {
                            tokio::time::sleep(self.coalesce).await;
                        }
                        // Coalesce whatever else is already queued.
                        while lines.len() < BATCH {
                            match self.rx.as_mut()?.try_recv() {
                                Ok(ev) => self.push_event(&ev, &mut lines),
                                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                    return self.too_slow();
                                }
                                Err(_) => break,
                            }
                        }
                        match join(lines) {
                            Some(frame) => return Some(frame),
                            None => continue,
                        }
                    }
                    Err(RecvError::Lagged(_)) => return self.too_slow(),
                    // The cache re-listed: the client re-watches from its last revision.
                    Err(RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(self.next_bookmark), if self.bookmarks => {
                    self.next_bookmark = tokio::time::Instant::now() + self.bookmark_every;
                    // The cache publishes a revision only after sending every event up to it,
                    // so once the channel is drained after reading the revision, everything up
                    // to it has been delivered and the bookmark may claim it.
                    let rv = self.cache.revision();
                    let mut lines = Vec::new();
                    loop {
                        match self.rx.as_mut()?.try_recv() {
                            Ok(ev) => self.push_event(&ev, &mut lines),
                            Err(broadcast::error::TryRecvError::Lagged(_)) => return self.too_slow(),
                            Err(broadcast::error::TryRecvError::Closed) => {
                                self.rx = None;
                                return join(lines);
                            }
                            Err(broadcast::error::TryRecvError::Empty) => break,
                        }
                    }
                    if rv > self.last_bookmark_rv && rv > self.floor {
                        self.last_bookmark_rv = rv;
                        lines.push(bookmark(self.res, rv, false));
                    }
                    if let Some(frame) = join(lines) {
                        return Some(frame);
                    }
                }
                _ = tokio::time::sleep_until(self.deadline) => {
                    self.rx = None;
                    return None;
                }
            }
        }
    }

    /// Moves queued live events into the backlog; false when the watcher fell too far behind.
    fn drain_into_backlog(&mut self) -> bool {
        let Some(rx) = self.rx.as_mut() else {
            return true;
        };
        loop {
            match rx.try_recv() {
                Ok(ev) => self.backlog.push_back(ev),
                Err(broadcast::error::TryRecvError::Lagged(_)) => return false,
                Err(_) => return true,
            }
        }
    }

    fn push_event(&mut self, ev: &Event, lines: &mut Vec<Bytes>) {
        if ev.rv <= self.floor {
            return;
        }
        if let Some(line) = self.filter.view(ev) {
            lines.push(line);
        }
    }

    /// A watcher that fell a whole channel behind is closed: its client re-watches.
    fn too_slow(&mut self) -> Option<Bytes> {
        self.metrics.watcher_closed_slow(self.res.plural);
        self.rx = None;
        None
    }

    fn take_pending(&mut self) -> Option<Bytes> {
        let first = self.pending.pop_front()?;
        if first.len() >= FRAME || self.pending.is_empty() {
            return Some(first);
        }
        let mut b = BytesMut::with_capacity(FRAME);
        b.put_slice(&first);
        while let Some(next) = self.pending.front() {
            if b.len() + next.len() > FRAME {
                break;
            }
            b.put_slice(next);
            self.pending.pop_front();
        }
        Some(b.freeze())
    }
}

/// One frame from several lines (shared bytes when there is just one).
fn join(mut lines: Vec<Bytes>) -> Option<Bytes> {
    match lines.len() {
        0 => None,
        1 => lines.pop(),
        _ => {
            let mut b = BytesMut::with_capacity(lines.iter().map(Bytes::len).sum());
            for l in &lines {
                b.put_slice(l);
            }
            Some(b.freeze())
        }
    }
}

/// Parses resourceVersion for a watch.
fn parse_rv(s: &str) -> ApiResult<i64> {
    s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid resourceVersion \"{s}\": must be a non-negative integer"
        ))
    })
}

fn stream_response(frames: impl futures::Stream<Item = Bytes> + Send + 'static) -> Response {
    use futures::StreamExt;
    let body = Body::from_stream(frames.map(Ok::<_, std::convert::Infallible>));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// GET with watch=true.
pub async fn watch(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    let mut filter = filter_from_query(ctx)?;
    if !name.is_empty() {
        // A watch on one object (…/pods/<name>?watch=true) sees only that object.
        let mut fields = ctx.query.get("fieldSelector").cloned().unwrap_or_default();
        if !fields.is_empty() {
            fields.push(',');
        }
        fields.push_str(&format!("metadata.name={name}"));
        filter.fields = crate::selectors::FieldSelector::parse(
            &fields,
            crate::selectors::field_selector_fields(ctx.res.kind),
        )
        .map_err(ApiError::bad_request)?;
    }
    let cache = ctx.api.cache(ctx.res).clone();
    let rv = ctx
        .query
        .get("resourceVersion")
        .filter(|s| !s.is_empty())
        .cloned();
    let bookmarks = flag(ctx, "allowWatchBookmarks");
    let send_initial = ctx.query.get("sendInitialEvents").map(|v| v == "true");
    if send_initial.is_some() {
        let mut errs = Vec::new();
        if ctx.query.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
            errs.push("resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
        }
        if send_initial == Some(true) && !bookmarks {
            errs.push("allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true");
        }
        if !errs.is_empty() {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "ListOptions.meta.k8s.io \"\" is invalid: {}",
                    errs.join(", ")
                ),
            ));
        }
    }
    let requested = match ctx.query.get("timeoutSeconds") {
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds \"{t}\"")))?,
        None => 0,
    };
    let timeout = if requested == 0 {
        // Kubernetes spreads watches without a timeout over [30, 60) minutes.
        Duration::from_secs(1800 + rand::random::<u64>() % 1800)
    } else {
        Duration::from_secs(requested.min(365 * 24 * 3600))
    };
    // Which revision the start must reflect, and whether it starts with the current state.
    let (snapshot, min_rv) = match (send_initial, rv.as_deref()) {
        (Some(true), None) => (true, None),
        (Some(true), Some(v)) => (true, Some(parse_rv(v)?)),
        (Some(false), None) => (false, Some(cache.revision())),
        (Some(false), Some(v)) => (false, Some(parse_rv(v)?)),
        (None, None) => (true, None),
        (None, Some("0")) => (true, Some(0)),
        (None, Some(v)) => (false, Some(parse_rv(v)?)),
    };
    // The revision the cache must have reached before the watch starts.
    let need = match min_rv {
        Some(r) => r,
        None => ctx
            .api
            .store
            .current_revision()
            .await
            .map_err(store_error)?,
    };
    if !cache.wait_for(need, FRESH_WAIT).await {
        if !cache.ready() {
            return Err(ApiError::service_unavailable(format!(
                "the watch cache for {} is not ready yet",
                ctx.res.qualified()
            )));
        }
        return Err(too_large(need, cache.revision()));
    }
    let sub = match cache.subscribe((!snapshot).then_some(need), &filter) {
        Ok(s) => s,
        Err(SubscribeError::NotReady) => {
            return Err(ApiError::service_unavailable(format!(
                "the watch cache for {} is not ready yet",
                ctx.res.qualified()
            )))
        }
        Err(SubscribeError::TooOld { requested, oldest }) => {
            // Kubernetes answers 200 and puts the 410 in the stream.
            let e = ApiError::expired(format!("too old resource version: {requested} ({oldest})"));
            let line = error_line(&e);
            return Ok(stream_response(futures::stream::iter([line])));
        }
    };
    let mut pending = VecDeque::new();
    let floor = match sub.start {
        WatchStart::Snapshot { objects, rv } => {
            for o in &objects {
                pending.push_back(o.added_line());
            }
            if send_initial == Some(true) {
                pending.push_back(bookmark(ctx.res, rv, true));
            }
            rv
        }
        WatchStart::Replay { events, rv } => {
            let mut max = need;
            for ev in &events {
                if let Some(l) = filter.view(ev) {
                    pending.push_back(l);
                }
                max = max.max(ev.rv);
            }
            let _ = rv;
            max
        }
    };
    ctx.api.metrics.watcher_delta(ctx.res.plural, 1);
    let watcher = Watcher {
        res: ctx.res,
        cache,
        filter,
        pending,
        backlog: VecDeque::new(),
        rx: Some(sub.rx),
        floor,
        bookmarks,
        bookmark_every: ctx.api.bookmark_interval,
        coalesce: ctx.api.coalesce,
        last_bookmark_rv: floor,
        next_bookmark: tokio::time::Instant::now() + ctx.api.bookmark_interval,
        deadline: tokio::time::Instant::now() + timeout,
        metrics: ctx.api.metrics.clone(),
        _guard: WatcherGuard {
            metrics: ctx.api.metrics.clone(),
            resource: ctx.res.plural,
        },
    };
    let frames = futures::stream::unfold(watcher, |mut w| async move {
        let frame = w.next().await?;
        Some((frame, w))
    });
    Ok(stream_response(frames))
}
