//! Applying one replicated request: put, delete, transaction, compaction, lease grant/revoke.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use strata_proto::etcdserverpb::{
    compare::{CompareResult, CompareTarget, TargetUnion},
    request_op::Request as OpRequest,
    response_op::Response as OpResponse,
    AlarmMember, CompactionResponse, Compare, DeleteRangeRequest, DeleteRangeResponse,
    LeaseGrantResponse, LeaseRevokeResponse, PutRequest, PutResponse, RequestOp, ResponseHeader,
    ResponseOp, TxnRequest, TxnResponse,
};
use strata_proto::mvccpb::KeyValue;
use strata_proto::peer::RaftRequest;

use super::range;
use crate::error::{Error, Result};
use crate::lease::Lessor;
use crate::metrics::Metrics;
use crate::mvcc::{ApplyRound, ReadView, WriteTxn};

/// The applied result of a request, before the server fills in its header's member fields.
#[derive(Debug, Clone)]
pub enum Response {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    Alarm(Vec<AlarmMember>),
    /// A membership change: the member table after it.
    Members(Vec<strata_proto::peer::Member>),
}

pub(super) struct Ctx<'a> {
    pub lessor: &'a Lessor,
    pub metrics: &'a Metrics,
    /// The NOSPACE alarm is raised: only requests that free space are allowed.
    pub no_space: bool,
}

fn header(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision: rev,
        ..Default::default()
    })
}

pub(super) fn apply(
    ctx: &Ctx<'_>,
    round: &mut ApplyRound<'_>,
    req: RaftRequest,
) -> Result<Response> {
    if let Some(put) = req.put {
        if ctx.no_space {
            return Err(Error::NoSpace);
        }
        let mut txn = WriteTxn::new(round);
        let resp = apply_put(ctx, &mut txn, &put)?;
        let rev = txn.revision();
        finish(ctx, txn);
        ctx.metrics.puts.fetch_add(1, Ordering::Relaxed);
        return Ok(Response::Put(PutResponse {
            header: header(rev),
            ..resp
        }));
    }
    if let Some(del) = req.delete_range {
        let mut txn = WriteTxn::new(round);
        let resp = apply_delete(&mut txn, &del)?;
        let rev = txn.header_revision();
        finish(ctx, txn);
        ctx.metrics.deletes.fetch_add(1, Ordering::Relaxed);
        return Ok(Response::DeleteRange(DeleteRangeResponse {
            header: header(rev),
            ..resp
        }));
    }
    if let Some(t) = req.txn {
        if ctx.no_space && has_put(&t) {
            return Err(Error::NoSpace);
        }
        let mut txn = WriteTxn::new(round);
        let mut resp = apply_txn(ctx, &mut txn, &t)?;
        resp.header = header(txn.header_revision());
        finish(ctx, txn);
        ctx.metrics.txns.fetch_add(1, Ordering::Relaxed);
        return Ok(Response::Txn(resp));
    }
    if let Some(c) = req.compaction {
        round.compact(c.revision)?;
        return Ok(Response::Compaction(CompactionResponse {
            header: header(round.revision()),
        }));
    }
    if let Some(g) = req.lease_grant {
        if ctx.no_space {
            return Err(Error::NoSpace);
        }
        let ttl = ctx.lessor.grant(g.id, g.ttl, &mut round.batch)?;
        ctx.metrics.leases_granted.fetch_add(1, Ordering::Relaxed);
        return Ok(Response::LeaseGrant(LeaseGrantResponse {
            header: header(round.revision()),
            id: g.id,
            ttl,
            error: String::new(),
        }));
    }
    if let Some(r) = req.lease_revoke {
        let keys = ctx.lessor.revoke(r.id, &mut round.batch)?;
        let mut txn = WriteTxn::new(round);
        for k in keys {
            txn.delete_range(&k, &[], false)?;
        }
        let rev = txn.header_revision();
        finish(ctx, txn);
        ctx.metrics.leases_revoked.fetch_add(1, Ordering::Relaxed);
        return Ok(Response::LeaseRevoke(LeaseRevokeResponse {
            header: header(rev),
        }));
    }
    Err(Error::InvalidArgument("empty request".into()))
}

