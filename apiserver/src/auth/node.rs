//! The node rule: Kubernetes' Node authorizer, simplified, with the checks its
//! NodeRestriction admission plugin makes on the resources a node writes.
//!
//! Applies to users named `system:node:<node>` in group `system:nodes`:
//! - nodes: get/list/watch any; create/update/patch/delete, and update/patch of
//!   nodes/status, only its own Node.
//! - leases (coordination.k8s.io) in `kube-node-lease`: get/list/watch/create/update/patch/
//!   delete only of the lease named like the node (for create the name must be in the
//!   attributes: the apiserver passes the new object's name).
//! - pods: get/list/watch any; update/patch of pods/status, delete, and create of
//!   pods/eviction only for pods bound to the node; no create (no mirror pods).
//! - events (core and events.k8s.io): create/update/patch.
//! - other resources: the rules of Kubernetes' `system:node` role (NodeRules) that do not
//!   need the node authorizer's object graph (so no secrets, configmaps, persistent volumes,
//!   service-account tokens: those are left to RBAC).
//!
//! A request the rule does not allow gets no opinion (with a reason) and RBAC decides, as
//! with Kubernetes' `--authorization-mode=Node,RBAC`.

use serde_json::{json, Value};
use std::sync::OnceLock;

use super::rbac::{rules_allow, Attributes, PolicySource};

pub(super) const NODE_USER_PREFIX: &str = "system:node:";
pub(super) const NODES_GROUP: &str = "system:nodes";
pub(super) const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

pub(super) enum NodeDecision {
    Allow,
    /// Left to RBAC; the reason (possibly empty) is reported if RBAC denies too.
    NoOpinion(String),
}

