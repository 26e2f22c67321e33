use serde_json::{json, Value};

use super::*;

fn pod(spec: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": spec
    })
}

fn simple_pod() -> Value {
    pod(json!({"containers": [{"name": "c", "image": "nginx:1.25"}]}))
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": selector,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    })
}

fn ok(kind: &str, obj: Value, namespaced: bool) -> Value {
    match admit(kind, obj, namespaced) {
        Ok(v) => v,
        Err(e) => panic!("{kind} not admitted: {e:?}"),
    }
}

fn causes(kind: &str, obj: Value, namespaced: bool) -> Vec<FieldError> {
    match admit(kind, obj, namespaced) {
        Err(AdmitError::Invalid(c)) => c,
        other => panic!("{kind}: expected Invalid, got {other:?}"),
    }
}

fn has(causes: &[FieldError], field: &str, reason: &str, message: &str) -> bool {
    causes
        .iter()
        .any(|c| c.field == field && c.reason == reason && c.message == message)
}

fn assert_has(causes: &[FieldError], field: &str, reason: &str, message: &str) {
    assert!(
        has(causes, field, reason, message),
        "missing {field} {reason} {message:?} in {causes:#?}"
    );
}

mod other_kinds;
mod pods;
mod updates;
mod workloads;

// --- Helpers ---

#[test]
fn spec_changed_ignores_metadata_and_status() {
    let old = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"replicas": 1}, "status": {"replicas": 0}});
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"x": "2"});
    new["status"] = json!({"replicas": 1});
    assert!(!spec_changed(&old, &new));
    new["spec"]["replicas"] = json!(2);
    assert!(spec_changed(&old, &new));
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
    assert!(!spec_changed(
        &cm,
        &json!({"metadata": {"name": "c"}, "data": {"a": "2"}})
    ));
}

#[test]
fn names() {
    assert!(validate_name("Pod", "a.b-c").is_empty());
    assert!(!validate_name("Pod", "A").is_empty());
    assert_eq!(
        validate_name("Namespace", "a.b"),
        vec!["must not contain dots".to_string()]
    );
    assert!(!validate_name("Service", "1abc").is_empty());
    assert!(validate_name("Service", "abc-1").is_empty());
    assert!(validate_name("ClusterRole", "system:Admin").is_empty());
    assert_eq!(
        validate_name("Role", ".."),
        vec!["may not be '..'".to_string()]
    );
    assert_eq!(
        validate_name("RoleBinding", "a/b%"),
        vec![
            "may not contain '/'".to_string(),
            "may not contain '%'".to_string()
        ]
    );
    assert_eq!(
        validate_name("Pod", &"a".repeat(254)),
        vec!["must be no more than 253 characters".to_string()]
    );
    assert!(validate_name("Node", "node-1.example.com").is_empty());
    assert!(is_dns1123_label("abc-1"));
    assert!(!is_dns1123_label("abc.1"));
    assert!(!is_dns1123_label(&"a".repeat(64)));
    assert!(!is_dns1123_label("-a"));
    assert!(!is_dns1123_label(""));
    assert!(is_dns1123_subdomain("a.b.c"));
    assert!(!is_dns1123_subdomain("a..b"));
    assert!(!is_dns1123_subdomain("A.b"));
    assert!(!is_dns1123_subdomain(""));
}

#[test]
fn realistic_deployment_admits() {
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "creationTimestamp": null,
            "labels": {"k8s-app": "kube-dns"}, "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}, "creationTimestamp": null},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchExpressions": [
                            {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                            "topologyKey": "kubernetes.io/hostname"}}]}},
                    "containers": [{
                        "name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.11.1",
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true}],
                        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                  {"containerPort": 9153, "name": "metrics"}],
                        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}, "readOnlyRootFilesystem": true},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                            "initialDelaySeconds": 60, "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 5},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}}
                    }],
                    "dnsPolicy": "Default",
                    "volumes": [{"name": "config-volume", "configMap": {"name": "coredns",
                        "items": [{"key": "Corefile", "path": "Corefile"}]}}]
                }
            }
        }
    });
    let out = ok("Deployment", d, true);
    let t = &out["spec"]["template"]["spec"];
    assert_eq!(
        t["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
        "v1"
    );
    assert_eq!(t["containers"][0]["ports"][2]["protocol"], "TCP");
    assert_eq!(t["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(t["serviceAccount"], "coredns");
    assert_eq!(
        out["spec"]["strategy"]["rollingUpdate"],
        json!({"maxUnavailable": 1, "maxSurge": "25%"})
    );
    assert!(out["metadata"].get("creationTimestamp").is_none());
    let mut rs = out.clone();
    rs["kind"] = json!("ReplicaSet");
    rs["spec"].as_object_mut().expect("spec").remove("strategy");
    ok("ReplicaSet", rs, true);
}
