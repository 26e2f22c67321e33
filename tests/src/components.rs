//! Helpers for control-plane tests: the scheduler, controller-manager and kubelet as real
//! `strata` processes with their own kubeconfigs (tokens minted from the apiserver's key),
//! killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::kube::{ApiserverProc, Kube, ISSUER};
use crate::strata_bin;

/// A running `strata <component>`.
pub struct Component {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Component {
    /// Starts `strata <args>` with its log in `dir/<name>.log`.
    pub fn start(dir: &Path, name: &str, args: &[String]) -> Component {
        std::fs::create_dir_all(dir).expect("component dir");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(strata_bin())
            .args(args)
            .env(
                "RUST_LOG",
                "info,h2=warn,hyper=warn,kube=warn,rustls=warn,strata_clients=debug",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Component {
            name: name.to_string(),
            log,
            child: Some(child),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The leader-election identity the component logged at start-up.
    pub fn identity(&self) -> Option<String> {
        let text = self.log_text();
        let line = text.lines().find(|l| l.contains("identity="))?;
        let rest = line.split("identity=").nth(1)?;
        Some(
            rest.split_whitespace()
                .next()?
                .trim_matches('"')
                .to_string(),
        )
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn kill9(&mut self) {
        crate::kill9(&mut self.child);
    }

    /// SIGTERM and wait; whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        crate::terminate(&mut self.child)
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Writes a kubeconfig for `user` in `groups` against `api`; its path.
pub fn kubeconfig(api: &ApiserverProc, dir: &Path, user: &str, groups: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("kubeconfig dir");
    let token = api.token(user, groups);
    let path = dir.join(format!("{}.kubeconfig", user.replace(':', "-")));
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n",
        api.port,
        api.ca.display()
    );
    std::fs::write(&path, yaml).expect("write kubeconfig");
    path
}

/// Short leader-election timings for tests.
pub fn fast_leader_election() -> Vec<String> {
    [
        "--leader-elect-lease-duration",
        "3s",
        "--leader-elect-renew-deadline",
        "2s",
        "--leader-elect-retry-period",
        "500ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The pods in `ns` with label `app=<app>`.
pub async fn pods(kube: &Kube, ns: &str, app: &str) -> Vec<Value> {
    let (code, list) = kube
        .get(&format!(
            "/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}"
        ))
        .await;
    if code != 200 {
        return Vec::new();
    }
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Whether a pod is Running, Ready and not being deleted.
pub fn available(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["phase"] == "Running"
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// A Deployment of `replicas` pods labelled app=<name>, image `image`.
pub fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": image, "command": ["sleep", "3600"],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]
                }
            }
        }
    })
}

pub const TOKEN_ISSUER: &str = ISSUER;

/// Waits up to `timeout` for `cond`, polling every 200 ms; panics with `what`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}