/// Commits the transaction into the round and moves keys between leases.
fn finish(ctx: &Ctx<'_>, txn: WriteTxn<'_, '_>) {
    for c in txn.commit() {
        ctx.lessor.reattach(&c.key, c.old, c.new);
    }
}

fn has_put(t: &TxnRequest) -> bool {
    t.success
        .iter()
        .chain(&t.failure)
        .any(|op| match &op.request {
            Some(OpRequest::RequestPut(_)) => true,
            Some(OpRequest::RequestTxn(t)) => has_put(t),
            _ => false,
        })
}

fn apply_put(ctx: &Ctx<'_>, txn: &mut WriteTxn<'_, '_>, p: &PutRequest) -> Result<PutResponse> {
    let need_prev = p.prev_kv || p.ignore_value || p.ignore_lease;
    let prev = if need_prev { txn.get(&p.key)? } else { None };
    if (p.ignore_value || p.ignore_lease) && prev.is_none() {
        return Err(Error::KeyNotFound);
    }
    let value = if p.ignore_value {
        prev.as_ref().map(|kv| kv.value.clone()).unwrap_or_default()
    } else {
        p.value.clone()
    };
    let lease = if p.ignore_lease {
        prev.as_ref().map_or(0, |kv| kv.lease)
    } else {
        p.lease
    };
    if lease != 0 && !ctx.lessor.exists(lease) {
        return Err(Error::LeaseNotFound);
    }
    txn.put(Bytes::clone(&p.key), value, lease);
    Ok(PutResponse {
        header: None,
        prev_kv: if p.prev_kv { prev } else { None },
    })
}

fn apply_delete(txn: &mut WriteTxn<'_, '_>, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
    let (deleted, prev_kvs) = txn.delete_range(&d.key, &d.range_end, d.prev_kv)?;
    Ok(DeleteRangeResponse {
        header: None,
        deleted: deleted as i64,
        prev_kvs,
    })
}

/// Whether one key-value satisfies a compare.
fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering as O;
    let ord = match (&c.target_union, CompareTarget::try_from(c.target)) {
        (Some(TargetUnion::Version(v)), _) => kv.version.cmp(v),
        (Some(TargetUnion::CreateRevision(v)), _) => kv.create_revision.cmp(v),
        (Some(TargetUnion::ModRevision(v)), _) => kv.mod_revision.cmp(v),
        (Some(TargetUnion::Value(v)), _) => kv.value.as_ref().cmp(v.as_ref()),
        (Some(TargetUnion::Lease(v)), _) => kv.lease.cmp(v),
        // No target value: compare against the zero value of the named target.
        (None, Ok(CompareTarget::Value)) => kv.value.as_ref().cmp(&[][..]),
        (None, Ok(CompareTarget::Version)) => kv.version.cmp(&0),
        (None, Ok(CompareTarget::Create)) => kv.create_revision.cmp(&0),
        (None, Ok(CompareTarget::Mod)) => kv.mod_revision.cmp(&0),
        (None, Ok(CompareTarget::Lease)) => kv.lease.cmp(&0),
        (None, Err(_)) => return false,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord == O::Equal,
        Ok(CompareResult::NotEqual) => ord != O::Equal,
        Ok(CompareResult::Greater) => ord == O::Greater,
        Ok(CompareResult::Less) => ord == O::Less,
        Err(_) => false,
    }
}

/// etcd's applyCompare: every key in the compare's range must satisfy it; a range with no keys is
/// compared as one absent key (which never satisfies a VALUE compare).
fn compare(view: &dyn ReadView, c: &Compare) -> Result<bool> {
    let (kvs, _) = view.range_kvs(&c.key, &c.range_end, 0, 0, false)?;
    if kvs.is_empty() {
        return Ok(c.target != CompareTarget::Value as i32 && compare_kv(c, &KeyValue::default()));
    }
    Ok(kvs.iter().all(|kv| compare_kv(c, kv)))
}

