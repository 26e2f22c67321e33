//! The Cluster service (membership) and the Auth service.

use std::sync::Arc;

use strata_proto::etcdserverpb as pb;
use strata_proto::etcdserverpb::{auth_server::Auth, cluster_server::Cluster};
use tonic::{Request, Response, Status};

use strata_proto::peer::{Member as PbMember, RaftRequest};

use super::status::to_status;
use crate::apply::Response as Applied;
use crate::config::parse_url;
use crate::error::Error;
use crate::member::{member_id, Member};
use crate::membership::Change;
use crate::raft::ConfChangeType;

pub struct ClusterService {
    pub member: Arc<Member>,
}

fn to_pb(m: PbMember) -> pb::Member {
    pb::Member {
        id: m.id,
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
        is_learner: m.is_learner,
    }
}

fn check_urls(urls: &[String]) -> Result<(), Status> {
    if urls.is_empty() || urls.iter().any(|u| parse_url(u).is_err()) {
        return Err(to_status(Error::MemberBadUrls));
    }
    Ok(())
}

impl ClusterService {
    fn header(&self) -> Option<pb::ResponseHeader> {
        let m = &self.member;
        Some(m.header(m.mvcc.current_revision()))
    }

    /// etcd's isLearnerReady: a learner may be promoted once its log is within 90% of the
    /// leader's. Checked where the progress is known (on the leader).
    async fn learner_ready(&self, id: u64) -> Result<(), Status> {
        let progress = self.member.raft.progress().await.map_err(to_status)?;
        if progress.is_empty() {
            return Ok(());
        }
        let leader = progress
            .iter()
            .find(|p| p.id == self.member.id)
            .map_or(0, |p| p.matched);
        let learner = progress
            .iter()
            .find(|p| p.id == id)
            .map_or(0, |p| p.matched);
        if (learner as f64) < leader as f64 * 0.9 {
            return Err(to_status(Error::LearnerNotReady));
        }
        Ok(())
    }

    /// etcd's strict reconfiguration check, on the leader: after the change, the members heard
    /// from recently must still be a quorum.
    async fn enough_started(&self, adding: bool, removing: Option<u64>) -> Result<(), Status> {
        let progress = self.member.raft.progress().await.map_err(to_status)?;
        if progress.is_empty() {
            return Ok(());
        }
        let voters: Vec<_> = progress.iter().filter(|p| !p.is_learner).collect();
        if removing.is_some_and(|id| !voters.iter().any(|p| p.id == id)) {
            return Ok(());
        }
        let mut members = voters.len();
        let mut started = voters
            .iter()
            .filter(|p| p.active && Some(p.id) != removing)
            .count();
        if adding {
            members += 1;
        }
        if removing.is_some() {
            members -= 1;
            started = started.min(members);
        }
        // etcd allows growing a one-member cluster to two (the new member is not started yet).
        let growing_single = adding && members == 2 && started == 1;
        if started < members / 2 + 1 && !growing_single {
            return Err(to_status(Error::NotEnoughStarted));
        }
        Ok(())
    }

    /// MemberAdd as the leader decides it.
    pub(crate) async fn member_add_local(
        &self,
        r: pb::MemberAddRequest,
    ) -> Result<pb::MemberAddResponse, Status> {
        let m = &self.member;
        check_urls(&r.peer_ur_ls)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let new = PbMember {
            id: member_id(
                &r.peer_ur_ls,
                &m.cfg.initial_cluster_token,
                &nanos.to_string(),
            ),
            name: String::new(),
            peer_urls: r.peer_ur_ls,
            client_urls: vec![],
            is_learner: r.is_learner,
        };
        let (change, raft_change) = if r.is_learner {
            (Change::AddLearner, ConfChangeType::AddLearnerNode)
        } else {
            (Change::AddVoter, ConfChangeType::AddNode)
        };
        m.members.check(change, &new).map_err(to_status)?;
        if !new.is_learner {
            self.enough_started(true, None).await?;
        }
        let members = m
            .propose_conf_change(raft_change, new.clone())
            .await
            .map_err(to_status)?;
        let added = members
            .iter()
            .find(|x| x.id == new.id)
            .cloned()
            .unwrap_or(new);
        Ok(pb::MemberAddResponse {
            header: self.header(),
            member: Some(to_pb(added)),
            members: members.into_iter().map(to_pb).collect(),
        })
    }

    /// MemberRemove as the leader decides it.
    pub(crate) async fn member_remove_local(
        &self,
        r: pb::MemberRemoveRequest,
    ) -> Result<pb::MemberRemoveResponse, Status> {
        let m = &self.member;
        let id = r.id;
        let gone = PbMember {
            id,
            ..Default::default()
        };
        m.members.check(Change::Remove, &gone).map_err(to_status)?;
        self.enough_started(false, Some(id)).await?;
        let members = m
            .propose_conf_change(ConfChangeType::RemoveNode, gone)
            .await
            .map_err(to_status)?;
        Ok(pb::MemberRemoveResponse {
            header: self.header(),
            members: members.into_iter().map(to_pb).collect(),
        })
    }

