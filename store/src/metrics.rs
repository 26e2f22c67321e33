//! Prometheus metrics, under etcd's metric names where etcd has one, so existing dashboards and
//! alerts work. Counters and gauges are plain atomics; histograms use etcd's buckets.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A cumulative histogram over fixed upper bounds, in seconds.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    total: AtomicU64,
}

/// etcd's buckets for disk latencies: 1 ms doubling to about 8 s.
pub const DISK_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cum += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// Every metric the store exports that is not read from another component at scrape time.
pub struct Metrics {
    pub wal_fsync: Histogram,
    pub backend_commit: Histogram,
    pub proposals_committed: AtomicU64,
    pub proposals_applied: AtomicU64,
    pub proposals_failed: AtomicU64,
    pub leader_changes: AtomicU64,
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
    pub ranges: AtomicU64,
    pub txns: AtomicU64,
    pub leases_granted: AtomicU64,
    pub leases_revoked: AtomicU64,
    pub watch_streams: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            wal_fsync: Histogram::new(DISK_BUCKETS),
            backend_commit: Histogram::new(DISK_BUCKETS),
            proposals_committed: AtomicU64::new(0),
            proposals_applied: AtomicU64::new(0),
            proposals_failed: AtomicU64::new(0),
            leader_changes: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            ranges: AtomicU64::new(0),
            txns: AtomicU64::new(0),
            leases_granted: AtomicU64::new(0),
            leases_revoked: AtomicU64::new(0),
            watch_streams: AtomicU64::new(0),
        }
    }
}

/// Writes one counter or gauge sample with its HELP and TYPE lines.
pub fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

impl Metrics {
    /// Renders the metrics owned here; the member appends the ones it reads at scrape time.
    pub fn render(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.wal_fsync.render(
            out,
            "etcd_disk_wal_fsync_duration_seconds",
            "The latency distributions of fsync called by WAL.",
        );
        self.backend_commit.render(
            out,
            "etcd_disk_backend_commit_duration_seconds",
            "The latency distributions of commit called by backend.",
        );
        sample(
            out,
            "etcd_server_proposals_committed_total",
            "gauge",
            "The total number of consensus proposals committed.",
            get(&self.proposals_committed),
        );
        sample(
            out,
            "etcd_server_proposals_applied_total",
            "gauge",
            "The total number of consensus proposals applied.",
            get(&self.proposals_applied),
        );
        sample(
            out,
            "etcd_server_proposals_failed_total",
            "counter",
            "The total number of failed proposals seen.",
            get(&self.proposals_failed),
        );
        sample(
            out,
            "etcd_server_leader_changes_seen_total",
            "counter",
            "The number of leader changes seen.",
            get(&self.leader_changes),
        );
        sample(
            out,
            "etcd_mvcc_put_total",
            "counter",
            "Total number of puts seen by this member.",
            get(&self.puts),
        );
        sample(
            out,
            "etcd_mvcc_delete_total",
            "counter",
            "Total number of deletes seen by this member.",
            get(&self.deletes),
        );
        sample(
            out,
            "etcd_mvcc_range_total",
            "counter",
            "Total number of ranges seen by this member.",
            get(&self.ranges),
        );
        sample(
            out,
            "etcd_mvcc_txn_total",
            "counter",
            "Total number of txns seen by this member.",
            get(&self.txns),
        );
        sample(
            out,
            "etcd_debugging_lease_granted_total",
            "counter",
            "The total number of granted leases.",
            get(&self.leases_granted),
        );
        sample(
            out,
            "etcd_debugging_lease_revoked_total",
            "counter",
            "The total number of revoked leases.",
            get(&self.leases_revoked),
        );
        sample(
            out,
            "etcd_debugging_mvcc_watch_stream_total",
            "gauge",
            "Total number of watch streams.",
            get(&self.watch_streams),
        );
    }
}
