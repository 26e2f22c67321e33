//! Node lifecycle: a node whose kubelet stops renewing its Lease (in `kube-node-lease`) or
//! posting status for the grace period gets every condition set to Unknown and the
//! `node.kubernetes.io/unreachable` taints (NoSchedule and NoExecute; a node whose kubelet
//! reports Ready=False gets `not-ready` ones); once it has been unhealthy for the eviction
//! timeout its pods are deleted, so their ReplicaSets replace them elsewhere. A pod that
//! tolerates the NoExecute taint stays for its tolerationSeconds (forever without one). When
//! the kubelet is back and reports Ready, the taints go.
//!
//! Health is judged by when this controller last *saw* the Lease's renewTime or the Ready
//! heartbeat change, on its own clock (as kube-controller-manager does), so the kubelet's
//! clock does not matter. Pods bound to a node that no longer exists are deleted at once
//! (the pod garbage collector's orphan rule).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::Client;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::Recorder;
use crate::informer::{Cache, Informer};
use crate::pod;
use crate::scheduler::filter::tolerates;

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Clone, Debug)]
pub struct Timings {
    pub monitor_period: Duration,
    pub grace_period: Duration,
    pub eviction_timeout: Duration,
}

struct Health {
    probe: String,
    observed: Instant,
    unhealthy_since: Option<Instant>,
}

pub struct NodeLifecycleController {
    client: Client,
    nodes: Cache<Node>,
    leases: Cache<Lease>,
    pods: Cache<Pod>,
    events: Recorder,
    t: Timings,
    health: Mutex<HashMap<String, Health>>,
    orphans: Mutex<HashMap<String, Instant>>,
}

fn ready_status(n: &Node) -> &str {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str())
        .unwrap_or("Unknown")
}

/// The conditions once the kubelet has gone silent: every one Unknown (kept as they were if
/// already Unknown), with Kubernetes' reason and message.
pub fn unknown_conditions(
    conds: &[NodeCondition],
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Vec<NodeCondition> {
    let mut out: Vec<NodeCondition> = conds.to_vec();
    if !out.iter().any(|c| c.type_ == "Ready") {
        out.push(NodeCondition {
            type_: "Ready".into(),
            ..Default::default()
        });
    }
    for c in out.iter_mut() {
        if c.status == "Unknown" && c.reason.as_deref() == Some("NodeStatusUnknown") {
            continue;
        }
        c.status = "Unknown".into();
        c.reason = Some("NodeStatusUnknown".into());
        c.message = Some("Kubelet stopped posting node status.".into());
        c.last_transition_time = Some(now.clone());
    }
    out
}

/// The node's taints with the readiness taints made to match `ready`.
pub fn taints_for(
    current: &[Taint],
    ready: &str,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Vec<Taint> {
    let want_key = match ready {
        "True" => None,
        "False" => Some(NOT_READY),
        _ => Some(UNREACHABLE),
    };
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| t.key != UNREACHABLE && t.key != NOT_READY)
        .cloned()
        .collect();
    if let Some(key) = want_key {
        for effect in ["NoSchedule", "NoExecute"] {
            let kept = current
                .iter()
                .find(|t| t.key == key && t.effect == effect)
                .cloned();
            out.push(kept.unwrap_or_else(|| Taint {
                key: key.into(),
                effect: effect.into(),
                time_added: (effect == "NoExecute").then(|| now.clone()),
                value: None,
            }));
        }
    }
    out
}

/// How long after the node became unhealthy `p` is evicted (None: never).
pub fn eviction_delay(p: &Pod, taint_key: &str, timeout: Duration) -> Option<Duration> {
    let taint = Taint {
        key: taint_key.into(),
        effect: "NoExecute".into(),
        ..Default::default()
    };
    let tolerations = p
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    match tolerations.iter().find(|t| tolerates(t, &taint)) {
        None => Some(timeout),
        Some(t) => t
            .toleration_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64)),
    }
}

impl NodeLifecycleController {
    pub fn new(
        client: Client,
        nodes: &Informer<Node>,
        leases: &Informer<Lease>,
        pods: &Informer<Pod>,
        events: Recorder,
        t: Timings,
    ) -> Arc<Self> {
        Arc::new(NodeLifecycleController {
            client,
            nodes: nodes.cache(),
            leases: leases.cache(),
            pods: pods.cache(),
            events,
            t,
            health: Mutex::new(HashMap::new()),
            orphans: Mutex::new(HashMap::new()),
        })
    }

