//! Authorization: the `system:masters` superuser group, the node rule, then RBAC with
//! Kubernetes' semantics (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac).
//!
//! Not supported: ClusterRole `aggregationRule` (an aggregated role is evaluated with the
//! rules it has stored, which the apiserver would have to fill in), impersonation.

use std::sync::Arc;

use serde_json::Value;

use super::{node, UserInfo, GROUP_MASTERS};
use crate::validation::common::q;

/// What a request wants to do (Kubernetes' authorizer.Attributes).
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    pub user: &'a UserInfo,
    /// get list watch create update patch delete deletecollection (resource requests);
    /// the lowercase HTTP method for non-resource requests.
    pub verb: &'a str,
    pub resource_request: bool,
    /// "" for the core group.
    pub api_group: &'a str,
    /// Plural, e.g. "pods".
    pub resource: &'a str,
    /// "" or e.g. "binding", "status", "scale".
    pub subresource: &'a str,
    /// "" for cluster-scoped resources or all namespaces.
    pub namespace: &'a str,
    /// "" when not addressed by name.
    pub name: &'a str,
    /// URL path (used for non-resource requests).
    pub path: &'a str,
}

/// The answer for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `reason` is empty for a plain RBAC denial; it carries the node rule's reason or RBAC's
    /// errors (a binding naming a missing role) as Kubernetes' authorizers report them.
    Deny {
        reason: String,
    },
}

/// The objects the authorizer reads, backed by the apiserver's watch caches. Objects are the
/// JSON form of rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding,
/// ClusterRoleBinding, and core/v1 Pod.
pub trait PolicySource: Send + Sync {
    fn cluster_role_bindings(&self) -> Vec<Arc<Value>>;
    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Value>>;
    fn cluster_role(&self, name: &str) -> Option<Arc<Value>>;
    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Value>>;
    /// spec.nodeName of the pod, if the pod exists and is bound.
    fn pod_node_name(&self, namespace: &str, name: &str) -> Option<String>;
}

/// Decides a request: `system:masters` is allowed everything; a node
/// (`system:node:<name>` in group `system:nodes`) is decided by the node rule first; then RBAC.
pub fn authorize(attrs: &Attributes<'_>, policy: &dyn PolicySource) -> Decision {
    if attrs.user.groups.iter().any(|g| g == GROUP_MASTERS) {
        return Decision::Allow;
    }
    let mut reasons = Vec::new();
    match node::authorize(attrs, policy) {
        node::NodeDecision::Allow => return Decision::Allow,
        node::NodeDecision::NoOpinion(reason) => {
            if !reason.is_empty() {
                reasons.push(reason);
            }
        }
    }
    match rbac_authorize(attrs, policy) {
        Ok(()) => Decision::Allow,
        Err(reason) => {
            if !reason.is_empty() {
                reasons.push(reason);
            }
            Decision::Deny {
                reason: reasons.join(", "),
            }
        }
    }
}

/// RBAC alone. `Err(reason)`: not allowed, with Kubernetes' reason ("" or "RBAC: ...").
fn rbac_authorize(attrs: &Attributes<'_>, policy: &dyn PolicySource) -> Result<(), String> {
    let mut errors: Vec<String> = Vec::new();
    for binding in policy.cluster_role_bindings() {
        if !binding_applies(&binding, attrs.user, "") {
            continue;
        }
        let role_ref = &binding["roleRef"];
        let role_name = str_field(role_ref, "name");
        if str_field(role_ref, "kind") != "ClusterRole" {
            continue;
        }
        match policy.cluster_role(role_name) {
            Some(role) => {
                if rules_allow(attrs, &role["rules"]) {
                    return Ok(());
                }
            }
            None => errors.push(format!(
                "clusterrole.rbac.authorization.k8s.io {} not found",
                q(role_name)
            )),
        }
    }
    // Namespaced bindings only for namespaced resource requests (Roles hold no
    // nonResourceURLs rules).
    if attrs.resource_request && !attrs.namespace.is_empty() {
        for binding in policy.role_bindings(attrs.namespace) {
            if !binding_applies(&binding, attrs.user, attrs.namespace) {
                continue;
            }
            let role_ref = &binding["roleRef"];
            let role_name = str_field(role_ref, "name");
            let (role, kind) = match str_field(role_ref, "kind") {
                "Role" => (policy.role(attrs.namespace, role_name), "role"),
                "ClusterRole" => (policy.cluster_role(role_name), "clusterrole"),
                _ => continue,
            };
            match role {
                Some(role) => {
                    if rules_allow(attrs, &role["rules"]) {
                        return Ok(());
                    }
                }
                None => errors.push(format!(
                    "{kind}.rbac.authorization.k8s.io {} not found",
                    q(role_name)
                )),
            }
        }
    }
    Err(match errors.len() {
        0 => String::new(),
        1 => format!("RBAC: {}", errors[0]),
        _ => format!("RBAC: [{}]", errors.join(", ")),
    })
}

