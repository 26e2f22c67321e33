//! Request checks done before proposing, as etcd's v3rpc layer does them: cheap, local, and
//! answered with etcd's errors. The applier re-checks what depends on replicated state.

use strata_proto::etcdserverpb::{
    request_op::Request as Op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

use crate::error::{Error, Result};
use crate::mvcc::in_range;

pub fn range(r: &RangeRequest) -> Result<()> {
    if r.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

pub fn put(r: &PutRequest) -> Result<()> {
    if r.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

pub fn delete(r: &DeleteRangeRequest) -> Result<()> {
    if r.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

pub fn txn(t: &TxnRequest, max_ops: usize) -> Result<()> {
    if t.compare.len() > max_ops || t.success.len() > max_ops || t.failure.len() > max_ops {
        return Err(Error::TooManyOps);
    }
    for c in &t.compare {
        if c.key.is_empty() {
            return Err(Error::EmptyKey);
        }
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(Op::RequestRange(r)) => range(r)?,
            Some(Op::RequestPut(r)) => put(r)?,
            Some(Op::RequestDeleteRange(r)) => delete(r)?,
            Some(Op::RequestTxn(inner)) => txn(inner, max_ops)?,
            None => return Err(Error::InvalidArgument("empty request op".into())),
        }
    }
    intervals(&t.success)?;
    intervals(&t.failure)?;
    Ok(())
}

type Range = (Vec<u8>, Vec<u8>);

fn overlaps(dels: &[Range], key: &[u8]) -> bool {
    dels.iter().any(|(k, end)| in_range(key, k, end))
}

/// etcd's checkIntervals: within one branch, no key may be put twice or both put and deleted;
/// puts in the two branches of a nested transaction may overlap (only one branch runs).
fn intervals(ops: &[RequestOp]) -> Result<(Vec<Vec<u8>>, Vec<Range>)> {
    let mut dels: Vec<Range> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Op::RequestDeleteRange(d)) => Some((d.key.to_vec(), d.range_end.to_vec())),
            _ => None,
        })
        .collect();
    let mut puts: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        let Some(Op::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = intervals(&t.success)?;
        let (puts_else, dels_else) = intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || overlaps(&dels, k) {
                return Err(Error::DuplicateKey);
            }
            puts.push(k.clone());
        }
        for k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || overlaps(&dels, k) {
                return Err(Error::DuplicateKey);
            }
            puts.push(k.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Op::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.iter().any(|k| k.as_slice() == p.key.as_ref()) || overlaps(&dels, &p.key) {
            return Err(Error::DuplicateKey);
        }
        puts.push(p.key.to_vec());
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_proto::etcdserverpb::request_op::Request;

    fn put_op(k: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: k.to_string().into(),
                ..Default::default()
            })),
        }
    }

    fn del_op(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: k.to_string().into(),
                range_end: end.to_string().into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let t = TxnRequest {
            success: vec![put_op("a"), put_op("a")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(Error::DuplicateKey));
        let t = TxnRequest {
            success: vec![put_op("b"), del_op("a", "c")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(Error::DuplicateKey));
        let inner = TxnRequest {
            success: vec![put_op("x")],
            failure: vec![put_op("x")],
            ..Default::default()
        };
        let t = TxnRequest {
            success: vec![RequestOp {
                request: Some(Request::RequestTxn(inner)),
            }],
            failure: vec![put_op("x")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Ok(()), "branches are exclusive");
        let t = TxnRequest {
            success: (0..129).map(|i| put_op(&i.to_string())).collect(),
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(Error::TooManyOps));
        assert_eq!(put(&PutRequest::default()), Err(Error::EmptyKey));
    }
}