    /// Monitors every node each monitor period until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = async { self.nodes.wait_synced().await; self.leases.wait_synced().await; self.pods.wait_synced().await } => {}
        }
        loop {
            self.monitor().await;
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(self.t.monitor_period) => {}
            }
        }
    }

    async fn monitor(&self) {
        let now = Instant::now();
        let nodes = self.nodes.list();
        for n in &nodes {
            if let Err(e) = self.check(n, now).await {
                tracing::debug!(node = ?n.metadata.name, error = %e, "node lifecycle: will retry");
            }
        }
        let names: Vec<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        self.health.lock().retain(|k, _| names.contains(k));
        self.collect_orphans(&names, now).await;
    }

    async fn check(&self, n: &Node, now: Instant) -> Result<(), kube::Error> {
        let name = n.metadata.name.clone().unwrap_or_default();
        let lease = self.leases.get(NODE_LEASE_NAMESPACE, &name);
        let renew = lease
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let heartbeat = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let probe = format!("{renew}|{heartbeat}");
        let silent = {
            let mut h = self.health.lock();
            let e = h.entry(name.clone()).or_insert_with(|| Health {
                probe: probe.clone(),
                observed: now,
                unhealthy_since: None,
            });
            if e.probe != probe {
                e.probe = probe;
                e.observed = now;
            }
            now.duration_since(e.observed) > self.t.grace_period
        };
        let mut ready = ready_status(n).to_string();
        let stamp = pod::now();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut node = n.clone();
        if silent && ready != "Unknown" {
            let conds = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            node.status.get_or_insert_with(Default::default).conditions =
                Some(unknown_conditions(&conds, &stamp));
            node = api
                .replace_status(&name, &PostParams::default(), &node)
                .await?;
            tracing::info!(node = %name, "node stopped posting status: Ready=Unknown");
            self.events.normal(
                &node,
                "NodeNotReady",
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
            ready = "Unknown".into();
        }
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let want = taints_for(&current, &ready, &stamp);
        if want != current {
            node.spec.get_or_insert_with(Default::default).taints =
                (!want.is_empty()).then_some(want);
            api.replace(&name, &PostParams::default(), &node).await?;
        }
        let since = {
            let mut h = self.health.lock();
            let e = h.entry(name.clone()).or_insert_with(|| Health {
                probe: String::new(),
                observed: now,
                unhealthy_since: None,
            });
            if ready == "True" {
                e.unhealthy_since = None;
                return Ok(());
            }
            *e.unhealthy_since.get_or_insert(now)
        };
        let key = if ready == "False" {
            NOT_READY
        } else {
            UNREACHABLE
        };
        let elapsed = now.duration_since(since);
        for p in self.pods.by_index("node", &name) {
            if !pod::is_active(&p) {
                continue;
            }
            let Some(delay) = eviction_delay(&p, key, self.t.eviction_timeout) else {
                continue;
            };
            if elapsed < delay {
                continue;
            }
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let pname = p.metadata.name.clone().unwrap_or_default();
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: p.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match pods.delete(&pname, &dp).await {
                Ok(_) => {
                    tracing::info!(pod = %format!("{ns}/{pname}"), node = %name, "evicted");
                    self.events.normal(
                        p.as_ref(),
                        "TaintManagerEviction",
                        "Evict",
                        format!("Marking for deletion Pod {ns}/{pname}"),
                    );
                }
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes (at once, grace 0) pods bound to nodes that do not exist, once that has held
    /// for a grace period and a live read confirms the node is gone.
    async fn collect_orphans(&self, nodes: &[String], now: Instant) {
        let mut seen = Vec::new();
        for p in self.pods.list() {
            let node = pod::node_name(&p);
            if node.is_empty() || nodes.iter().any(|n| n == node) {
                continue;
            }
            let key = pod::key(&p.metadata);
            seen.push(key.clone());
            let first = *self.orphans.lock().entry(key.clone()).or_insert(now);
            if now.duration_since(first) < self.t.grace_period.min(Duration::from_secs(40)) {
                continue;
            }
            let nodes_api: Api<Node> = Api::all(self.client.clone());
            if !matches!(nodes_api.get_opt(node).await, Ok(None)) {
                continue;
            }
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let pname = p.metadata.name.clone().unwrap_or_default();
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: p.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            if pods.delete(&pname, &dp).await.is_ok() {
                tracing::info!(pod = %key, node = %node, "deleted a pod bound to a node that does not exist");
            }
        }
        self.orphans.lock().retain(|k, _| seen.contains(k));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_silent_node_gets_unknown_conditions_and_unreachable_taints() {
        let now = pod::now();
        let conds: Vec<NodeCondition> = serde_json::from_value(json!([
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            {"type": "MemoryPressure", "status": "False"},
        ]))
        .unwrap();
        let out = unknown_conditions(&conds, &now);
        assert!(out
            .iter()
            .all(|c| c.status == "Unknown" && c.reason.as_deref() == Some("NodeStatusUnknown")));
        let other = Taint {
            key: "dedicated".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t = taints_for(std::slice::from_ref(&other), "Unknown", &now);
        let keys: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("dedicated", "NoSchedule"),
                (UNREACHABLE, "NoSchedule"),
                (UNREACHABLE, "NoExecute")
            ]
        );
        assert_eq!(taints_for(&t, "True", &now), vec![other.clone()]);
        let nr = taints_for(&t, "False", &now);
        assert!(nr.iter().any(|x| x.key == NOT_READY) && !nr.iter().any(|x| x.key == UNREACHABLE));
        // Unchanged when already right (so no write).
        assert_eq!(taints_for(&t, "Unknown", &now), t);
    }

    #[test]
    fn eviction_waits_for_the_timeout_or_the_toleration() {
        let timeout = Duration::from_secs(300);
        let plain: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        assert_eq!(eviction_delay(&plain, UNREACHABLE, timeout), Some(timeout));
        let tolerant: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [],
            "tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 7}]}})).unwrap();
        assert_eq!(
            eviction_delay(&tolerant, UNREACHABLE, timeout),
            Some(Duration::from_secs(7))
        );
        assert_eq!(eviction_delay(&tolerant, NOT_READY, timeout), Some(timeout));
        let forever: Pod =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [],
            "tolerations": [{"operator": "Exists"}]}}))
            .unwrap();
        assert_eq!(eviction_delay(&forever, UNREACHABLE, timeout), None);
    }
}
