//! One container of a pod as the pod worker drives it: its spec for the runtime (argv with
//! `$(VAR)` expansion, environment with the downward API's field references), its status,
//! and the task that starts it, waits for it and stops it on request.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::probe::{self, ProbeEvent};
use super::runtime::{Container as _, ContainerSpec, Exit, Runtime};
use super::status;

/// Which container a message is about: (init container?, index, start generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId {
    pub init: bool,
    pub index: usize,
    pub generation: u64,
}

/// What container tasks and probers tell the pod worker.
#[derive(Debug)]
pub enum Msg {
    Started(SlotId, String),
    StartFailed(SlotId, &'static str, String),
    Exited(SlotId, Exit),
    Probe(SlotId, ProbeEvent),
}

/// A started (or starting) container.
pub struct Running {
    stop: Option<oneshot::Sender<Duration>>,
    task: JoinHandle<()>,
    prober: Option<JoinHandle<()>>,
}

impl Running {
    /// Asks the container to stop with `grace` (it reports Exited when gone).
    pub fn stop(&mut self, grace: Duration) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(grace);
        }
        if let Some(p) = self.prober.take() {
            p.abort();
        }
    }

    /// Waits for the container's task (after `stop`).
    pub async fn join(self) {
        if let Some(p) = self.prober {
            p.abort();
        }
        let _ = self.task.await;
    }
}

/// One container slot of a pod.
pub struct Slot {
    pub spec: Container,
    pub status: ContainerStatus,
    pub running: Option<Running>,
    pub generation: u64,
    /// When a restart is due (back-off).
    pub restart_at: Option<Instant>,
    pub crashes: u32,
    pub started_at: Option<Instant>,
    /// Terminated and will not run again.
    pub finished: bool,
}

impl Slot {
    pub fn new(spec: Container, previous: Option<&ContainerStatus>, waiting_reason: &str) -> Slot {
        let status = ContainerStatus {
            name: spec.name.clone(),
            image: spec.image.clone().unwrap_or_default(),
            image_id: String::new(),
            ready: false,
            started: Some(false),
            restart_count: previous.map(|p| p.restart_count).unwrap_or(0),
            state: Some(status::waiting(waiting_reason, None)),
            last_state: previous.and_then(|p| p.last_state.clone()),
            ..Default::default()
        };
        Slot {
            spec,
            status,
            running: None,
            generation: 0,
            restart_at: None,
            crashes: 0,
            started_at: None,
            finished: false,
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.status
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code)
    }
}

/// The value of a downward-API field path.
fn field(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> Option<String> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |map: Option<&BTreeMap<String, String>>, prefix: &str| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        map?.get(key).cloned()
    };
    match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" => Some(pod_ip.to_string()),
        "status.hostIP" => Some(host_ip.to_string()),
        p if p.starts_with("metadata.labels['") => keyed(m.labels.as_ref(), "metadata.labels['"),
        p if p.starts_with("metadata.annotations['") => {
            keyed(m.annotations.as_ref(), "metadata.annotations['")
        }
        _ => None,
    }
}

/// Kubernetes' `$(VAR)` expansion in command and args (`$$` escapes a `$`).
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The runtime's view of container `c` of `pod`.
pub fn runtime_spec(
    pod: &Pod,
    c: &Container,
    pod_ip: &str,
    host_ip: &str,
    pod_dir: &Path,
) -> ContainerSpec {
    let mut env: Vec<(String, String)> = Vec::new();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => Some(expand(v, &env)),
            (None, Some(from)) => from
                .field_ref
                .as_ref()
                .and_then(|f| field(pod, &f.field_path, pod_ip, host_ip)),
            (None, None) => Some(String::new()),
        };
        if let Some(v) = value {
            env.push((e.name.clone(), v));
        }
    }
    let argv: Vec<String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .map(|a| expand(a, &env))
        .collect();
    ContainerSpec {
        pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
        pod_namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod_name: pod.metadata.name.clone().unwrap_or_default(),
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        argv,
        env,
        working_dir: Some(
            c.working_dir
                .clone()
                .unwrap_or_else(|| pod_dir.display().to_string()),
        ),
        log_path: pod_dir.join(format!("{}.log", c.name)),
    }
}