/// The RBAC rules that apply to `user` in `namespace` (every ClusterRoleBinding's, then the
/// namespace's RoleBindings'), as a SelfSubjectRulesReview reports them, and whether the list
/// is incomplete (a binding names a role that does not exist). Rules granted by the node rule
/// are not listed, as Kubernetes' RBAC rule resolver does not list them either.
pub fn rules_for(
    user: &UserInfo,
    namespace: &str,
    policy: &dyn PolicySource,
) -> (Vec<Value>, bool) {
    let mut rules = Vec::new();
    let mut incomplete = false;
    let mut take = |role: Option<Arc<Value>>| match role {
        Some(role) => {
            if let Some(rs) = role.get("rules").and_then(Value::as_array) {
                rules.extend(rs.iter().cloned());
            }
        }
        None => incomplete = true,
    };
    for binding in policy.cluster_role_bindings() {
        let role_ref = &binding["roleRef"];
        if binding_applies(&binding, user, "") && str_field(role_ref, "kind") == "ClusterRole" {
            take(policy.cluster_role(str_field(role_ref, "name")));
        }
    }
    if !namespace.is_empty() {
        for binding in policy.role_bindings(namespace) {
            if !binding_applies(&binding, user, namespace) {
                continue;
            }
            let role_ref = &binding["roleRef"];
            let name = str_field(role_ref, "name");
            match str_field(role_ref, "kind") {
                "Role" => take(policy.role(namespace, name)),
                "ClusterRole" => take(policy.cluster_role(name)),
                _ => {}
            }
        }
    }
    (rules, incomplete)
}

/// Whether a (Cluster)RoleBinding names the user. `binding_namespace` defaults a
/// ServiceAccount subject's namespace ("" for ClusterRoleBindings).
fn binding_applies(binding: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let name = str_field(s, "name");
        match str_field(s, "kind") {
            "User" => user.name == name,
            "Group" => user.groups.iter().any(|g| g == name),
            "ServiceAccount" => {
                let mut ns = str_field(s, "namespace");
                if ns.is_empty() {
                    ns = binding_namespace;
                }
                !ns.is_empty()
                    && !name.is_empty()
                    && user
                        .name
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.split_once(':'))
                        == Some((ns, name))
            }
            _ => false,
        }
    })
}

/// Whether any rule of a role's `rules` array allows the request.
pub(super) fn rules_allow(attrs: &Attributes<'_>, rules: &Value) -> bool {
    rules
        .as_array()
        .is_some_and(|rules| rules.iter().any(|r| rule_allows(attrs, r)))
}

/// Kubernetes' RuleAllows.
pub(super) fn rule_allows(attrs: &Attributes<'_>, rule: &Value) -> bool {
    if !has(rule, "verbs", |v| v == "*" || v == attrs.verb) {
        return false;
    }
    if attrs.resource_request {
        let combined;
        let requested = if attrs.subresource.is_empty() {
            attrs.resource
        } else {
            combined = format!("{}/{}", attrs.resource, attrs.subresource);
            combined.as_str()
        };
        has(rule, "apiGroups", |g| g == "*" || g == attrs.api_group)
            && has(rule, "resources", |r| {
                resource_matches(r, requested, attrs.subresource)
            })
            && resource_name_matches(rule, attrs.name)
    } else {
        has(rule, "nonResourceURLs", |u| {
            non_resource_url_matches(u, attrs.path)
        })
    }
}

/// Kubernetes' ResourceMatches: "*" matches everything (subresources too), an exact
/// "resource" or "resource/subresource", or "*/subresource" for that subresource of any
/// resource. ("pods/*" is not a wildcard in Kubernetes, so it is not one here.)
fn resource_matches(rule_resource: &str, requested: &str, subresource: &str) -> bool {
    if rule_resource == "*" || rule_resource == requested {
        return true;
    }
    !subresource.is_empty() && rule_resource.strip_prefix("*/") == Some(subresource)
}

