//! What the scheduler knows about each node: the Node object, and the sum of what the pods
//! bound (or assumed bound) to it request, their host ports and their number. Pods are
//! reduced once to a [`PodInfo`] with everything the filters and scores read.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Toleration};

use crate::pod;
use crate::quantity::{self, ResourceList};

/// Kubernetes' defaults for a container without requests when scoring (not when fitting):
/// 100 millicores and 200 MiB, so empty pods still spread.
pub const DEFAULT_MILLI_CPU: i128 = 100;
pub const DEFAULT_MEMORY_MILLI: i128 = 200 * 1024 * 1024 * 1000;

/// A host port a pod claims: (host IP, protocol, port).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Two claims conflict on the same protocol and port when either is on every address
    /// (0.0.0.0) or both are on the same one.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A pod as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub requests: ResourceList,
    /// CPU and memory with the scoring defaults for containers that request none.
    pub non_zero_cpu: i128,
    pub non_zero_memory: i128,
    pub host_ports: Vec<HostPort>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let spec = pod.spec.clone().unwrap_or_default();
        let requests = pod::requests(&spec);
        let (mut cpu, mut mem) = (0i128, 0i128);
        for c in &spec.containers {
            let r = quantity::resource_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
            cpu += r
                .get("cpu")
                .copied()
                .filter(|v| *v > 0)
                .unwrap_or(DEFAULT_MILLI_CPU);
            mem += r
                .get("memory")
                .copied()
                .filter(|v| *v > 0)
                .unwrap_or(DEFAULT_MEMORY_MILLI);
        }
        let mut host_ports = Vec::new();
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            for p in c.ports.iter().flatten() {
                let port = p.host_port.unwrap_or(0);
                if port > 0 {
                    host_ports.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port,
                    });
                }
            }
        }
        PodInfo {
            pod,
            requests,
            non_zero_cpu: cpu,
            non_zero_memory: mem,
            host_ports,
        }
    }

    pub fn key(&self) -> String {
        pod::key(&self.pod.metadata)
    }

    pub fn tolerations(&self) -> &[Toleration] {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[])
    }
}

/// One node and what is placed on it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// None while pods are known to be bound to a node whose object is not (yet) seen.
    pub node: Option<Arc<Node>>,
    pub allocatable: ResourceList,
    pub requested: ResourceList,
    pub non_zero_cpu: i128,
    pub non_zero_memory: i128,
    pub pods: HashSet<String>,
    pub host_ports: Vec<HostPort>,
}

impl NodeInfo {
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable =
            quantity::resource_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        self.node = Some(node);
    }

    pub fn name(&self) -> &str {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.name.as_deref())
            .unwrap_or("")
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default()
    }

    /// Accounts for a pod placed here.
    pub fn add_pod(&mut self, p: &PodInfo) {
        if !self.pods.insert(p.key()) {
            return;
        }
        quantity::add(&mut self.requested, &p.requests);
        self.non_zero_cpu += p.non_zero_cpu;
        self.non_zero_memory += p.non_zero_memory;
        self.host_ports.extend(p.host_ports.iter().cloned());
    }

    /// Stops accounting for a pod placed here.
    pub fn remove_pod(&mut self, p: &PodInfo) {
        if !self.pods.remove(&p.key()) {
            return;
        }
        quantity::sub(&mut self.requested, &p.requests);
        self.non_zero_cpu -= p.non_zero_cpu;
        self.non_zero_memory -= p.non_zero_memory;
        for hp in &p.host_ports {
            if let Some(i) = self.host_ports.iter().position(|x| x == hp) {
                self.host_ports.swap_remove(i);
            }
        }
    }

    /// Whether this entry can be dropped (no node object and nothing placed).
    pub fn is_empty(&self) -> bool {
        self.node.is_none() && self.pods.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn pod(v: serde_json::Value) -> PodInfo {
        let mut base = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"name": "c"}]}});
        merge(&mut base, v);
        PodInfo::new(Arc::new(serde_json::from_value(base).unwrap()))
    }

    pub fn node(v: serde_json::Value) -> NodeInfo {
        let mut base = json!({
            "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
            "status": {
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        });
        merge(&mut base, v);
        let mut ni = NodeInfo::default();
        ni.set_node(Arc::new(serde_json::from_value(base).unwrap()));
        ni
    }

    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
                for (k, v) in p {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, p) => *b = p,
        }
    }

    #[test]
    fn pods_are_accounted_once_and_removed_exactly() {
        let mut n = node(json!({}));
        let p = pod(json!({"spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": "500m"}},
            "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}));
        n.add_pod(&p);
        n.add_pod(&p);
        assert_eq!(n.requested["cpu"], 500);
        assert_eq!(n.non_zero_cpu, 500);
        assert_eq!(n.non_zero_memory, DEFAULT_MEMORY_MILLI);
        assert_eq!(n.host_ports.len(), 1);
        n.remove_pod(&p);
        n.remove_pod(&p);
        assert_eq!(n.requested["cpu"], 0);
        assert_eq!(n.non_zero_cpu, 0);
        assert!(n.host_ports.is_empty());
    }

    #[test]
    fn host_ports_conflict_on_wildcards_and_equal_addresses() {
        let hp = |ip: &str, proto: &str, port| HostPort {
            ip: ip.into(),
            protocol: proto.into(),
            port,
        };
        assert!(hp("0.0.0.0", "TCP", 80).conflicts(&hp("10.0.0.1", "TCP", 80)));
        assert!(hp("10.0.0.1", "TCP", 80).conflicts(&hp("10.0.0.1", "TCP", 80)));
        assert!(!hp("10.0.0.1", "TCP", 80).conflicts(&hp("10.0.0.2", "TCP", 80)));
        assert!(!hp("0.0.0.0", "TCP", 80).conflicts(&hp("0.0.0.0", "UDP", 80)));
        assert!(!hp("0.0.0.0", "TCP", 80).conflicts(&hp("0.0.0.0", "TCP", 81)));
    }
}
