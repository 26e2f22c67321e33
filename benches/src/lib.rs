//! `strata bench`: a load tool that speaks the etcd v3 API, with subcommands and flags after
//! etcd's own `benchmark` tool, so it drives Strata and a real etcd alike and the numbers compare.
//!
//! Today: `put` and `range`. Each client owns a request loop over one of `--conns` shared gRPC
//! connections; latencies go into an HDR histogram; the summary matches etcd's benchmark output
//! (total, slowest, fastest, average, stddev, requests/sec, percentiles) or JSON with `--json`.

pub mod apiserver;
mod density;
mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use strata_proto::etcdserverpb::{kv_client::KvClient, PutRequest, RangeRequest};
use tonic::transport::{Channel, Endpoint};

pub use report::Report;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Comma-separated gRPC endpoints (host:port or http://host:port).
    #[arg(
        long,
        default_value = "127.0.0.1:2379",
        value_delimiter = ',',
        global = true
    )]
    pub endpoints: Vec<String>,
    /// Total number of gRPC connections.
    #[arg(long, default_value_t = 1, global = true)]
    pub conns: usize,
    /// Total number of concurrent clients.
    #[arg(long, default_value_t = 1, global = true)]
    pub clients: usize,
    /// Print the summary as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub workload: Workload,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Workload {
    /// Benchmark puts.
    Put {
        /// Total number of put requests.
        #[arg(long, default_value_t = 10_000)]
        total: u64,
        /// Key size of a put request.
        #[arg(long, default_value_t = 8)]
        key_size: usize,
        /// Value size of a put request.
        #[arg(long, default_value_t = 8)]
        val_size: usize,
        /// Maximum possible keys in the key space.
        #[arg(long, default_value_t = 1)]
        key_space_size: u64,
        /// Use sequential keys instead of random ones.
        #[arg(long)]
        sequential_keys: bool,
    },
    /// Benchmark ranges of one key or a key range.
    Range {
        /// The key to read (or the start of the range).
        key: String,
        /// End of the range (exclusive); empty for one key.
        #[arg(default_value = "")]
        end: String,
        /// Total number of range requests.
        #[arg(long, default_value_t = 10_000)]
        total: u64,
        /// Linearizable (l) or serializable (s).
        #[arg(long, default_value = "l")]
        consistency: String,
        /// Maximum keys returned per request (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: i64,
        /// Only count keys.
        #[arg(long)]
        count_only: bool,
    },
    /// Load on the Kubernetes API of `strata apiserver` (watch fan-out, list latency).
    Apiserver(apiserver::ApiserverArgs),
}

async fn connect(endpoints: &[String], conns: usize) -> Result<Vec<KvClient<Channel>>, String> {
    let mut out = Vec::new();
    for i in 0..conns.max(1) {
        let ep = &endpoints[i % endpoints.len()];
        let url = if ep.starts_with("http") {
            ep.clone()
        } else {
            format!("http://{ep}")
        };
        let ch = Endpoint::from_shared(url.clone())
            .map_err(|e| format!("bad endpoint {ep}: {e}"))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        out.push(KvClient::new(ch).max_decoding_message_size(64 << 20));
    }
    Ok(out)
}

/// A key of exactly `size` bytes: `n` in decimal, zero-padded on the left (truncated on the
/// left when `size` is too small to hold it).
fn key_bytes(n: u64, size: usize) -> Vec<u8> {
    let size = size.max(1);
    let digits = n.to_string().into_bytes();
    let mut k = vec![b'0'; size];
    let take = digits.len().min(size);
    k[size - take..].copy_from_slice(&digits[digits.len() - take..]);
    k
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    if let Workload::Apiserver(a) = args.workload {
        return apiserver::run(a, args.json).await;
    }
    let clients = connect(&args.endpoints, args.conns).await?;
    let total = match &args.workload {
        Workload::Put { total, .. } | Workload::Range { total, .. } => *total,
        Workload::Apiserver(_) => 0,
    };
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.clients.max(1) {
        let mut client = clients[c % clients.len()].clone();
        let issued = issued.clone();
        let workload = args.workload.clone();
        tasks.spawn(async move {
            let mut lat =
                hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid");
            let mut errors = 0u64;
            let mut rng_state =
                0x9e37_79b9_7f4a_7c15u64 ^ (c as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let t = Instant::now();
                let ok = match &workload {
                    Workload::Put {
                        key_size,
                        val_size,
                        key_space_size,
                        sequential_keys,
                        ..
                    } => {
                        rng_state ^= rng_state << 13;
                        rng_state ^= rng_state >> 7;
                        rng_state ^= rng_state << 17;
                        let k = if *sequential_keys {
                            n % key_space_size.max(&1)
                        } else {
                            rng_state % key_space_size.max(&1)
                        };
                        let req = PutRequest {
                            key: key_bytes(k, *key_size).into(),
                            value: vec![b'x'; *val_size].into(),
                            ..Default::default()
                        };
                        client.put(req).await.is_ok()
                    }
                    Workload::Range {
                        key,
                        end,
                        consistency,
                        limit,
                        count_only,
                        ..
                    } => {
                        let req = RangeRequest {
                            key: key.clone().into_bytes().into(),
                            range_end: end.clone().into_bytes().into(),
                            serializable: consistency == "s",
                            limit: *limit,
                            count_only: *count_only,
                            ..Default::default()
                        };
                        client.range(req).await.is_ok()
                    }
                    Workload::Apiserver(_) => false,
                };
                if ok {
                    let _ = lat.record(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        });
    }
    let mut lat = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid");
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        let (h, e) = r.map_err(|e| e.to_string())?;
        lat.add(h).map_err(|e| e.to_string())?;
        errors += e;
    }
    let report = Report::new(&lat, errors, started.elapsed());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report.text());
    }
    if errors > 0 && lat.is_empty() {
        return Err(format!("all {errors} requests failed"));
    }
    Ok(())
}

/// Time budget helper for callers that want a bounded run.
pub fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}