/// Kubernetes' ResourceNameMatches: no resourceNames matches any request; otherwise the
/// request must name one of them (so list, watch and unnamed create never match).
fn resource_name_matches(rule: &Value, name: &str) -> bool {
    match rule.get("resourceNames").and_then(Value::as_array) {
        None => true,
        Some(names) if names.is_empty() => true,
        Some(names) => !name.is_empty() && names.iter().any(|n| n.as_str() == Some(name)),
    }
}

/// Kubernetes' NonResourceURLMatches: "*", an exact path, or a prefix ending in "*".
fn non_resource_url_matches(rule_url: &str, path: &str) -> bool {
    if rule_url == "*" || rule_url == path {
        return true;
    }
    rule_url
        .strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix))
}

fn has(rule: &Value, key: &str, pred: impl Fn(&str) -> bool) -> bool {
    rule.get(key)
        .and_then(Value::as_array)
        .is_some_and(|items| items.iter().filter_map(Value::as_str).any(pred))
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Kubernetes' 403 message (responsewriters.Forbidden + errors.NewForbidden), e.g.
/// `pods "foo" is forbidden: User "bob" cannot get resource "pods" in API group "" in the
/// namespace "default"`, or `forbidden: User "bob" cannot get path "/metrics"`; `: <reason>` is
/// appended when the reason is non-empty.
pub fn forbidden_message(attrs: &Attributes<'_>, reason: &str) -> String {
    let user = q(&attrs.user.name);
    let mut msg = if !attrs.resource_request {
        format!("User {user} cannot {} path {}", attrs.verb, q(attrs.path))
    } else {
        let resource = if attrs.subresource.is_empty() {
            attrs.resource.to_string()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        let scope = if attrs.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {}", q(attrs.namespace))
        };
        format!(
            "User {user} cannot {} resource {} in API group {} {scope}",
            attrs.verb,
            q(&resource),
            q(attrs.api_group),
        )
    };
    // Kubernetes HTML-escapes the generated part.
    msg = msg
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    if !attrs.resource_request || attrs.resource.is_empty() {
        return format!("forbidden: {msg}");
    }
    let qualified = if attrs.api_group.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    if attrs.name.is_empty() {
        format!("{qualified} is forbidden: {msg}")
    } else {
        format!("{qualified} {} is forbidden: {msg}", q(attrs.name))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::{BTreeMap, HashMap};

    /// An in-memory PolicySource.
    #[derive(Default)]
    pub(in super::super) struct MemPolicy {
        pub crbs: Vec<Arc<Value>>,
        pub rbs: HashMap<String, Vec<Arc<Value>>>,
        pub cluster_roles: HashMap<String, Arc<Value>>,
        pub roles: HashMap<(String, String), Arc<Value>>,
        pub pods: HashMap<(String, String), String>,
    }

    impl MemPolicy {
        pub fn add(&mut self, obj: Value) {
            let kind = obj["kind"].as_str().unwrap().to_string();
            let name = obj["metadata"]["name"].as_str().unwrap().to_string();
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let obj = Arc::new(obj);
            match kind.as_str() {
                "ClusterRoleBinding" => self.crbs.push(obj),
                "RoleBinding" => self.rbs.entry(ns).or_default().push(obj),
                "ClusterRole" => {
                    self.cluster_roles.insert(name, obj);
                }
                "Role" => {
                    self.roles.insert((ns, name), obj);
                }
                k => panic!("unexpected kind {k}"),
            }
        }
    }

    impl PolicySource for MemPolicy {
        fn cluster_role_bindings(&self) -> Vec<Arc<Value>> {
            self.crbs.clone()
        }
        fn role_bindings(&self, namespace: &str) -> Vec<Arc<Value>> {
            self.rbs.get(namespace).cloned().unwrap_or_default()
        }
        fn cluster_role(&self, name: &str) -> Option<Arc<Value>> {
            self.cluster_roles.get(name).cloned()
        }
        fn role(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
            self.roles
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        }
        fn pod_node_name(&self, namespace: &str, name: &str) -> Option<String> {
            self.pods
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        }
    }

    pub fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            extra: BTreeMap::new(),
        }
    }

    /// A resource request.
    pub fn res<'a>(
        user: &'a UserInfo,
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            user,
            verb,
            resource_request: true,
            api_group: group,
            resource,
            subresource,
            namespace,
            name,
            path: "",
        }
    }

    pub fn non_res<'a>(user: &'a UserInfo, verb: &'a str, path: &'a str) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            resource_request: false,
            api_group: "",
            resource: "",
            subresource: "",
            namespace: "",
            name: "",
            path,
        }
    }

    fn cluster_role(name: &str, rules: Value) -> Value {
        json!({"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
    }

    fn role(ns: &str, name: &str, rules: Value) -> Value {
        json!({"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
    }

    fn crb(name: &str, role: &str, subjects: Value) -> Value {
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects})
    }

    fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
        json!({"kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": subjects})
    }

    fn allowed(attrs: &Attributes<'_>, policy: &MemPolicy) -> bool {
        authorize(attrs, policy) == Decision::Allow
    }

    fn pod_reader() -> Value {
        json!([{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}])
    }

    #[test]
    fn cluster_role_binding_grants_everywhere() {
        let mut p = MemPolicy::default();
        p.add(cluster_role("pod-reader", pod_reader()));
        p.add(crb(
            "b",
            "pod-reader",
            json!([{"kind": "User", "name": "bob"}]),
        ));
        let bob = user("bob", &["system:authenticated"]);
        let eve = user("eve", &["system:authenticated"]);
        assert!(allowed(&res(&bob, "get", "", "pods", "default", "x"), &p));
        assert!(allowed(&res(&bob, "list", "", "pods", "", ""), &p));
        assert!(allowed(&res(&bob, "watch", "", "pods", "other", ""), &p));
        assert!(!allowed(
            &res(&bob, "delete", "", "pods", "default", "x"),
            &p
        ));
        assert!(!allowed(
            &res(&bob, "get", "apps", "pods", "default", "x"),
            &p
        ));
        assert!(!allowed(
            &res(&bob, "get", "", "pods/log", "default", "x"),
            &p
        ));
        assert!(!allowed(&res(&eve, "get", "", "pods", "default", "x"), &p));
    }

    #[test]
    fn subjects_groups_and_service_accounts() {
        let mut p = MemPolicy::default();
        p.add(cluster_role("pod-reader", pod_reader()));
        p.add(crb(
            "g",
            "pod-reader",
            json!([{"kind": "Group", "name": "readers"}]),
        ));
        p.add(crb(
            "sa",
            "pod-reader",
            json!([{"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}]),
        ));
        let reader = user("r", &["readers"]);
        let bot = user("system:serviceaccount:ci:bot", &["system:serviceaccounts"]);
        let other_bot = user("system:serviceaccount:cd:bot", &["system:serviceaccounts"]);
        assert!(allowed(&res(&reader, "get", "", "pods", "a", "p"), &p));
        assert!(allowed(&res(&bot, "get", "", "pods", "a", "p"), &p));
        assert!(!allowed(&res(&other_bot, "get", "", "pods", "a", "p"), &p));
        // A RoleBinding's ServiceAccount subject without a namespace means the binding's.
        p.add(rb(
            "cd",
            "b",
            "ClusterRole",
            "pod-reader",
            json!([{"kind": "ServiceAccount", "name": "bot"}]),
        ));
        assert!(allowed(&res(&other_bot, "get", "", "pods", "cd", "p"), &p));
        assert!(!allowed(&res(&other_bot, "get", "", "pods", "ci", "p"), &p));
    }

    #[test]
    fn role_bindings_grant_only_in_their_namespace() {
        let mut p = MemPolicy::default();
        p.add(role(
            "dev",
            "cm-writer",
            json!([{"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}]),
        ));
        p.add(cluster_role("pod-reader", pod_reader()));
        p.add(rb(
            "dev",
            "b1",
            "Role",
            "cm-writer",
            json!([{"kind": "User", "name": "bob"}]),
        ));
        p.add(rb(
            "dev",
            "b2",
            "ClusterRole",
            "pod-reader",
            json!([{"kind": "User", "name": "bob"}]),
        ));
        let bob = user("bob", &[]);
        assert!(allowed(
            &res(&bob, "create", "", "configmaps", "dev", ""),
            &p
        ));
        assert!(allowed(
            &res(&bob, "delete", "", "configmaps", "dev", "c"),
            &p
        ));
        assert!(!allowed(
            &res(&bob, "create", "", "configmaps", "prod", ""),
            &p
        ));
        assert!(allowed(&res(&bob, "list", "", "pods", "dev", ""), &p));
        assert!(!allowed(&res(&bob, "list", "", "pods", "prod", ""), &p));
        // All-namespaces and cluster-scoped requests are not granted by RoleBindings.
        assert!(!allowed(&res(&bob, "list", "", "pods", "", ""), &p));
        // A Role of the same name in another namespace is not used.
        p.add(rb(
            "prod",
            "b1",
            "Role",
            "cm-writer",
            json!([{"kind": "User", "name": "bob"}]),
        ));
        assert_eq!(
            authorize(&res(&bob, "create", "", "configmaps", "prod", ""), &p),
            Decision::Deny {
                reason: "RBAC: role.rbac.authorization.k8s.io \"cm-writer\" not found".into()
            }
        );
    }

    #[test]
    fn resource_names() {
        let mut p = MemPolicy::default();
        p.add(cluster_role(
            "one-cm",
            json!([{"verbs": ["get", "update", "list", "create"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]}]),
        ));
        p.add(crb("b", "one-cm", json!([{"kind": "User", "name": "bob"}])));
        let bob = user("bob", &[]);
        assert!(allowed(
            &res(&bob, "get", "", "configmaps", "ns", "cfg"),
            &p
        ));
        assert!(allowed(
            &res(&bob, "update", "", "configmaps", "ns", "cfg"),
            &p
        ));
        assert!(!allowed(
            &res(&bob, "get", "", "configmaps", "ns", "other"),
            &p
        ));
        assert!(!allowed(&res(&bob, "list", "", "configmaps", "ns", ""), &p));
        assert!(!allowed(
            &res(&bob, "create", "", "configmaps", "ns", ""),
            &p
        ));
    }

    #[test]
    fn subresources_and_wildcards() {
        let mut p = MemPolicy::default();
        p.add(cluster_role(
            "mixed",
            json!([
                {"verbs": ["create"], "apiGroups": [""], "resources": ["pods/binding"]},
                {"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]},
                {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*"]},
                {"verbs": ["patch"], "apiGroups": [""], "resources": ["pods/*"]}
            ]),
        ));
        p.add(crb("b", "mixed", json!([{"kind": "User", "name": "bob"}])));
        let bob = user("bob", &[]);
        assert!(allowed(
            &res(&bob, "create", "", "pods/binding", "ns", "p"),
            &p
        ));
        assert!(!allowed(&res(&bob, "create", "", "pods", "ns", ""), &p));
        assert!(!allowed(
            &res(&bob, "create", "", "pods/status", "ns", "p"),
            &p
        ));
        assert!(allowed(
            &res(&bob, "update", "apps", "deployments/scale", "ns", "d"),
            &p
        ));
        assert!(allowed(
            &res(
                &bob,
                "update",
                "",
                "replicationcontrollers/scale",
                "ns",
                "r"
            ),
            &p
        ));
        assert!(!allowed(
            &res(&bob, "update", "apps", "deployments", "ns", "d"),
            &p
        ));
        assert!(!allowed(
            &res(&bob, "update", "apps", "deployments/status", "ns", "d"),
            &p
        ));
        // "*" covers subresources.
        assert!(allowed(
            &res(&bob, "get", "apps", "deployments/status", "ns", "d"),
            &p
        ));
        assert!(allowed(
            &res(&bob, "get", "apps", "replicasets", "", ""),
            &p
        ));
        assert!(!allowed(&res(&bob, "get", "", "pods", "ns", "p"), &p));
        // "pods/*" is not a wildcard in Kubernetes.
        assert!(!allowed(
            &res(&bob, "patch", "", "pods/status", "ns", "p"),
            &p
        ));
        // Verb and group wildcards.
        p.add(cluster_role(
            "all",
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
        ));
        p.add(crb("c", "all", json!([{"kind": "User", "name": "carol"}])));
        let carol = user("carol", &[]);
        assert!(allowed(
            &res(&carol, "deletecollection", "x.io", "foos/bar", "ns", ""),
            &p
        ));
        assert!(!allowed(&non_res(&carol, "get", "/healthz"), &p));
    }

    #[test]
    fn non_resource_urls() {
        let mut p = MemPolicy::default();
        p.add(cluster_role(
            "urls",
            json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]},
                   {"verbs": ["get", "post"], "nonResourceURLs": ["/logs*"]}]),
        ));
        p.add(crb(
            "b",
            "urls",
            json!([{"kind": "Group", "name": "system:authenticated"}]),
        ));
        let bob = user("bob", &["system:authenticated"]);
        assert!(allowed(&non_res(&bob, "get", "/healthz"), &p));
        assert!(!allowed(&non_res(&bob, "get", "/healthz/etcd"), &p));
        assert!(!allowed(&non_res(&bob, "post", "/healthz"), &p));
        assert!(allowed(&non_res(&bob, "get", "/apis/apps/v1"), &p));
        assert!(!allowed(&non_res(&bob, "get", "/apis"), &p));
        assert!(allowed(&non_res(&bob, "post", "/logs/x"), &p));
        assert!(allowed(&non_res(&bob, "get", "/logs"), &p));
        assert!(!allowed(&non_res(&bob, "get", "/metrics"), &p));
        // Non-resource rules do not grant resources and vice versa.
        assert!(!allowed(&res(&bob, "get", "", "pods", "ns", "x"), &p));
        p.add(cluster_role(
            "star",
            json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]),
        ));
        p.add(crb("s", "star", json!([{"kind": "User", "name": "ops"}])));
        let ops = user("ops", &[]);
        assert!(allowed(&non_res(&ops, "delete", "/anything"), &p));
        assert!(!allowed(&res(&ops, "get", "", "pods", "ns", "x"), &p));
    }

    #[test]
    fn masters_are_superusers() {
        let p = MemPolicy::default();
        let admin = user("admin", &["system:masters", "system:authenticated"]);
        assert!(allowed(&res(&admin, "delete", "", "nodes", "", "n1"), &p));
        assert!(allowed(
            &res(&admin, "create", "x.io", "foos/bar", "ns", ""),
            &p
        ));
        assert!(allowed(&non_res(&admin, "get", "/metrics"), &p));
        let bob = user("bob", &["system:authenticated"]);
        assert_eq!(
            authorize(&non_res(&bob, "get", "/metrics"), &p),
            Decision::Deny {
                reason: String::new()
            }
        );
    }

    #[test]
    fn missing_roles_reported() {
        let mut p = MemPolicy::default();
        p.add(crb("b1", "gone", json!([{"kind": "User", "name": "bob"}])));
        p.add(crb("b2", "gone2", json!([{"kind": "User", "name": "bob"}])));
        p.add(crb(
            "b3",
            "unrelated",
            json!([{"kind": "User", "name": "eve"}]),
        ));
        let bob = user("bob", &[]);
        assert_eq!(
            authorize(&res(&bob, "get", "", "pods", "", ""), &p),
            Decision::Deny {
                reason: "RBAC: [clusterrole.rbac.authorization.k8s.io \"gone\" not found, \
                         clusterrole.rbac.authorization.k8s.io \"gone2\" not found]"
                    .into()
            }
        );
    }

    #[test]
    fn forbidden_messages() {
        let bob = user("bob", &[]);
        assert_eq!(
            forbidden_message(&res(&bob, "get", "", "pods", "default", "foo"), ""),
            r#"pods "foo" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default""#
        );
        assert_eq!(
            forbidden_message(&res(&bob, "list", "", "nodes", "", ""), ""),
            r#"nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope"#
        );
        let x = user("x", &[]);
        assert_eq!(
            forbidden_message(&res(&x, "create", "", "pods/binding", "ns", "p"), ""),
            r#"pods "p" is forbidden: User "x" cannot create resource "pods/binding" in API group "" in the namespace "ns""#
        );
        assert_eq!(
            forbidden_message(&non_res(&bob, "get", "/metrics"), ""),
            r#"forbidden: User "bob" cannot get path "/metrics""#
        );
        assert_eq!(
            forbidden_message(&res(&bob, "list", "apps", "deployments", "ns", ""), "why"),
            r#"deployments.apps is forbidden: User "bob" cannot list resource "deployments" in API group "apps" in the namespace "ns": why"#
        );
        let odd = user("a\"<b>", &[]);
        assert_eq!(
            forbidden_message(&non_res(&odd, "get", "/x"), ""),
            r#"forbidden: User "a\"&lt;b&gt;" cannot get path "/x""#
        );
    }
}
