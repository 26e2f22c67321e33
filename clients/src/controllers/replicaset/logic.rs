//! The ReplicaSet controller's decisions, as pure functions: which pods to delete when there
//! are too many, the pod to create from the template, and the status to report.

use std::cmp::Ordering;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controllers::claim;
use crate::pod;
use crate::selector;

/// At most this many pods are created or deleted in one sync (kube-controller-manager's
/// burstReplicas).
pub const BURST_REPLICAS: usize = 500;

fn phase_rank(p: &Pod) -> u8 {
    match pod::phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn deletion_cost(p: &Pod) -> i64 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ready_since(p: &Pod) -> Option<jiff::Timestamp> {
    pod::condition(p, "Ready")
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// Kubernetes' `ActivePods` order: the pod that should go first sorts first.
fn delete_first(a: &Pod, b: &Pod) -> Ordering {
    let unassigned = |p: &Pod| pod::node_name(p).is_empty();
    // 1. Unassigned before assigned.
    unassigned(b)
        .cmp(&unassigned(a))
        // 2. Pending < Unknown < Running.
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        // 3. Not ready before ready.
        .then_with(|| pod::is_ready(a).cmp(&pod::is_ready(b)))
        // 4. Lower deletion cost first.
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        // 5. Ready for less time first.
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        // 6. More restarts first.
        .then_with(|| restarts(b).cmp(&restarts(a)))
        // 7. Newer first.
        .then_with(|| {
            let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(b).cmp(&t(a))
        })
}

/// The `n` pods to delete out of `pods`.
pub fn pods_to_delete(pods: &[Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    let mut sorted: Vec<Arc<Pod>> = pods.to_vec();
    sorted.sort_by(|a, b| delete_first(a, b));
    sorted.truncate(n);
    sorted
}

/// The pod the ReplicaSet creates from its template (the server picks the name).
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![claim::controller_ref(
                "apps/v1",
                "ReplicaSet",
                &name,
                rs.metadata.uid.as_deref().unwrap_or(""),
            )]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// The status for `rs` given the active pods it owns; `failure` is a create or delete
/// error of this sync (reported as the ReplicaFailure condition).
pub fn status(
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    failure: Option<(&str, String)>,
    now: jiff::Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    for p in pods {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully_labeled += 1;
        }
        if pod::is_ready(p) {
            ready += 1;
            if pod::is_available(p, min_ready, now) {
                available += 1;
            }
        }
    }
    let previous = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = previous
        .conditions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "ReplicaFailure")
        .collect();
    if let Some((reason, message)) = failure {
        let old = previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "ReplicaFailure" && c.reason.as_deref() == Some(reason));
        conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some(reason.to_string()),
            message: Some(message),
            last_transition_time: old
                .and_then(|c| c.last_transition_time.clone())
                .or_else(|| Some(pod::now())),
        });
    }
    ReplicaSetStatus {
        replicas: pods.len() as i32,
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        terminating_replicas: previous.terminating_replicas,
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
    }
}

/// Whether a pod's labels are matched by the ReplicaSet's selector.
pub fn selects(rs: &ReplicaSet, p: &Pod) -> bool {
    let Some(sel) = rs.spec.as_ref().map(|s| &s.selector) else {
        return false;
    };
    !selector::is_empty(sel)
        && selector::matches(sel, &p.metadata.labels.clone().unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(name: &str, v: serde_json::Value) -> Arc<Pod> {
        let mut base =
            json!({"metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}}});
        if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
            for (k, val) in o {
                if k == "metadata" {
                    for (mk, mv) in val.as_object().unwrap() {
                        b["metadata"][mk] = mv.clone();
                    }
                } else {
                    b.insert(k.clone(), val.clone());
                }
            }
        }
        Arc::new(serde_json::from_value(base).unwrap())
    }

    fn running(name: &str, node: &str, ready: bool, since: &str) -> Arc<Pod> {
        p(
            name,
            json!({"spec": {"nodeName": node, "containers": []}, "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": since}]}}),
        )
    }

    #[test]
    fn deletion_prefers_unassigned_pending_unready_recent_pods() {
        let pods = vec![
            running("old-ready", "n1", true, "2024-01-01T00:00:00Z"),
            running("new-ready", "n1", true, "2024-06-01T00:00:00Z"),
            running("unready", "n1", false, "2024-01-01T00:00:00Z"),
            p(
                "pending",
                json!({"spec": {"nodeName": "n1", "containers": []}, "status": {"phase": "Pending"}}),
            ),
            p(
                "unassigned",
                json!({"spec": {"containers": []}, "status": {"phase": "Pending"}}),
            ),
        ];
        let names: Vec<String> = pods_to_delete(&pods, 5)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["unassigned", "pending", "unready", "new-ready", "old-ready"]
        );
        assert_eq!(pods_to_delete(&pods, 2).len(), 2);
    }

    #[test]
    fn pods_from_the_template_are_owned_and_labelled() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "ns", "uid": "u1"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
        }))
        .unwrap();
        let pod = pod_from_template(&rs);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-abc-"));
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("ReplicaSet", "u1", Some(true))
        );
        assert!(selects(&rs, &pod));
    }

    #[test]
    fn status_counts_ready_and_available_pods() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "rs", "generation": 3},
            "spec": {"minReadySeconds": 10, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "x"}}}},
        }))
        .unwrap();
        let now: jiff::Timestamp = "2024-01-01T00:00:30Z".parse().unwrap();
        let pods = vec![
            running("a", "n1", true, "2024-01-01T00:00:00Z"),
            running("b", "n1", true, "2024-01-01T00:00:25Z"),
            running("c", "n1", false, "2024-01-01T00:00:00Z"),
        ];
        let s = status(&rs, &pods, Some(("FailedCreate", "quota".into())), now);
        assert_eq!(s.replicas, 3);
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(s.available_replicas, Some(1));
        assert_eq!(s.fully_labeled_replicas, Some(0));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.conditions.unwrap()[0].type_, "ReplicaFailure");
    }
}
