//! `strata scheduler`: kube-scheduler's scheduling cycle over the apiserver.
//!
//! Pods and nodes are watched (informers); the loop keeps a [`NodeInfo`] per node with what
//! its pods request. Pending pods of this scheduler's `schedulerName` go through the
//! [`queue`]; each is filtered against the nodes ([`filter`]), the feasible ones scored
//! ([`score`]), and the pod is *assumed* on the best node (accounted there at once, so the
//! next pod sees it) while `pods/binding` is posted in the background. A failed binding undoes
//! the assumption and retries the pod after its back-off. A pod that fits nowhere gets
//! `PodScheduled=False`, reason `Unschedulable`, with the filters' reasons, and waits until a
//! node or a pod changes.
//!
//! With `--leader-elect` (the default) all of this runs only while this instance holds the
//! `kube-scheduler` Lease; a new leader starts from fresh watches.
//!
//! Large clusters: as kube-scheduler, only enough nodes are filtered to find
//! `percentageOfNodesToScore` feasible ones (adaptive: 50% minus 1% per 125 nodes, at least
//! 5% and 100 nodes), starting where the previous pod stopped, so placement stays spread and
//! the cost per pod stays bounded.

pub mod filter;
pub mod nodeinfo;
pub mod queue;
pub mod score;
mod state;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::leader::{self, LeaderElectionFlags};
use crate::{connect, shutdown_channel};

/// Flags (kube-scheduler's names where it has them).
#[derive(clap::Args, Clone, Debug)]
pub struct SchedulerConfig {
    /// Kubeconfig with the apiserver address and this scheduler's credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Pods whose spec.schedulerName is this are scheduled by this instance.
    #[arg(long, default_value = "default-scheduler")]
    pub scheduler_name: String,
    /// Share of the nodes to find feasible before scoring (0: kube-scheduler's adaptive rule).
    #[arg(long, default_value_t = 0)]
    pub percentage_of_nodes_to_score: u32,
    /// Bindings posted at once.
    #[arg(long, default_value_t = 64)]
    pub parallelism: usize,
    /// Longest an unschedulable pod waits without a cluster change before it is retried.
    #[arg(long, default_value = "60s", value_parser = leader::parse_duration)]
    pub pod_max_in_unschedulable_pods_duration: Duration,
    #[command(flatten)]
    pub leader_election: LeaderElectionFlags,
}

/// Name of the Lease the schedulers compete for (RBAC lets system:kube-scheduler write only it).
pub const LEASE_NAME: &str = "kube-scheduler";

/// Runs the scheduler until `shutdown` completes.
pub async fn run(
    cfg: SchedulerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let client = connect::client_from_kubeconfig(&cfg.kubeconfig)
        .await
        .map_err(|e| e.to_string())?;
    let identity = leader::identity();
    tracing::info!(%identity, scheduler_name = %cfg.scheduler_name, "scheduler starting");
    let (stop, stopper) = shutdown_channel(shutdown);
    let work = {
        let client = client.clone();
        let cfg = cfg.clone();
        let identity = identity.clone();
        move |stop: watch::Receiver<bool>| {
            state::schedule(client.clone(), cfg.clone(), identity.clone(), stop)
        }
    };
    if cfg.leader_election.leader_elect {
        let election = leader::Election::from_flags(&cfg.leader_election, LEASE_NAME, &identity);
        leader::run(client, election, stop, work).await;
    } else {
        work(stop).await;
    }
    stopper.abort();
    tracing::info!("scheduler stopped");
    Ok(())
}
