//! The summary printed after a run, in the shape of etcd's benchmark tool.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub requests: u64,
    pub errors: u64,
    pub total_secs: f64,
    pub slowest_ms: f64,
    pub fastest_ms: f64,
    pub average_ms: f64,
    pub stddev_ms: f64,
    pub requests_per_sec: f64,
    /// (percentile, milliseconds)
    pub percentiles: Vec<(f64, f64)>,
}

const PCTS: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

impl Report {
    pub fn new(h: &hdrhistogram::Histogram<u64>, errors: u64, elapsed: Duration) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            requests: h.len(),
            errors,
            total_secs: elapsed.as_secs_f64(),
            slowest_ms: ms(h.max()),
            fastest_ms: ms(h.min()),
            average_ms: h.mean() / 1000.0,
            stddev_ms: h.stdev() / 1000.0,
            requests_per_sec: crate::per_second(h.len(), elapsed),
            percentiles: PCTS
                .iter()
                .map(|p| (*p, ms(h.value_at_percentile(*p))))
                .collect(),
        }
    }

    pub fn p99_ms(&self) -> f64 {
        self.percentiles
            .iter()
            .find(|(p, _)| *p == 99.0)
            .map_or(0.0, |(_, v)| *v)
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\nSummary:");
        let _ = writeln!(s, "  Total:\t{:.4} secs.", self.total_secs);
        let _ = writeln!(s, "  Slowest:\t{:.4} secs.", self.slowest_ms / 1000.0);
        let _ = writeln!(s, "  Fastest:\t{:.4} secs.", self.fastest_ms / 1000.0);
        let _ = writeln!(s, "  Average:\t{:.4} secs.", self.average_ms / 1000.0);
        let _ = writeln!(s, "  Stddev:\t{:.4} secs.", self.stddev_ms / 1000.0);
        let _ = writeln!(s, "  Requests/sec:\t{:.4}", self.requests_per_sec);
        if self.errors > 0 {
            let _ = writeln!(s, "  Errors:\t{}", self.errors);
        }
        let _ = writeln!(s, "\nLatency distribution:");
        for (p, v) in &self.percentiles {
            let _ = writeln!(s, "  {p}% in {:.4} secs.", v / 1000.0);
        }
        s
    }
}
