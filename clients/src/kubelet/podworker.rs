//! The pod worker: one task per pod bound to the node. It runs the init containers in order,
//! then the app containers; restarts them per restartPolicy with back-off (CrashLoopBackOff
//! while it waits); follows probes; and reports the pod status after every change. When the
//! pod is deleted (deletionTimestamp set) it stops the containers (SIGTERM, the grace period,
//! SIGKILL), then deletes the pod for good with gracePeriodSeconds=0.
//!
//! Status writes go through a per-pod writer that always sends the latest status and
//! retries, so a slow or unavailable apiserver never holds up the containers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{HostIP, Pod, PodIP, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::containers::{self, Msg, Slot, SlotId};
use super::probe::ProbeEvent;
use super::runtime::Runtime;
use super::status;
use crate::pod;

/// What every pod worker of a node shares.
pub struct NodeContext<R: Runtime> {
    pub client: Client,
    pub runtime: Arc<R>,
    pub node_name: String,
    pub node_ip: String,
    pub root_dir: PathBuf,
    pub http: reqwest::Client,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// The IP for the next pod (the process runtime's pods share the node's address).
    pub pod_ip: Box<dyn Fn() -> String + Send + Sync>,
}

struct Worker<R: Runtime> {
    ctx: Arc<NodeContext<R>>,
    pod: Arc<Pod>,
    init: Vec<Slot>,
    app: Vec<Slot>,
    pod_ip: String,
    start_time: Time,
    tx: mpsc::UnboundedSender<Msg>,
    status_tx: mpsc::UnboundedSender<PodStatus>,
    last_status: Option<PodStatus>,
    pod_dir: PathBuf,
    /// A pod that had already finished when the worker started: its status stays as it is.
    frozen: bool,
}

/// Runs pod `pod` until it is deleted, removed from the API, or the kubelet stops.
pub async fn run<R: Runtime>(
    ctx: Arc<NodeContext<R>>,
    mut updates: watch::Receiver<Arc<Pod>>,
    stop: watch::Receiver<bool>,
) {
    let pod = updates.borrow_and_update().clone();
    let prev = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let has_init = spec.init_containers.as_ref().is_some_and(|i| !i.is_empty());
    let find = |list: &Option<Vec<k8s_openapi::api::core::v1::ContainerStatus>>, name: &str| {
        list.iter().flatten().find(|s| s.name == name).cloned()
    };
    let init = spec
        .init_containers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let p = find(&prev.init_container_statuses, &c.name);
            Slot::new(c, p.as_ref(), "PodInitializing")
        })
        .collect();
    let app = spec
        .containers
        .clone()
        .into_iter()
        .map(|c| {
            let p = find(&prev.container_statuses, &c.name);
            Slot::new(
                c,
                p.as_ref(),
                if has_init {
                    "PodInitializing"
                } else {
                    "ContainerCreating"
                },
            )
        })
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = mpsc::unbounded_channel();
    let pod_ip = prev
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| (ctx.pod_ip)());
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let writer = tokio::spawn(write_statuses(
        ctx.client.clone(),
        pod.clone(),
        status_rx,
        stop.clone(),
    ));
    let mut w = Worker {
        pod_dir: ctx.root_dir.join("pods").join(&uid),
        ctx,
        start_time: prev.start_time.clone().unwrap_or_else(pod::now),
        pod: pod.clone(),
        init,
        app,
        pod_ip,
        tx,
        status_tx,
        last_status: None,
        frozen: false,
    };
    if pod::is_terminal(&pod) {
        // Finished before (e.g. before a kubelet restart): nothing runs again.
        for s in w.init.iter_mut().chain(w.app.iter_mut()) {
            s.finished = true;
        }
        w.frozen = true;
    }
    let deleted_meanwhile = pod::is_terminating(&pod.metadata);
    if deleted_meanwhile {
        // Deleted while the kubelet was away: nothing to run, only the deletion to finish.
        w.terminate(&mut rx, &stop).await;
    } else {
        w.advance();
        w.report();
    }
    let mut stopping = stop.clone();
    let removed = deleted_meanwhile
        || loop {
            let restart_at = w.next_restart();
            tokio::select! {
                _ = crate::until_stopped(&mut stopping) => break false,
                changed = updates.changed() => {
                    if changed.is_err() {
                        // The pod is gone from the API (force-deleted): just stop.
                        break true;
                    }
                    w.pod = updates.borrow_and_update().clone();
                    if pod::is_terminating(&w.pod.metadata) {
                        w.terminate(&mut rx, &stop).await;
                        break true;
                    }
                }
                Some(msg) = rx.recv() => w.handle(msg),
                _ = tokio::time::sleep_until(restart_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if restart_at.is_some() => {}
            }
            w.advance();
            w.report();
        };
    // Kubelet stopping or pod gone: stop what still runs, without touching the API.
    let grace = if removed {
        Duration::ZERO
    } else {
        w.grace().min(Duration::from_secs(5))
    };
    w.stop_all(grace, &mut rx).await;
    tracing::debug!(
        pod = w.pod.metadata.name.as_deref().unwrap_or(""),
        "containers stopped"
    );
    drop(w.status_tx);
    let _ = writer.await;
    if removed && w.ctx.runtime.runs_probes() {
        let _ = std::fs::remove_dir_all(&w.pod_dir);
    }
}

