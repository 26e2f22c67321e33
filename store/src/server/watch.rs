//! The Watch service: one gRPC stream carries many watchers. Requests (create, cancel, progress)
//! are read by one task; everything sent back (created/cancelled confirmations and events) flows
//! through the stream's one bounded queue, so a watcher's confirmation always precedes its events.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use prost::Message as _;
use strata_proto::etcdserverpb::{
    watch_request::RequestUnion, watch_server::Watch, WatchCreateRequest, WatchRequest,
    WatchResponse,
};
use strata_proto::mvccpb::Event;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::status::to_status;
use crate::error::Error;
use crate::member::Member;
use crate::watch::{StreamMsg, WatchSpec};

pub struct WatchService {
    pub member: Arc<Member>,
}

fn spec(c: &WatchCreateRequest) -> WatchSpec {
    use strata_proto::etcdserverpb::watch_create_request::FilterType;
    WatchSpec {
        key: c.key.clone(),
        range_end: c.range_end.clone(),
        start_revision: c.start_revision,
        no_put: c.filters.contains(&(FilterType::Noput as i32)),
        no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
        prev_kv: c.prev_kv,
        progress_notify: c.progress_notify,
        fragment: c.fragment,
    }
}

/// Control messages from the request reader, sent through the same queue as events.
pub enum Control {
    Created { watch_id: i64, rev: i64 },
    Rejected { watch_id: i64, reason: String },
    Canceled { watch_id: i64 },
}

type Out = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = Out;

    async fn watch(&self, req: Request<Streaming<WatchRequest>>) -> Result<Response<Out>, Status> {
        let member = self.member.clone();
        // etcd clients set this (clientv3.WithRequireLeader) to have the stream fail, rather than
        // go quiet, while the member has no leader.
        let require_leader = req
            .metadata()
            .get("hasleader")
            .is_some_and(|v| v.as_bytes() == b"true");
        if require_leader && member.raft.status().leader == 0 {
            return Err(to_status(Error::NoLeader));
        }
        let mut inbound = req.into_inner();
        let (stream, events) = member.hub.open_stream();
        let (ctl_tx, ctl_rx) = mpsc::channel::<Control>(64);
        member.metrics.watch_streams.fetch_add(1, Ordering::Relaxed);

        // The reader owns the stream's registration: when the client goes away it ends, and
        // dropping the stream removes its watchers from the hub.
        let reader_member = member.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = inbound.next().await {
                let ctl = match req.request_union {
                    Some(RequestUnion::CreateRequest(c)) => {
                        let rev = reader_member.mvcc.current_revision();
                        // Confirm before registering, so the confirmation precedes the events.
                        let id_hint = c.watch_id;
                        match stream.reserve(id_hint) {
                            Ok(id) => {
                                if ctl_tx
                                    .send(Control::Created { watch_id: id, rev })
                                    .await
                                    .is_err()
                                {
                                    break;
                                }
                                stream.start(id, spec(&c));
                                continue;
                            }
                            Err(_) => Control::Rejected {
                                watch_id: id_hint,
                                reason: "mvcc: duplicate watch ID provided on the WatchStream"
                                    .into(),
                            },
                        }
                    }
                    Some(RequestUnion::CancelRequest(c)) => {
                        if !stream.cancel(c.watch_id) {
                            continue;
                        }
                        Control::Canceled {
                            watch_id: c.watch_id,
                        }
                    }
                    Some(RequestUnion::ProgressRequest(_)) => {
                        // On the event queue, behind every event up to its revision (the
                        // control queue would overtake them).
                        stream.request_progress();
                        continue;
                    }
                    None => continue,
                };
                if ctl_tx.send(ctl).await.is_err() {
                    break;
                }
            }
            reader_member
                .metrics
                .watch_streams
                .fetch_sub(1, Ordering::Relaxed);
            drop(stream);
        });

        let grace = Duration::from_millis(member.cfg.election_timeout);
        let mut leader = member.raft.leader_watch();
        let out = responses(member, ctl_rx, events);
        if !require_leader {
            return Ok(Response::new(Box::pin(out)));
        }
        // Lost leader for a whole election timeout: end the stream with etcd's error.
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let leader_lost = async move {
            loop {
                if leader.wait_for(|l| *l == 0).await.is_err() {
                    return std::future::pending().await;
                }
                let back = tokio::time::timeout(grace, leader.wait_for(|l| *l != 0)).await;
                if back.is_err() {
                    flag.store(true, Ordering::Release);
                    return;
                }
            }
        };
        let out = out.take_until(leader_lost).chain(
            futures::stream::once(async move {
                lost.load(Ordering::Acquire)
                    .then(|| Err(to_status(Error::NoLeader)))
            })
            .filter_map(std::future::ready),
        );
        Ok(Response::new(Box::pin(out)))
    }
}

