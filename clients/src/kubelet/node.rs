//! The kubelet's node: registration (the Node with its labels, capacity and allocatable,
//! addresses and nodeInfo), the node Lease in `kube-node-lease` renewed every quarter of its
//! duration (the heartbeat the node-lifecycle controller watches), and the node status:
//! the Ready, MemoryPressure, DiskPressure and PIDPressure conditions, written when they
//! change, when someone else changed them (the controller's Ready=Unknown), or every
//! report period otherwise, as the kubelet does since node leases exist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::informer::Cache;
use crate::pod;

pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const KUBELET_VERSION: &str = "v1.33.0-strata";

/// What one node registers as.
#[derive(Clone, Debug)]
pub struct NodeSpecConfig {
    pub name: String,
    pub ip: String,
    pub capacity: BTreeMap<String, Quantity>,
    pub labels: BTreeMap<String, String>,
    pub pod_cidr: Option<String>,
    pub runtime_version: String,
    pub lease_duration_seconds: i32,
    pub status_update_frequency: Duration,
    pub status_report_frequency: Duration,
}

pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The conditions a healthy kubelet reports, with transition times kept from `current`.
pub fn healthy_conditions(current: &[NodeCondition], now: &Time) -> Vec<NodeCondition> {
    let c = |type_: &str, status: &str, reason: &str, message: &str| {
        let old = current.iter().find(|c| c.type_ == type_);
        let since = old
            .filter(|o| o.status == status)
            .and_then(|o| o.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(since),
        }
    };
    vec![
        c(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        c(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        c(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        c(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
}

/// Whether the conditions on the server differ from ours in anything but heartbeat times.
pub fn conditions_differ(server: &[NodeCondition], ours: &[NodeCondition]) -> bool {
    let key = |c: &NodeCondition| (c.type_.clone(), c.status.clone(), c.reason.clone());
    let mut a: Vec<_> = server.iter().map(key).collect();
    let mut b: Vec<_> = ours.iter().map(key).collect();
    a.sort();
    b.sort();
    a != b
}

fn status_patch(cfg: &NodeSpecConfig, conditions: &[NodeCondition]) -> serde_json::Value {
    let info = NodeSystemInfo {
        architecture: arch().into(),
        boot_id: String::new(),
        container_runtime_version: cfg.runtime_version.clone(),
        kernel_version: String::new(),
        kube_proxy_version: String::new(),
        kubelet_version: KUBELET_VERSION.into(),
        machine_id: String::new(),
        operating_system: std::env::consts::OS.into(),
        os_image: "Strata".into(),
        system_uuid: String::new(),
        swap: None,
    };
    json!({"status": {
        "capacity": cfg.capacity,
        "allocatable": cfg.capacity,
        "conditions": conditions,
        "addresses": [NodeAddress { type_: "InternalIP".into(), address: cfg.ip.clone() }, NodeAddress { type_: "Hostname".into(), address: cfg.name.clone() }],
        "daemonEndpoints": NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }) },
        "nodeInfo": info,
    }})
}

/// Creates the Node (or finds it) and posts its first status; its uid.
async fn register(client: &Client, cfg: &NodeSpecConfig) -> Result<String, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(cfg.name.clone()),
            labels: Some(cfg.labels.clone()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: cfg.pod_cidr.clone(),
            pod_cidrs: cfg.pod_cidr.clone().map(|c| vec![c]),
            ..Default::default()
        }),
        status: None,
    };
    let created = match api.create(&PostParams::default(), &node).await {
        Ok(n) => n,
        Err(kube::Error::Api(s)) if s.code == 409 => api.get(&cfg.name).await?,
        Err(e) => return Err(e),
    };
    let current = created
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let conds = healthy_conditions(&current, &pod::now());
    api.patch_status(
        &cfg.name,
        &PatchParams::default(),
        &Patch::Merge(status_patch(cfg, &conds)),
    )
    .await?;
    Ok(created.metadata.uid.unwrap_or_default())
}

