//! The watch workloads: `watch` (many watchers on a few streams, puts at a fixed rate),
//! `watch-latency` (one watcher per client on one key) and `watch-get` (serializable gets while
//! many unsynced watchers catch up), after etcd's tool.
//!
//! Delivery latency is measured per event and per watcher: every put's value starts with the
//! wall-clock time it was sent (8 bytes, big-endian nanoseconds since the epoch), and each
//! stream reader subtracts it from the time it decoded the event. So the figure covers the
//! write's commit, the server's fan-out and the client's decoding, and it needs no coordination
//! between the writer and the readers. Delivered events per second count every event every
//! watcher received, from the first put sent to the last event received.

mod streams;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use strata_proto::etcdserverpb::{kv_client::KvClient, PutRequest, RangeRequest};
use tonic::transport::Channel;

use crate::conn::{status_text, ConnArgs};
use crate::load::{drive, key_bytes, random_bytes, Op, Outcome};
use crate::progress::Progress;
use crate::report::Recorder;
use crate::Summary;

pub use streams::{Target, WatchSet};

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Watch streams (each a gRPC bidirectional stream), spread over --conns connections.
    #[arg(long, default_value_t = 10)]
    pub streams: usize,
    /// Watchers created on each stream.
    #[arg(long, default_value_t = 100)]
    pub watch_per_stream: usize,
    /// Keys watched one by one (watcher i watches key i mod N); 0 = every watcher watches the
    /// whole --key-prefix.
    #[arg(long, default_value_t = 0)]
    pub watched_key_total: u64,
    /// The prefix every key written (and watched) starts with.
    #[arg(long, default_value = "watch-bench/")]
    pub key_prefix: String,
    /// Puts per second (0 = as fast as --clients closed-loop writers go).
    #[arg(long, default_value_t = 100.0)]
    pub put_rate: f64,
    /// Total puts.
    #[arg(long, default_value_t = 1000)]
    pub put_total: u64,
    /// Key size (after the prefix).
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Value size (at least 8: the send time travels in the value).
    #[arg(long, default_value_t = 32)]
    pub val_size: usize,
    /// Seconds to wait, after the last put, for every event to be delivered.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct WatchLatencyArgs {
    /// Total puts (each delivered to every watcher).
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Puts per second.
    #[arg(long, default_value_t = 100.0)]
    pub put_rate: f64,
    /// Key size of the watched key.
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Value size (at least 8).
    #[arg(long, default_value_t = 32)]
    pub val_size: usize,
}

#[derive(Debug, Clone, Args)]
pub struct WatchGetArgs {
    /// Total watchers (all start in history, so they are unsynced).
    #[arg(long, default_value_t = 10_000)]
    pub watchers: usize,
    /// Watch streams they are spread over.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Events each watcher must receive (puts made before the watchers start).
    #[arg(long, default_value_t = 8)]
    pub events: u64,
}

/// The value of a put: its send time, then random filler up to `size`.
fn stamped_value(size: usize, filler: &[u8]) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut v = Vec::with_capacity(size.max(8));
    v.extend_from_slice(&now.to_be_bytes());
    v.extend_from_slice(&filler[..size.saturating_sub(8).min(filler.len())]);
    v.into()
}

/// The writer of the watch workloads: puts stamped values round-robin over `keys`.
struct StampedPut {
    kv: KvClient<Channel>,
    keys: Arc<Vec<Bytes>>,
    val_size: usize,
    filler: Arc<Vec<u8>>,
}

