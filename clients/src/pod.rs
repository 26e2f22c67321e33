//! Facts about pods and objects that every component asks: what a pod requests, whether it
//! is terminal, terminating, ready or available, its conditions, and its controller.

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::quantity::{self, ResourceList};

/// What a pod needs on a node: the larger of the sum of its containers' requests and any one
/// init container's, plus its overhead (Kubernetes' `PodRequests`).
pub fn requests(spec: &PodSpec) -> ResourceList {
    let mut sum = ResourceList::new();
    for c in &spec.containers {
        quantity::add(
            &mut sum,
            &quantity::resource_list(c.resources.as_ref().and_then(|r| r.requests.as_ref())),
        );
    }
    for c in spec.init_containers.iter().flatten() {
        let r = quantity::resource_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
        // Sidecars (init containers that keep running) add up with the app containers.
        if c.restart_policy.as_deref() == Some("Always") {
            quantity::add(&mut sum, &r);
        } else {
            quantity::max(&mut sum, &r);
        }
    }
    quantity::add(&mut sum, &quantity::resource_list(spec.overhead.as_ref()));
    sum
}

/// The pod's phase ("" when unset).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Succeeded or Failed: its containers will not run again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Being deleted (deletionTimestamp set).
pub fn is_terminating(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// Neither terminal nor terminating: what controllers count (Kubernetes' `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && !is_terminating(&pod.metadata)
}

/// The node the pod is bound to ("" when unscheduled).
pub fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// A condition of the pod by type.
pub fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Ready=True.
pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

/// Ready for at least `min_ready_seconds` at `now` (Kubernetes' `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    let Some(c) = condition(pod, "Ready").filter(|c| c.status == "True") else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    match &c.last_transition_time {
        Some(t) => t.0 + jiff::SignedDuration::from_secs(min_ready_seconds as i64) <= now,
        None => false,
    }
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

/// Now, as an API timestamp.
pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// `namespace/name` of an object.
pub fn key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// Splits a `namespace/name` key.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_take_the_larger_of_containers_and_init_containers() {
        let spec: PodSpec = serde_json::from_value(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}},
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}},
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"memory": "1Mi"}}},
            ],
            "overhead": {"cpu": "10m"},
        }))
        .unwrap();
        let r = requests(&spec);
        assert_eq!(r["cpu"], 1010);
        assert_eq!(r["memory"], (64 + 1) * 1_048_576_000);
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        let t = jiff::Timestamp::from_second(1_000).unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "1970-01-01T00:16:40Z"}]},
        }))
        .unwrap();
        assert!(is_ready(&pod));
        assert!(is_available(&pod, 0, t));
        assert!(!is_available(&pod, 5, t));
        assert!(is_available(
            &pod,
            5,
            t + jiff::SignedDuration::from_secs(5)
        ));
    }
}
