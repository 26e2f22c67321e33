//! The summary printed after a run, in the shape of etcd's benchmark tool (`pkg/report`): total
//! time, slowest, fastest, average, stddev, requests/sec, a ten-bucket response-time histogram,
//! latency percentiles and the distribution of errors, so a reader who knows etcd's output can
//! read ours line by line. The same numbers serialise to JSON (`--json`) for machines.
//!
//! Latencies are recorded in microseconds into an HDR histogram (3 significant digits), so a
//! run of millions of requests costs a few kilobytes, not one float per request as etcd's does;
//! percentiles are therefore within 0.1% of the exact value.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Latencies and errors of one kind of request, collected by one or more clients.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub hist: hdrhistogram::Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            hist: hdrhistogram::Histogram::new(3).expect("3 significant digits is valid"),
            errors: BTreeMap::new(),
        }
    }

    /// One successful request of latency `d`.
    pub fn ok(&mut self, d: Duration) {
        self.record_us(d.as_micros() as u64);
    }

    pub fn record_us(&mut self, us: u64) {
        // Values beyond the histogram's range auto-resize it; `record` fails only on overflow
        // of the count, which a benchmark cannot reach.
        let _ = self.hist.record(us.max(1));
    }

    /// One failed request; errors are counted by message, as etcd's report does.
    pub fn error(&mut self, msg: impl Into<String>) {
        let mut msg: String = msg.into();
        if msg.len() > 200 {
            let mut cut = 200;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        *self.errors.entry(msg).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms auto-resize, so adding cannot fail on range.
        let _ = self.hist.add(&other.hist);
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn report(&self, elapsed: Duration) -> Report {
        Report::from_recorder(self, elapsed)
    }
}

/// The summary of one measurement, in milliseconds (JSON field names are stable: scripts and
/// `strata bench compare` read them).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// etcd's response-time histogram: (bucket upper bound in ms, requests in the bucket).
    #[serde(default)]
    pub histogram: Vec<(f64, u64)>,
    /// Error message -> count.
    #[serde(default)]
    pub error_distribution: BTreeMap<String, u64>,
}

const PCTS: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];
const BUCKETS: usize = 10;
const BAR: char = '∎';

impl Report {
    pub fn new(h: &hdrhistogram::Histogram<u64>, errors: u64, elapsed: Duration) -> Self {
        let mut r = Recorder::new();
        let _ = r.hist.add(h);
        if errors > 0 {
            r.errors.insert("request failed".into(), errors);
        }
        Self::from_recorder(&r, elapsed)
    }

    pub fn from_recorder(rec: &Recorder, elapsed: Duration) -> Self {
        let h = &rec.hist;
        let ms = |us: u64| us as f64 / 1000.0;
        let empty = h.is_empty();
        Self {
            requests: h.len(),
            errors: rec.error_count(),
            total_secs: elapsed.as_secs_f64(),
            slowest_ms: if empty { 0.0 } else { ms(h.max()) },
            fastest_ms: if empty { 0.0 } else { ms(h.min()) },
            average_ms: if empty { 0.0 } else { h.mean() / 1000.0 },
            stddev_ms: if empty { 0.0 } else { h.stdev() / 1000.0 },
            requests_per_sec: h.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            percentiles: PCTS
                .iter()
                .map(|p| {
                    (
                        *p,
                        if empty {
                            0.0
                        } else {
                            ms(h.value_at_percentile(*p))
                        },
                    )
                })
                .collect(),
            histogram: if empty { Vec::new() } else { buckets(h) },
            error_distribution: rec.errors.clone(),
        }
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        self.percentiles
            .iter()
            .find(|(q, _)| *q == p)
            .map_or(0.0, |(_, v)| *v)
    }

    pub fn p99_ms(&self) -> f64 {
        self.percentile_ms(99.0)
    }

