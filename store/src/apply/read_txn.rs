//! Read-only transactions, served on the read path like ranges instead of through Raft, as etcd
//! does (`isTxnReadonly`): a transaction whose every operation on every branch, nested ones
//! included, is a range changes nothing, so replicating it would only add a proposal, a quorum
//! fsync and the apply queue to a read. It is answered from the committed store after the same
//! barrier a range takes: a ReadIndex round unless every range in it is serializable
//! (`isTxnSerializable`). The compares and ranges run through the applier's own code
//! (`choose_path`, `range::execute`), so both paths answer alike.

use std::sync::atomic::Ordering;

use strata_proto::etcdserverpb::{
    request_op::Request as OpRequest, response_op::Response as OpResponse, ResponseHeader,
    ResponseOp, TxnRequest, TxnResponse,
};

use super::range;
use super::request::choose_path;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::mvcc::ReadView;

fn ops(t: &TxnRequest) -> impl Iterator<Item = &OpRequest> {
    t.success
        .iter()
        .chain(&t.failure)
        .filter_map(|op| op.request.as_ref())
}

/// Every operation on every branch is a range (nested transactions included).
pub fn is_read_only(t: &TxnRequest) -> bool {
    ops(t).all(|op| match op {
        OpRequest::RequestRange(_) => true,
        OpRequest::RequestTxn(inner) => is_read_only(inner),
        _ => false,
    })
}

/// Every range on every branch is serializable, so no ReadIndex round is needed.
pub fn is_serializable(t: &TxnRequest) -> bool {
    ops(t).all(|op| match op {
        OpRequest::RequestRange(r) => r.serializable,
        OpRequest::RequestTxn(inner) => is_serializable(inner),
        _ => false,
    })
}

/// Runs a read-only transaction against `view`. The caller has checked [`is_read_only`].
pub fn execute(view: &dyn ReadView, t: &TxnRequest, metrics: &Metrics) -> Result<TxnResponse> {
    let mut path = Vec::new();
    choose_path(view, t, &mut path)?;
    let mut at = 0;
    let mut resp = run(view, t, &path, &mut at, metrics)?;
    resp.header = Some(ResponseHeader {
        revision: view.header_revision(),
        ..Default::default()
    });
    Ok(resp)
}

fn run(
    view: &dyn ReadView,
    t: &TxnRequest,
    path: &[bool],
    at: &mut usize,
    metrics: &Metrics,
) -> Result<TxnResponse> {
    let succeeded = path[*at];
    *at += 1;
    let ops = if succeeded { &t.success } else { &t.failure };
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let resp = match &op.request {
            Some(OpRequest::RequestRange(r)) => {
                metrics.ranges.fetch_add(1, Ordering::Relaxed);
                OpResponse::ResponseRange(range::execute(view, r)?)
            }
            Some(OpRequest::RequestTxn(inner)) => {
                OpResponse::ResponseTxn(run(view, inner, path, at, metrics)?)
            }
            Some(_) => {
                return Err(Error::InvalidArgument(
                    "a write in a transaction served as read-only".into(),
                ))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use strata_proto::etcdserverpb::{
        compare::{CompareResult, CompareTarget, TargetUnion},
        Compare, PutRequest, RangeRequest, RequestOp,
    };

    use super::*;
    use crate::engine::{Engine, RocksEngine};
    use crate::mvcc::{MvccStore, WriteTxn};

    fn range(key: &str, serializable: bool) -> RequestOp {
        RequestOp {
            request: Some(OpRequest::RequestRange(RangeRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                serializable,
                ..Default::default()
            })),
        }
    }

    fn value_is(key: &str, v: &str) -> Compare {
        Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Value as i32,
            key: Bytes::copy_from_slice(key.as_bytes()),
            target_union: Some(TargetUnion::Value(Bytes::copy_from_slice(v.as_bytes()))),
            ..Default::default()
        }
    }

    fn value_of(r: &TxnResponse, i: usize) -> Vec<u8> {
        match &r.responses[i].response {
            Some(OpResponse::ResponseRange(rr)) => rr
                .kvs
                .first()
                .map(|kv| kv.value.to_vec())
                .unwrap_or_default(),
            other => panic!("not a range response: {other:?}"),
        }
    }

    #[test]
    fn read_only_transactions_answer_like_the_applier() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("engine"));
        let store = MvccStore::open(engine).expect("mvcc");
        let mut round = store.begin_round();
        for (k, v) in [("a", "1"), ("b", "2")] {
            let mut txn = WriteTxn::new(&mut round);
            txn.put(Bytes::from(k), Bytes::from(v), 0);
            txn.commit();
        }
        let (batch, rev, _) = round.finish();
        store.engine().write(batch, false).expect("write");
        store.publish(rev);

        // if a == 1 then get b, and (nested) if b == 3 then get a else get b
        let nested = TxnRequest {
            compare: vec![value_is("b", "3")],
            success: vec![range("a", true)],
            failure: vec![range("b", true)],
        };
        let t = TxnRequest {
            compare: vec![value_is("a", "1")],
            success: vec![
                range("b", true),
                RequestOp {
                    request: Some(OpRequest::RequestTxn(nested)),
                },
            ],
            failure: vec![range("a", false)],
        };
        assert!(is_read_only(&t));
        assert!(
            !is_serializable(&t),
            "the failure branch has a linearizable range"
        );
        let view = store.read_at(0).expect("view");
        let r = execute(&view, &t, &Metrics::default()).expect("txn");
        assert!(r.succeeded);
        assert_eq!(r.header.as_ref().map(|h| h.revision), Some(rev));
        assert_eq!(value_of(&r, 0), b"2");
        match &r.responses[1].response {
            Some(OpResponse::ResponseTxn(inner)) => {
                assert!(!inner.succeeded);
                assert_eq!(value_of(inner, 0), b"2");
            }
            other => panic!("not a txn response: {other:?}"),
        }

        let failing = TxnRequest {
            compare: vec![value_is("a", "9")],
            success: vec![range("a", true)],
            failure: vec![range("a", true)],
        };
        assert!(is_serializable(&failing));
        let r = execute(&view, &failing, &Metrics::default()).expect("txn");
        assert!(!r.succeeded);
        assert_eq!(value_of(&r, 0), b"1");

        let writes = TxnRequest {
            failure: vec![RequestOp {
                request: Some(OpRequest::RequestPut(PutRequest::default())),
            }],
            ..Default::default()
        };
        assert!(!is_read_only(&writes), "a put on either branch is a write");
    }
}
