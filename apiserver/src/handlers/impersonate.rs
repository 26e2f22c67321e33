//! Impersonation (`kubectl --as`, `--as-group`): the `Impersonate-User`, `Impersonate-Group`,
//! `Impersonate-Uid` and `Impersonate-Extra-<key>` headers make a request act as another user,
//! when the requester may `impersonate` each of them (users, groups, uids and
//! userextras/<key>, as kube-apiserver authorizes it). The impersonated user is then
//! authenticated-as for everything that follows, authorization included.

use std::collections::BTreeMap;

use http::HeaderMap;

use super::{Api, AuthorizationMode, CachePolicy};
use crate::auth::{self, Attributes, Decision, UserInfo, GROUP_AUTHENTICATED};
use crate::status::{ApiError, ApiResult};

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA: &str = "impersonate-extra-";

/// The user a request acts as: the authenticated one, or whom it impersonates.
pub fn effective_user(api: &Api, user: UserInfo, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let name = values(USER).into_iter().next();
    let groups = values(GROUP);
    let uid = values(UID).into_iter().next();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        if let Some(key) = k.as_str().strip_prefix(EXTRA) {
            let key = percent_decode(key);
            if let Ok(v) = v.to_str() {
                extra.entry(key).or_default().push(v.to_string());
            }
        }
    }
    let Some(name) = name else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::internal(
            "requested impersonation of groups, uid or extra without impersonating a user",
        ));
    };
    // Each impersonated attribute must be allowed to the requester.
    let check = |resource: &str, subresource: &str, group: &str, namespace: &str, what: &str| {
        if api.authz == AuthorizationMode::AlwaysAllow {
            return Ok(());
        }
        let attrs = Attributes {
            user: &user,
            verb: "impersonate",
            resource_request: true,
            api_group: group,
            resource,
            subresource,
            namespace,
            name: what,
            path: "",
        };
        match auth::authorize(&attrs, &CachePolicy(api)) {
            Decision::Allow => Ok(()),
            Decision::Deny { reason } => Err(ApiError::forbidden(auth::forbidden_message(
                &attrs, &reason,
            ))),
        }
    };
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((ns, sa)) => check("serviceaccounts", "", "", ns, sa)?,
        None => check("users", "", "", "", &name)?,
    }
    for g in &groups {
        check("groups", "", "", "", g)?;
    }
    if let Some(u) = &uid {
        check("uids", "", "authentication.k8s.io", "", u)?;
    }
    for (k, vs) in &extra {
        for v in vs {
            check("userextras", k, "authentication.k8s.io", "", v)?;
        }
    }
    let mut groups = groups;
    if let Some(rest) = name.strip_prefix("system:serviceaccount:") {
        if groups.is_empty() {
            if let Some((ns, _)) = rest.split_once(':') {
                groups.push("system:serviceaccounts".into());
                groups.push(format!("system:serviceaccounts:{ns}"));
            }
        }
    }
    if name != auth::USER_ANONYMOUS && !groups.iter().any(|g| g == GROUP_AUTHENTICATED) {
        groups.push(GROUP_AUTHENTICATED.to_string());
    }
    Ok(UserInfo {
        name,
        uid: uid.unwrap_or_default(),
        groups,
        extra,
    })
}

/// Header names carry extra keys percent-encoded (`Impersonate-Extra-scopes%2Fa`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn extra_keys_are_percent_decoded() {
        assert_eq!(percent_decode("scopes%2Fa"), "scopes/a");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%2"), "end%2");
    }
}
