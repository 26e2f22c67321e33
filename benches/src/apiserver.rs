//! `strata bench apiserver`: load on the Kubernetes API.
//!
//! - `watch`: N HTTP watchers on one namespace's pods while pods are updated at a fixed rate;
//!   every update carries its send time in an annotation, so each watcher measures delivery
//!   latency (update sent -> event received) without parsing whole objects.
//! - `list`: latency of full (consistent) lists of a namespace holding N pods.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::json;

use crate::report::Report;

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

const TS_KEY: &str = "strata.bench/ts";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
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

    pub(crate) fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub(crate) async fn post(&self, path: &str, body: &serde_json::Value) -> Result<u16, String> {
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

fn pod(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "labels": { "app": "bench" } },
        "spec": { "containers": [{ "name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } } }] }
    })
}

async fn ensure_pods(api: &Arc<Api>, ns: &str, n: usize) -> Result<(), String> {
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

/// Reads one watch stream, recording the delivery latency of every event carrying a timestamp.
async fn watcher(
    resp: reqwest::Response,
    stop: Arc<tokio::sync::Notify>,
) -> (hdrhistogram::Histogram<u64>, u64) {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let mut events = 0;
    let mut resp = resp;
    let mut buf: Vec<u8> = Vec::new();
    let marker = format!("\"{TS_KEY}\":\"");
    loop {
        let chunk = tokio::select! {
            c = resp.chunk() => c,
            _ = stop.notified() => break,
        };
        let Ok(Some(chunk)) = chunk else { break };
        let received = now_ns();
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line = &buf[..pos];
            if let Some(i) = find(line, marker.as_bytes()) {
                let digits: Vec<u8> = line[i + marker.len()..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .copied()
                    .collect();
                if let Some(sent) = std::str::from_utf8(&digits)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    events += 1;
                    let _ = h.record(received.saturating_sub(sent) / 1000);
                }
            }
            buf.drain(..=pos);
        }
    }
    (h, events)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub async fn run(args: ApiserverArgs, json_out: bool) -> Result<(), String> {
    match args.cmd.clone() {
        ApiserverBench::Watch {
            watchers,
            pods,
            rate,
            duration,
        } => watch(args, json_out, watchers, pods.max(1), rate.max(1), duration).await,
        ApiserverBench::List { objects, total } => list(args, json_out, objects, total).await,
        ApiserverBench::Density {
            pods,
            rate,
            timeout,
            cleanup,
        } => {
            let api = Api::new(&args, false)?;
            crate::density::run(
                api,
                &args.namespace,
                pods,
                rate,
                Duration::from_secs(timeout),
                cleanup,
            )
            .await
        }
    }
}

async fn watch(
    args: ApiserverArgs,
    json_out: bool,
    watchers: usize,
    pods: usize,
    rate: u64,
    duration: u64,
) -> Result<(), String> {
    let api = Arc::new(Api::new(&args, true)?);
    let ns = args.namespace.clone();
    ensure_pods(&api, &ns, pods).await?;
    let rss_before = rss_kib(args.pid);
    // Start every watcher from the same revision.
    let list = api
        .req(
            reqwest::Method::GET,
            &format!("/api/v1/namespaces/{ns}/pods?limit=1"),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json::<serde_json::Value>()
        .await
        .map_err(|e| e.to_string())?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut handles = Vec::with_capacity(watchers);
    let connect = Arc::new(tokio::sync::Semaphore::new(64));
    for _ in 0..watchers {
        let permit = connect
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let resp = api
            .req(
                reqwest::Method::GET,
                &format!("/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}"),
            )
            .send()
            .await
            .map_err(|e| format!("opening a watch: {e}"))?;
        drop(permit);
        if resp.status() != 200 {
            return Err(format!("watch: HTTP {}", resp.status()));
        }
        handles.push(tokio::spawn(watcher(resp, stop.clone())));
    }
    let rss_watching = rss_kib(args.pid);
    eprintln!("{watchers} watchers open; updating {pods} pods at {rate}/s for {duration}s");
    let updates = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let write_lat = Arc::new(parking_lot::Mutex::new(
        hdrhistogram::Histogram::<u64>::new(3).map_err(|e| e.to_string())?,
    ));
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let inflight = Arc::new(tokio::sync::Semaphore::new(64));
    let mut i = 0usize;
    let total = rate * duration;
    let mut sent = 0;
    let mut writers = Vec::new();
    while sent < total {
        tick.tick().await;
        let permit = inflight
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let api = api.clone();
        let name = format!("p-{:05}", i % pods);
        i += 1;
        sent += 1;
        let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
        let updates = updates.clone();
        let failures = failures.clone();
        let write_lat = write_lat.clone();
        writers.push(tokio::spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let patch = json!({ "metadata": { "annotations": { TS_KEY: now_ns().to_string() } } });
            let r = api
                .req(reqwest::Method::PATCH, &path)
                .header("content-type", "application/merge-patch+json")
                .body(patch.to_string())
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 200 => {
                    let _ = r.bytes().await;
                    let _ = write_lat.lock().record(t.elapsed().as_micros() as u64);
                    updates.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    let write_elapsed = start.elapsed();
    // Let the last events arrive, then stop the watchers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_kib(args.pid);
    stop.notify_waiters();
    let mut all = hdrhistogram::Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut delivered = 0;
    let mut short = 0;
    let done = updates.load(Ordering::Relaxed);
    for h in handles {
        let (hist, n) = h.await.map_err(|e| e.to_string())?;
        all.add(&hist).map_err(|e| e.to_string())?;
        delivered += n;
        if n < done {
            short += 1;
        }
    }
    let report = Report::new(&all, failures.load(Ordering::Relaxed), write_elapsed);
    let writes = Report::new(
        &write_lat.lock(),
        failures.load(Ordering::Relaxed),
        write_elapsed,
    );
    let summary = json!({
        "watchers": watchers,
        "updates": done,
        "update_failures": failures.load(Ordering::Relaxed),
        "updates_per_sec": done as f64 / write_elapsed.as_secs_f64(),
        "events_expected": done * watchers as u64,
        "events_delivered": delivered,
        "events_per_sec": delivered as f64 / write_elapsed.as_secs_f64(),
        "watchers_missing_events": short,
        "delivery_latency": report,
        "update_latency": writes,
        "apiserver_rss_kib": { "before": rss_before, "watching": rss_watching, "after": rss_after },
    });
    if json_out {
        println!("{summary:#}");
    } else {
        println!("Watch fan-out: {watchers} watchers, {done} pod updates ({:.0}/s), {delivered} of {} events delivered ({:.0} events/s), {short} watchers missed events",
            summary["updates_per_sec"].as_f64().unwrap_or(0.0), done * watchers as u64, summary["events_per_sec"].as_f64().unwrap_or(0.0));
        println!("Delivery latency (update sent -> event received):");
        print!("{}", report.text());
        println!("\nUpdate latency (PATCH sent -> answer received), part of the above:");
        print!("{}", writes.text());
        if let (Some(b), Some(w), Some(a)) = (rss_before, rss_watching, rss_after) {
            println!(
                "apiserver RSS: {} MiB before, {} MiB with watchers open, {} MiB after the run",
                b / 1024,
                w / 1024,
                a / 1024
            );
        }
    }
    Ok(())
}

async fn list(
    args: ApiserverArgs,
    json_out: bool,
    objects: usize,
    total: u64,
) -> Result<(), String> {
    let api = Arc::new(Api::new(&args, false)?);
    let ns = args.namespace.clone();
    eprintln!("creating {objects} pods in {ns}");
    ensure_pods(&api, &ns, objects).await?;
    let mut h = hdrhistogram::Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut errors = 0;
    let mut bytes = 0usize;
    let start = Instant::now();
    for _ in 0..total {
        let t = Instant::now();
        let r = api
            .req(
                reqwest::Method::GET,
                &format!("/api/v1/namespaces/{ns}/pods"),
            )
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => match r.bytes().await {
                Ok(b) => {
                    bytes = b.len();
                    let _ = h.record(t.elapsed().as_micros() as u64);
                }
                Err(_) => errors += 1,
            },
            _ => errors += 1,
        }
    }
    let report = Report::new(&h, errors, start.elapsed());
    if json_out {
        println!(
            "{:#}",
            json!({ "objects": objects, "list_bytes": bytes, "latency": report })
        );
    } else {
        println!(
            "List of {objects} pods ({} KiB), {total} times:",
            bytes / 1024
        );
        print!("{}", report.text());
    }
    Ok(())
}