enum Item {
    Ctl(Control),
    Msg(StreamMsg),
}

/// Turns the stream's control and event queues into WatchResponses.
fn responses(
    member: Arc<Member>,
    ctl: mpsc::Receiver<Control>,
    events: mpsc::Receiver<StreamMsg>,
) -> impl Stream<Item = Result<WatchResponse, Status>> + Send {
    let ctl = tokio_stream::wrappers::ReceiverStream::new(ctl).map(Item::Ctl);
    let events = tokio_stream::wrappers::ReceiverStream::new(events).map(Item::Msg);
    // Control first when both are ready: a Created must not be overtaken by its own events.
    let merged = futures::stream::select_with_strategy(ctl, events, |_: &mut ()| {
        futures::stream::PollNext::Left
    });
    merged.flat_map(move |item| {
        let out: VecDeque<Result<WatchResponse, Status>> =
            to_responses(&member, item).into_iter().map(Ok).collect();
        futures::stream::iter(out)
    })
}

fn to_responses(m: &Member, item: Item) -> Vec<WatchResponse> {
    let header = |rev: i64| Some(m.header(rev));
    let current = m.mvcc.current_revision();
    match item {
        Item::Ctl(Control::Created { watch_id, rev }) => {
            vec![WatchResponse {
                header: header(rev),
                watch_id,
                created: true,
                ..Default::default()
            }]
        }
        Item::Ctl(Control::Rejected { watch_id, reason }) => vec![WatchResponse {
            header: header(current),
            watch_id,
            created: true,
            canceled: true,
            cancel_reason: reason,
            ..Default::default()
        }],
        Item::Ctl(Control::Canceled { watch_id }) => {
            vec![WatchResponse {
                header: header(current),
                watch_id,
                canceled: true,
                ..Default::default()
            }]
        }
        Item::Msg(StreamMsg::Progress { watch_id, rev }) => {
            vec![WatchResponse {
                header: header(rev),
                watch_id,
                ..Default::default()
            }]
        }
        Item::Msg(StreamMsg::Compacted {
            watch_id,
            compact_rev,
        }) => vec![WatchResponse {
            header: header(current),
            watch_id,
            canceled: true,
            compact_revision: compact_rev,
            cancel_reason: crate::error::Error::Compacted.to_string(),
            ..Default::default()
        }],
        Item::Msg(StreamMsg::Canceled { watch_id, reason }) => vec![WatchResponse {
            header: header(current),
            watch_id,
            canceled: true,
            cancel_reason: reason,
            ..Default::default()
        }],
        Item::Msg(StreamMsg::Events {
            watch_id,
            rev,
            events,
            spec,
        }) => {
            let mut evs: Vec<Event> = events.to_vec();
            if spec.prev_kv {
                for ev in &mut evs {
                    if let Some(kv) = &ev.kv {
                        ev.prev_kv = m.mvcc.prev_kv(&kv.key, rev).ok().flatten();
                    }
                }
            }
            fragment(
                WatchResponse {
                    header: header(rev),
                    watch_id,
                    events: evs,
                    ..Default::default()
                },
                spec.fragment,
                m.cfg.max_request_bytes,
            )
        }
    }
}

/// Splits a response whose encoding exceeds `limit` into fragments (all but the last marked
/// `fragment`), when the watcher asked for fragmentation; otherwise sends it whole.
fn fragment(resp: WatchResponse, allowed: bool, limit: usize) -> Vec<WatchResponse> {
    if !allowed || resp.encoded_len() <= limit || resp.events.len() <= 1 {
        return vec![resp];
    }
    let mut out = Vec::new();
    let mut cur = WatchResponse {
        events: Vec::new(),
        ..resp.clone()
    };
    let mut size = 0;
    for ev in resp.events {
        let n = ev.encoded_len() + 8;
        if !cur.events.is_empty() && size + n > limit {
            let next = WatchResponse {
                events: Vec::new(),
                ..cur.clone()
            };
            cur.fragment = true;
            out.push(std::mem::replace(&mut cur, next));
            size = 0;
        }
        size += n;
        cur.events.push(ev);
    }
    out.push(cur);
    out
}