    /// etcd's text summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let secs = |ms: f64| ms / 1000.0;
        if self.requests > 0 {
            let _ = writeln!(s, "\nSummary:");
            let _ = writeln!(s, "  Total:\t{:.4} secs.", self.total_secs);
            let _ = writeln!(s, "  Slowest:\t{:.4} secs.", secs(self.slowest_ms));
            let _ = writeln!(s, "  Fastest:\t{:.4} secs.", secs(self.fastest_ms));
            let _ = writeln!(s, "  Average:\t{:.4} secs.", secs(self.average_ms));
            let _ = writeln!(s, "  Stddev:\t{:.4} secs.", secs(self.stddev_ms));
            let _ = writeln!(s, "  Requests/sec:\t{:.4}", self.requests_per_sec);
            let _ = writeln!(s, "\nResponse time histogram:");
            let max = self.histogram.iter().map(|(_, c)| *c).max().unwrap_or(0);
            for (bound, count) in &self.histogram {
                let bar = (count * 40).checked_div(max).unwrap_or(0) as usize;
                let bar: String = std::iter::repeat_n(BAR, bar).collect();
                let _ = writeln!(s, "  {:.4} [{count}]\t|{bar}", secs(*bound));
            }
            let _ = writeln!(s, "\nLatency distribution:");
            for (p, v) in &self.percentiles {
                if *v > 0.0 {
                    let _ = writeln!(s, "  {p}% in {:.4} secs.", secs(*v));
                }
            }
        }
        if !self.error_distribution.is_empty() {
            let _ = writeln!(s, "\nError distribution:");
            for (msg, n) in &self.error_distribution {
                let _ = writeln!(s, "  [{n}]\t{msg}");
            }
        }
        s
    }
}

/// etcd's histogram: eleven bounds from the fastest to the slowest request, evenly spaced, each
/// request counted in the first bucket whose bound is at or above it.
fn buckets(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, u64)> {
    let (lo, hi) = (h.min(), h.max());
    let step = (hi - lo) as f64 / BUCKETS as f64;
    let mut bounds: Vec<u64> = (0..BUCKETS)
        .map(|i| lo + (step * i as f64) as u64)
        .collect();
    bounds.push(hi);
    let mut counts = vec![0u64; bounds.len()];
    for v in h.iter_recorded() {
        // The HDR bucket's highest equivalent value, clamped to the recorded maximum.
        let value = h.highest_equivalent(v.value_iterated_to()).min(hi);
        let i = bounds.partition_point(|b| *b < value).min(bounds.len() - 1);
        counts[i] += v.count_at_value();
    }
    bounds
        .into_iter()
        .zip(counts)
        .map(|(b, c)| (b as f64 / 1000.0, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_every_request_once() {
        let mut r = Recorder::new();
        for us in [100u64, 200, 300, 400, 1000, 5000] {
            r.record_us(us);
        }
        r.error("Unavailable: no leader");
        r.error("Unavailable: no leader");
        let rep = r.report(Duration::from_secs(2));
        assert_eq!(rep.requests, 6);
        assert_eq!(rep.errors, 2);
        assert_eq!(rep.requests_per_sec, 3.0);
        assert_eq!(rep.histogram.iter().map(|(_, c)| c).sum::<u64>(), 6);
        assert_eq!(rep.histogram.len(), BUCKETS + 1);
        assert!((rep.fastest_ms - 0.1).abs() < 0.001);
        assert!((rep.slowest_ms - 5.0).abs() < 0.01);
        let text = rep.text();
        assert!(text.contains("Response time histogram:"), "{text}");
        assert!(text.contains("[2]\tUnavailable: no leader"), "{text}");
        let back: Report =
            serde_json::from_str(&serde_json::to_string(&rep).expect("json")).expect("parse back");
        assert_eq!(back.requests, 6);
    }

    #[test]
    fn empty_run_reports_only_errors() {
        let mut r = Recorder::new();
        r.error("boom");
        let rep = r.report(Duration::from_secs(1));
        assert_eq!(rep.requests, 0);
        assert!(!rep.text().contains("Summary"));
        assert!(rep.text().contains("boom"));
    }
}
