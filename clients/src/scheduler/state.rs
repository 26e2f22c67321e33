//! The scheduling loop: one task owns the node infos and the queue, and reacts to pod and node
//! changes, binding results and timers; scheduling a pod is a synchronous step between them.
//! Only the bindings (and status writes) run concurrently, bounded by `--parallelism`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Client;
use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::nodeinfo::{NodeInfo, PodInfo};
use super::queue::SchedulingQueue;
use super::{filter, score, SchedulerConfig};
use crate::events::Recorder;
use crate::informer::{Change, Informer};
use crate::pod;

/// What a binding task reports back.
struct BindResult {
    key: String,
    node: String,
    result: Result<(), kube::Error>,
}

struct Scheduler {
    cfg: SchedulerConfig,
    client: Client,
    events: Recorder,
    nodes: BTreeMap<String, NodeInfo>,
    /// Pods accounted on a node: key -> (node, info). Includes assumed ones.
    placed: HashMap<String, (String, PodInfo)>,
    /// Pods whose binding is in flight (assumed, not yet seen bound).
    assumed: HashMap<String, String>,
    /// Pending pods of this scheduler, by key.
    pending: HashMap<String, Arc<Pod>>,
    queue: SchedulingQueue,
    /// Where the next node search starts (round robin over the node list).
    next_start: usize,
    binds: Arc<Semaphore>,
    tasks: JoinSet<()>,
    results: mpsc::UnboundedSender<BindResult>,
}

/// Runs until `stop` turns true.
pub(super) async fn schedule(
    client: Client,
    cfg: SchedulerConfig,
    identity: String,
    mut stop: watch::Receiver<bool>,
) {
    let (events, event_task) =
        Recorder::new(client.clone(), &cfg.scheduler_name, &identity, stop.clone());
    let mut background = JoinSet::new();
    background.spawn(event_task);

    let (pod_tx, mut pod_rx) = mpsc::unbounded_channel::<Change<Pod>>();
    let mut pods = Informer::new(Api::<Pod>::all(client.clone()), watcher::Config::default());
    pods.on_change(move |c| {
        let _ = pod_tx.send(c.clone());
    });
    let pod_cache = pods.cache();
    let (node_tx, mut node_rx) = mpsc::unbounded_channel::<Change<Node>>();
    let mut nodes = Informer::new(Api::<Node>::all(client.clone()), watcher::Config::default());
    nodes.on_change(move |c| {
        let _ = node_tx.send(c.clone());
    });
    let node_cache = nodes.cache();
    background.spawn(pods.run(stop.clone()));
    background.spawn(nodes.run(stop.clone()));

    let (results_tx, mut results_rx) = mpsc::unbounded_channel();
    let mut s = Scheduler {
        binds: Arc::new(Semaphore::new(cfg.parallelism.max(1))),
        queue: SchedulingQueue::new(cfg.pod_max_in_unschedulable_pods_duration),
        cfg,
        client,
        events,
        nodes: BTreeMap::new(),
        placed: HashMap::new(),
        assumed: HashMap::new(),
        pending: HashMap::new(),
        next_start: 0,
        tasks: JoinSet::new(),
        results: results_tx,
    };
    let mut synced = false;
    loop {
        if !synced && pod_cache.is_synced() && node_cache.is_synced() {
            synced = true;
            tracing::info!(
                nodes = s.nodes.len(),
                pending = s.pending.len(),
                "caches synced; scheduling"
            );
        }
        let can_schedule = synced && s.queue.has_active() && s.binds.available_permits() > 0;
        let wake = s
            .queue
            .next_wakeup()
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = stop.wait_for(|v| *v) => break,
            Some(c) = node_rx.recv() => s.node_changed(c),
            Some(c) = pod_rx.recv() => s.pod_changed(c),
            Some(r) = results_rx.recv() => s.bound(r),
            _ = tokio::time::sleep_until(wake) => s.queue.flush(Instant::now()),
            _ = std::future::ready(()), if can_schedule => s.schedule_one(),
            Some(_) = s.tasks.join_next(), if !s.tasks.is_empty() => {}
        }
    }
    // Leave nothing running: in-flight bindings finish (they are bounded by the client's
    // timeouts), informers and the event writer stop on `stop`.
    while s.tasks.join_next().await.is_some() {}
    while background.join_next().await.is_some() {}
}

