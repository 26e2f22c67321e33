//! Watchers, and the historian.
//!
//! A watcher opens a watch on its range at a start revision, records every response, and now
//! and then cancels and resumes at the revision after the last one it knows it has everything
//! up to (its last event or progress notification), or asks for progress (RequestProgress).
//! When its stream breaks (the member died, was cut off, or, with `require_leader`, lost its
//! leader) it resumes the same way on the next member. Each stream is one recorded
//! [`WatchSession`]; the watch checker holds each session, and the chain of them, to etcd's
//! guarantees.
//!
//! The historian is a watcher of every key from revision 1 with prev_kv that never cancels:
//! the events it receives are the run's revision history. The compactor stays behind it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_proto::etcdserverpb::{
    kv_client::KvClient, watch_client::WatchClient, watch_request::RequestUnion, RangeRequest,
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
};
use strata_proto::mvccpb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{kv_of, Ctx};
use crate::history::{Event, WatchResponse, WatchSession};

#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub id: u32,
    pub key: String,
    pub range_end: String,
    pub prev_kv: bool,
    pub progress_notify: bool,
    /// Ask the member to end the watch when it has no leader (etcd's `hasleader` metadata).
    pub require_leader: bool,
    /// Start this many revisions before the current one (replaying history), at first.
    pub start_back: i64,
    /// Cancel and resume after a random time in this range; None: never.
    pub resume_every: Option<(Duration, Duration)>,
}

/// How a session ended.
enum End {
    /// Cancelled by us (to resume) or by the stop signal.
    Cancelled,
    /// The stream failed or the member cancelled it.
    Broken,
    /// Cancelled because the start revision was compacted: resume at this revision.
    Compacted(i64),
}

fn event_of(e: &mvccpb::Event) -> Event {
    Event {
        delete: e.r#type == mvccpb::event::EventType::Delete as i32,
        kv: e
            .kv
            .as_ref()
            .map(kv_of)
            .unwrap_or_else(|| kv_of(&Default::default())),
        prev: e.prev_kv.as_ref().map(kv_of),
    }
}

/// The revision the member is at now (a linearizable read of nothing).
async fn current_revision(ctx: &Ctx, member: usize) -> Option<i64> {
    let mut kv = KvClient::new(ctx.channels[member].clone());
    let req = RangeRequest {
        key: format!("{}none", ctx.prefix).into(),
        count_only: true,
        ..Default::default()
    };
    let r = tokio::time::timeout(ctx.op_timeout, kv.range(req))
        .await
        .ok()?
        .ok()?;
    r.into_inner().header.map(|h| h.revision)
}

