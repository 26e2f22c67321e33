//! Periodic compaction, so faults also land during compactions (and snapshots, which members
//! take every `--snapshot-count` entries). It compacts only revisions the historian already
//! has, keeping `keep` revisions behind it, so watchers resuming far back meet a compacted
//! revision now and then, as they would against a real cluster.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata_proto::etcdserverpb::{kv_client::KvClient, CompactionRequest};

use super::Ctx;

pub async fn run(ctx: Arc<Ctx>, historian: Arc<AtomicI64>, every: Duration, keep: i64) {
    let mut done = 0i64;
    let mut member = 0usize;
    while super::pause(&ctx, every).await {
        let target = historian.load(Ordering::Relaxed) - keep;
        if target <= done.max(1) {
            continue;
        }
        member = (member + 1) % ctx.channels.len();
        let mut kv = KvClient::new(ctx.channels[member].clone());
        // Recorded before it is sent: a compaction that times out may still be applied, and
        // the watch checker must accept watchers cancelled by it.
        let at = ctx.clock.now();
        ctx.rec.with(|h| h.compactions.push((target, at)));
        let req = CompactionRequest {
            revision: target,
            physical: false,
        };
        if let Ok(Ok(_)) = tokio::time::timeout(ctx.op_timeout, kv.compact(req)).await {
            done = target;
        }
    }
}