    /// MemberPromote as the leader decides it.
    pub(crate) async fn member_promote_local(
        &self,
        r: pb::MemberPromoteRequest,
    ) -> Result<pb::MemberPromoteResponse, Status> {
        let m = &self.member;
        let id = r.id;
        let learner = PbMember {
            id,
            ..Default::default()
        };
        m.members
            .check(Change::Promote, &learner)
            .map_err(to_status)?;
        self.learner_ready(id).await?;
        let members = m
            .propose_conf_change(ConfChangeType::AddNode, learner)
            .await
            .map_err(to_status)?;
        Ok(pb::MemberPromoteResponse {
            header: self.header(),
            members: members.into_iter().map(to_pb).collect(),
        })
    }
}

/// Runs a membership change on the leader: here, or forwarded to it over the peer service.
macro_rules! on_leader {
    ($self:ident, $r:ident, $local:ident, $forward:ident) => {{
        let m = &$self.member;
        if m.raft.is_leader() {
            return $self.$local($r.into_inner()).await.map(Response::new);
        }
        let mut client = m.leader_client().map_err(to_status)?;
        match tokio::time::timeout(m.request_timeout, client.$forward($r.into_inner())).await {
            Ok(Ok(resp)) => {
                let mut resp = resp.into_inner();
                resp.header = $self.header();
                Ok(Response::new(resp))
            }
            Ok(Err(s)) => Err(s),
            Err(_) => Err(to_status(m.raft.unavailable())),
        }
    }};
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        r: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        on_leader!(self, r, member_add_local, member_add)
    }

    async fn member_remove(
        &self,
        r: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        on_leader!(self, r, member_remove_local, member_remove)
    }

    async fn member_promote(
        &self,
        r: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        on_leader!(self, r, member_promote_local, member_promote)
    }

    async fn member_update(
        &self,
        r: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        let m = &self.member;
        let r = r.into_inner();
        check_urls(&r.peer_ur_ls)?;
        if m.members.get(r.id).is_none() {
            return Err(to_status(Error::MemberNotFound));
        }
        let req = RaftRequest {
            member_update: Some(PbMember {
                id: r.id,
                peer_urls: r.peer_ur_ls,
                ..Default::default()
            }),
            ..Default::default()
        };
        let members = match m.propose(req).await.map_err(to_status)? {
            Applied::Members(list) => list,
            other => {
                return Err(to_status(Error::corrupt(format!(
                    "unexpected applied result {other:?}"
                ))))
            }
        };
        Ok(Response::new(pb::MemberUpdateResponse {
            header: self.header(),
            members: members.into_iter().map(to_pb).collect(),
        }))
    }

    async fn member_list(
        &self,
        r: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let m = &self.member;
        if r.get_ref().linearizable {
            m.linearizable_barrier().await.map_err(to_status)?;
        }
        Ok(Response::new(pb::MemberListResponse {
            header: self.header(),
            members: m.members.list().into_iter().map(to_pb).collect(),
        }))
    }
}

/// Auth is not implemented yet: every RPC answers Unimplemented with a message that says so.
pub struct AuthService;

macro_rules! unimplemented_auth {
    ($($method:ident($req:ty) -> $resp:ty;)*) => {
        #[tonic::async_trait]
        impl Auth for AuthService {
            $(
                async fn $method(&self, _r: Request<$req>) -> Result<Response<$resp>, Status> {
                    Err(Status::unimplemented("etcdserver: authentication is not supported by this server yet"))
                }
            )*
        }
    };
}

unimplemented_auth! {
    auth_enable(pb::AuthEnableRequest) -> pb::AuthEnableResponse;
    auth_disable(pb::AuthDisableRequest) -> pb::AuthDisableResponse;
    auth_status(pb::AuthStatusRequest) -> pb::AuthStatusResponse;
    authenticate(pb::AuthenticateRequest) -> pb::AuthenticateResponse;
    user_add(pb::AuthUserAddRequest) -> pb::AuthUserAddResponse;
    user_get(pb::AuthUserGetRequest) -> pb::AuthUserGetResponse;
    user_list(pb::AuthUserListRequest) -> pb::AuthUserListResponse;
    user_delete(pb::AuthUserDeleteRequest) -> pb::AuthUserDeleteResponse;
    user_change_password(pb::AuthUserChangePasswordRequest) -> pb::AuthUserChangePasswordResponse;
    user_grant_role(pb::AuthUserGrantRoleRequest) -> pb::AuthUserGrantRoleResponse;
    user_revoke_role(pb::AuthUserRevokeRoleRequest) -> pb::AuthUserRevokeRoleResponse;
    role_add(pb::AuthRoleAddRequest) -> pb::AuthRoleAddResponse;
    role_get(pb::AuthRoleGetRequest) -> pb::AuthRoleGetResponse;
    role_list(pb::AuthRoleListRequest) -> pb::AuthRoleListResponse;
    role_delete(pb::AuthRoleDeleteRequest) -> pb::AuthRoleDeleteResponse;
    role_grant_permission(pb::AuthRoleGrantPermissionRequest) -> pb::AuthRoleGrantPermissionResponse;
    role_revoke_permission(pb::AuthRoleRevokePermissionRequest) -> pb::AuthRoleRevokePermissionResponse;
}