/// Evaluates the compares of `t` and of every nested transaction on the chosen path, all against
/// the state before the transaction (as etcd does), returning the branch taken at each level.
pub(super) fn choose_path(view: &dyn ReadView, t: &TxnRequest, path: &mut Vec<bool>) -> Result<()> {
    let mut ok = true;
    for c in &t.compare {
        if !compare(view, c)? {
            ok = false;
            break;
        }
    }
    path.push(ok);
    let ops = if ok { &t.success } else { &t.failure };
    for op in ops {
        if let Some(OpRequest::RequestTxn(inner)) = &op.request {
            choose_path(view, inner, path)?;
        }
    }
    Ok(())
}

/// Checks every put on the path before anything is written, so a failing transaction leaves no
/// trace (etcd's checkRequestPut).
fn check_puts(
    ctx: &Ctx<'_>,
    view: &WriteTxn<'_, '_>,
    ops: &[RequestOp],
    path: &[bool],
    at: &mut usize,
) -> Result<()> {
    for op in ops {
        match &op.request {
            Some(OpRequest::RequestPut(p)) => {
                if (p.ignore_value || p.ignore_lease) && view.get(&p.key)?.is_none() {
                    return Err(Error::KeyNotFound);
                }
                if p.lease != 0 && !p.ignore_lease && !ctx.lessor.exists(p.lease) {
                    return Err(Error::LeaseNotFound);
                }
            }
            Some(OpRequest::RequestTxn(t)) => {
                let ok = path[*at];
                *at += 1;
                check_puts(
                    ctx,
                    view,
                    if ok { &t.success } else { &t.failure },
                    path,
                    at,
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn apply_txn(ctx: &Ctx<'_>, txn: &mut WriteTxn<'_, '_>, t: &TxnRequest) -> Result<TxnResponse> {
    let mut path = Vec::new();
    choose_path(txn, t, &mut path)?;
    let mut at = 1;
    check_puts(
        ctx,
        txn,
        if path[0] { &t.success } else { &t.failure },
        &path,
        &mut at,
    )?;
    let mut at = 0;
    run_txn(ctx, txn, t, &path, &mut at)
}

fn run_txn(
    ctx: &Ctx<'_>,
    txn: &mut WriteTxn<'_, '_>,
    t: &TxnRequest,
    path: &[bool],
    at: &mut usize,
) -> Result<TxnResponse> {
    let succeeded = path[*at];
    *at += 1;
    let ops = if succeeded { &t.success } else { &t.failure };
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let resp = match &op.request {
            Some(OpRequest::RequestRange(r)) => {
                ctx.metrics.ranges.fetch_add(1, Ordering::Relaxed);
                OpResponse::ResponseRange(range::execute(&*txn, r)?)
            }
            Some(OpRequest::RequestPut(p)) => {
                ctx.metrics.puts.fetch_add(1, Ordering::Relaxed);
                let resp = apply_put(ctx, txn, p)?;
                OpResponse::ResponsePut(PutResponse {
                    header: header(txn.revision()),
                    ..resp
                })
            }
            Some(OpRequest::RequestDeleteRange(d)) => {
                ctx.metrics.deletes.fetch_add(1, Ordering::Relaxed);
                let resp = apply_delete(txn, d)?;
                OpResponse::ResponseDeleteRange(DeleteRangeResponse {
                    header: header(txn.header_revision()),
                    ..resp
                })
            }
            Some(OpRequest::RequestTxn(inner)) => {
                OpResponse::ResponseTxn(run_txn(ctx, txn, inner, path, at)?)
            }
            None => return Err(Error::InvalidArgument("empty request op".into())),
        };
        responses.push(ResponseOp {
            response: Some(resp),
        });
    }
    Ok(TxnResponse {
        header: None,
        succeeded,
        responses,
    })
}
