//! The KV service: decode, check, call the member, map the error, fill the header.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use strata_proto::etcdserverpb::{
    kv_server::Kv, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    PutRequest, PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use strata_proto::peer::RaftRequest;
use tonic::{Request, Response, Status};

use super::{replicate, status::to_status, validate};
use crate::apply::{range, read_txn};
use crate::error::Error;
use crate::member::Member;

pub struct KvService {
    pub member: Arc<Member>,
}

impl KvService {
    pub async fn do_range(&self, r: &RangeRequest) -> Result<RangeResponse, Error> {
        validate::range(r)?;
        if !r.serializable {
            self.member.linearizable_barrier().await?;
        }
        self.member.metrics.ranges.fetch_add(1, Ordering::Relaxed);
        let view = self.member.mvcc.read_at(r.revision)?;
        let mut resp = range::execute(&view, r)?;
        resp.header = self.member.fill(resp.header);
        Ok(resp)
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        self.do_range(req.get_ref())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let r = req.into_inner();
        validate::put(&r).map_err(to_status)?;
        let m = &self.member;
        m.check_quota(r.key.len() + r.value.len())
            .await
            .map_err(to_status)?;
        replicate(
            m,
            RaftRequest {
                put: Some(r),
                ..Default::default()
            },
        )
        .await
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let r = req.into_inner();
        validate::delete(&r).map_err(to_status)?;
        let m = &self.member;
        replicate(
            m,
            RaftRequest {
                delete_range: Some(r),
                ..Default::default()
            },
        )
        .await
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let r = req.into_inner();
        let m = &self.member;
        validate::txn(&r, m.cfg.max_txn_ops).map_err(to_status)?;
        if read_txn::is_read_only(&r) {
            // Changes nothing: served like a range, without Raft (etcd's isTxnReadonly).
            if !read_txn::is_serializable(&r) {
                m.linearizable_barrier().await.map_err(to_status)?;
            }
            let view = m.mvcc.read_at(0).map_err(to_status)?;
            let mut resp = read_txn::execute(&view, &r, &m.metrics).map_err(to_status)?;
            resp.header = m.fill(resp.header);
            return Ok(Response::new(resp));
        }
        m.check_quota(r.encoded_len()).await.map_err(to_status)?;
        replicate(
            m,
            RaftRequest {
                txn: Some(r),
                ..Default::default()
            },
        )
        .await
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let m = &self.member;
        let r = req.into_inner();
        replicate(
            m,
            RaftRequest {
                compaction: Some(r),
                ..Default::default()
            },
        )
        .await
    }
}

use prost::Message as _;
