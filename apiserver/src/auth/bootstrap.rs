//! The bootstrap RBAC policy: the ClusterRoles and ClusterRoleBindings kube-apiserver ships
//! (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), reduced to
//! what Strata serves. `admin`, `edit` and `view` are aggregated roles in Kubernetes; here
//! they are stored flattened (with the rules of the `system:aggregate-to-*` roles), since
//! aggregation is not supported.

use serde_json::{json, Value};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
const READ_UPDATE: &[&str] = &["get", "list", "watch", "update", "patch"];

const CORE: &str = "";
const APPS: &str = "apps";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const NETWORKING: &str = "networking.k8s.io";
const POLICY: &str = "policy";
const STORAGE: &str = "storage.k8s.io";
const CERTIFICATES: &str = "certificates.k8s.io";

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

fn named_rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "resourceNames": names})
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

/// Kubernetes' eventsRule(): create/update/patch events in both groups.
fn events_rule() -> Value {
    rule(&["create", "update", "patch"], &[CORE, EVENTS], &["events"])
}

fn metadata(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name),
        "rules": rules,
    })
}

enum Who<'a> {
    User(&'a str),
    Group(&'a str),
}

fn cluster_role_binding(name: &str, subjects: &[Who<'_>]) -> Value {
    let mut obj = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
    });
    if !subjects.is_empty() {
        obj["subjects"] = subjects
            .iter()
            .map(|s| match s {
                Who::User(n) => json!({"kind": "User", "apiGroup": RBAC_GROUP, "name": n}),
                Who::Group(n) => json!({"kind": "Group", "apiGroup": RBAC_GROUP, "name": n}),
            })
            .collect();
    }
    obj
}

/// Kubernetes' NodeRules() (the `system:node` role).
fn node_rules() -> Vec<Value> {
    vec![
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(
            &["create"],
            &[AUTHORIZATION],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        rule(READ, &[CORE], &["services"]),
        rule(&["create", "get", "list", "watch"], &[CORE], &["nodes"]),
        rule(&["update", "patch"], &[CORE], &["nodes/status"]),
        rule(&["update", "patch"], &[CORE], &["nodes"]),
        rule(&["create", "update", "patch"], &[CORE], &["events"]),
        rule(READ, &[CORE], &["pods"]),
        rule(&["create", "delete"], &[CORE], &["pods"]),
        rule(&["update", "patch"], &[CORE], &["pods/status"]),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(READ, &[CORE], &["secrets", "configmaps"]),
        rule(
            &["get"],
            &[CORE],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["get"], &[CORE], &["endpoints"]),
        rule(
            &["create", "get", "list", "watch"],
            &[CERTIFICATES],
            &["certificatesigningrequests"],
        ),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &[COORDINATION],
            &["leases"],
        ),
        rule(&["get"], &[STORAGE], &["volumeattachments"]),
        rule(
            &["get", "update", "patch"],
            &[CORE],
            &["persistentvolumeclaims/status"],
        ),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &[STORAGE],
            &["csinodes"],
        ),
        rule(READ, &["node.k8s.io"], &["runtimeclasses"]),
    ]
}

/// Rules of Kubernetes' system:aggregate-to-view (plus leases, which Strata serves).
fn view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[CORE],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            &[CORE],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[DISCOVERY], &["endpointslices"]),
        rule(
            READ,
            &[APPS],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            &[AUTOSCALING],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &[BATCH],
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            &[POLICY],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &[NETWORKING],
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
        rule(READ, &[COORDINATION], &["leases"]),
    ]
}

/// Rules of Kubernetes' system:aggregate-to-edit (plus leases).
fn edit_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[CORE],
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[CORE], &["serviceaccounts"]),
        rule(
            WRITE,
            &[CORE],
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(
            WRITE,
            &[CORE],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
            ],
        ),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &[APPS],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        rule(WRITE, &[BATCH], &["jobs", "cronjobs"]),
        rule(WRITE, &[POLICY], &["poddisruptionbudgets"]),
        rule(WRITE, &[NETWORKING], &["networkpolicies", "ingresses"]),
        rule(WRITE, &[COORDINATION], &["leases"]),
    ]
}