impl Scheduler {
    fn responsible_for(&self, p: &Pod) -> bool {
        let name = p
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler");
        name == self.cfg.scheduler_name
    }

    fn node_changed(&mut self, c: Change<Node>) {
        match c {
            Change::Applied { new, .. } => {
                let name = new.metadata.name.clone().unwrap_or_default();
                self.nodes.entry(name).or_default().set_node(new);
            }
            Change::Deleted(old) => {
                let name = old.metadata.name.clone().unwrap_or_default();
                if let Some(ni) = self.nodes.get_mut(&name) {
                    ni.node = None;
                    if ni.is_empty() {
                        self.nodes.remove(&name);
                    }
                }
            }
        }
        self.queue.move_all_unschedulable();
    }

    fn unplace(&mut self, key: &str) {
        if let Some((node, info)) = self.placed.remove(key) {
            if let Some(ni) = self.nodes.get_mut(&node) {
                ni.remove_pod(&info);
                if ni.is_empty() {
                    self.nodes.remove(&node);
                }
            }
        }
    }

    fn place(&mut self, key: &str, node: &str, info: PodInfo) {
        self.unplace(key);
        self.nodes
            .entry(node.to_string())
            .or_default()
            .add_pod(&info);
        self.placed
            .insert(key.to_string(), (node.to_string(), info));
    }

    fn pod_changed(&mut self, c: Change<Pod>) {
        let (p, deleted, old) = match c {
            Change::Applied { old, new } => (new, false, old),
            Change::Deleted(o) => (o, true, None),
        };
        let key = pod::key(&p.metadata);
        let node = pod::node_name(&p).to_string();
        if deleted {
            self.pending.remove(&key);
            self.queue.remove(&key);
            self.assumed.remove(&key);
            self.unplace(&key);
            self.queue.move_all_unschedulable();
            return;
        }
        if !node.is_empty() {
            // Bound (by us or anyone): account it where it is, until it ends.
            self.pending.remove(&key);
            self.queue.remove(&key);
            self.assumed.remove(&key);
            if pod::is_terminal(&p) {
                if self.placed.contains_key(&key) {
                    self.unplace(&key);
                    self.queue.move_all_unschedulable();
                }
            } else {
                let same = self.placed.get(&key).is_some_and(|(n, i)| {
                    *n == node && i.pod.metadata.uid == p.metadata.uid && i.pod.spec == p.spec
                });
                if !same {
                    self.place(&key, &node, PodInfo::new(p));
                }
            }
            return;
        }
        if self.assumed.contains_key(&key) {
            // Our binding is in flight; the bound version will follow.
            self.pending.insert(key, p);
            return;
        }
        if !self.responsible_for(&p) || pod::is_terminating(&p.metadata) || pod::is_terminal(&p) {
            self.pending.remove(&key);
            self.queue.remove(&key);
            return;
        }
        // Only a change to what the pod asks for makes it worth retrying at once; our own
        // status writes (PodScheduled=False) must not.
        let changed = old
            .as_ref()
            .is_none_or(|o| o.spec != p.spec || o.metadata.labels != p.metadata.labels);
        let priority = p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        self.pending.insert(key.clone(), p);
        if changed || !self.queue.contains(&key) {
            self.queue.add(&key, priority);
        }
    }

    /// How many feasible nodes to look for (kube-scheduler's numFeasibleNodesToFind).
    fn feasible_to_find(&self, all: usize) -> usize {
        const MIN_FEASIBLE: usize = 100;
        if all < MIN_FEASIBLE {
            return all;
        }
        let pct = match self.cfg.percentage_of_nodes_to_score {
            0 => (50 - (all / 125) as i64).max(5) as usize,
            p => (p as usize).min(100),
        };
        (all * pct / 100).max(MIN_FEASIBLE).min(all)
    }

