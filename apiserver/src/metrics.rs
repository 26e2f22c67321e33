//! Prometheus metrics with kube-apiserver's names: apiserver_request_total,
//! apiserver_request_duration_seconds, apiserver_registered_watchers,
//! etcd_request_duration_seconds, apiserver_watch_events_total.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<(String, String), Histogram>>,
    storage: Mutex<BTreeMap<String, Histogram>>,
    watchers: Mutex<BTreeMap<String, i64>>,
    watch_events: Mutex<BTreeMap<String, u64>>,
    watchers_closed_slow: Mutex<BTreeMap<String, u64>>,
}

/// Shared metrics registry.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Inner>);

impl Metrics {
    pub fn request(&self, verb: &str, resource: &str, code: u16, elapsed: Duration) {
        *self
            .0
            .requests
            .lock()
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default() += 1;
        // Watches are long-running: their duration is the watch's life, not a latency.
        if verb != "WATCH" {
            self.0
                .durations
                .lock()
                .entry((verb.to_string(), resource.to_string()))
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
    }

    pub fn storage_latency(&self, operation: &str, elapsed: Duration) {
        self.0
            .storage
            .lock()
            .entry(operation.to_string())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn watcher_delta(&self, resource: &str, delta: i64) {
        *self
            .0
            .watchers
            .lock()
            .entry(resource.to_string())
            .or_default() += delta;
    }

    pub fn watch_events(&self, resource: &str, n: u64) {
        *self
            .0
            .watch_events
            .lock()
            .entry(resource.to_string())
            .or_default() += n;
    }

    pub fn watcher_closed_slow(&self, resource: &str) {
        *self
            .0
            .watchers_closed_slow
            .lock()
            .entry(resource.to_string())
            .or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        for ((verb, res, code), n) in self.0.requests.lock().iter() {
            let _ = writeln!(
                out,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{res}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, res), h) in self.0.durations.lock().iter() {
            h.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &format!("verb=\"{verb}\",resource=\"{res}\""),
            );
        }
        out.push_str("# HELP etcd_request_duration_seconds Etcd request latency in seconds for each operation.\n# TYPE etcd_request_duration_seconds histogram\n");
        for (op, h) in self.0.storage.lock().iter() {
            h.render(
                &mut out,
                "etcd_request_duration_seconds",
                &format!("operation=\"{op}\""),
            );
        }
        out.push_str("# HELP apiserver_registered_watchers Number of currently registered watchers for a given resource.\n# TYPE apiserver_registered_watchers gauge\n");
        for (res, n) in self.0.watchers.lock().iter() {
            let _ = writeln!(
                out,
                "apiserver_registered_watchers{{resource=\"{res}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_watch_events_total Number of events sent in watch clients.\n# TYPE apiserver_watch_events_total counter\n");
        for (res, n) in self.0.watch_events.lock().iter() {
            let _ = writeln!(
                out,
                "apiserver_watch_events_total{{resource=\"{res}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_terminated_watchers_total Number of watchers closed because they could not keep up.\n# TYPE apiserver_terminated_watchers_total counter\n");
        for (res, n) in self.0.watchers_closed_slow.lock().iter() {
            let _ = writeln!(
                out,
                "apiserver_terminated_watchers_total{{resource=\"{res}\"}} {n}"
            );
        }
        out
    }
}