/// Rules of Kubernetes' system:aggregate-to-admin.
fn admin_rules() -> Vec<Value> {
    vec![
        rule(
            &["create"],
            &[AUTHORIZATION],
            &["localsubjectaccessreviews"],
        ),
        rule(READ_WRITE, &[RBAC_GROUP], &["roles", "rolebindings"]),
    ]
}

fn scheduler_rules() -> Vec<Value> {
    vec![
        events_rule(),
        // Leader election.
        rule(&["create"], &[COORDINATION], &["leases"]),
        named_rule(
            &["get", "update"],
            &[COORDINATION],
            &["leases"],
            &["kube-scheduler"],
        ),
        // Fundamental resources.
        rule(READ, &[CORE], &["nodes"]),
        rule(&["get", "list", "watch", "delete"], &[CORE], &["pods"]),
        rule(&["create"], &[CORE], &["pods/binding", "bindings"]),
        rule(&["patch", "update"], &[CORE], &["pods/status"]),
        // Things that select pods.
        rule(READ, &[CORE], &["services", "replicationcontrollers"]),
        rule(READ, &[APPS], &["replicasets", "statefulsets"]),
        // Things pods use or that apply to them.
        rule(READ, &[POLICY], &["poddisruptionbudgets"]),
        rule(
            READ,
            &[CORE],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        rule(READ, &[STORAGE], &["csinodes"]),
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[STORAGE], &["csidrivers", "csistoragecapacities"]),
    ]
}

/// Kubernetes runs each controller under its own service account (controller_policy.go);
/// Strata's controller manager uses one identity, so this role holds the union of what the
/// controllers it runs need: the Kubernetes role, plus workload, node and namespace
/// management, and the garbage collector's and namespace controller's access to everything.
fn controller_manager_rules() -> Vec<Value> {
    vec![
        events_rule(),
        // Leader election and node leases.
        rule(READ_WRITE, &[COORDINATION], &["leases"]),
        // Fundamental resources.
        rule(&["create"], &[CORE], &["secrets", "serviceaccounts"]),
        rule(&["delete"], &[CORE], &["secrets"]),
        rule(
            &["get"],
            &[CORE],
            &["namespaces", "secrets", "serviceaccounts", "configmaps"],
        ),
        rule(&["update"], &[CORE], &["secrets", "serviceaccounts"]),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        // All shared informers; the garbage collector (orphaning patches owner references)
        // and the namespace controller (deletes everything in a terminating namespace).
        rule(
            &[
                "get",
                "list",
                "watch",
                "update",
                "patch",
                "delete",
                "deletecollection",
            ],
            &["*"],
            &["*"],
        ),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        // Workload controllers.
        rule(
            READ_WRITE,
            &[CORE],
            &["pods", "pods/status", "pods/binding", "serviceaccounts"],
        ),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(
            READ_WRITE,
            &[APPS],
            &[
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/status",
                "daemonsets",
                "daemonsets/status",
                "controllerrevisions",
            ],
        ),
        rule(
            READ_WRITE,
            &[BATCH],
            &["jobs", "jobs/status", "cronjobs", "cronjobs/status"],
        ),
        // Node lifecycle and namespaces.
        rule(READ_WRITE, &[CORE], &["nodes", "nodes/status"]),
        rule(
            READ_WRITE,
            &[CORE],
            &["namespaces", "namespaces/finalize", "namespaces/status"],
        ),
        // Endpoints controllers.
        rule(READ_WRITE, &[CORE], &["endpoints", "services/status"]),
        rule(READ_WRITE, &[DISCOVERY], &["endpointslices"]),
        rule(READ, &[CORE], &["configmaps", "secrets"]),
    ]
}

