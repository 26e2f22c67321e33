//! The KV workloads, flag for flag after etcd's tool: `put`, `range`, `txn-put`, `txn-mixed`.

use clap::Args;
use strata_proto::etcdserverpb::{
    kv_client::KvClient, request_op, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use tonic::transport::Channel;

use crate::conn::{status_text, ConnArgs};
use crate::load::{drive, key_bytes, random_bytes, Op, Outcome, Rng};
use crate::progress::Progress;
use crate::Summary;

#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// Total number of put requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Key size of a put request.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of a put request.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum possible keys in the key space.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Use sequential keys instead of random ones.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Maximum puts per second (0 = no limit).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

#[derive(Debug, Clone, Args)]
pub struct RangeArgs {
    /// The key to read (or the start of the range).
    pub key: String,
    /// End of the range (exclusive); empty for one key.
    #[arg(default_value = "")]
    pub end: String,
    /// Total number of range requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Linearizable (l) or serializable (s).
    #[arg(long, default_value = "l", value_parser = ["l", "s"])]
    pub consistency: String,
    /// Maximum keys returned per request (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Only count keys.
    #[arg(long)]
    pub count_only: bool,
    /// Maximum ranges per second (0 = no limit).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

#[derive(Debug, Clone, Args)]
pub struct TxnPutArgs {
    /// Total number of transactions.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Key size of each put.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of each put.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum possible keys in the key space.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Puts per transaction.
    #[arg(long, default_value_t = 1)]
    pub txn_ops: usize,
    /// Maximum transactions per second (0 = no limit).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

#[derive(Debug, Clone, Args)]
pub struct TxnMixedArgs {
    /// Key the reads start at ("" reads from the first key).
    #[arg(default_value = "")]
    pub key: String,
    /// End of the read range; empty reads every key from `key` on.
    #[arg(long, default_value = "")]
    pub end_key: String,
    /// Total number of transactions.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Key size of each put.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of each put.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum possible keys in the key space.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Read/write ratio (1 = as many reads as writes).
    #[arg(long, default_value_t = 1.0)]
    pub rw_ratio: f64,
    /// Result limit of each read.
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    /// Linearizable (l) or serializable (s) reads.
    #[arg(long, default_value = "l", value_parser = ["l", "s"])]
    pub consistency: String,
    /// Maximum transactions per second (0 = no limit).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

/// One client's connection and the run's parameters.
struct KvOp<W> {
    kv: KvClient<Channel>,
    rng: Rng,
    work: std::sync::Arc<W>,
}

async fn kv_clients(conn: &ConnArgs) -> Result<Vec<KvClient<Channel>>, String> {
    let channels = conn.connect().await?;
    Ok((0..conn.clients.max(1))
        .map(|i| {
            KvClient::new(channels[i % channels.len()].clone()).max_decoding_message_size(64 << 20)
        })
        .collect())
}

fn ops<W>(clients: Vec<KvClient<Channel>>, work: W) -> Vec<KvOp<W>> {
    let work = std::sync::Arc::new(work);
    clients
        .into_iter()
        .enumerate()
        .map(|(i, kv)| KvOp {
            kv,
            rng: Rng::new(i as u64 + 1),
            work: work.clone(),
        })
        .collect()
}

struct PutWork {
    args: PutArgs,
    value: bytes::Bytes,
}

impl Op for KvOp<PutWork> {
    async fn call(&mut self, n: u64) -> Outcome {
        let a = &self.work.args;
        let space = a.key_space_size.max(1);
        let k = if a.sequential_keys {
            n % space
        } else {
            self.rng.below(space)
        };
        let req = PutRequest {
            key: key_bytes(k, a.key_size).into(),
            value: self.work.value.clone(),
            ..Default::default()
        };
        Outcome::of(
            self.kv
                .put(req)
                .await
                .map(|_| ())
                .map_err(|s| status_text(&s)),
        )
    }
}

pub async fn put(conn: &ConnArgs, args: PutArgs, progress: &Progress) -> Result<Summary, String> {
    let clients = kv_clients(conn).await?;
    let value = random_bytes(args.val_size, 7).into();
    let (total, rate) = (args.total, args.rate);
    let run = drive(
        ops(clients, PutWork { args, value }),
        total,
        rate,
        1,
        progress,
    )
    .await?;
    Ok(Summary::single("put", &run))
}

impl Op for KvOp<RangeArgs> {
    async fn call(&mut self, _n: u64) -> Outcome {
        let a = &*self.work;
        let req = RangeRequest {
            key: a.key.clone().into_bytes().into(),
            range_end: a.end.clone().into_bytes().into(),
            serializable: a.consistency == "s",
            limit: a.limit,
            count_only: a.count_only,
            ..Default::default()
        };
        Outcome::of(
            self.kv
                .range(req)
                .await
                .map(|_| ())
                .map_err(|s| status_text(&s)),
        )
    }
}

pub async fn range(
    conn: &ConnArgs,
    args: RangeArgs,
    progress: &Progress,
) -> Result<Summary, String> {
    let clients = kv_clients(conn).await?;
    let (total, rate) = (args.total, args.rate);
    let run = drive(ops(clients, args), total, rate, 1, progress).await?;
    Ok(Summary::single("range", &run))
}

struct TxnPutWork {
    args: TxnPutArgs,
    value: bytes::Bytes,
}

impl Op for KvOp<TxnPutWork> {
    async fn call(&mut self, _n: u64) -> Outcome {
        let a = &self.work.args;
        let space = a.key_space_size.max(1);
        // Distinct keys within one transaction: etcd refuses a txn that puts one key twice.
        let first = self.rng.below(space);
        let ops = (0..a.txn_ops.max(1) as u64)
            .map(|i| RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key_bytes((first + i) % space, a.key_size).into(),
                    value: self.work.value.clone(),
                    ..Default::default()
                })),
            })
            .collect();
        let req = TxnRequest {
            success: ops,
            ..Default::default()
        };
        Outcome::of(
            self.kv
                .txn(req)
                .await
                .map(|_| ())
                .map_err(|s| status_text(&s)),
        )
    }
}