impl Op for StampedPut {
    async fn call(&mut self, n: u64) -> Outcome {
        let req = PutRequest {
            key: self.keys[(n % self.keys.len() as u64) as usize].clone(),
            value: stamped_value(self.val_size, &self.filler),
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

/// Keys `prefix` + `key_bytes(i, size)` for i in 0..n.
fn keys(prefix: &str, n: u64, size: usize) -> Vec<Bytes> {
    (0..n.max(1))
        .map(|i| {
            let mut k = prefix.as_bytes().to_vec();
            k.extend_from_slice(&key_bytes(i, size));
            Bytes::from(k)
        })
        .collect()
}

/// A whole `watch` run with `writers` closed-loop writers; `on_ready` is called once every watcher is created and before the
/// first put (`compare` samples the servers' memory there).
pub async fn watch_with(
    conn: &ConnArgs,
    args: WatchArgs,
    writers: usize,
    progress: &Progress,
    on_ready: impl FnOnce(),
) -> Result<Summary, String> {
    if args.val_size < 8 {
        return Err("--val-size must be at least 8 (the send time travels in the value)".into());
    }
    let channels = conn.connect().await?;
    let watchers = args.streams.max(1) * args.watch_per_stream.max(1);
    let written = if args.watched_key_total == 0 {
        // Spread the writes over as many keys as there are puts, up to 1000, all under the prefix.
        keys(
            &args.key_prefix,
            args.put_total.clamp(1, 1000),
            args.key_size,
        )
    } else {
        keys(&args.key_prefix, args.watched_key_total, args.key_size)
    };
    let targets: Vec<Target> = (0..watchers)
        .map(|i| {
            if args.watched_key_total == 0 {
                Target::prefix(args.key_prefix.as_bytes())
            } else {
                Target::key(written[i % written.len()].clone())
            }
        })
        .collect();
    // What each watcher should receive: every put in prefix mode, else the puts to its key.
    let expected: Vec<u64> = (0..watchers)
        .map(|i| {
            if args.watched_key_total == 0 {
                args.put_total
            } else {
                let k = (i % written.len()) as u64;
                let n = written.len() as u64;
                args.put_total / n + u64::from(k < args.put_total % n)
            }
        })
        .collect();
    let set = WatchSet::create(&channels, args.streams.max(1), targets, 0).await?;
    on_ready();
    let filler = Arc::new(random_bytes(args.val_size, 17));
    let written = Arc::new(written);
    // The writers get connections of their own, as etcd's tool gives its put client, so
    // their requests never queue behind event frames on a watch stream's connection.
    let writer_conns = conn.channels(writers.clamp(1, 10)).await?;
    let writers: Vec<StampedPut> = (0..writers.max(1))
        .map(|i| StampedPut {
            kv: KvClient::new(writer_conns[i % writer_conns.len()].clone()),
            keys: written.clone(),
            val_size: args.val_size,
            filler: filler.clone(),
        })
        .collect();
    let events_expected: u64 = expected.iter().sum();
    let put_progress = Progress::hidden();
    let delivery = progress.clone();
    set.count_into(delivery);
    let started = Instant::now();
    let puts = drive(writers, args.put_total, args.put_rate, 1, &put_progress).await?;
    let done = set
        .wait_delivered(events_expected, Duration::from_secs(args.timeout))
        .await;
    progress.finish();
    let result = set.close().await?;
    let window = result
        .last_event
        .map_or(started.elapsed(), |t| t.saturating_duration_since(started));
    let missing = result
        .counts
        .iter()
        .zip(&expected)
        .filter(|(got, want)| got < want)
        .count();
    let mut s = Summary::new("watch", result.delivery.report(window));
    s.parts
        .insert("create".into(), result.create.report(result.create_elapsed));
    s.parts
        .insert("put".into(), puts.recorders[0].report(puts.elapsed));
    s.extra.insert("watchers".into(), watchers as f64);
    s.extra
        .insert("events_expected".into(), events_expected as f64);
    s.extra
        .insert("events_delivered".into(), result.delivered as f64);
    s.extra.insert(
        "events_per_sec".into(),
        result.delivered as f64 / window.as_secs_f64().max(1e-9),
    );
    s.extra
        .insert("watchers_missing_events".into(), missing as f64);
    s.extra
        .insert("timed_out".into(), f64::from(u8::from(!done)));
    Ok(s)
}

pub async fn watch(
    conn: &ConnArgs,
    args: WatchArgs,
    progress: &Progress,
) -> Result<Summary, String> {
    watch_with(conn, args, conn.clients, progress, || {}).await
}

/// `watch-latency`: one watcher per client, each on its own stream, all on one key.
pub async fn watch_latency(
    conn: &ConnArgs,
    args: WatchLatencyArgs,
    progress: &Progress,
) -> Result<Summary, String> {
    let w = WatchArgs {
        streams: conn.clients.max(1),
        watch_per_stream: 1,
        watched_key_total: 1,
        key_prefix: "watch-latency/".into(),
        put_rate: args.put_rate,
        put_total: args.total,
        key_size: args.key_size,
        val_size: args.val_size,
        timeout: 60,
    };
    // One writer, as etcd's watch-latency has.
    let mut s = watch_with(conn, w, 1, progress, || {}).await?;
    s.workload = "watch-latency".into();
    Ok(s)
}

/// `watch-get`: serializable gets timed while `--watchers` watchers replay `--events` events
/// from history.
pub async fn watch_get(
    conn: &ConnArgs,
    args: WatchGetArgs,
    progress: &Progress,
) -> Result<Summary, String> {
    let channels = conn.connect().await?;
    let mut kv = KvClient::new(channels[0].clone());
    let key = Bytes::from_static(b"watchkey");
    let mut first_rev = 0;
    for i in 0..args.events.max(1) {
        let r = kv
            .put(PutRequest {
                key: key.clone(),
                value: Bytes::from(i.to_string()),
                ..Default::default()
            })
            .await
            .map_err(|s| format!("setting up watchkey: {}", status_text(&s)))?;
        if i == 0 {
            first_rev = r.into_inner().header.map_or(0, |h| h.revision);
        }
    }
    let targets = (0..args.watchers.max(1))
        .map(|_| Target::key(key.clone()))
        .collect();
    let expected = args.events.max(1) * args.watchers.max(1) as u64;
    let mut get = Recorder::new();
    let started = Instant::now();
    let stop = Arc::new(tokio::sync::Notify::new());
    // The getter has a connection of its own, as in etcd's tool.
    let get_conn = conn.channels(1).await?.remove(0);
    let getter = {
        let stop = stop.clone();
        let mut kv = KvClient::new(get_conn);
        tokio::spawn(async move {
            let mut rec = Recorder::new();
            let stopped = stop.notified();
            tokio::pin!(stopped);
            loop {
                let t = Instant::now();
                let req = RangeRequest {
                    key: Bytes::from_static(b"abc"),
                    serializable: true,
                    ..Default::default()
                };
                tokio::select! {
                    r = kv.range(req) => match r {
                        Ok(_) => rec.ok(t.elapsed()),
                        Err(s) => rec.error(status_text(&s)),
                    },
                    _ = &mut stopped => break,
                }
            }
            rec
        })
    };
    let set = WatchSet::create(&channels, args.streams.max(1), targets, first_rev).await?;
    set.count_into(progress.clone());
    let done = set.wait_delivered(expected, Duration::from_secs(120)).await;
    stop.notify_one();
    progress.finish();
    get.merge(&getter.await.map_err(|e| e.to_string())?);
    let elapsed = started.elapsed();
    let result = set.close().await?;
    let mut s = Summary::new("watch-get", get.report(elapsed));
    s.parts
        .insert("create".into(), result.create.report(result.create_elapsed));
    s.extra.insert("watchers".into(), args.watchers as f64);
    s.extra.insert("events_expected".into(), expected as f64);
    s.extra
        .insert("events_delivered".into(), result.delivered as f64);
    s.extra
        .insert("timed_out".into(), f64::from(u8::from(!done)));
    Ok(s)
}
