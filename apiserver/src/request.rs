//! What a request addresses: Kubernetes' RequestInfo, parsed from the method, path and query
//! once, and used by routing, authorization, metrics and logging.

use std::collections::HashMap;

/// A parsed request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path addresses a resource (else it is a non-resource path like /healthz).
    pub is_resource: bool,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection; for
    /// non-resource paths the lower-case HTTP method.
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
}

fn is_watch(query: &HashMap<String, String>) -> bool {
    matches!(
        query.get("watch").map(String::as_str),
        Some("true") | Some("1")
    )
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` paths the way kube-apiserver's
/// RequestInfoFactory does.
pub fn parse(method: &http::Method, path: &str, query: &HashMap<String, String>) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        verb: method.as_str().to_ascii_lowercase(),
        ..Default::default()
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => {
            info.version = version.to_string();
            rest
        }
        ["apis", group, version, rest @ ..] if !rest.is_empty() => {
            info.group = group.to_string();
            info.version = version.to_string();
            rest
        }
        _ => return info,
    };
    info.is_resource = true;
    let mut rest = rest;
    if rest[0] == "namespaces" && rest.len() > 1 {
        info.namespace = rest[1].to_string();
        // namespaces/<name>/status and /finalize address the namespace itself.
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    info.resource = rest[0].to_string();
    if rest.len() > 1 {
        info.name = rest[1].to_string();
    }
    if rest.len() > 2 {
        info.subresource = rest[2].to_string();
    }
    if info.resource == "namespaces" {
        // A namespace is addressed as namespaces/<name>; like Kubernetes, its namespace is
        // its own name too, so a RoleBinding in it can grant reading it.
        info.name = info.namespace.clone();
        if rest.len() > 2 {
            info.subresource = rest[2].to_string();
        }
    }
    info.verb = match *method {
        http::Method::GET | http::Method::HEAD => {
            if is_watch(query) {
                "watch"
            } else if info.name.is_empty() {
                "list"
            } else {
                "get"
            }
        }
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => {
            if info.name.is_empty() {
                "deletecollection"
            } else {
                "delete"
            }
        }
        _ => "",
    }
    .to_string();
    // A list or watch pinned to one name by its field selector is about that name (as
    // Kubernetes' RequestInfo has it), so resourceNames rules and the node rule apply.
    if matches!(info.verb.as_str(), "list" | "watch") && info.name.is_empty() {
        if let Some(fs) = query.get("fieldSelector") {
            for term in fs.split(',') {
                if let Some(v) = term
                    .strip_prefix("metadata.name==")
                    .or_else(|| term.strip_prefix("metadata.name="))
                {
                    info.name = v.to_string();
                }
            }
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: http::Method, path: &str, query: &[(&str, &str)]) -> RequestInfo {
        let q = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&method, path, &q)
    }

    #[test]
    fn resource_paths() {
        let i = p(
            http::Method::GET,
            "/api/v1/namespaces/default/pods/web",
            &[],
        );
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str()
            ),
            ("get", "default", "pods", "web")
        );
        let i = p(http::Method::GET, "/api/v1/pods", &[("watch", "true")]);
        assert_eq!((i.verb.as_str(), i.namespace.as_str()), ("watch", ""));
        let i = p(
            http::Method::POST,
            "/api/v1/namespaces/ns/pods/web/binding",
            &[],
        );
        assert_eq!(
            (i.verb.as_str(), i.subresource.as_str()),
            ("create", "binding")
        );
        let i = p(
            http::Method::PUT,
            "/apis/apps/v1/namespaces/a/deployments/d/scale",
            &[],
        );
        assert_eq!(
            (
                i.group.as_str(),
                i.resource.as_str(),
                i.subresource.as_str()
            ),
            ("apps", "deployments", "scale")
        );
        let i = p(http::Method::PUT, "/api/v1/namespaces/team/finalize", &[]);
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.namespace.as_str()
            ),
            ("namespaces", "team", "finalize", "team")
        );
        let i = p(http::Method::GET, "/api/v1/namespaces", &[]);
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str()),
            ("list", "namespaces")
        );
        let i = p(http::Method::DELETE, "/api/v1/namespaces/x/configmaps", &[]);
        assert_eq!(i.verb, "deletecollection");
        let i = p(http::Method::GET, "/healthz", &[]);
        assert!(!i.is_resource);
        assert_eq!(i.verb, "get");
        let i = p(http::Method::GET, "/api/v1", &[]);
        assert!(!i.is_resource);
    }
}