pub async fn txn_put(
    conn: &ConnArgs,
    args: TxnPutArgs,
    progress: &Progress,
) -> Result<Summary, String> {
    if args.txn_ops.max(1) as u64 > args.key_space_size.max(1) {
        return Err(
            "--txn-ops cannot exceed --key-space-size (keys in one txn must differ)".into(),
        );
    }
    let clients = kv_clients(conn).await?;
    let value = random_bytes(args.val_size, 11).into();
    let (total, rate) = (args.total, args.rate);
    let run = drive(
        ops(clients, TxnPutWork { args, value }),
        total,
        rate,
        1,
        progress,
    )
    .await?;
    Ok(Summary::single("txn-put", &run))
}

struct TxnMixedWork {
    args: TxnMixedArgs,
    value: bytes::Bytes,
    /// The probability of a read: rw / (1 + rw), as etcd computes it.
    read_share: f64,
}

const READ: usize = 0;
const WRITE: usize = 1;

impl Op for KvOp<TxnMixedWork> {
    async fn call(&mut self, n: u64) -> Outcome {
        let w = &*self.work;
        let a = &w.args;
        let (class, op) = if self.rng.unit() < w.read_share {
            // etcd's WithPrefix on an empty key: every key ("\0" to "\0").
            let key = if a.key.is_empty() {
                vec![0]
            } else {
                a.key.clone().into_bytes()
            };
            let end = if a.end_key.is_empty() {
                vec![0]
            } else {
                a.end_key.clone().into_bytes()
            };
            let op = request_op::Request::RequestRange(RangeRequest {
                key: key.into(),
                range_end: end.into(),
                limit: a.limit,
                serializable: a.consistency == "s",
                ..Default::default()
            });
            (READ, op)
        } else {
            let op = request_op::Request::RequestPut(PutRequest {
                key: key_bytes(n % a.key_space_size.max(1), a.key_size).into(),
                value: w.value.clone(),
                ..Default::default()
            });
            (WRITE, op)
        };
        let req = TxnRequest {
            success: vec![RequestOp { request: Some(op) }],
            ..Default::default()
        };
        Outcome {
            class,
            result: self
                .kv
                .txn(req)
                .await
                .map(|_| ())
                .map_err(|s| status_text(&s)),
        }
    }
}

pub async fn txn_mixed(
    conn: &ConnArgs,
    args: TxnMixedArgs,
    progress: &Progress,
) -> Result<Summary, String> {
    if args.rw_ratio < 0.0 || !args.rw_ratio.is_finite() {
        return Err("--rw-ratio must be a non-negative number".into());
    }
    let clients = kv_clients(conn).await?;
    let value = random_bytes(args.val_size, 13).into();
    let read_share = args.rw_ratio / (1.0 + args.rw_ratio);
    let (total, rate) = (args.total, args.rate);
    let work = TxnMixedWork {
        args,
        value,
        read_share,
    };
    let run = drive(ops(clients, work), total, rate, 2, progress).await?;
    let mut all = run.recorders[READ].clone();
    all.merge(&run.recorders[WRITE]);
    let mut s = Summary::new("txn-mixed", all.report(run.elapsed));
    s.parts
        .insert("read".into(), run.recorders[READ].report(run.elapsed));
    s.parts
        .insert("write".into(), run.recorders[WRITE].report(run.elapsed));
    Ok(s)
}
