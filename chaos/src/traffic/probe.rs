//! Availability probes: a put every `interval`, each its own task with its own deadline, sent to
//! the members in turn. Sequential clients stuck on a dead member's timeout would hide when
//! writes became possible again; independent probes do not. Probes are ordinary puts on their
//! own keys and are checked like every other operation.

use std::sync::Arc;
use std::time::Duration;

use strata_proto::etcdserverpb::{kv_client::KvClient, PutRequest};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{failure, timed_out, Ctx};
use crate::history::{Input, Op, Output};

/// Client id of the probes in the history.
pub const PROBE_CLIENT: u32 = 0;

pub async fn run(ctx: Arc<Ctx>, interval: Duration, timeout: Duration, keys: usize) {
    let in_flight = Arc::new(Semaphore::new(64));
    let mut tasks = JoinSet::new();
    let mut n: u64 = 0;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stop = ctx.stop.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::stop::raised(&mut stop) => break,
        }
        while tasks.try_join_next().is_some() {}
        // Too many stuck: skip this tick rather than pile up.
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            continue;
        };
        n += 1;
        let member = (n as usize) % ctx.channels.len();
        let key = ctx.probe_key((n as usize) % keys.max(1));
        let value = format!("p.{n}");
        let ctx2 = ctx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let mut kv = KvClient::new(ctx2.channels[member].clone());
            let req = PutRequest {
                key: key.clone().into(),
                value: value.clone().into(),
                ..Default::default()
            };
            let call = ctx2.clock.now();
            let r = tokio::time::timeout(timeout, kv.put(req)).await;
            let now = ctx2.clock.now();
            let (output, ret) = match r {
                Ok(Ok(resp)) => (
                    Output::Put {
                        rev: resp.into_inner().header.map_or(0, |h| h.revision),
                    },
                    Some(now),
                ),
                Ok(Err(s)) => {
                    let o = failure(&s);
                    let ret = matches!(o, Output::Refused { .. }).then_some(now);
                    (o, ret)
                }
                Err(_) => (timed_out(timeout), None),
            };
            ctx2.rec.op(Op {
                id: 0,
                client: PROBE_CLIENT,
                member,
                call,
                ret,
                input: Input::Put {
                    key,
                    value,
                    lease: 0,
                },
                output,
            });
        });
    }
    // Let the last probes finish (each has its own deadline).
    while tasks.join_next().await.is_some() {}
}