/// Bootstrap policy objects (JSON, with apiVersion/kind/metadata.name, the label
/// kubernetes.io/bootstrapping=rbac-defaults and the annotation
/// rbac.authorization.kubernetes.io/autoupdate=true) that the apiserver creates at startup
/// when missing: all ClusterRoles first, then the ClusterRoleBindings.
pub fn bootstrap_policy() -> Vec<Value> {
    let mut edit = edit_rules();
    edit.extend(view_rules());
    let mut admin = admin_rules();
    admin.extend(edit.iter().cloned());

    let roles = vec![
        cluster_role(
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            vec![url_rule(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        cluster_role(
            "system:monitoring",
            vec![url_rule(
                &["get"],
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            vec![rule(
                &["create"],
                &[AUTHORIZATION],
                &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            vec![url_rule(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        cluster_role("admin", admin),
        cluster_role("edit", edit),
        cluster_role("view", view_rules()),
        cluster_role("system:node", node_rules()),
        cluster_role(
            "system:node-proxier",
            vec![
                rule(&["list", "watch"], &[CORE], &["services", "endpoints"]),
                rule(READ, &[CORE], &["nodes"]),
                events_rule(),
                rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
            ],
        ),
        cluster_role(
            "system:auth-delegator",
            vec![
                rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
                rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
            ],
        ),
        cluster_role("system:kube-scheduler", scheduler_rules()),
        cluster_role(
            "system:volume-scheduler",
            vec![
                rule(READ_UPDATE, &[CORE], &["persistentvolumes"]),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(READ_UPDATE, &[CORE], &["persistentvolumeclaims"]),
            ],
        ),
        cluster_role("system:kube-controller-manager", controller_manager_rules()),
        cluster_role(
            "system:service-account-issuer-discovery",
            vec![url_rule(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
    ];

    let bindings = vec![
        cluster_role_binding("cluster-admin", &[Who::Group("system:masters")]),
        cluster_role_binding("system:monitoring", &[Who::Group("system:monitoring")]),
        cluster_role_binding("system:discovery", &[Who::Group("system:authenticated")]),
        cluster_role_binding("system:basic-user", &[Who::Group("system:authenticated")]),
        cluster_role_binding(
            "system:public-info-viewer",
            &[
                Who::Group("system:authenticated"),
                Who::Group("system:unauthenticated"),
            ],
        ),
        cluster_role_binding("system:node-proxier", &[Who::User("system:kube-proxy")]),
        cluster_role_binding(
            "system:kube-controller-manager",
            &[Who::User("system:kube-controller-manager")],
        ),
        cluster_role_binding(
            "system:kube-scheduler",
            &[Who::User("system:kube-scheduler")],
        ),
        cluster_role_binding(
            "system:volume-scheduler",
            &[Who::User("system:kube-scheduler")],
        ),
        // As in Kubernetes since 1.8: kept without subjects; nodes are authorized by the node
        // rule (binding the group here would let RBAC undo the node restriction).
        cluster_role_binding("system:node", &[]),
        cluster_role_binding(
            "system:service-account-issuer-discovery",
            &[Who::Group("system:serviceaccounts")],
        ),
    ];

    roles.into_iter().chain(bindings).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::rbac::tests::{non_res, res, user, MemPolicy};
    use super::super::rbac::{authorize, Decision};
    use super::super::UserInfo;
    use super::*;

    fn policy() -> MemPolicy {
        let mut p = MemPolicy::default();
        for obj in bootstrap_policy() {
            p.add(obj);
        }
        p.pods.insert(("ns".into(), "p".into()), "n1".into());
        p
    }

    fn ok(
        p: &MemPolicy,
        u: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> bool {
        authorize(&res(u, verb, group, resource, ns, name), p) == Decision::Allow
    }

    #[test]
    fn objects_are_well_formed() {
        let objs = bootstrap_policy();
        let mut names = std::collections::HashSet::new();
        for o in &objs {
            assert_eq!(o["apiVersion"], "rbac.authorization.k8s.io/v1");
            let kind = o["kind"].as_str().unwrap();
            assert!(kind == "ClusterRole" || kind == "ClusterRoleBinding");
            let name = o["metadata"]["name"].as_str().unwrap();
            assert!(
                names.insert((kind.to_string(), name.to_string())),
                "duplicate {kind} {name}"
            );
            assert_eq!(
                o["metadata"]["labels"]["kubernetes.io/bootstrapping"],
                "rbac-defaults"
            );
            assert_eq!(
                o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
                "true"
            );
            if kind == "ClusterRoleBinding" {
                let role = o["roleRef"]["name"].as_str().unwrap();
                assert!(objs
                    .iter()
                    .any(|r| r["kind"] == "ClusterRole" && r["metadata"]["name"] == role));
            } else {
                for rule in o["rules"].as_array().unwrap() {
                    assert!(!rule["verbs"].as_array().unwrap().is_empty());
                }
            }
        }
        // Round-trips through the typed Kubernetes objects.
        for o in objs {
            if o["kind"] == "ClusterRole" {
                serde_json::from_value::<k8s_openapi::api::rbac::v1::ClusterRole>(o).unwrap();
            } else {
                serde_json::from_value::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(o)
                    .unwrap();
            }
        }
    }

    #[test]
    fn scheduler() {
        let p = policy();
        let s = user("system:kube-scheduler", &["system:authenticated"]);
        assert!(ok(&p, &s, "create", "", "pods/binding", "ns", "p"));
        assert!(ok(&p, &s, "create", "", "bindings", "ns", ""));
        assert!(ok(&p, &s, "watch", "", "pods", "", ""));
        assert!(ok(&p, &s, "list", "", "nodes", "", ""));
        assert!(ok(&p, &s, "patch", "", "pods/status", "ns", "p"));
        assert!(ok(&p, &s, "create", "events.k8s.io", "events", "ns", ""));
        assert!(ok(
            &p,
            &s,
            "update",
            COORDINATION,
            "leases",
            "kube-system",
            "kube-scheduler"
        ));
        assert!(!ok(
            &p,
            &s,
            "update",
            COORDINATION,
            "leases",
            "kube-system",
            "other"
        ));
        assert!(!ok(&p, &s, "delete", "", "nodes", "", "n1"));
        assert!(!ok(&p, &s, "create", "", "pods", "ns", ""));
        assert!(!ok(&p, &s, "get", "", "secrets", "ns", "s"));
    }

    #[test]
    fn controller_manager() {
        let p = policy();
        let c = user("system:kube-controller-manager", &["system:authenticated"]);
        assert!(ok(&p, &c, "create", "", "pods", "ns", ""));
        assert!(ok(&p, &c, "update", APPS, "replicasets/status", "ns", "r"));
        assert!(ok(&p, &c, "update", APPS, "deployments/scale", "ns", "d"));
        assert!(ok(&p, &c, "update", "", "namespaces/finalize", "", "ns"));
        assert!(ok(&p, &c, "patch", "", "nodes/status", "", "n1"));
        assert!(ok(&p, &c, "delete", "x.io", "foos", "ns", "f"));
        assert!(ok(&p, &c, "deletecollection", "", "configmaps", "ns", ""));
        assert!(ok(&p, &c, "create", "", "secrets", "ns", ""));
        assert!(!ok(&p, &c, "create", "x.io", "foos", "ns", ""));
        assert!(!ok(
            &p,
            &c,
            "create",
            RBAC_GROUP,
            "clusterrolebindings",
            "",
            ""
        ));
    }

    #[test]
    fn discovery_and_public_info() {
        let p = policy();
        let anon = UserInfo::anonymous();
        let bob = user("bob", &["system:authenticated"]);
        for path in ["/healthz", "/livez", "/readyz", "/version"] {
            assert_eq!(
                authorize(&non_res(&anon, "get", path), &p),
                Decision::Allow,
                "{path}"
            );
        }
        assert_ne!(
            authorize(&non_res(&anon, "get", "/api"), &p),
            Decision::Allow
        );
        assert_ne!(
            authorize(&res(&anon, "list", "", "pods", "", ""), &p),
            Decision::Allow
        );
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/openapi/v2",
            "/version",
        ] {
            assert_eq!(
                authorize(&non_res(&bob, "get", path), &p),
                Decision::Allow,
                "{path}"
            );
        }
        assert_ne!(
            authorize(&non_res(&bob, "get", "/metrics"), &p),
            Decision::Allow
        );
        assert!(ok(
            &p,
            &bob,
            "create",
            AUTHORIZATION,
            "selfsubjectaccessreviews",
            "",
            ""
        ));
        assert!(!ok(&p, &bob, "list", "", "pods", "default", ""));
        let mon = user("prom", &["system:monitoring"]);
        assert_eq!(
            authorize(&non_res(&mon, "get", "/metrics"), &p),
            Decision::Allow
        );
        let admin = user("root", &["system:masters"]);
        assert!(ok(&p, &admin, "delete", "", "nodes", "", "n1"));
    }

    #[test]
    fn namespace_roles_via_role_binding() {
        let mut p = policy();
        for (who, role) in [("ann", "admin"), ("ed", "edit"), ("vi", "view")] {
            p.add(
                json!({"kind": "RoleBinding", "metadata": {"name": who, "namespace": "team"},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "User", "apiGroup": RBAC_GROUP, "name": who}]}),
            );
        }
        let (ann, ed, vi) = (user("ann", &[]), user("ed", &[]), user("vi", &[]));
        assert!(ok(&p, &vi, "list", "", "pods", "team", ""));
        assert!(ok(&p, &vi, "get", "", "pods/log", "team", "x"));
        assert!(ok(&p, &vi, "get", APPS, "deployments/scale", "team", "d"));
        assert!(!ok(&p, &vi, "get", "", "secrets", "team", "s"));
        assert!(!ok(&p, &vi, "create", "", "pods", "team", ""));
        assert!(ok(&p, &ed, "create", "", "pods", "team", ""));
        assert!(ok(&p, &ed, "get", "", "secrets", "team", "s"));
        assert!(ok(
            &p,
            &ed,
            "update",
            APPS,
            "deployments/scale",
            "team",
            "d"
        ));
        assert!(ok(&p, &ed, "update", COORDINATION, "leases", "team", "l"));
        assert!(!ok(
            &p,
            &ed,
            "create",
            RBAC_GROUP,
            "rolebindings",
            "team",
            ""
        ));
        assert!(ok(
            &p,
            &ann,
            "create",
            RBAC_GROUP,
            "rolebindings",
            "team",
            ""
        ));
        assert!(ok(&p, &ann, "delete", "", "configmaps", "team", "c"));
        assert!(!ok(&p, &ann, "delete", "", "configmaps", "other", "c"));
        assert!(!ok(&p, &ann, "list", "", "nodes", "", ""));
    }

    #[test]
    fn nodes_get_no_rbac_grant_beyond_the_node_rule() {
        let p = policy();
        let n1 = user("system:node:n1", &["system:nodes", "system:authenticated"]);
        assert!(ok(&p, &n1, "patch", "", "nodes/status", "", "n1"));
        assert!(!ok(&p, &n1, "patch", "", "nodes/status", "", "n2"));
        assert!(ok(&p, &n1, "update", "", "pods/status", "ns", "p"));
        let n2 = user("system:node:n2", &["system:nodes", "system:authenticated"]);
        assert!(!ok(&p, &n2, "update", "", "pods/status", "ns", "p"));
        assert!(!ok(&p, &n2, "delete", "", "pods", "ns", "p"));
    }
}
