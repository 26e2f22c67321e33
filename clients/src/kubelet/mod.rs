//! `strata kubelet`: registers a Node, renews its Lease, keeps its conditions current, and runs
//! the pods bound to it through a [`runtime::Runtime`]: `process` (real local processes) or
//! `sim` (hollow).
//!
//! `--hollow-nodes N` runs N hollow kubelets in one process, kubemark's idea made lighter:
//! they share one HTTP/2 connection to the apiserver and one pod watch (demultiplexed by
//! spec.nodeName) instead of one per node, and each node is a few tokio tasks. A single
//! kubelet watches only its own pods (fieldSelector spec.nodeName=<node>), as the real one.
//! All hollow nodes act with the kubeconfig's credentials (kubemark's hollow nodes share one
//! too), so that identity must be allowed to act for every node: bind it to the
//! `system:node` ClusterRole (`strata up` does), since the node authorizer lets
//! `system:node:<name>` act only for `<name>`.

pub mod containers;
pub mod node;
pub mod podworker;
pub mod probe;
pub mod runtime;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::Api;
use kube::runtime::watcher;
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::informer::{Change, Informer};
use crate::leader::parse_duration;
use crate::{connect, pod, shutdown_channel};
use runtime::process::ProcessRuntime;
use runtime::sim::SimRuntime;
use runtime::Runtime;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Containers are local processes running their command.
    Process,
    /// Hollow: no processes, pods report Running after --sim-startup-delay.
    Sim,
}

/// Flags (the kubelet's names where it has them).
#[derive(clap::Args, Clone, Debug)]
pub struct KubeletConfig {
    /// Kubeconfig with the apiserver address and this node's credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The node's name (with --hollow-nodes, the prefix: NAME-0, NAME-1, ...).
    #[arg(long)]
    pub node_name: Option<String>,
    #[arg(long, value_enum, default_value = "process")]
    pub runtime: RuntimeKind,
    /// Run this many hollow kubelets (sim runtime) in this process.
    #[arg(long, default_value_t = 0)]
    pub hollow_nodes: usize,
    /// Where pod directories and container logs are kept.
    #[arg(long, default_value = ".strata-kubelet")]
    pub root_dir: PathBuf,
    /// The node's InternalIP (process-runtime pods share it).
    #[arg(long, default_value = "127.0.0.1")]
    pub node_ip: String,
    /// CPU capacity (default: this machine's CPUs, or 4 for sim nodes).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory capacity (default: this machine's memory, or 16Gi for sim nodes).
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Extra node labels, key=value, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_status_update_frequency: Duration,
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub node_status_report_frequency: Duration,
    /// Sim runtime: how long a container takes to start.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub sim_startup_delay: Duration,
    /// First container restart back-off (the kubelet's is 10s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub container_restart_backoff: Duration,
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub container_restart_backoff_max: Duration,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn machine_memory() -> String {
    let kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(4 * 1024 * 1024);
    format!("{kib}Ki")
}

/// Runs the kubelet (or the hollow kubelets) until `shutdown` completes.
pub async fn run(
    cfg: KubeletConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let client = connect::client_from_kubeconfig(&cfg.kubeconfig)
        .await
        .map_err(|e| e.to_string())?;
    let (stop, stopper) = shutdown_channel(async move {
        shutdown.await;
        tracing::info!("stop signal received; stopping pods and nodes");
    });
    let hollow = cfg.hollow_nodes > 0;
    let result = if hollow || cfg.runtime == RuntimeKind::Sim {
        let rt = Arc::new(SimRuntime::new(cfg.sim_startup_delay));
        run_nodes(client, cfg, rt, stop).await
    } else {
        run_nodes(client, cfg, Arc::new(ProcessRuntime), stop).await
    };
    stopper.abort();
    result
}

fn labels_for(cfg: &KubeletConfig, name: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        (
            "kubernetes.io/os".to_string(),
            std::env::consts::OS.to_string(),
        ),
        ("kubernetes.io/arch".to_string(), node::arch().to_string()),
    ]
    .into();
    for l in &cfg.node_labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("--node-labels: {l:?} is not key=value"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(labels)
}

async fn run_nodes<R: Runtime>(
    client: Client,
    cfg: KubeletConfig,
    rt: Arc<R>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let sim = cfg.hollow_nodes > 0 || cfg.runtime == RuntimeKind::Sim;
    let base = cfg.node_name.clone().unwrap_or_else(hostname);
    let names: Vec<String> = if cfg.hollow_nodes > 0 {
        (0..cfg.hollow_nodes)
            .map(|i| format!("{base}-{i}"))
            .collect()
    } else {
        vec![base]
    };
    let capacity: BTreeMap<String, Quantity> = [
        (
            "cpu".to_string(),
            Quantity(cfg.cpu.clone().unwrap_or_else(|| {
                if sim {
                    "4".into()
                } else {
                    std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(1)
                        .to_string()
                }
            })),
        ),
        (
            "memory".to_string(),
            Quantity(cfg.memory.clone().unwrap_or_else(|| {
                if sim {
                    "16Gi".into()
                } else {
                    machine_memory()
                }
            })),
        ),
        ("pods".to_string(), Quantity(cfg.max_pods.to_string())),
    ]
    .into();
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| format!("probe HTTP client: {e}"))?;

