//! Scores: where should the pod go among the nodes that can take it? kube-scheduler's
//! default resource scores, each 0..=100 with weight 1, summed:
//!
//! - NodeResourcesFit with the LeastAllocated strategy: the mean over CPU and memory of the
//!   share of allocatable left free once the pod is placed, so pods spread out;
//! - NodeResourcesBalancedAllocation: 100 × (1 − the standard deviation of the CPU and
//!   memory fractions requested), so a node's CPU and memory fill up together.
//!
//! Both use the non-zero requests (100m CPU, 200 MiB for containers that request nothing),
//! as Kubernetes does, so even pods without requests spread.
//!
//! Ties are broken at random (reservoir sampling, as kube-scheduler's `selectHost`).

use super::nodeinfo::{NodeInfo, PodInfo};

pub const MAX_NODE_SCORE: i64 = 100;

fn allocatable(node: &NodeInfo, name: &str) -> i128 {
    node.allocatable.get(name).copied().unwrap_or(0)
}

/// LeastAllocated: mean of `(allocatable - requested) * 100 / allocatable` over CPU and memory.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let part = |alloc: i128, req: i128| -> i128 {
        if alloc <= 0 || req > alloc {
            0
        } else {
            (alloc - req) * MAX_NODE_SCORE as i128 / alloc
        }
    };
    let cpu = part(
        allocatable(node, "cpu"),
        node.non_zero_cpu + pod.non_zero_cpu,
    );
    let mem = part(
        allocatable(node, "memory"),
        node.non_zero_memory + pod.non_zero_memory,
    );
    ((cpu + mem) / 2) as i64
}

/// BalancedAllocation: `(1 - std(cpu fraction, memory fraction)) * 100`.
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let frac = |alloc: i128, req: i128| -> f64 {
        if alloc <= 0 {
            1.0
        } else {
            (req as f64 / alloc as f64).min(1.0)
        }
    };
    let cpu = frac(
        allocatable(node, "cpu"),
        node.non_zero_cpu + pod.non_zero_cpu,
    );
    let mem = frac(
        allocatable(node, "memory"),
        node.non_zero_memory + pod.non_zero_memory,
    );
    // The standard deviation of two values is half their distance.
    let std = (cpu - mem).abs() / 2.0;
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// The node's total score for the pod.
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    least_allocated(pod, node) + balanced_allocation(pod, node)
}

/// The best of `scored` (index into it), ties broken uniformly at random with `rand01`
/// giving numbers in [0, 1).
pub fn select(scored: &[(usize, i64)], mut rand01: impl FnMut() -> f64) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    let mut ties = 0u32;
    for &(i, s) in scored {
        match best {
            None => {
                best = Some((i, s));
                ties = 1;
            }
            Some((_, b)) if s > b => {
                best = Some((i, s));
                ties = 1;
            }
            Some((_, b)) if s == b => {
                ties += 1;
                if rand01() < 1.0 / ties as f64 {
                    best = Some((i, s));
                }
            }
            _ => {}
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::nodeinfo::tests::{node, pod};
    use super::*;
    use serde_json::json;

    #[test]
    fn emptier_nodes_score_higher() {
        let p = pod(json!({}));
        let empty = node(json!({}));
        let mut busy = node(json!({"metadata": {"name": "n2"}}));
        for i in 0..10 {
            busy.add_pod(&pod(json!({"metadata": {"name": format!("x{i}")},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "200m", "memory": "400Mi"}}}]}})));
        }
        assert!(score(&p, &empty) > score(&p, &busy));
        // 4 cores, 8Gi: the pod's defaults (100m, 200Mi) leave 97% and 97% free.
        assert_eq!(least_allocated(&p, &empty), 97);
    }

    #[test]
    fn balanced_prefers_even_cpu_and_memory_use() {
        let p = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]}}),
        );
        let even = node(json!({}));
        let mut cpu_heavy = node(json!({"metadata": {"name": "n2"}}));
        cpu_heavy.add_pod(&pod(json!({"metadata": {"name": "x"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "1Mi"}}}]}})));
        assert_eq!(balanced_allocation(&p, &even), 100);
        assert!(balanced_allocation(&p, &cpu_heavy) < 100);
    }

    #[test]
    fn overcommitted_resources_score_zero() {
        let p = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "8", "memory": "16Gi"}}}]}}),
        );
        assert_eq!(least_allocated(&p, &node(json!({}))), 0);
    }

    #[test]
    fn select_takes_the_highest_and_breaks_ties_at_random() {
        assert_eq!(select(&[], || 0.0), None);
        assert_eq!(select(&[(0, 5), (1, 9), (2, 3)], || 0.0), Some(1));
        // With rand always 0 every tie replaces the pick; with 0.99 none does.
        assert_eq!(select(&[(0, 9), (1, 9), (2, 9)], || 0.0), Some(2));
        assert_eq!(select(&[(0, 9), (1, 9), (2, 9)], || 0.99), Some(0));
    }
}
