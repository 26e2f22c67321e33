//! `strata bench apiserver watch`: --watchers HTTP watchers on one namespace's pods while pods
//! are patched at --rate; every patch carries its send time in an annotation, so each watcher
//! measures delivery latency (patch sent -> event line received) without decoding objects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{ensure_pods, now_ns, rss_kib, Api, ApiserverArgs, TS_KEY};
use crate::report::Report;

/// Reads one watch stream, recording the delivery latency of every event carrying a timestamp.
async fn watcher(
    resp: reqwest::Response,
    stop: Arc<tokio::sync::Notify>,
) -> (hdrhistogram::Histogram<u64>, u64) {
    // Two significant digits (1%) and fixed bounds (1 us to 10 min) keep each of the thousands
    // of per-watcher histograms at a few tens of KiB; the default three digits with
    // auto-resizing grew to ~0.9 GiB for 1,000 watchers once latencies reached a second.
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 2)
        .expect("valid histogram bounds");
    h.auto(true);
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
        // Every complete line of the buffer, then one drain: draining line by line moved the
        // rest of the buffer once per event, quadratic in the events a chunk carries, so a
        // client that fell behind (and got bigger chunks) fell further behind.
        let mut start = 0;
        while let Some(off) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + off];
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
                    let _ = h.record((received.saturating_sub(sent) / 1000).max(1));
                }
            }
            start += off + 1;
        }
        buf.drain(..start);
    }
    (h, events)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) async fn watch(
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
    let mut all = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 2)
        .map_err(|e| e.to_string())?;
    all.auto(true);
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