    fn schedule_one(&mut self) {
        let now = Instant::now();
        let Some(key) = self.queue.pop(now) else {
            return;
        };
        let Some(p) = self.pending.get(&key).cloned() else {
            self.queue.remove(&key);
            return;
        };
        let info = PodInfo::new(p.clone());
        let names: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.node.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let all = names.len();
        let want = self.feasible_to_find(all);
        let mut feasible: Vec<usize> = Vec::new();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let start = if all == 0 { 0 } else { self.next_start % all };
        let mut examined = 0;
        for i in 0..all {
            let idx = (start + i) % all;
            examined += 1;
            let why = filter::filter(&info, &self.nodes[&names[idx]]);
            if why.is_empty() {
                feasible.push(idx);
                if feasible.len() >= want {
                    break;
                }
            } else {
                for r in why {
                    *reasons.entry(r).or_insert(0) += 1;
                }
            }
        }
        self.next_start = start + examined;
        if feasible.is_empty() {
            let message = filter::fit_error(all, &reasons);
            tracing::debug!(pod = %key, %message, "unschedulable");
            self.queue.unschedulable(&key, now);
            self.mark_unschedulable(&p, message);
            return;
        }
        let scored: Vec<(usize, i64)> = feasible
            .iter()
            .map(|&i| (i, score::score(&info, &self.nodes[&names[i]])))
            .collect();
        let Some(best) = score::select(&scored, rand::random::<f64>) else {
            return;
        };
        let node = names[best].clone();
        self.place(&key, &node, info);
        self.assumed.insert(key.clone(), node.clone());
        self.bind(key, p, node);
    }

    fn bind(&mut self, key: String, p: Arc<Pod>, node: String) {
        let Ok(permit) = self.binds.clone().try_acquire_owned() else {
            // Cannot happen (scheduling waits for a permit); undo rather than overcommit.
            self.assumed.remove(&key);
            self.unplace(&key);
            self.queue.backoff_retry(&key, Instant::now());
            return;
        };
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": ns, "uid": p.metadata.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let results = self.results.clone();
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let result = api
                .create_subresource::<_, serde_json::Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await
                .map(|_| ());
            if result.is_ok() {
                events.normal(
                    p.as_ref(),
                    "Scheduled",
                    "Binding",
                    format!("Successfully assigned {ns}/{name} to {node}"),
                );
            }
            drop(permit);
            let _ = results.send(BindResult { key, node, result });
        });
    }

    fn bound(&mut self, r: BindResult) {
        match r.result {
            Ok(()) => {
                tracing::debug!(pod = %r.key, node = %r.node, "bound");
                self.queue.done(&r.key);
            }
            Err(e) => {
                // Undo the assumption unless the watch already showed the pod bound.
                if self.assumed.remove(&r.key).is_some() {
                    self.unplace(&r.key);
                }
                let gone_or_taken =
                    matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409);
                if gone_or_taken {
                    tracing::debug!(pod = %r.key, error = %e, "binding refused; the pod is gone or bound");
                    self.queue.backoff_retry(&r.key, Instant::now());
                } else {
                    tracing::warn!(pod = %r.key, node = %r.node, error = %e, "binding failed; retrying");
                    self.queue.backoff_retry(&r.key, Instant::now());
                }
            }
        }
    }

    /// Sets PodScheduled=False/Unschedulable with `message` (if it is not already that), and
    /// records a FailedScheduling event.
    fn mark_unschedulable(&mut self, p: &Arc<Pod>, message: String) {
        let current = pod::condition(p, "PodScheduled");
        if current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message.as_str())
        }) {
            return;
        }
        self.events.warning(
            p.as_ref(),
            "FailedScheduling",
            "Scheduling",
            message.clone(),
        );
        let mut conditions: Vec<PodCondition> = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.type_ != "PodScheduled")
            .collect();
        conditions.push(PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some(message),
            last_transition_time: Some(pod::now()),
            ..Default::default()
        });
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        self.tasks.spawn(async move {
            let patch = json!({"status": {"conditions": conditions}});
            if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "could not set PodScheduled=False");
            }
        });
    }
}
