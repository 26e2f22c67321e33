//! Authentication and authorization.
//!
//! - [`Authenticator`]: verifies bearer JWTs (RS256/ES256) against PEM keys, like
//!   kube-apiserver's service-account token authenticator, and maps them to a [`UserInfo`]
//!   (service accounts as Kubernetes does; other tokens by `sub` and `groups`).
//! - [`mint`] / [`generate_signing_key`]: issue such tokens (`strata token`, `strata up`).
//! - [`authorize`]: `system:masters` superusers, then the node rule (Kubernetes' Node
//!   authorizer, simplified), then RBAC with Kubernetes' semantics over the objects a
//!   [`PolicySource`] provides. [`forbidden_message`] builds Kubernetes' 403 text.
//! - [`bootstrap_policy`]: the default ClusterRoles and ClusterRoleBindings.
//!
//! This module depends on nothing else in the crate.

mod bootstrap;
mod jwt;
mod keys;
mod node;
mod rbac;
#[cfg(test)]
mod testdata;

use std::collections::BTreeMap;

pub use bootstrap::bootstrap_policy;
pub use jwt::{generate_signing_key, mint, Authenticator, Subject, TokenRequest};
pub use rbac::{authorize, forbidden_message, rules_for, Attributes, Decision, PolicySource};

/// The group every authenticated user is in.
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const GROUP_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The superuser group: allowed everything, without consulting RBAC.
pub const GROUP_MASTERS: &str = "system:masters";
/// The anonymous user's name.
pub const USER_ANONYMOUS: &str = "system:anonymous";

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The user of requests without credentials: `system:anonymous` in
    /// `system:unauthenticated`.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: USER_ANONYMOUS.to_string(),
            uid: String::new(),
            groups: vec![GROUP_UNAUTHENTICATED.to_string()],
            extra: BTreeMap::new(),
        }
    }
}
