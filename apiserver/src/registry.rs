//! The resource table: every kind the apiserver serves is one row. Handlers, discovery, the
//! watch caches, the key layout and authorization all read it; adding a kind is adding a row
//! (and, where the kind has its own defaults or validation, a case in `validation`).

/// One served resource (a group/version/plural and its kind).
#[derive(Debug)]
pub struct Resource {
    /// API group, "" for core.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Plural, lower case: the URL segment and the key segment.
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served under `<name>/<subresource>`.
    pub subresources: &'static [&'static str],
    /// Whether the object has a spec whose changes bump metadata.generation.
    pub has_spec: bool,
}

const ALL: &[&str] = &["all"];

/// Every resource Strata serves, in discovery order.
pub static RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        subresources: &["status", "finalize"],
        has_spec: false,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        subresources: &["status"],
        has_spec: false,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: ALL,
        subresources: &["status", "binding"],
        has_spec: false,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        categories: ALL,
        subresources: &["status"],
        has_spec: false,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        namespaced: true,
        short_names: &["ep"],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: ALL,
        subresources: &["status", "scale"],
        has_spec: true,
    },
    Resource {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        namespaced: true,
        short_names: &["rs"],
        categories: ALL,
        subresources: &["status", "scale"],
        has_spec: true,
    },
    Resource {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        plural: "roles",
        singular: "role",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        plural: "rolebindings",
        singular: "rolebinding",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        singular: "clusterrole",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_spec: false,
    },
];

/// The groups served under /apis, in discovery order (core is served under /api).
pub static GROUPS: &[&str] = &["apps", "coordination.k8s.io", "rbac.authorization.k8s.io"];

impl Resource {
    /// "v1" for core, "apps/v1" otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The list kind, e.g. "PodList".
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The resource as Kubernetes names it in messages: "pods", "deployments.apps".
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Key prefix of every object of this resource: `/registry/<plural>/`. Core resources use
    /// their plural; grouped ones too (plurals are unique across the groups Strata serves), as
    /// kube-apiserver does for most of them.
    pub fn prefix(&self) -> String {
        format!("/registry/{}/", self.plural)
    }

    /// Key prefix of the objects in one namespace (or all of them when `namespace` is empty).
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("/registry/{}/{}/", self.plural, namespace)
        } else {
            self.prefix()
        }
    }

    /// The key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("/registry/{}/{}/{}", self.plural, namespace, name)
        } else {
            format!("/registry/{}/{}", self.plural, name)
        }
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }

    /// Whether the kind has a status subresource, so the main endpoint ignores status.
    pub fn has_status(&self) -> bool {
        self.has_subresource("status")
    }
}

/// Finds a resource by group, version and plural.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by group and kind.
pub fn by_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// Whether `group/version` is served.
pub fn serves_version(group: &str, version: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_kubernetes_layout() {
        let pods = lookup("", "v1", "pods").expect("pods");
        assert_eq!(pods.key("default", "web"), "/registry/pods/default/web");
        assert_eq!(pods.namespace_prefix(""), "/registry/pods/");
        assert_eq!(pods.namespace_prefix("a"), "/registry/pods/a/");
        let nodes = lookup("", "v1", "nodes").expect("nodes");
        assert_eq!(nodes.key("", "n1"), "/registry/nodes/n1");
        let deploy = lookup("apps", "v1", "deployments").expect("deployments");
        assert_eq!(deploy.api_version(), "apps/v1");
        assert_eq!(deploy.qualified(), "deployments.apps");
        assert!(by_kind("rbac.authorization.k8s.io", "ClusterRole").is_some());
        // Plurals are unique, so the key prefixes never overlap.
        let mut plurals: Vec<_> = RESOURCES.iter().map(|r| r.plural).collect();
        plurals.sort_unstable();
        plurals.dedup();
        assert_eq!(plurals.len(), RESOURCES.len());
    }
}
