//! The Lease service. Grants and revocations are replicated; keep-alives and TTL queries are
//! answered by the leader's lessor (the only member that tracks deadlines).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use strata_proto::etcdserverpb::{
    lease_server::Lease, LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest,
    LeaseKeepAliveResponse, LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use strata_proto::peer::RaftRequest;
use tonic::{Request, Response, Status, Streaming};

use super::{replicate, status::to_status};
use crate::error::Error;
use crate::lease::MAX_LEASE_TTL;
use crate::member::Member;

pub struct LeaseService {
    pub member: Arc<Member>,
}

type KeepAliveOut = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let m = &self.member;
        let mut r = req.into_inner();
        if r.ttl > MAX_LEASE_TTL {
            return Err(to_status(Error::LeaseTtlTooLarge));
        }
        m.check_quota(16).await.map_err(to_status)?;
        if r.id == 0 {
            r.id = loop {
                let id = m.next_id() as i64;
                if id != 0 && !m.lessor.exists(id) {
                    break id;
                }
            };
        }
        replicate(
            m,
            RaftRequest {
                lease_grant: Some(r),
                ..Default::default()
            },
        )
        .await
    }

    async fn lease_revoke(
        &self,
        req: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let m = &self.member;
        let r = req.into_inner();
        replicate(
            m,
            RaftRequest {
                lease_revoke: Some(r),
                ..Default::default()
            },
        )
        .await
    }

    type LeaseKeepAliveStream = KeepAliveOut;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<KeepAliveOut>, Status> {
        let m = self.member.clone();
        let out = req.into_inner().filter_map(move |r| {
            let m = m.clone();
            async move {
                let r = match r {
                    Ok(r) => r,
                    Err(_) => return None,
                };
                // An unknown lease is answered with TTL 0, as etcd does.
                let ttl = match m.lease_renew(r.id).await {
                    Ok(ttl) => ttl,
                    Err(Error::LeaseNotFound) => 0,
                    Err(e) => return Some(Err(to_status(e))),
                };
                let header = Some(m.header(m.mvcc.current_revision()));
                Some(Ok(LeaseKeepAliveResponse {
                    header,
                    id: r.id,
                    ttl,
                }))
            }
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.member
            .lease_time_to_live(req.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn lease_leases(
        &self,
        _req: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let m = &self.member;
        m.linearizable_barrier().await.map_err(to_status)?;
        let leases = m
            .lessor
            .ids()
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(m.header(m.mvcc.current_revision())),
            leases,
        }))
    }
}
