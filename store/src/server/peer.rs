//! The Peer service (peer.proto), served on --listen-peer-urls: Raft messages and snapshots from
//! other members, the membership table for joining members, and lease operations followers
//! forward to the leader.

use std::sync::Arc;

use protobuf::Message as _;
use raft::eraftpb::Message;
use strata_proto::etcdserverpb::{
    self as pb, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
};
use strata_proto::peer::{
    peer_server::Peer, Ack, MembersRequest, MembersResponse, MessageBatch, SnapshotChunk,
};
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use super::cluster::ClusterService;
use super::status::to_status;
use crate::error::Error;
use crate::member::Member;

pub struct PeerService {
    pub member: Arc<Member>,
}

impl PeerService {
    fn require_leader(&self) -> Result<(), Status> {
        if self.member.raft.is_leader() {
            Ok(())
        } else {
            Err(to_status(Error::NotLeader))
        }
    }

    fn cluster(&self) -> ClusterService {
        ClusterService {
            member: self.member.clone(),
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<Option<Message>, Status> {
        let m = Message::parse_from_bytes(bytes)
            .map_err(|e| Status::invalid_argument(format!("malformed raft message: {e}")))?;
        if self.member.members.is_removed(m.from) {
            return Err(Status::permission_denied(Error::MemberRemoved.to_string()));
        }
        // A message for another member id (a stale address) is dropped, not stepped.
        Ok((m.to == self.member.id).then_some(m))
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn send(&self, req: Request<Streaming<MessageBatch>>) -> Result<Response<Ack>, Status> {
        let mut inbound = req.into_inner();
        let mut from = 0;
        loop {
            let batch = match inbound.message().await {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    // Not a clean end of stream: the sender's connection broke (a killed process
                    // resets or closes it). If it was our leader, there is no point waiting out
                    // the election timeout for heartbeats that will not come.
                    if from != 0 {
                        self.member.raft.report_stream_lost(from);
                    }
                    return Err(e);
                }
            };
            let mut msgs = Vec::with_capacity(batch.messages.len());
            for b in &batch.messages {
                if let Some(m) = self.decode(b)? {
                    from = m.from;
                    msgs.push(m);
                }
            }
            if !msgs.is_empty() {
                self.member.raft.step(msgs).map_err(to_status)?;
            }
        }
        Ok(Response::new(Ack {}))
    }

    async fn send_snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Ack>, Status> {
        let m = &self.member;
        let mut inbound = req.into_inner();
        let head = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let Some(mut msg) = self.decode(&head.message)? else {
            return Err(Status::failed_precondition("snapshot for another member"));
        };
        let name = format!("recv-{}", m.next_id());
        let tar_path = m.snap_dir.join(format!("{name}.tar"));
        let dir = m.snap_dir.join(&name);
        let io = |e: std::io::Error| Status::internal(format!("receiving a snapshot: {e}"));
        let received = async {
            let mut file = tokio::fs::File::create(&tar_path).await.map_err(io)?;
            let mut complete = head.last;
            let mut bytes = 0u64;
            while !complete {
                let Some(chunk) = inbound.message().await? else {
                    break;
                };
                bytes += chunk.data.len() as u64;
                file.write_all(&chunk.data).await.map_err(io)?;
                complete = chunk.last;
            }
            if !complete {
                return Err(Status::aborted("snapshot stream ended early"));
            }
            file.sync_all().await.map_err(io)?;
            drop(file);
            let (tar, out) = (tar_path.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                let f = std::fs::File::open(&tar)?;
                tar::Archive::new(f).unpack(&out)
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(io)?;
            Ok(bytes)
        }
        .await;
        let _ = tokio::fs::remove_file(&tar_path).await;
        let bytes = match received {
            Ok(b) => b,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return Err(e);
            }
        };
        tracing::info!(
            from = format!("{:x}", msg.from),
            index = msg.get_snapshot().get_metadata().index,
            bytes,
            "received a snapshot"
        );
        msg.mut_snapshot().data = name.into_bytes().into();
        m.raft.step(vec![msg]).map_err(to_status)?;
        Ok(Response::new(Ack {}))
    }

    async fn members(
        &self,
        _req: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let m = &self.member;
        Ok(Response::new(MembersResponse {
            cluster_id: m.members.cluster_id(),
            members: m.members.list(),
            removed: m.members.removed(),
        }))
    }

    async fn lease_renew(
        &self,
        req: Request<LeaseKeepAliveRequest>,
    ) -> Result<Response<LeaseKeepAliveResponse>, Status> {
        let m = &self.member;
        let id = req.get_ref().id;
        // Only the leader answers; a forwarded request is never forwarded again.
        let ttl = m.lessor.renew(id).map_err(to_status)?;
        Ok(Response::new(LeaseKeepAliveResponse {
            header: Some(m.header(m.mvcc.current_revision())),
            id,
            ttl,
        }))
    }

    async fn member_add(
        &self,
        req: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        self.require_leader()?;
        self.cluster()
            .member_add_local(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn member_remove(
        &self,
        req: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        self.require_leader()?;
        self.cluster()
            .member_remove_local(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn member_promote(
        &self,
        req: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        self.require_leader()?;
        self.cluster()
            .member_promote_local(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let m = &self.member;
        if !m.raft.is_leader() {
            return Err(to_status(Error::NotLeader));
        }
        m.lease_time_to_live(req.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}
