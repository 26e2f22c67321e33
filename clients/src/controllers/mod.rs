//! `strata controller-manager`: the Deployment, ReplicaSet, node-lifecycle, garbage-collector
//! and namespace controllers in one leader-elected process, over shared informers (one watch
//! per kind for all controllers), each controller with its own work queue and workers.
//!
//! With `--leader-elect` (the default) the controllers run only while this instance holds
//! the `kube-controller-manager` Lease; on losing it every controller stops (queues shut down,
//! workers finish their current key, informers stop) before the instance competes again.

pub mod claim;
pub mod deployment;
pub mod expectations;
pub mod gc;
pub mod namespace;
pub mod nodelifecycle;
pub mod replicaset;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DynamicObject};
use kube::discovery::{Discovery, Scope};
use kube::runtime::watcher;
use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::{by_namespace, Informer};
use crate::leader::{self, LeaderElectionFlags};
use crate::workqueue::run_workers;
use crate::{connect, pod, shutdown_channel};

/// Flags (kube-controller-manager's names).
#[derive(clap::Args, Clone, Debug)]
pub struct ControllerManagerConfig {
    /// Kubeconfig with the apiserver address and this controller-manager's credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Controllers to run: `*` or a list of deployment, replicaset, nodelifecycle,
    /// garbagecollector, namespace; `-name` disables one.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    /// How often every node's health is checked.
    #[arg(long, default_value = "5s", value_parser = leader::parse_duration)]
    pub node_monitor_period: Duration,
    /// A node whose Lease is not renewed for this long becomes Ready=Unknown.
    #[arg(long, default_value = "40s", value_parser = leader::parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// Pods on a node unhealthy for this long are evicted (deleted).
    #[arg(long, default_value = "5m", value_parser = leader::parse_duration)]
    pub pod_eviction_timeout: Duration,
    #[command(flatten)]
    pub leader_election: LeaderElectionFlags,
}

impl ControllerManagerConfig {
    fn enabled(&self, name: &str) -> bool {
        let all = self.controllers.iter().any(|c| c == "*");
        let on = self.controllers.iter().any(|c| c == name);
        let off = self
            .controllers
            .iter()
            .any(|c| c.strip_prefix('-') == Some(name));
        (all || on) && !off
    }
}

pub const LEASE_NAME: &str = "kube-controller-manager";

/// Runs the controller-manager until `shutdown` completes.
pub async fn run(
    cfg: ControllerManagerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let client = connect::client_from_kubeconfig(&cfg.kubeconfig)
        .await
        .map_err(|e| e.to_string())?;
    let identity = leader::identity();
    tracing::info!(%identity, "controller-manager starting");
    let (stop, stopper) = shutdown_channel(shutdown);
    let work = {
        let (client, cfg, identity) = (client.clone(), cfg.clone(), identity.clone());
        move |stop: watch::Receiver<bool>| {
            run_controllers(client.clone(), cfg.clone(), identity.clone(), stop)
        }
    };
    if cfg.leader_election.leader_elect {
        let election = leader::Election::from_flags(&cfg.leader_election, LEASE_NAME, &identity);
        leader::run(client, election, stop, work).await;
    } else {
        work(stop).await;
    }
    stopper.abort();
    tracing::info!("controller-manager stopped");
    Ok(())
}

/// The kinds discovery lists that can be listed, watched and deleted.
async fn discover(client: &Client) -> Result<Vec<gc::Kind>, kube::Error> {
    let d = Discovery::new(client.clone()).run().await?;
    let mut kinds = Vec::new();
    for group in d.groups() {
        for (ar, caps) in group.recommended_resources() {
            if ["list", "watch", "delete"]
                .iter()
                .all(|v| caps.supports_operation(v))
            {
                kinds.push(gc::Kind {
                    ar,
                    namespaced: caps.scope == Scope::Namespaced,
                });
            }
        }
    }
    Ok(kinds)
}