/// Registers the node, then keeps its Lease and status current until `stop`.
pub async fn run(
    client: Client,
    cfg: Arc<NodeSpecConfig>,
    nodes: Cache<Node>,
    mut stop: watch::Receiver<bool>,
) {
    let mut uid = loop {
        match register(&client, &cfg).await {
            Ok(uid) => break uid,
            Err(e) => {
                tracing::warn!(node = %cfg.name, error = %e, "registering the node failed; retrying")
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    tracing::info!(node = %cfg.name, "node registered");
    let lease = {
        let (client, cfg, stop) = (client.clone(), cfg.clone(), stop.clone());
        let uid = uid.clone();
        tokio::spawn(async move { renew_lease(client, cfg, uid, stop).await })
    };
    let api: Api<Node> = Api::all(client.clone());
    let mut last_write = Instant::now();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(cfg.status_update_frequency) => {}
        }
        if !nodes.is_synced() {
            continue;
        }
        let Some(current) = nodes.get("", &cfg.name) else {
            // Deleted: register again (the Lease follows the new uid).
            if let Ok(u) = register(&client, &cfg).await {
                uid = u;
                tracing::info!(node = %cfg.name, %uid, "node re-registered");
            }
            continue;
        };
        let server = current
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let ours = healthy_conditions(&server, &pod::now());
        if conditions_differ(&server, &ours) || last_write.elapsed() >= cfg.status_report_frequency
        {
            match api
                .patch_status(
                    &cfg.name,
                    &PatchParams::default(),
                    &Patch::Merge(status_patch(&cfg, &ours)),
                )
                .await
            {
                Ok(_) => last_write = Instant::now(),
                Err(e) => {
                    tracing::debug!(node = %cfg.name, error = %e, "node status update failed")
                }
            }
        }
    }
    let _ = lease.await;
}

/// Renews the node Lease every quarter of its duration (sooner after a failure).
async fn renew_lease(
    client: Client,
    cfg: Arc<NodeSpecConfig>,
    node_uid: String,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let interval = Duration::from_secs_f64(cfg.lease_duration_seconds.max(1) as f64 / 4.0);
    let mut current: Option<Lease> = None;
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let result = async {
            let mut lease = match current.take() {
                Some(l) => l,
                None => match api.get_opt(&cfg.name).await? {
                    Some(l) => l,
                    None => Lease {
                        metadata: ObjectMeta {
                            name: Some(cfg.name.clone()),
                            namespace: Some(LEASE_NAMESPACE.into()),
                            owner_references: Some(vec![OwnerReference {
                                api_version: "v1".into(),
                                kind: "Node".into(),
                                name: cfg.name.clone(),
                                uid: node_uid.clone(),
                                ..Default::default()
                            }]),
                            ..Default::default()
                        },
                        spec: None,
                    },
                },
            };
            lease.spec = Some(LeaseSpec {
                holder_identity: Some(cfg.name.clone()),
                lease_duration_seconds: Some(cfg.lease_duration_seconds),
                renew_time: Some(MicroTime(jiff::Timestamp::now())),
                ..lease.spec.unwrap_or_default()
            });
            if lease.metadata.resource_version.is_none() {
                api.create(&PostParams::default(), &lease).await
            } else {
                api.replace(&cfg.name, &PostParams::default(), &lease).await
            }
        }
        .await;
        match result {
            Ok(l) => {
                current = Some(l);
                wait = interval;
            }
            Err(e) => {
                tracing::debug!(node = %cfg.name, error = %e, "lease renewal failed");
                current = None;
                wait = (interval / 4).max(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn healthy_conditions_keep_transitions_and_detect_foreign_changes() {
        let t0 = Time("2024-01-01T00:00:00Z".parse().unwrap());
        let first = healthy_conditions(&[], &t0);
        assert_eq!(first.len(), 4);
        let t1 = pod::now();
        let again = healthy_conditions(&first, &t1);
        assert!(again
            .iter()
            .all(|c| c.last_transition_time == Some(t0.clone())
                && c.last_heartbeat_time == Some(t1.clone())));
        assert!(!conditions_differ(&first, &again));
        // The controller marked the node Unknown: we must write.
        let mut unknown = again.clone();
        unknown[3].status = "Unknown".into();
        unknown[3].reason = Some("NodeStatusUnknown".into());
        let ours = healthy_conditions(&unknown, &t1);
        assert!(conditions_differ(&unknown, &ours));
        assert_eq!(ours[3].last_transition_time, Some(t1));
    }
}
