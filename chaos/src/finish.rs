//! The end of a run: make sure nothing acknowledged was lost.
//!
//! With the traffic stopped and every fault healed: read the final revision, let the historian
//! catch up to it, then kill every member with SIGKILL at once (only what was fsynced survives),
//! start them all again and read back, from the restarted cluster:
//! - the current revision (it must not have gone backwards);
//! - every key of the run at the final revision;
//! - from each member, by a watch on that member, every event from the oldest retained revision
//!   to the final one (each member's own copy of the history);
//! - each member's HashKV at the final revision.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata_proto::etcdserverpb::{
    kv_client::KvClient, maintenance_client::MaintenanceClient, watch_client::WatchClient,
    watch_request::RequestUnion, HashKvRequest, RangeRequest, WatchCreateRequest, WatchRequest,
};
use tonic::transport::{Channel, Endpoint};

use crate::cluster::{Cluster, DEADLINE};
use crate::history::{Event, Kv, Recorder};
use crate::traffic::kv_of;

async fn channel(url: String) -> Result<Channel, String> {
    Endpoint::from_shared(url.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| format!("{url}: {e}"))
}

/// Retries `f` (a read against the restarted cluster) until it works or the deadline passes.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() > end => return Err(format!("{what}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The current revision, by a linearizable read through member `i`.
async fn revision(c: &Cluster, i: usize) -> Result<i64, String> {
    let mut kv = KvClient::new(channel(c.client_url(i)).await?);
    let r = kv
        .range(RangeRequest {
            key: b"\0".to_vec().into(),
            count_only: true,
            ..Default::default()
        })
        .await
        .map_err(|s| s.message().to_string())?;
    Ok(r.into_inner().header.map_or(0, |h| h.revision))
}

/// Brings every member back (resumed, started), healthy, with whole links.
pub async fn heal_everything(c: &mut Cluster) -> Result<(), String> {
    c.net.heal(c.len())?;
    for i in 0..c.len() {
        if c.paused(i) {
            c.resume(i)?;
        }
        c.spawn(i)?;
    }
    let all: Vec<usize> = (0..c.len()).collect();
    c.wait_healthy(&all, DEADLINE * 2).await
}

/// Step one: the final revision, once the historian has everything up to it.
pub async fn final_revision(c: &mut Cluster, historian: &Arc<AtomicI64>) -> Result<i64, String> {
    heal_everything(c).await?;
    let rev = retry("read the final revision", || revision(c, 0)).await?;
    let end = tokio::time::Instant::now() + DEADLINE;
    while historian.load(Ordering::Relaxed) < rev {
        if tokio::time::Instant::now() > end {
            return Err(format!(
                "the historian did not reach revision {rev} (it is at {})",
                historian.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(rev)
}

/// Step two: kill every member at once, restart them all, read everything back into `rec`.
pub async fn restart_and_read(
    c: &mut Cluster,
    rec: &Recorder,
    final_rev: i64,
) -> Result<(), String> {
    for i in 0..c.len() {
        c.kill9(i);
    }
    heal_everything(c).await?;
    let (prefix, compacted) = rec.with(|h| {
        (
            h.prefix.clone(),
            h.compactions.iter().map(|c| c.0).max().unwrap_or(0),
        )
    });
    let after = retry("read the revision after the restart", || revision(c, 0)).await?;
    let mut end = prefix.clone().into_bytes();
    if let Some(l) = end.last_mut() {
        *l += 1;
    }
    let url = c.client_url(0);
    let kvs: Vec<Kv> = retry("read the run's keys at the final revision", || {
        let (url, prefix, end) = (url.clone(), prefix.clone(), end.clone());
        async move {
            let mut kv = KvClient::new(channel(url).await?);
            let r = kv
                .range(RangeRequest {
                    key: prefix.into_bytes().into(),
                    range_end: end.into(),
                    revision: final_rev,
                    ..Default::default()
                })
                .await
                .map_err(|s| s.message().to_string())?;
            Ok(r.into_inner().kvs.iter().map(kv_of).collect())
        }
    })
    .await?;
    let from = compacted + 1;
    let mut replayed = Vec::new();
    let mut hashes = Vec::new();
    for i in 0..c.len() {
        let name = c.members[i].name.clone();
        let url = c.client_url(i);
        let events = retry(&format!("replay {name}'s history"), || {
            replay(url.clone(), from, final_rev)
        })
        .await?;
        replayed.push((name.clone(), events));
        let hash = retry(&format!("HashKV of {name}"), || {
            let url = url.clone();
            async move {
                let mut m = MaintenanceClient::new(channel(url).await?);
                let r = m
                    .hash_kv(HashKvRequest {
                        revision: final_rev,
                    })
                    .await
                    .map_err(|s| s.message().to_string())?;
                Ok(r.into_inner().hash)
            }
        })
        .await?;
        hashes.push((name, hash));
    }
    rec.with(|h| {
        h.final_revision = final_rev;
        h.restart_revision = after;
        h.final_state = kvs;
        h.replay_from = from;
        h.replayed = replayed;
        h.hashes = hashes;
    });
    Ok(())
}

/// Every event from `from` to `to` on every key, as the member at `url` has them.
async fn replay(url: String, from: i64, to: i64) -> Result<Vec<Event>, String> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: b"\0".to_vec().into(),
            range_end: b"\0".to_vec().into(),
            start_revision: from,
            prev_kv: false,
            ..Default::default()
        })),
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut w = WatchClient::new(channel(url).await?);
    let mut stream = w
        .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let mut out = Vec::new();
    if from > to {
        return Ok(out);
    }
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .map_err(|_| "the replay watch went silent".to_string())?
            .map_err(|s| s.message().to_string())?
            .ok_or("the replay watch ended")?;
        if msg.canceled {
            return Err(format!(
                "the replay watch was cancelled: {} (compacted at {})",
                msg.cancel_reason, msg.compact_revision
            ));
        }
        for e in &msg.events {
            let ev = Event {
                delete: e.r#type == strata_proto::mvccpb::event::EventType::Delete as i32,
                kv: e
                    .kv
                    .as_ref()
                    .map(kv_of)
                    .unwrap_or_else(|| kv_of(&Default::default())),
                prev: None,
            };
            if ev.kv.mod_revision > to {
                drop(tx);
                return Ok(out);
            }
            out.push(ev);
        }
        if out.last().is_some_and(|e| e.kv.mod_revision == to) {
            // Events of the last revision arrive in one response.
            drop(tx);
            return Ok(out);
        }
    }
}