/// The node a user is, if it is one.
pub(super) fn node_name(user: &super::UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

pub(super) fn authorize(attrs: &Attributes<'_>, policy: &dyn PolicySource) -> NodeDecision {
    let Some(node) = node_name(attrs.user) else {
        return NodeDecision::NoOpinion(String::new());
    };
    if !attrs.resource_request {
        return no_opinion("");
    }
    let verb = attrs.verb;
    match (attrs.api_group, attrs.resource) {
        ("", "nodes") => match (attrs.subresource, verb) {
            ("", "get" | "list" | "watch") => NodeDecision::Allow,
            ("", "create" | "update" | "patch" | "delete") | ("status", "update" | "patch") => {
                if attrs.name == node {
                    NodeDecision::Allow
                } else if attrs.name.is_empty() {
                    no_opinion(&format!(
                        "node '{node}' cannot {verb} a node whose name is not known"
                    ))
                } else {
                    no_opinion(&format!(
                        "node '{node}' cannot modify node '{}'",
                        attrs.name
                    ))
                }
            }
            _ => no_opinion(""),
        },
        ("coordination.k8s.io", "leases") => {
            if !attrs.subresource.is_empty()
                || !matches!(
                    verb,
                    "get" | "list" | "watch" | "create" | "update" | "patch" | "delete"
                )
            {
                return no_opinion(
                    "can only get, list, watch, create, update, patch, or delete a node lease",
                );
            }
            if attrs.namespace != NODE_LEASE_NAMESPACE {
                return no_opinion(&format!(
                    "can only access leases in the \"{NODE_LEASE_NAMESPACE}\" system namespace"
                ));
            }
            if attrs.name != node {
                return no_opinion(
                    "can only access node lease with the same name as the requesting node",
                );
            }
            NodeDecision::Allow
        }
        ("", "pods") => match (attrs.subresource, verb) {
            ("", "get" | "list" | "watch") => NodeDecision::Allow,
            ("", "create") => no_opinion(&format!(
                "node '{node}' cannot create pods (mirror pods are not supported)"
            )),
            ("", "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
                bound_pod(node, attrs, policy)
            }
            _ => no_opinion(""),
        },
        ("" | "events.k8s.io", "events") => {
            if attrs.subresource.is_empty() && matches!(verb, "create" | "update" | "patch") {
                NodeDecision::Allow
            } else {
                no_opinion("")
            }
        }
        // Left to RBAC: they need the Node authorizer's graph of what a node's pods use.
        ("", "secrets" | "configmaps" | "persistentvolumeclaims" | "persistentvolumes")
        | ("", "serviceaccounts") => no_opinion(""),
        _ => {
            if rules_allow(attrs, other_rules()) {
                NodeDecision::Allow
            } else {
                no_opinion("")
            }
        }
    }
}

fn no_opinion(reason: &str) -> NodeDecision {
    NodeDecision::NoOpinion(reason.to_string())
}

/// Allows the request if it addresses a pod bound to `node`.
fn bound_pod(node: &str, attrs: &Attributes<'_>, policy: &dyn PolicySource) -> NodeDecision {
    let what = if attrs.subresource.is_empty() {
        format!("{} pod", attrs.verb)
    } else {
        format!("{} {} of pod", attrs.verb, attrs.subresource)
    };
    if attrs.name.is_empty() || attrs.namespace.is_empty() {
        return no_opinion(&format!(
            "node '{node}' can only {what}s bound to it, addressed by name"
        ));
    }
    match policy.pod_node_name(attrs.namespace, attrs.name) {
        Some(bound) if bound == node => NodeDecision::Allow,
        Some(_) => no_opinion(&format!(
            "node '{node}' cannot {what} '{}/{}' bound to another node",
            attrs.namespace, attrs.name
        )),
        None => no_opinion(&format!(
            "node '{node}' cannot {what} '{}/{}': it does not exist or is not bound to a node",
            attrs.namespace, attrs.name
        )),
    }
}

/// Kubernetes' NodeRules for the resources the rule above does not handle itself.
fn other_rules() -> &'static Value {
    static RULES: OnceLock<Value> = OnceLock::new();
    RULES.get_or_init(|| {
        json!([
            {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"]},
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
             "resources": ["subjectaccessreviews", "localsubjectaccessreviews"]},
            {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["services"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["endpoints"]},
            {"verbs": ["create", "get", "list", "watch"], "apiGroups": ["certificates.k8s.io"],
             "resources": ["certificatesigningrequests"]},
            {"verbs": ["get"], "apiGroups": ["storage.k8s.io"], "resources": ["volumeattachments"]},
            {"verbs": ["get", "list", "watch"], "apiGroups": ["storage.k8s.io"], "resources": ["csidrivers"]},
            {"verbs": ["get", "list", "watch"], "apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"]}
        ])
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::rbac::tests::{res, user, MemPolicy};
    use super::super::rbac::{authorize, forbidden_message, Decision};
    use super::super::UserInfo;
    use serde_json::json;

    fn n1() -> UserInfo {
        user("system:node:n1", &["system:nodes", "system:authenticated"])
    }

    fn policy() -> MemPolicy {
        let mut p = MemPolicy::default();
        p.pods.insert(("ns".into(), "mine".into()), "n1".into());
        p.pods.insert(("ns".into(), "theirs".into()), "n2".into());
        p
    }

    fn decide(
        u: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Decision {
        authorize(&res(u, verb, group, resource, ns, name), &policy())
    }

    fn ok(u: &UserInfo, verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> bool {
        decide(u, verb, group, resource, ns, name) == Decision::Allow
    }

    #[test]
    fn nodes() {
        let n = n1();
        assert!(ok(&n, "get", "", "nodes", "", "n2"));
        assert!(ok(&n, "list", "", "nodes", "", ""));
        assert!(ok(&n, "watch", "", "nodes", "", ""));
        for verb in ["create", "update", "patch", "delete"] {
            assert!(ok(&n, verb, "", "nodes", "", "n1"), "{verb}");
            assert!(!ok(&n, verb, "", "nodes", "", "n2"), "{verb}");
        }
        assert!(ok(&n, "patch", "", "nodes/status", "", "n1"));
        assert!(ok(&n, "update", "", "nodes/status", "", "n1"));
        assert!(!ok(&n, "patch", "", "nodes/status", "", "n2"));
        assert!(!ok(&n, "deletecollection", "", "nodes", "", ""));
        assert_eq!(
            decide(&n, "update", "", "nodes", "", "n2"),
            Decision::Deny {
                reason: "node 'n1' cannot modify node 'n2'".into()
            }
        );
    }

    #[test]
    fn leases() {
        let n = n1();
        let g = "coordination.k8s.io";
        for verb in [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ] {
            assert!(ok(&n, verb, g, "leases", "kube-node-lease", "n1"), "{verb}");
            assert!(
                !ok(&n, verb, g, "leases", "kube-node-lease", "n2"),
                "{verb}"
            );
            assert!(!ok(&n, verb, g, "leases", "kube-system", "n1"), "{verb}");
        }
        assert!(!ok(&n, "list", g, "leases", "kube-node-lease", ""));
        assert!(!ok(&n, "create", g, "leases", "kube-node-lease", ""));
        assert!(!ok(
            &n,
            "deletecollection",
            g,
            "leases",
            "kube-node-lease",
            ""
        ));
        assert_eq!(
            decide(&n, "update", g, "leases", "kube-node-lease", "n2"),
            Decision::Deny {
                reason: "can only access node lease with the same name as the requesting node"
                    .into()
            }
        );
    }

    #[test]
    fn pods() {
        let n = n1();
        assert!(ok(&n, "get", "", "pods", "ns", "theirs"));
        assert!(ok(&n, "list", "", "pods", "", ""));
        assert!(ok(&n, "watch", "", "pods", "ns", ""));
        assert!(ok(&n, "update", "", "pods/status", "ns", "mine"));
        assert!(ok(&n, "patch", "", "pods/status", "ns", "mine"));
        assert!(ok(&n, "delete", "", "pods", "ns", "mine"));
        assert!(ok(&n, "create", "", "pods/eviction", "ns", "mine"));
        assert!(!ok(&n, "patch", "", "pods/status", "ns", "theirs"));
        assert!(!ok(&n, "delete", "", "pods", "ns", "theirs"));
        assert!(!ok(&n, "delete", "", "pods", "ns", "missing"));
        assert!(!ok(&n, "create", "", "pods", "ns", "mine"));
        assert!(!ok(&n, "update", "", "pods", "ns", "mine"));
        assert!(!ok(&n, "create", "", "pods/binding", "ns", "mine"));
        let attrs = super::super::rbac::tests::res(&n, "delete", "", "pods", "ns", "theirs");
        let Decision::Deny { reason } = authorize(&attrs, &policy()) else {
            panic!("allowed")
        };
        assert_eq!(
            reason,
            "node 'n1' cannot delete pod 'ns/theirs' bound to another node"
        );
        assert_eq!(
            forbidden_message(&attrs, &reason),
            "pods \"theirs\" is forbidden: User \"system:node:n1\" cannot delete resource \"pods\" \
             in API group \"\" in the namespace \"ns\": node 'n1' cannot delete pod 'ns/theirs' bound to another node"
        );
    }

    #[test]
    fn events_and_others() {
        let n = n1();
        for verb in ["create", "update", "patch"] {
            assert!(ok(&n, verb, "", "events", "ns", "e"));
            assert!(ok(&n, verb, "events.k8s.io", "events", "ns", "e"));
        }
        assert!(!ok(&n, "delete", "", "events", "ns", "e"));
        assert!(ok(&n, "list", "", "services", "", ""));
        assert!(ok(
            &n,
            "create",
            "authentication.k8s.io",
            "tokenreviews",
            "",
            ""
        ));
        assert!(!ok(&n, "get", "", "secrets", "ns", "s"));
        assert!(!ok(&n, "get", "", "configmaps", "ns", "c"));
        assert!(!ok(&n, "create", "", "namespaces", "", "x"));
        assert!(!ok(&n, "get", "apps", "deployments", "ns", "d"));
    }

    #[test]
    fn identity_requires_name_and_group() {
        let no_group = user("system:node:n1", &["system:authenticated"]);
        assert!(!ok(&no_group, "get", "", "nodes", "", "n1"));
        let no_name = user("system:node:", &["system:nodes"]);
        assert!(!ok(&no_name, "get", "", "nodes", "", "n1"));
        let other = user("alice", &["system:nodes"]);
        assert!(!ok(&other, "get", "", "nodes", "", "n1"));
    }

    #[test]
    fn rbac_can_grant_more() {
        let mut p = policy();
        p.add(
            json!({"kind": "ClusterRole", "metadata": {"name": "pod-admin"},
            "rules": [{"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}]}),
        );
        p.add(json!({"kind": "ClusterRoleBinding", "metadata": {"name": "n1-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-admin"},
            "subjects": [{"kind": "User", "name": "system:node:n1"}]}));
        let n = n1();
        assert_eq!(
            authorize(&res(&n, "delete", "", "pods", "ns", "theirs"), &p),
            Decision::Allow
        );
        assert_eq!(
            authorize(&res(&n, "create", "", "pods", "ns", ""), &p),
            Decision::Allow
        );
    }
}
