//! The request loop shared by the unary workloads (put, range, txn-put, txn-mixed,
//! lease-keepalive): `--clients` concurrent clients take request numbers from one counter until
//! `--total` are issued, each timing its own requests into its own [`Recorder`], merged at the
//! end. Clients are closed-loop (a client sends its next request when the previous one is
//! answered), as in etcd's tool; `--rate` caps the aggregate rate by scheduling request `n` no
//! earlier than `n / rate` seconds after the start, which needs no shared lock.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::progress::Progress;
use crate::report::Recorder;

/// One client's request: `call(n)` sends request number `n` and says whether it succeeded;
/// `class` picks which of the run's recorders it is counted in (txn-mixed: read or write).
pub trait Op: Send + 'static {
    fn call(&mut self, n: u64) -> impl Future<Output = Outcome> + Send;
}

/// What one request came to.
pub struct Outcome {
    /// Index of the recorder the request counts in (0 for single-kind workloads).
    pub class: usize,
    pub result: Result<(), String>,
}

impl Outcome {
    pub fn of(result: Result<(), String>) -> Self {
        Outcome { class: 0, result }
    }
}

/// The merged recorders (one per class) and the wall time of the whole run.
pub struct Run {
    pub recorders: Vec<Recorder>,
    pub elapsed: Duration,
}

/// Runs `total` requests over the given clients (one [`Op`] each), into `classes` recorders.
pub async fn drive<O: Op>(
    ops: Vec<O>,
    total: u64,
    rate: f64,
    classes: usize,
    progress: &Progress,
) -> Result<Run, String> {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tokio_start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut op in ops {
        let issued = issued.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let mut recs = vec![Recorder::new(); classes.max(1)];
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                if rate > 0.0 {
                    let due = tokio_start + Duration::from_secs_f64(n as f64 / rate);
                    tokio::time::sleep_until(due).await;
                }
                let t = Instant::now();
                let out = op.call(n).await;
                let rec = &mut recs[out.class.min(classes.max(1) - 1)];
                match out.result {
                    Ok(()) => rec.ok(t.elapsed()),
                    Err(e) => rec.error(e),
                }
                progress.inc(1);
            }
            recs
        });
    }
    let mut merged = vec![Recorder::new(); classes.max(1)];
    while let Some(r) = tasks.join_next().await {
        let recs = r.map_err(|e| format!("a client task failed: {e}"))?;
        for (m, r) in merged.iter_mut().zip(&recs) {
            m.merge(r);
        }
    }
    progress.finish();
    Ok(Run {
        recorders: merged,
        elapsed: started.elapsed(),
    })
}

/// xorshift64: a cheap per-client random stream (keys need to be spread, not unpredictable).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so neighbouring clients get unrelated streams (never zero).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A key of exactly `size` bytes: `n` in decimal, zero-padded on the left (truncated on the
/// left when `size` is too small to hold it).
pub fn key_bytes(n: u64, size: usize) -> Vec<u8> {
    let size = size.max(1);
    let digits = n.to_string().into_bytes();
    let mut k = vec![b'0'; size];
    let take = digits.len().min(size);
    k[size - take..].copy_from_slice(&digits[digits.len() - take..]);
    k
}

/// `size` random bytes (etcd's tool puts random values, so compression cannot flatter a server).
pub fn random_bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..size).map(|_| (rng.next_u64() >> 56) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_requested_size() {
        assert_eq!(key_bytes(42, 8), b"00000042");
        assert_eq!(key_bytes(123_456, 3), b"456");
        assert_eq!(key_bytes(7, 0), b"7");
    }

    #[test]
    fn rng_stays_in_range() {
        let mut r = Rng::new(3);
        for _ in 0..1000 {
            assert!(r.below(10) < 10);
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
