//! Filters: can this pod go on this node? One function per kube-scheduler filter plugin,
//! each answering with the plugin's own reason strings, so an unschedulable pod's message
//! reads as Kubernetes' does ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had
//! untolerated taint {node.kubernetes.io/unreachable: }.").
//!
//! As in kube-scheduler, filters run in a fixed order and the first plugin that rejects a
//! node gives its reasons (resources can give several: "Insufficient cpu", "Insufficient
//! memory").

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::nodeinfo::{NodeInfo, PodInfo};
use crate::selector;

pub const UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const NOT_READY: &str = "node(s) were not ready";
pub const AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const TOO_MANY_PODS: &str = "Too many pods";
pub const NO_NODE: &str = "node(s) were not found";

/// Why the node cannot take the pod (empty: it can).
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let checks: [fn(&PodInfo, &NodeInfo) -> Vec<String>; 6] = [
        node_exists,
        node_unschedulable,
        node_ready,
        node_affinity,
        taint_toleration,
        node_ports,
    ];
    for check in checks {
        let reasons = check(pod, node);
        if !reasons.is_empty() {
            return reasons;
        }
    }
    resources_fit(pod, node)
}

fn node_exists(_: &PodInfo, node: &NodeInfo) -> Vec<String> {
    if node.node.is_none() {
        vec![NO_NODE.into()]
    } else {
        vec![]
    }
}

/// NodeUnschedulable: `spec.unschedulable` (cordoned) unless the pod tolerates
/// `node.kubernetes.io/unschedulable:NoSchedule`.
fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let cordoned = node
        .node
        .as_ref()
        .and_then(|n| n.spec.as_ref())
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if cordoned && !pod.tolerations().iter().any(|t| tolerates(t, &taint)) {
        vec![UNSCHEDULABLE.into()]
    } else {
        vec![]
    }
}

/// The node's Ready condition is True.
fn node_ready(_: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let ready = node
        .node
        .as_ref()
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    if ready {
        vec![]
    } else {
        vec![NOT_READY.into()]
    }
}

/// NodeAffinity: `nodeSelector` labels and required node affinity terms (any term).
fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    if node_affinity_matches(pod, &node.labels(), node.name()) {
        vec![]
    } else {
        vec![AFFINITY.into()]
    }
}

pub fn node_affinity_matches(
    pod: &PodInfo,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return true;
    };
    for (k, v) in spec.node_selector.iter().flatten() {
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| selector::node_term_matches(t, labels, node_name)),
    }
}

/// Kubernetes' `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// TaintToleration: every NoSchedule and NoExecute taint must be tolerated.
fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let taints = node
        .node
        .as_ref()
        .and_then(|n| n.spec.as_ref())
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    for taint in taints {
        if !matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute") {
            continue;
        }
        if !pod.tolerations().iter().any(|t| tolerates(t, taint)) {
            return vec![format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            )];
        }
    }
    vec![]
}

/// NodePorts: none of the pod's host ports is taken on the node.
fn node_ports(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let taken = pod
        .host_ports
        .iter()
        .any(|want| node.host_ports.iter().any(|have| want.conflicts(have)));
    if taken {
        vec![PORTS.into()]
    } else {
        vec![]
    }
}

