//! `strata bench apiserver`: load on the Kubernetes API, over HTTPS with a bearer token, as
//! any client of kube-apiserver would send it.
//!
//! - `pods` ([`pods`]): pod create, update and delete rates and latencies, `--clients` at a time.
//! - `list` ([`list`]): latency of full (consistent) lists of a namespace holding N pods.
//! - `watch` ([`watch`]): N HTTP watchers on one namespace's pods while pods are updated at a
//!   fixed rate; delivery latency per event and the apiserver's memory.
//! - `density` ([`density`]): kubemark's density test against a running control plane with
//!   nodes (hollow ones from `strata up --runtime sim`), judged against the Kubernetes SLOs.

mod density;
mod list;
mod pods;
mod watch;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Debug, Clone, Args)]
pub struct ApiserverArgs {
    /// The apiserver's URL.
    #[arg(long, default_value = "https://127.0.0.1:6443")]
    pub server: String,
    /// Bearer token (e.g. from `strata token`).
    #[arg(long, env = "STRATA_TOKEN")]
    pub token: String,
    /// CA certificate that signed the apiserver's serving certificate.
    #[arg(long)]
    pub ca: std::path::PathBuf,
    /// Namespace the benchmark works in (created when missing).
    #[arg(long, default_value = "bench")]
    pub namespace: String,
    /// The apiserver's process id, to report its memory (VmRSS) before and after.
    #[arg(long)]
    pub pid: Option<u32>,
    #[command(subcommand)]
    pub cmd: ApiserverBench,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ApiserverBench {
    /// Watch fan-out: --watchers HTTP watchers receive every event of --rate pod updates/s.
    Watch {
        #[arg(long, default_value_t = 1000)]
        watchers: usize,
        /// Pods updated round-robin.
        #[arg(long, default_value_t = 100)]
        pods: usize,
        /// Pod updates per second.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Seconds of updates.
        #[arg(long, default_value_t = 30)]
        duration: u64,
    },
    /// Pod create, update and delete rates: --total pods, --clients requests at a time.
    Pods {
        #[arg(long, default_value_t = 2000)]
        total: u64,
    },
    /// Density (kubemark's test): --pods pods created at --rate/s; startup latency,
    /// scheduler throughput and mutating-call latency against the Kubernetes SLOs.
    Density {
        #[arg(long, default_value_t = 30_000)]
        pods: usize,
        /// Pods created per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Seconds to wait, after the last creation, for every pod to be Running.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Delete the pods afterwards.
        #[arg(long)]
        cleanup: bool,
    },
    /// List latency with --objects pods in the namespace.
    List {
        #[arg(long, default_value_t = 10_000)]
        objects: usize,
        /// Lists to time.
        #[arg(long, default_value_t = 50)]
        total: u64,
    },
}

pub(crate) const TS_KEY: &str = "strata.bench/ts";

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub(crate) fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(args: &ApiserverArgs, http1: bool) -> Result<Api, String> {
        let ca = std::fs::read(&args.ca).map_err(|e| format!("--ca {}: {e}", args.ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?;
        let mut b = reqwest::Client::builder()
            .add_root_certificate(cert)
            .tls_built_in_root_certs(false)
            .pool_max_idle_per_host(4096);
        if http1 {
            b = b.http1_only();
        }
        Ok(Api {
            http: b.build().map_err(|e| e.to_string())?,
            base: args.server.trim_end_matches('/').to_string(),
            token: args.token.clone(),
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<u16, String> {
        let r = self
            .req(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let code = r.status().as_u16();
        // Read the answer: a dropped HTTP/2 response resets its stream, and too many resets
        // make the connection fail.
        let _ = r.bytes().await;
        Ok(code)
    }
}

pub(crate) fn pod(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "labels": { "app": "bench" } },
        "spec": { "containers": [{ "name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } } }] }
    })
}

pub(crate) async fn ensure_pods(api: &Arc<Api>, ns: &str, n: usize) -> Result<(), String> {
    let code = api
        .post(
            "/api/v1/namespaces",
            &json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
        )
        .await?;
    if code != 201 && code != 409 {
        return Err(format!("creating namespace {ns}: HTTP {code}"));
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..n {
        let api = api.clone();
        let ns = ns.to_string();
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let code = api
                .post(
                    &format!("/api/v1/namespaces/{ns}/pods"),
                    &pod(&format!("p-{i:05}")),
                )
                .await?;
            if code != 201 && code != 409 {
                return Err(format!("creating pod: HTTP {code}"));
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// `strata bench apiserver ...`; `clients` is the global --clients.
pub async fn run(args: ApiserverArgs, clients: usize, json_out: bool) -> Result<(), String> {
    match args.cmd.clone() {
        ApiserverBench::Watch {
            watchers,
            pods,
            rate,
            duration,
        } => watch::watch(args, json_out, watchers, pods.max(1), rate.max(1), duration).await,
        ApiserverBench::List { objects, total } => list::list(args, json_out, objects, total).await,
        ApiserverBench::Pods { total } => pods::pods(args, json_out, clients.max(1), total).await,
        ApiserverBench::Density {
            pods,
            rate,
            timeout,
            cleanup,
        } => {
            let api = Api::new(&args, false)?;
            density::run(
                api,
                &args.namespace,
                pods,
                rate,
                std::time::Duration::from_secs(timeout),
                cleanup,
            )
            .await
        }
    }
}