    // One pod watch: a single kubelet's own pods, or every bound pod for the hollow nodes.
    let selector = if names.len() == 1 {
        format!("spec.nodeName={}", names[0])
    } else {
        "spec.nodeName!=".to_string()
    };
    let mut pods = Informer::new(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(&selector),
    );
    let node_selector = (names.len() == 1).then(|| format!("metadata.name={}", names[0]));
    let mut node_cfg = watcher::Config::default();
    if let Some(s) = &node_selector {
        node_cfg = node_cfg.fields(s);
    }
    let nodes = Informer::new(Api::<Node>::all(client.clone()), node_cfg);
    let node_cache = nodes.cache();

    let mut routes: HashMap<String, mpsc::UnboundedSender<Change<Pod>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let spec = Arc::new(node::NodeSpecConfig {
            name: name.clone(),
            ip: cfg.node_ip.clone(),
            capacity: capacity.clone(),
            labels: labels_for(&cfg, name)?,
            pod_cidr: sim.then(|| format!("10.{}.{}.0/24", (i / 256) % 256, i % 256)),
            runtime_version: rt.version(),
            lease_duration_seconds: cfg.node_lease_duration_seconds,
            status_update_frequency: cfg.node_status_update_frequency,
            status_report_frequency: cfg.node_status_report_frequency,
        });
        let next_ip = AtomicU32::new(2);
        let (node_ip, octets) = (cfg.node_ip.clone(), ((i / 256) % 256, i % 256));
        let ctx = Arc::new(podworker::NodeContext {
            client: client.clone(),
            runtime: rt.clone(),
            node_name: name.clone(),
            node_ip: cfg.node_ip.clone(),
            root_dir: cfg.root_dir.join(name),
            http: http.clone(),
            backoff_initial: cfg.container_restart_backoff,
            backoff_max: cfg.container_restart_backoff_max,
            pod_ip: Box::new(move || {
                if sim {
                    let n = next_ip.fetch_add(1, Ordering::Relaxed) % 253 + 2;
                    format!("10.{}.{}.{n}", octets.0, octets.1)
                } else {
                    node_ip.clone()
                }
            }),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        routes.insert(name.clone(), tx);
        tasks.spawn(node::run(
            client.clone(),
            spec,
            node_cache.clone(),
            stop.clone(),
        ));
        tasks.spawn(manage_pods(ctx, rx, stop.clone()));
    }
    pods.on_change(move |c| {
        if let Some(tx) = routes.get(pod::node_name(c.object())) {
            let _ = tx.send(c.clone());
        }
    });
    tasks.spawn(pods.run(stop.clone()));
    tasks.spawn(nodes.run(stop.clone()));
    tracing::info!(nodes = names.len(), runtime = %rt.version(), "kubelet running");
    while tasks.join_next().await.is_some() {}
    tracing::info!("kubelet stopped");
    Ok(())
}

/// One node's pods: a worker per pod, fed every change to it, dropped when the pod is gone.
async fn manage_pods<R: Runtime>(
    ctx: Arc<podworker::NodeContext<R>>,
    mut rx: mpsc::UnboundedReceiver<Change<Pod>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut workers: HashMap<String, watch::Sender<Arc<Pod>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    loop {
        let change = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            c = rx.recv() => match c { Some(c) => c, None => break },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let p = change.object().clone();
        let uid = p.metadata.uid.clone().unwrap_or_default();
        match change {
            Change::Applied { .. } => {
                if let Some(tx) = workers.get(&uid) {
                    let _ = tx.send(p);
                } else if !pod::is_terminal(&p) || pod::is_terminating(&p.metadata) {
                    let (tx, rx) = watch::channel(p);
                    workers.insert(uid, tx);
                    tasks.spawn(podworker::run(ctx.clone(), rx, stop.clone()));
                }
            }
            Change::Deleted(_) => {
                // Dropping the sender tells the worker the pod is gone.
                workers.remove(&uid);
            }
        }
        // Workers that finished (pod deleted by us) leave their sender behind: drop those.
        workers.retain(|_, tx| !tx.is_closed());
    }
    drop(workers);
    while tasks.join_next().await.is_some() {}
}
