use serde_json::json;

use super::{cells, columns, human_duration};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().expect("test time")
}

const NOW: &str = "2026-01-01T12:00:00Z";

#[test]
fn human_durations_match_kubernetes() {
    for (secs, want) in [
        (-5, "<invalid>"),
        (-1, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ] {
        assert_eq!(human_duration(secs), want, "{secs}s");
    }
}

#[test]
fn every_row_has_one_cell_per_column() {
    let obj = json!({ "metadata": { "name": "x", "creationTimestamp": "2026-01-01T11:00:00Z" } });
    for kind in [
        "Pod",
        "Node",
        "Namespace",
        "Service",
        "Endpoints",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Event",
        "Deployment",
        "ReplicaSet",
        "Lease",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "Other",
    ] {
        assert_eq!(
            columns(kind).len(),
            cells(kind, &obj, at(NOW)).len(),
            "{kind}"
        );
    }
}

#[test]
fn pod_status_is_what_kubectl_shows() {
    let base = json!({
        "metadata": { "name": "web", "creationTimestamp": "2026-01-01T11:55:00Z" },
        "spec": { "containers": [{ "name": "a" }, { "name": "b" }], "nodeName": "n1" },
    });
    let mut running = base.clone();
    running["status"] = json!({
        "phase": "Running", "podIP": "10.0.0.7",
        "containerStatuses": [
            { "name": "a", "ready": true, "restartCount": 0, "state": { "running": {} } },
            { "name": "b", "ready": true, "restartCount": 2, "state": { "running": {} },
              "lastState": { "terminated": { "exitCode": 1, "finishedAt": "2026-01-01T11:58:00Z" } } },
        ],
    });
    let c = cells("Pod", &running, at(NOW));
    assert_eq!(c[0], "web");
    assert_eq!(c[1], "2/2");
    assert_eq!(c[2], "Running");
    assert_eq!(c[3], "2 (2m ago)");
    assert_eq!(c[4], "5m");
    assert_eq!(c[5], "10.0.0.7");
    assert_eq!(c[6], "n1");

    let mut crashing = base.clone();
    crashing["status"] = json!({
        "phase": "Running",
        "containerStatuses": [
            { "name": "a", "ready": false, "restartCount": 5, "state": { "waiting": { "reason": "CrashLoopBackOff" } } },
            { "name": "b", "ready": true, "state": { "running": {} } },
        ],
    });
    let c = cells("Pod", &crashing, at(NOW));
    assert_eq!(c[1], "1/2");
    assert_eq!(c[2], "CrashLoopBackOff");
    assert_eq!(c[3], "5");

    let mut pending = base.clone();
    pending["spec"]["nodeName"] = json!(null);
    pending["status"] = json!({ "phase": "Pending" });
    let c = cells("Pod", &pending, at(NOW));
    assert_eq!(c[2], "Pending");
    assert_eq!(c[5], "<none>");
    assert_eq!(c[6], "<none>");

    let mut init = base.clone();
    init["spec"]["initContainers"] = json!([{ "name": "i1" }, { "name": "i2" }]);
    init["status"] = json!({
        "phase": "Pending",
        "initContainerStatuses": [
            { "name": "i1", "state": { "terminated": { "exitCode": 0 } } },
            { "name": "i2", "state": { "running": {} } },
        ],
    });
    assert_eq!(cells("Pod", &init, at(NOW))[2], "Init:1/2");

    let mut done = base.clone();
    done["status"] = json!({
        "phase": "Succeeded",
        "containerStatuses": [
            { "name": "a", "state": { "terminated": { "exitCode": 0, "reason": "Completed" } } },
            { "name": "b", "state": { "terminated": { "exitCode": 0, "reason": "Completed" } } },
        ],
    });
    assert_eq!(cells("Pod", &done, at(NOW))[2], "Completed");

    let mut deleting = running.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T11:59:00Z");
    assert_eq!(cells("Pod", &deleting, at(NOW))[2], "Terminating");
}

#[test]
fn node_deployment_and_service_cells() {
    let node = json!({
        "metadata": { "name": "n1", "creationTimestamp": "2026-01-01T10:00:00Z",
                      "labels": { "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker" } },
        "spec": { "unschedulable": true },
        "status": { "conditions": [{ "type": "Ready", "status": "Unknown" }],
                    "nodeInfo": { "kubeletVersion": "v1.33.0" },
                    "addresses": [{ "type": "InternalIP", "address": "10.1.1.1" }] },
    });
    let c = cells("Node", &node, at(NOW));
    assert_eq!(c[1], "NotReady,SchedulingDisabled");
    assert_eq!(c[2], "control-plane,worker");
    assert_eq!(c[3], "120m");
    assert_eq!(c[4], "v1.33.0");
    assert_eq!(c[5], "10.1.1.1");
    assert_eq!(c[6], "<none>");
    assert_eq!(c[7], "<unknown>");

    let deploy = json!({
        "metadata": { "name": "web", "creationTimestamp": "2026-01-01T11:59:30Z" },
        "spec": { "replicas": 3,
                  "selector": { "matchLabels": { "app": "web" },
                                "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["b", "a"] }] },
                  "template": { "spec": { "containers": [{ "name": "nginx", "image": "nginx:1.27" }] } } },
        "status": { "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2 },
    });
    let c = cells("Deployment", &deploy, at(NOW));
    assert_eq!(c[1], "2/3");
    assert_eq!(c[2], 3);
    assert_eq!(c[3], 2);
    assert_eq!(c[4], "30s");
    assert_eq!(c[5], "nginx");
    assert_eq!(c[6], "nginx:1.27");
    assert_eq!(c[7], "app=web,tier in (a,b)");

    let svc = json!({
        "metadata": { "name": "s", "creationTimestamp": "2026-01-01T11:00:00Z" },
        "spec": { "type": "NodePort", "clusterIP": "10.96.0.10",
                  "ports": [{ "port": 80, "nodePort": 30080, "protocol": "TCP" }, { "port": 53, "protocol": "UDP" }],
                  "selector": { "b": "2", "a": "1" } },
    });
    let c = cells("Service", &svc, at(NOW));
    assert_eq!(c[1], "NodePort");
    assert_eq!(c[2], "10.96.0.10");
    assert_eq!(c[3], "<none>");
    assert_eq!(c[4], "80:30080/TCP,53/UDP");
    assert_eq!(c[6], "a=1,b=2");
}

#[test]
fn endpoints_are_capped_at_three() {
    let ep = json!({ "metadata": { "name": "e" }, "subsets": [{
        "addresses": [{ "ip": "10.0.0.1" }, { "ip": "10.0.0.2" }, { "ip": "10.0.0.3" }, { "ip": "10.0.0.4" }],
        "ports": [{ "port": 80 }],
    }] });
    assert_eq!(
        cells("Endpoints", &ep, at(NOW))[1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
    );
}
