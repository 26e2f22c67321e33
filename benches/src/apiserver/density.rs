//! `strata bench apiserver density`: Kubernetes' density test (what kubemark clusters run),
//! against a running control plane with nodes (hollow ones: `strata up --runtime sim`).
//!
//! Pods are created at a fixed rate; one watch sees each pod scheduled (spec.nodeName set)
//! and Running. Reported against the Kubernetes scalability SLOs:
//!
//! - mutating API call latency: p99 of the pod creations as this client sees them, and the
//!   apiserver's own p99 for every mutating verb (CREATE, UPDATE, PATCH, DELETE) from its
//!   `apiserver_request_duration_seconds` histogram over the run (all clients: scheduler
//!   bindings, kubelet status updates, leases...), interpolated within buckets as
//!   Prometheus' `histogram_quantile` does; SLO: under 1 s;
//! - pod startup latency: from the create request to the watch showing Running; SLO: p99
//!   under 5 s;
//! - scheduler throughput: pods bound per second, as ClusterLoader2 samples it (pods newly
//!   scheduled in each second, here over 5-second windows); the average over the run is
//!   bounded by the creation rate, so the target (at least 100 pods/s) is judged on the
//!   busiest 5-second window with the scheduler keeping up (create -> scheduled p99 under 1 s).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use super::Api;

#[derive(Default)]
struct Seen {
    sent: HashMap<String, Instant>,
    scheduled: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "density"}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}]},
    })
}

