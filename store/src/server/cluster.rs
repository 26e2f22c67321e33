//! The Cluster service (membership) and the Auth service.

use std::sync::Arc;

use strata_proto::etcdserverpb as pb;
use strata_proto::etcdserverpb::{auth_server::Auth, cluster_server::Cluster};
use tonic::{Request, Response, Status};

use super::status::to_status;
use crate::error::Error;
use crate::member::Member;

pub struct ClusterService {
    pub member: Arc<Member>,
}

impl ClusterService {
    fn members(&self) -> Vec<pb::Member> {
        self.member
            .members
            .iter()
            .map(|m| pb::Member {
                id: m.id,
                name: m.name.clone(),
                peer_ur_ls: m.peer_urls.clone(),
                client_ur_ls: m.client_urls.clone(),
                is_learner: false,
            })
            .collect()
    }

    fn replication_needed(what: &str) -> Status {
        to_status(Error::Unsupported(format!(
            "{what} needs replication across members, which is not implemented yet"
        )))
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _r: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        Err(Self::replication_needed("MemberAdd"))
    }

    async fn member_remove(
        &self,
        _r: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        Err(Self::replication_needed("MemberRemove"))
    }

    async fn member_update(
        &self,
        _r: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        Err(Self::replication_needed("MemberUpdate"))
    }

    async fn member_list(
        &self,
        _r: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let m = &self.member;
        Ok(Response::new(pb::MemberListResponse {
            header: Some(m.header(m.mvcc.current_revision())),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        _r: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        Err(Self::replication_needed("MemberPromote"))
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