/// Starts container `spec` in a task that reports to `tx`, and its prober.
pub fn start<R: Runtime>(
    rt: Arc<R>,
    id: SlotId,
    spec: ContainerSpec,
    c: Container,
    pod_ip: String,
    http: reqwest::Client,
    tx: mpsc::UnboundedSender<Msg>,
) -> Running {
    let (stop_tx, mut stop_rx) = oneshot::channel::<Duration>();
    let probes = !id.init && rt.runs_probes();
    let task = {
        let rt = rt.clone();
        let tx = tx.clone();
        let spec = spec.clone();
        tokio::spawn(async move {
            let started = tokio::select! {
                r = rt.start(&spec) => r,
                _ = &mut stop_rx => {
                    let _ = tx.send(Msg::Exited(id, Exit { code: 0, signal: None }));
                    return;
                }
            };
            let mut container = match started {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Msg::StartFailed(id, e.reason, e.message));
                    return;
                }
            };
            let _ = tx.send(Msg::Started(id, container.id()));
            let exit = tokio::select! {
                e = container.wait() => e,
                grace = &mut stop_rx => container.stop(grace.unwrap_or(Duration::ZERO)).await,
            };
            let _ = tx.send(Msg::Exited(id, exit));
        })
    };
    let prober = probes.then(|| {
        let (ptx, mut prx) = mpsc::unbounded_channel();
        let forward = tx.clone();
        tokio::spawn(async move {
            let probing = probe::run(rt.as_ref(), spec, c, pod_ip, http, ptx);
            let relay = async {
                while let Some(ev) = prx.recv().await {
                    let _ = forward.send(Msg::Probe(id, ev));
                }
            };
            tokio::join!(probing, relay);
        })
    });
    Running {
        stop: Some(stop_tx),
        task,
        prober,
    }
}

/// The delay before restart number `crashes` (the first is immediate, then 10 s doubling up
/// to 5 min, as the kubelet's container back-off).
pub fn restart_delay(crashes: u32, initial: Duration, max: Duration) -> Duration {
    if crashes <= 1 {
        return Duration::ZERO;
    }
    initial
        .saturating_mul(1u32 << (crashes - 2).min(20))
        .min(max)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_expand_like_kubernetes() {
        let env = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "two".to_string()),
        ];
        assert_eq!(expand("x$(A)y$(B)", &env), "x1ytwo");
        assert_eq!(expand("$(MISSING) $$(A) $", &env), "$(MISSING) $(A) $");
        assert_eq!(expand("$(A", &env), "$(A");
    }

    #[test]
    fn specs_carry_env_field_refs_and_argv() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "command": ["sh", "-c"], "args": ["echo $(GREETING) $(NODE)"],
                "env": [{"name": "GREETING", "value": "hi"},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}]}})).unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        let s = runtime_spec(&pod, &c, "10.0.0.1", "127.0.0.1", Path::new("/tmp/p"));
        assert_eq!(s.argv, vec!["sh", "-c", "echo hi n1"]);
        let env: BTreeMap<_, _> = s.env.into_iter().collect();
        assert_eq!(env["APP"], "web");
        assert_eq!(env["IP"], "10.0.0.1");
        assert_eq!(s.log_path, Path::new("/tmp/p/c.log"));
    }

    #[test]
    fn restarts_back_off() {
        let (i, m) = (Duration::from_secs(10), Duration::from_secs(300));
        assert_eq!(restart_delay(1, i, m), Duration::ZERO);
        assert_eq!(restart_delay(2, i, m), Duration::from_secs(10));
        assert_eq!(restart_delay(3, i, m), Duration::from_secs(20));
        assert_eq!(restart_delay(10, i, m), m);
    }
}