/// NodeResourcesFit: the pod count and every requested resource fit in allocatable minus
/// what the node's pods request.
fn resources_fit(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    let allowed_pods = node.allocatable.get("pods").copied().unwrap_or(0) / 1000;
    if node.pods.len() as i128 + 1 > allowed_pods {
        reasons.push(TOO_MANY_PODS.to_string());
    }
    for (name, want) in &pod.requests {
        if *want <= 0 || name == "pods" {
            continue;
        }
        let alloc = node.allocatable.get(name).copied().unwrap_or(0);
        let used = node.requested.get(name).copied().unwrap_or(0);
        if alloc - used < *want {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

/// Kubernetes' FitError message: "0/N nodes are available: <count> <reason>, ...", the
/// parts sorted as strings.
pub fn fit_error(total_nodes: usize, reasons: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    if parts.is_empty() {
        return format!("0/{total_nodes} nodes are available.");
    }
    format!("0/{total_nodes} nodes are available: {}.", parts.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::nodeinfo::tests::{node, pod};
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_answer_with_the_plugins_reasons() {
        let cases: Vec<(&str, serde_json::Value, serde_json::Value, Vec<&str>)> = vec![
            ("plain pod fits", json!({}), json!({}), vec![]),
            (
                "cordoned",
                json!({}),
                json!({"spec": {"unschedulable": true}}),
                vec![UNSCHEDULABLE],
            ),
            (
                "cordoned but tolerated",
                json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
                json!({"spec": {"unschedulable": true}}),
                vec![],
            ),
            (
                "not ready",
                json!({}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
                vec![NOT_READY],
            ),
            (
                "node selector mismatch",
                json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
                json!({}),
                vec![AFFINITY],
            ),
            (
                "node selector match",
                json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
                json!({"metadata": {"labels": {"disk": "ssd"}}}),
                vec![],
            ),
            (
                "required affinity, second term matches",
                json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}}),
                json!({}),
                vec![],
            ),
            (
                "required affinity, no term matches",
                json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}}}),
                json!({}),
                vec![AFFINITY],
            ),
            (
                "untolerated taint",
                json!({}),
                json!({"spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}}),
                vec!["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"],
            ),
            (
                "PreferNoSchedule is no filter",
                json!({}),
                json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]}}),
                vec![],
            ),
            (
                "tolerated by key and value",
                json!({"spec": {"tolerations": [{"key": "k", "operator": "Equal", "value": "v"}]}}),
                json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
                vec![],
            ),
            (
                "wrong value",
                json!({"spec": {"tolerations": [{"key": "k", "value": "w"}]}}),
                json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
                vec!["node(s) had untolerated taint {k: v}"],
            ),
            (
                "too much cpu and memory",
                json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "5", "memory": "9Gi"}}}]}}),
                json!({}),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (
                "extended resource the node lacks",
                json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]}}),
                json!({}),
                vec!["Insufficient example.com/gpu"],
            ),
            (
                "no pods allowed",
                json!({}),
                json!({"status": {"allocatable": {"pods": "0"}}}),
                vec![TOO_MANY_PODS],
            ),
        ];
        for (what, p, n, want) in cases {
            let got = filter(&pod(p), &node(n));
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn placed_pods_use_up_resources_and_ports() {
        let mut n = node(json!({"status": {"allocatable": {"cpu": "1", "pods": "2"}}}));
        let big = pod(
            json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": "600m"}}, "ports": [{"containerPort": 1, "hostPort": 80}]}]}}),
        );
        assert!(filter(&big, &n).is_empty());
        n.add_pod(&big);
        let again = pod(
            json!({"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": "600m"}}}]}}),
        );
        assert_eq!(filter(&again, &n), vec!["Insufficient cpu"]);
        let port = pod(
            json!({"metadata": {"name": "c"}, "spec": {"containers": [{"name": "c",
            "ports": [{"containerPort": 1, "hostPort": 80, "hostIP": "127.0.0.1"}]}]}}),
        );
        assert_eq!(filter(&port, &n), vec![PORTS]);
        let small = pod(json!({"metadata": {"name": "d"}}));
        assert!(filter(&small, &n).is_empty());
        n.add_pod(&small);
        assert_eq!(
            filter(&pod(json!({"metadata": {"name": "e"}})), &n),
            vec![TOO_MANY_PODS]
        );
    }

    #[test]
    fn fit_error_reads_like_kubernetes() {
        let reasons: BTreeMap<String, usize> = [
            (
                "node(s) had untolerated taint {node.kubernetes.io/unreachable: }".to_string(),
                2,
            ),
            ("Insufficient cpu".to_string(), 1),
        ]
        .into();
        assert_eq!(
            fit_error(3, &reasons),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."
        );
        assert_eq!(fit_error(0, &BTreeMap::new()), "0/0 nodes are available.");
    }
}