async fn run_controllers(
    client: Client,
    cfg: ControllerManagerConfig,
    identity: String,
    mut stop: watch::Receiver<bool>,
) {
    let kinds = loop {
        match discover(&client).await {
            Ok(k) => break k,
            Err(e) => {
                tracing::warn!(error = %e, "discovery failed; retrying");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    };
    let mut tasks = JoinSet::new();
    let mut recorder = |component: &str| {
        let (r, task) = Recorder::new(client.clone(), component, &identity, stop.clone());
        tasks.spawn(task);
        r
    };
    let (rs_events, dep_events, node_events) = (
        recorder("replicaset-controller"),
        recorder("deployment-controller"),
        recorder("node-controller"),
    );

    let mut pods = Informer::new(Api::<Pod>::all(client.clone()), watcher::Config::default());
    pods.index("namespace", by_namespace);
    pods.index("node", |p: &Pod| vec![pod::node_name(p).to_string()]);
    let mut sets = Informer::new(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    );
    sets.index("namespace", by_namespace);
    let mut deployments = Informer::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    );
    deployments.index("namespace", by_namespace);
    let mut nodes = Informer::new(Api::<Node>::all(client.clone()), watcher::Config::default());
    let mut namespaces = Informer::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    );
    let node_leases = Informer::new(
        Api::<Lease>::namespaced(client.clone(), nodelifecycle::NODE_LEASE_NAMESPACE),
        watcher::Config::default(),
    );

    let mut queues: Vec<Box<dyn Fn() + Send>> = Vec::new();
    let mut workers = JoinSet::new();

    let rs = cfg.enabled("replicaset").then(|| {
        replicaset::ReplicaSetController::new(client.clone(), &mut pods, &mut sets, rs_events)
    });
    let dep = cfg.enabled("deployment").then(|| {
        deployment::DeploymentController::new(
            client.clone(),
            &mut deployments,
            &mut sets,
            &mut pods,
            dep_events,
        )
    });
    let nsc = cfg
        .enabled("namespace")
        .then(|| namespace::NamespaceController::new(client.clone(), &mut namespaces, &kinds));
    let nlc = cfg.enabled("nodelifecycle").then(|| {
        let t = nodelifecycle::Timings {
            monitor_period: cfg.node_monitor_period,
            grace_period: cfg.node_monitor_grace_period,
            eviction_timeout: cfg.pod_eviction_timeout,
        };
        nodelifecycle::NodeLifecycleController::new(
            client.clone(),
            &nodes,
            &node_leases,
            &pods,
            node_events,
            t,
        )
    });

    // The garbage collector sees every kind: the shared typed informers, and one dynamic
    // informer per other kind (events excepted, as in Kubernetes).
    let mut dynamic: Vec<Informer<DynamicObject>> = Vec::new();
    let collector = cfg.enabled("garbagecollector").then(|| {
        let gc = gc::GarbageCollector::new(client.clone(), &kinds);
        let typed = ["Pod", "ReplicaSet", "Deployment", "Node", "Namespace"];
        for k in &kinds {
            if k.ar.kind == "Event" {
                continue;
            }
            let Some(kind) = gc.kind(&k.ar.api_version, &k.ar.kind) else {
                continue;
            };
            match (k.ar.group.as_str(), k.ar.kind.as_str()) {
                ("", "Pod") => gc.attach(&mut pods, kind),
                ("apps", "ReplicaSet") => gc.attach(&mut sets, kind),
                ("apps", "Deployment") => gc.attach(&mut deployments, kind),
                ("", "Node") => gc.attach(&mut nodes, kind),
                ("", "Namespace") => gc.attach(&mut namespaces, kind),
                (_, name) if typed.contains(&name) => {}
                _ => {
                    let api: Api<DynamicObject> = Api::all_with(client.clone(), &k.ar);
                    let mut inf = Informer::new_with(api, watcher::Config::default(), k.ar.clone());
                    gc.attach(&mut inf, kind);
                    dynamic.push(inf);
                }
            }
        }
        gc
    });

    let caches_synced = {
        let (p, s, d, n, ns, l) = (
            pods.cache(),
            sets.cache(),
            deployments.cache(),
            nodes.cache(),
            namespaces.cache(),
            node_leases.cache(),
        );
        let dyn_caches: Vec<_> = dynamic.iter().map(|i| i.cache()).collect();
        async move {
            p.wait_synced().await
                && s.wait_synced().await
                && d.wait_synced().await
                && n.wait_synced().await
                && ns.wait_synced().await
                && l.wait_synced().await
                && futures::future::join_all(dyn_caches.iter().map(|c| c.wait_synced()))
                    .await
                    .into_iter()
                    .all(|x| x)
        }
    };
    tasks.spawn(pods.run(stop.clone()));
    tasks.spawn(sets.run(stop.clone()));
    tasks.spawn(deployments.run(stop.clone()));
    tasks.spawn(nodes.run(stop.clone()));
    tasks.spawn(namespaces.run(stop.clone()));
    tasks.spawn(node_leases.run(stop.clone()));
    for inf in dynamic {
        tasks.spawn(inf.run(stop.clone()));
    }
    tokio::select! {
        _ = stop.wait_for(|s| *s) => {}
        _ = caches_synced => tracing::info!("controller-manager caches synced; controllers running"),
    }
    if !crate::stopped(&stop) {
        if let Some(c) = rs {
            let q = c.queue.clone();
            queues.push(Box::new(move || q.shut_down()));
            workers.spawn(run_workers(
                "replicaset",
                c.queue.clone(),
                cfg.concurrent_replicaset_syncs,
                move |k| {
                    let c = c.clone();
                    async move { c.reconcile(k).await }
                },
            ));
        }
        if let Some(c) = dep {
            let q = c.queue.clone();
            queues.push(Box::new(move || q.shut_down()));
            workers.spawn(run_workers(
                "deployment",
                c.queue.clone(),
                cfg.concurrent_deployment_syncs,
                move |k| {
                    let c = c.clone();
                    async move { c.reconcile(k).await }
                },
            ));
        }
        if let Some(c) = nsc {
            let q = c.queue.clone();
            queues.push(Box::new(move || q.shut_down()));
            workers.spawn(run_workers(
                "namespace",
                c.queue.clone(),
                cfg.concurrent_namespace_syncs,
                move |k| {
                    let c = c.clone();
                    async move { c.reconcile(k).await }
                },
            ));
        }
        if let Some(c) = collector {
            let q = c.queue.clone();
            queues.push(Box::new(move || q.shut_down()));
            workers.spawn(run_workers(
                "garbagecollector",
                c.queue.clone(),
                cfg.concurrent_gc_syncs,
                move |k| {
                    let c = c.clone();
                    async move { c.process(k).await }
                },
            ));
        }
        if let Some(c) = nlc {
            workers.spawn(Arc::clone(&c).run(stop.clone()));
        }
        let _ = stop.wait_for(|s| *s).await;
    }
    for shut in &queues {
        shut();
    }
    while workers.join_next().await.is_some() {}
    while tasks.join_next().await.is_some() {}
}