/// Mutating-request histogram from /metrics: bucket upper bound -> cumulative count.
async fn mutating_buckets(api: &Api) -> Result<Vec<(f64, u64)>, String> {
    let text = api
        .req(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let mut acc: Vec<(f64, u64)> = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_duration_seconds_bucket{"))
    {
        let verb = line
            .split("verb=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        if !matches!(
            verb,
            "CREATE" | "UPDATE" | "PATCH" | "DELETE" | "DELETECOLLECTION"
        ) {
            continue;
        }
        let le = line
            .split("le=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::INFINITY)
        };
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match acc.iter_mut().find(|(b, _)| *b == le) {
            Some(e) => e.1 += n,
            None => acc.push((le, n)),
        }
    }
    acc.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(acc)
}

/// `histogram_quantile(q, after - before)`: linear interpolation within the bucket.
fn quantile(q: f64, before: &[(f64, u64)], after: &[(f64, u64)]) -> Option<f64> {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, n)| {
            (
                *le,
                n - before
                    .iter()
                    .find(|(b, _)| b == le)
                    .map(|(_, m)| *m)
                    .unwrap_or(0)
                    .min(*n),
            )
        })
        .collect();
    let total = delta.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut prev = (0.0, 0u64);
    for (le, n) in &delta {
        if *n as f64 >= rank {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let inside = (*n - prev.1) as f64;
            let frac = if inside > 0.0 {
                (rank - prev.1 as f64) / inside
            } else {
                1.0
            };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (*le, *n);
    }
    None
}

/// Watches pods in `ns`, recording when each is first scheduled and first Running.
async fn watch(
    api: Arc<Api>,
    ns: String,
    seen: Arc<Mutex<Seen>>,
    mut rv: String,
    stop: Arc<tokio::sync::Notify>,
) {
    loop {
        let path = format!("/api/v1/namespaces/{ns}/pods?watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=600");
        let resp = tokio::select! {
            r = api.req(reqwest::Method::GET, &path).timeout(Duration::from_secs(900)).send() => r,
            _ = stop.notified() => return,
        };
        let Ok(resp) = resp else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let stream = futures::TryStreamExt::map_err(resp.bytes_stream(), std::io::Error::other);
        let mut lines = tokio_util_lines(stream);
        loop {
            let line = tokio::select! {
                l = lines.next_line() => l,
                _ = stop.notified() => return,
            };
            let Ok(Some(line)) = line else { break };
            let Ok(ev) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let o = &ev["object"];
            if let Some(v) = o["metadata"]["resourceVersion"].as_str() {
                rv = v.to_string();
            }
            if ev["type"] == "ERROR" {
                // Too old a resourceVersion: start from now (what was missed is gone).
                rv = String::new();
                break;
            }
            let Some(name) = o["metadata"]["name"].as_str() else {
                continue;
            };
            let now = Instant::now();
            let mut s = seen.lock();
            if o["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty())
            {
                s.scheduled.entry(name.to_string()).or_insert(now);
            }
            if o["status"]["phase"] == "Running" {
                s.running.entry(name.to_string()).or_insert(now);
            }
        }
    }
}

/// Lines of a byte stream.
fn tokio_util_lines<S>(stream: S) -> tokio::io::Lines<tokio::io::BufReader<StreamReader<S>>>
where
    S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin,
{
    tokio::io::BufReader::with_capacity(
        1 << 16,
        StreamReader {
            inner: stream,
            buf: bytes::Bytes::new(),
        },
    )
    .lines()
}

/// AsyncRead over a stream of byte chunks.
struct StreamReader<S> {
    inner: S,
    buf: bytes::Bytes,
}

impl<S> tokio::io::AsyncRead for StreamReader<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin,
{
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        loop {
            if !self.buf.is_empty() {
                let n = self.buf.len().min(out.remaining());
                let chunk = self.buf.split_to(n);
                out.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match futures::ready!(std::pin::Pin::new(&mut self.inner).poll_next(cx)) {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

fn hist() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid")
}

fn ms(h: &hdrhistogram::Histogram<u64>, p: f64) -> f64 {
    h.value_at_percentile(p) as f64 / 1000.0
}

pub async fn run(
    api: Api,
    ns: &str,
    pods: usize,
    rate: f64,
    timeout: Duration,
    cleanup: bool,
) -> Result<(), String> {
    let api = Arc::new(api);
    let _ = api
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    let nodes: Value = api
        .req(reqwest::Method::GET, "/api/v1/nodes")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let node_count = nodes["items"].as_array().map(Vec::len).unwrap_or(0);
    let list: Value = api
        .req(
            reqwest::Method::GET,
            &format!("/api/v1/namespaces/{ns}/pods?limit=1"),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let before = mutating_buckets(&api).await?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let watcher = tokio::spawn(watch(
        api.clone(),
        ns.to_string(),
        seen.clone(),
        rv,
        stop.clone(),
    ));
    eprintln!("density: {pods} pods at {rate}/s on {node_count} nodes");

    let create_lat = Arc::new(Mutex::new(hist()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let limit = Arc::new(tokio::sync::Semaphore::new(512));
    for i in 0..pods {
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (api, sent, lat, errors, ns) = (
            api.clone(),
            seen.clone(),
            create_lat.clone(),
            errors.clone(),
            ns.to_string(),
        );
        tasks.spawn(async move {
            let name = format!("density-{i}");
            let t0 = Instant::now();
            sent.lock().sent.insert(name.clone(), t0);
            match api
                .post(&format!("/api/v1/namespaces/{ns}/pods"), &pod(&name))
                .await
            {
                Ok(201) => {
                    let _ = lat.lock().record(t0.elapsed().as_micros() as u64);
                }
                _ => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            drop(permit);
        });
        if i > 0 && i % 5000 == 0 {
            let s = seen.lock();
            eprintln!(
                "  {i} created, {} scheduled, {} running, {:.0}s",
                s.scheduled.len(),
                s.running.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    while tasks.join_next().await.is_some() {}
    let created_in = started.elapsed();
    let deadline = Instant::now() + timeout;
    while seen.lock().running.len() < pods && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.notify_waiters();
    watcher.abort();
    let after = mutating_buckets(&api).await?;

    {
        let s = seen.lock();
        let mut startup = hist();
        let mut sched_lat = hist();
        for (name, t0) in &s.sent {
            if let Some(t) = s.running.get(name) {
                let _ = startup.record(t.duration_since(*t0).as_micros() as u64);
            }
            if let Some(t) = s.scheduled.get(name) {
                let _ = sched_lat.record(t.duration_since(*t0).as_micros() as u64);
            }
        }
        let mut times: Vec<Instant> = s.scheduled.values().copied().collect();
        times.sort();
        let throughput = match (times.first(), times.last()) {
            (Some(a), Some(b)) if b > a => times.len() as f64 / b.duration_since(*a).as_secs_f64(),
            _ => 0.0,
        };
        // The busiest one- and five-second windows.
        let busiest = |window: Duration| {
            let (mut peak, mut j) = (0usize, 0usize);
            for i in 0..times.len() {
                while times[i].duration_since(times[j]) > window {
                    j += 1;
                }
                peak = peak.max(i - j + 1);
            }
            peak
        };
        let peak = busiest(Duration::from_secs(1));
        let peak5 = busiest(Duration::from_secs(5)) as f64 / 5.0;
        let c = create_lat.lock();
        let server_p99 = quantile(0.99, &before, &after);
        println!(
            "\nDensity: {pods} pods at {rate}/s on {node_count} nodes (created in {:.1}s, {} errors)",
            created_in.as_secs_f64(),
            errors.load(std::sync::atomic::Ordering::Relaxed)
        );
        println!(
            "  running: {} of {pods}, scheduled: {}",
            s.running.len(),
            s.scheduled.len()
        );
        println!(
            "  pod create latency (client): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(&c, 50.0),
            ms(&c, 99.0),
            c.max() as f64 / 1000.0
        );
        match server_p99 {
            Some(p) => println!(
                "  mutating API calls (apiserver, all clients): p99 {:.1} ms   [SLO < 1000 ms: {}]",
                p * 1000.0,
                if p < 1.0 { "met" } else { "MISSED" }
            ),
            None => println!("  mutating API calls (apiserver): no samples"),
        }
        println!("  pod startup latency (create -> Running): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms   [SLO p99 < 5000 ms: {}]", ms(&startup, 50.0), ms(&startup, 90.0), ms(&startup, 99.0), startup.max() as f64 / 1000.0, if ms(&startup, 99.0) < 5000.0 && s.running.len() == pods { "met" } else { "MISSED" });
        println!(
            "  create -> scheduled: p50 {:.0} ms, p99 {:.0} ms",
            ms(&sched_lat, 50.0),
            ms(&sched_lat, 99.0)
        );
        let kept_up = ms(&sched_lat, 99.0) < 1000.0 && s.scheduled.len() == pods;
        println!(
            "  scheduler throughput: {throughput:.0} pods/s average (the creation rate bounds it), {peak5:.0} pods/s in the busiest 5 s, {peak} in the busiest second   [target >= 100: {}]",
            if peak5 >= 100.0 && kept_up { "met" } else { "MISSED" }
        );
    }
    if cleanup {
        let _ = api
            .req(
                reqwest::Method::DELETE,
                &format!("/api/v1/namespaces/{ns}/pods?gracePeriodSeconds=0"),
            )
            .send()
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets_of_the_difference() {
        let before = vec![(0.1, 10), (1.0, 10), (f64::INFINITY, 10)];
        let after = vec![(0.1, 60), (1.0, 110), (f64::INFINITY, 110)];
        // 100 new samples: 50 under 0.1 s, 50 in (0.1, 1]. p50 = 0.1, p99 = 0.1 + 0.9 * 49/50.
        assert!((quantile(0.5, &before, &after).unwrap_or(0.0) - 0.1).abs() < 1e-9);
        assert!(
            (quantile(0.99, &before, &after).unwrap_or(0.0) - (0.1 + 0.9 * 49.0 / 50.0)).abs()
                < 1e-9
        );
        assert_eq!(quantile(0.99, &after, &after), None);
    }
}