/// A watcher; `sink` receives each finished session.
pub async fn run(ctx: Arc<Ctx>, spec: WatchSpec, mut member: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next: Option<i64> = None;
    while !ctx.stopped() {
        let start = match next {
            Some(s) => s,
            None => match current_revision(&ctx, member).await {
                Some(r) => (r + 1 - spec.start_back).max(1),
                None => {
                    member = (member + 1) % ctx.channels.len();
                    if !super::pause(&ctx, Duration::from_millis(100)).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let lifetime = spec
            .resume_every
            .map(|(lo, hi)| lo + (hi.saturating_sub(lo)).mul_f64(rng.random::<f64>()));
        let (session, end) = session(&ctx, &spec, member, start, lifetime, &mut rng, None).await;
        let seen = seen_up_to(&session);
        ctx.rec.with(|h| h.watches.push(session));
        next = Some(match end {
            End::Compacted(c) => c,
            _ => seen + 1,
        });
        if matches!(end, End::Broken) {
            member = (member + 1) % ctx.channels.len();
            if !super::pause(&ctx, Duration::from_millis(100)).await {
                break;
            }
        }
    }
}

/// The highest revision a session knows it has everything up to.
fn seen_up_to(s: &WatchSession) -> i64 {
    let mut seen = s.start_revision - 1;
    for r in &s.responses {
        if r.is_progress() {
            seen = seen.max(r.rev);
        }
        if let Some(e) = r.events.last() {
            seen = seen.max(e.kv.mod_revision);
        }
    }
    seen
}

/// The historian: every key from revision 1, resumed on failure, never cancelled. Its events go
/// to the revision history; `last` follows the highest revision it has everything up to.
pub async fn historian(ctx: Arc<Ctx>, last: Arc<AtomicI64>) {
    let spec = WatchSpec {
        id: 0,
        key: "\0".into(),
        range_end: "\0".into(),
        prev_kv: true,
        progress_notify: true,
        require_leader: false,
        start_back: 0,
        resume_every: None,
    };
    let mut rng = StdRng::seed_from_u64(0);
    let mut member = 0;
    let mut next = 1;
    while !ctx.stopped() {
        let (s, _) = session(&ctx, &spec, member, next, None, &mut rng, Some(&last)).await;
        // Everything up to `last` (its last event or progress notification) is in the history.
        next = last.load(Ordering::Relaxed).max(next - 1) + 1;
        ctx.rec
            .with(|h| h.historian_sessions.push(s.start_revision));
        member = (member + 1) % ctx.channels.len();
        if !super::pause(&ctx, Duration::from_millis(50)).await {
            break;
        }
    }
}

/// One watch stream. With `history`, events go to the revision history instead of the
/// session (which then only keeps non-event responses).
async fn session(
    ctx: &Ctx,
    spec: &WatchSpec,
    member: usize,
    start: i64,
    lifetime: Option<Duration>,
    rng: &mut StdRng,
    history: Option<&Arc<AtomicI64>>,
) -> (WatchSession, End) {
    let mut s = WatchSession {
        watcher: spec.id,
        member,
        key: spec.key.clone(),
        range_end: spec.range_end.clone(),
        start_revision: start,
        prev_kv: spec.prev_kv,
        progress_notify: spec.progress_notify,
        broken: false,
        responses: Vec::new(),
    };
    let (tx, rx) = mpsc::channel::<WatchRequest>(8);
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: spec.key.clone().into(),
            range_end: spec.range_end.clone().into(),
            start_revision: start,
            progress_notify: spec.progress_notify,
            filters: vec![],
            prev_kv: spec.prev_kv,
            watch_id: 0,
            fragment: false,
        })),
    };
    if tx.send(create).await.is_err() {
        s.broken = true;
        return (s, End::Broken);
    }
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    if spec.require_leader {
        req.metadata_mut().insert(
            "hasleader",
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    let mut client = WatchClient::new(ctx.channels[member].clone());
    let opened = tokio::time::timeout(ctx.op_timeout, client.watch(req)).await;
    let mut stream = match opened {
        Ok(Ok(r)) => r.into_inner(),
        _ => {
            s.broken = true;
            return (s, End::Broken);
        }
    };
    let deadline = lifetime.map(|l| tokio::time::Instant::now() + l);
    let mut progress_tick = tokio::time::interval(Duration::from_millis(700));
    progress_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stop = ctx.stop.clone();
    let mut watch_id = None;
    let mut cancelling = false;
    // A stream that stays silent longer than this (no events, no progress) while asked for
    // progress is treated as stuck and re-opened elsewhere.
    let silence = Duration::from_secs(15);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        let until_deadline = async {
            match deadline {
                Some(d) if !cancelling => tokio::time::sleep_until(d).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = stream.message() => {
                let resp = match msg {
                    Ok(Some(r)) => r,
                    _ => {
                        s.broken = true;
                        return (s, End::Broken);
                    }
                };
                last_heard = tokio::time::Instant::now();
                let rec = WatchResponse {
                    at: ctx.clock.now(),
                    rev: resp.header.as_ref().map_or(0, |h| h.revision),
                    created: resp.created,
                    canceled: resp.canceled,
                    compact_revision: resp.compact_revision,
                    fragment: resp.fragment,
                    events: resp.events.iter().map(event_of).collect(),
                };
                if resp.created {
                    watch_id = Some(resp.watch_id);
                }
                let canceled = rec.canceled;
                let compacted = rec.compact_revision;
                match history {
                    Some(last) => {
                        let top = rec.events.last().map(|e| e.kv.mod_revision);
                        let progress = rec.is_progress().then_some(rec.rev);
                        let events = rec.events.clone();
                        ctx.rec.with(|h| h.revisions.extend(events));
                        if let Some(r) = top.or(progress) {
                            last.fetch_max(r, Ordering::Relaxed);
                        }
                        s.responses.push(WatchResponse { events: Vec::new(), ..rec });
                    }
                    None => s.responses.push(rec),
                }
                if canceled {
                    if compacted > 0 {
                        return (s, End::Compacted(compacted));
                    }
                    if cancelling {
                        return (s, End::Cancelled);
                    }
                    s.broken = true;
                    return (s, End::Broken);
                }
            }
            _ = until_deadline => {
                if let Some(id) = watch_id {
                    let cancel = WatchRequest {
                        request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest { watch_id: id })),
                    };
                    cancelling = tx.send(cancel).await.is_ok();
                }
                if !cancelling {
                    return (s, End::Cancelled);
                }
            }
            _ = progress_tick.tick() => {
                if last_heard.elapsed() > silence && !cancelling {
                    s.broken = true;
                    return (s, End::Broken);
                }
                if spec.progress_notify && rng.random_bool(0.3) {
                    let p = WatchRequest {
                        request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
                    };
                    let _ = tx.try_send(p);
                }
            }
            _ = crate::stop::raised(&mut stop) => return (s, End::Cancelled),
        }
    }
}