impl<R: Runtime> Worker<R> {
    fn restart_policy(&self) -> String {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into())
    }

    fn grace(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        Duration::from_secs(secs.max(0) as u64)
    }

    fn slot(&mut self, id: SlotId) -> Option<&mut Slot> {
        let list = if id.init {
            &mut self.init
        } else {
            &mut self.app
        };
        list.get_mut(id.index)
            .filter(|s| s.generation == id.generation)
    }

    fn init_done(&self) -> bool {
        self.init
            .iter()
            .all(|s| s.exit_code() == Some(0) && s.finished)
    }

    fn next_restart(&self) -> Option<Instant> {
        self.init
            .iter()
            .chain(self.app.iter())
            .filter_map(|s| s.restart_at)
            .min()
    }

    /// Starts whatever should run now and is not running.
    fn advance(&mut self) {
        let now = Instant::now();
        if self
            .init
            .iter()
            .any(|s| s.finished && s.exit_code() != Some(0))
        {
            return;
        }
        if !self.init_done() {
            if let Some(i) = self
                .init
                .iter()
                .position(|s| !(s.finished && s.exit_code() == Some(0)))
            {
                if !self.init[i].is_running()
                    && self.init[i].restart_at.is_none_or(|t| t <= now)
                    && !self.init[i].finished
                {
                    self.start(true, i);
                }
            }
            return;
        }
        for i in 0..self.app.len() {
            let s = &self.app[i];
            if !s.is_running() && !s.finished && s.restart_at.is_none_or(|t| t <= now) {
                self.start(false, i);
            }
        }
    }

    fn start(&mut self, init: bool, index: usize) {
        let host_ip = self.ctx.node_ip.clone();
        let (pod, pod_ip, dir) = (self.pod.clone(), self.pod_ip.clone(), self.pod_dir.clone());
        let (rt, http, tx) = (
            self.ctx.runtime.clone(),
            self.ctx.http.clone(),
            self.tx.clone(),
        );
        let slot = if init {
            &mut self.init[index]
        } else {
            &mut self.app[index]
        };
        slot.generation += 1;
        slot.restart_at = None;
        let id = SlotId {
            init,
            index,
            generation: slot.generation,
        };
        let spec = containers::runtime_spec(&pod, &slot.spec, &pod_ip, &host_ip, &dir);
        slot.running = Some(containers::start(
            rt,
            id,
            spec,
            slot.spec.clone(),
            pod_ip,
            http,
            tx,
        ));
    }

    fn handle(&mut self, msg: Msg) {
        let policy = self.restart_policy();
        let (initial, max) = (self.ctx.backoff_initial, self.ctx.backoff_max);
        let probes = self.ctx.runtime.runs_probes();
        let term_grace = Duration::from_secs(
            self.pod
                .spec
                .as_ref()
                .and_then(|p| p.termination_grace_period_seconds)
                .unwrap_or(30)
                .max(0) as u64,
        );
        let pod_ref = format!(
            "{}_{}({})",
            self.pod.metadata.name.as_deref().unwrap_or(""),
            self.pod.metadata.namespace.as_deref().unwrap_or(""),
            self.pod.metadata.uid.as_deref().unwrap_or("")
        );
        match msg {
            Msg::Started(id, container_id) => {
                let Some(s) = self.slot(id) else { return };
                s.status.container_id = Some(container_id);
                s.status.state = Some(status::running(&pod::now()));
                s.started_at = Some(Instant::now());
                if !probes || id.init {
                    s.status.started = Some(true);
                    s.status.ready = !id.init;
                }
            }
            Msg::StartFailed(id, reason, message) => {
                let Some(s) = self.slot(id) else { return };
                s.running = None;
                s.status.state = Some(status::waiting(reason, Some(message)));
                s.crashes += 1;
                s.restart_at = Some(
                    Instant::now() + containers::restart_delay(s.crashes.max(2), initial, max),
                );
            }
            Msg::Exited(id, exit) => {
                let Some(s) = self.slot(id) else { return };
                s.running = None;
                s.status.ready = false;
                s.status.started = Some(false);
                let started = s
                    .status
                    .state
                    .as_ref()
                    .and_then(|st| st.running.as_ref())
                    .and_then(|r| r.started_at.clone());
                let cid = s.status.container_id.clone().unwrap_or_default();
                let term = status::terminated(&exit, started, &pod::now(), &cid);
                // Ran long enough: the back-off starts over.
                if s.started_at.is_some_and(|t| t.elapsed() >= max * 2) {
                    s.crashes = 0;
                }
                let restart = match policy.as_str() {
                    "Never" => false,
                    "OnFailure" => exit.code != 0,
                    _ => !id.init || exit.code != 0,
                };
                if !restart {
                    s.status.state = Some(term);
                    s.finished = true;
                    return;
                }
                s.crashes += 1;
                s.status.restart_count += 1;
                let delay = containers::restart_delay(s.crashes, initial, max);
                s.status.last_state = Some(term);
                if delay.is_zero() {
                    s.status.state = Some(status::waiting("ContainerCreating", None));
                } else {
                    s.status.state = Some(status::waiting(
                        "CrashLoopBackOff",
                        Some(format!(
                            "back-off {}s restarting failed container={} pod={pod_ref}",
                            delay.as_secs(),
                            s.spec.name
                        )),
                    ));
                }
                s.restart_at = Some(Instant::now() + delay);
            }
            Msg::Probe(id, ev) => {
                let Some(s) = self.slot(id) else { return };
                match ev {
                    ProbeEvent::Started => s.status.started = Some(true),
                    ProbeEvent::Ready(r) => s.status.ready = r && s.status.started == Some(true),
                    ProbeEvent::Unhealthy(why) => {
                        tracing::info!(pod = %pod_ref, container = %s.spec.name, %why, "container unhealthy; restarting");
                        if let Some(r) = s.running.as_mut() {
                            r.stop(term_grace);
                        }
                    }
                }
            }
        }
    }

    fn build_status(&self) -> PodStatus {
        let now = pod::now();
        let policy = self.restart_policy();
        let init_failed = self
            .init
            .iter()
            .any(|s| s.finished && s.exit_code() != Some(0));
        let init_done = self.init_done();
        let apps: Vec<_> = self.app.iter().map(|s| s.status.clone()).collect();
        let phase = status::phase(&policy, init_done, init_failed, &apps);
        let terminal = matches!(phase, "Succeeded" | "Failed");
        let pending_init: Vec<String> = self
            .init
            .iter()
            .filter(|s| !(s.finished && s.exit_code() == Some(0)))
            .map(|s| s.spec.name.clone())
            .collect();
        let unready: Vec<String> = self
            .app
            .iter()
            .filter(|s| !s.status.ready)
            .map(|s| s.spec.name.clone())
            .collect();
        let prev = self
            .last_status
            .as_ref()
            .or(self.pod.status.as_ref())
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let prev_status = self.pod.status.clone().unwrap_or_default();
        PodStatus {
            phase: Some(phase.to_string()),
            conditions: Some(status::conditions(
                &prev,
                &pending_init,
                &unready,
                terminal,
                &now,
            )),
            host_ip: Some(self.ctx.node_ip.clone()),
            host_ips: Some(vec![HostIP {
                ip: self.ctx.node_ip.clone(),
            }]),
            pod_ip: Some(self.pod_ip.clone()),
            pod_ips: Some(vec![PodIP {
                ip: self.pod_ip.clone(),
            }]),
            start_time: Some(self.start_time.clone()),
            container_statuses: Some(apps),
            init_container_statuses: (!self.init.is_empty())
                .then(|| self.init.iter().map(|s| s.status.clone()).collect()),
            qos_class: prev_status
                .qos_class
                .clone()
                .or_else(|| Some(qos_class(&self.pod).to_string())),
            nominated_node_name: prev_status.nominated_node_name,
            ..Default::default()
        }
    }

    /// Queues the status for writing if it changed.
    fn report(&mut self) {
        if self.frozen {
            return;
        }
        let s = self.build_status();
        if self.last_status.as_ref() != Some(&s) {
            self.last_status = Some(s.clone());
            let _ = self.status_tx.send(s);
        }
    }

    /// Stops every running container with `grace` and waits until all are gone.
    async fn stop_all(&mut self, grace: Duration, rx: &mut mpsc::UnboundedReceiver<Msg>) {
        let mut running = Vec::new();
        for s in self.init.iter_mut().chain(self.app.iter_mut()) {
            s.restart_at = None;
            s.finished = true;
            if let Some(mut r) = s.running.take() {
                r.stop(grace);
                running.push(r);
            }
        }
        for r in running {
            r.join().await;
        }
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Exited(id, exit) = msg {
                let list = if id.init {
                    &mut self.init
                } else {
                    &mut self.app
                };
                if let Some(s) = list.get_mut(id.index) {
                    let started = s
                        .status
                        .state
                        .as_ref()
                        .and_then(|st| st.running.as_ref())
                        .and_then(|r| r.started_at.clone());
                    let cid = s.status.container_id.clone().unwrap_or_default();
                    s.status.state = Some(status::terminated(&exit, started, &pod::now(), &cid));
                    s.status.ready = false;
                }
            }
        }
    }

    /// The pod is being deleted: stop its containers within the grace period, report, and
    /// delete it for good.
    async fn terminate(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Msg>,
        stop: &watch::Receiver<bool>,
    ) {
        let grace = self.grace();
        self.stop_all(grace, rx).await;
        self.report();
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: self.pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        let mut wait = Duration::from_millis(200);
        loop {
            match tokio::time::timeout(WRITE_TIMEOUT, api.delete(&name, &dp)).await {
                Ok(Ok(_)) => return,
                Ok(Err(kube::Error::Api(s))) if s.code == 404 || s.code == 409 => return,
                Ok(Err(e)) => {
                    tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "final delete failed; retrying")
                }
                Err(_) => {
                    tracing::debug!(pod = %format!("{ns}/{name}"), "final delete timed out; retrying")
                }
            }
            if crate::stopped(stop) {
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}

/// The pod's QoS class (Guaranteed, Burstable, BestEffort), as the apiserver would set it.
fn qos_class(p: &Pod) -> &'static str {
    let Some(spec) = p.spec.as_ref() else {
        return "BestEffort";
    };
    let all: Vec<_> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let any = all.iter().any(|c| {
        c.resources.as_ref().is_some_and(|r| {
            r.requests.as_ref().is_some_and(|m| !m.is_empty())
                || r.limits.as_ref().is_some_and(|m| !m.is_empty())
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        let r = c.resources.clone().unwrap_or_default();
        let (req, lim) = (r.requests.unwrap_or_default(), r.limits.unwrap_or_default());
        ["cpu", "memory"]
            .iter()
            .all(|k| lim.contains_key(*k) && req.get(*k).is_none_or(|q| Some(q) == lim.get(*k)))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// A status write that takes longer than this is abandoned (and retried).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes the latest status of a pod until the worker ends (then the last one), retrying.
async fn write_statuses(
    client: Client,
    pod: Arc<Pod>,
    mut rx: mpsc::UnboundedReceiver<PodStatus>,
    stop: watch::Receiver<bool>,
) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, &ns);
    while let Some(mut status) = rx.recv().await {
        while let Ok(newer) = rx.try_recv() {
            status = newer;
        }
        let mut body = (*pod).clone();
        // No resourceVersion: the kubelet owns the status, last write wins.
        body.metadata.resource_version = None;
        body.metadata.managed_fields = None;
        body.status = Some(status);
        let mut wait = Duration::from_millis(100);
        loop {
            let put = tokio::time::timeout(
                WRITE_TIMEOUT,
                api.replace_status(&name, &PostParams::default(), &body),
            )
            .await;
            match put {
                Ok(Ok(_)) => break,
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => return,
                Ok(Err(e)) => {
                    tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "status update failed; retrying")
                }
                Err(_) => {
                    tracing::debug!(pod = %format!("{ns}/{name}"), "status update timed out; retrying")
                }
            }
            if crate::stopped(&stop) {
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            if let Ok(newer) = rx.try_recv() {
                body.status = Some(newer);
            }
        }
    }
}
