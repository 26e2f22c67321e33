//! The apiserver's watch-cache fan-out: one pod update goes through a real in-process
//! `strata store` (one member, gRPC on loopback), the pods cache's single store watch decodes
//! and encodes it once, and N subscribers each take it from the broadcast channel and select
//! their view of it (`Filter::view`, what every HTTP watch does before writing). An iteration is
//! one update until every subscriber has its line, so `1_subscriber` is the write path's own
//! cost and the difference to N subscribers is the fan-out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_apiserver::cache::{Cache, Filter};
use strata_apiserver::metrics::Metrics;
use strata_apiserver::selectors::{FieldSelector, LabelSelector};
use strata_apiserver::storage::{Store, StoreConfig};
use strata_proto::etcdserverpb::{kv_client::KvClient, PutRequest};
use tokio::sync::Notify;

#[derive(Parser)]
struct Member {
    #[command(flatten)]
    cfg: strata_store::StoreConfig,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

const KEY: &str = "/registry/pods/bench/p";

fn pod_json(i: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "p", "namespace": "bench", "labels": { "app": "bench", "round": i.to_string() } },
        "spec": { "containers": [{ "name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } } }] }
    }))
    .expect("encode")
}

fn bench_watch_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("http://127.0.0.1:{}", free_port());
    let peer = format!("http://127.0.0.1:{}", free_port());
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 temp path");
    let member = Member::parse_from([
        "store",
        "--data-dir",
        data,
        "--listen-client-urls",
        &url,
        "--advertise-client-urls",
        &url,
        "--listen-peer-urls",
        &peer,
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster",
        &format!("default={peer}"),
    ]);
    let stop = Arc::new(Notify::new());
    let server = {
        let stop = stop.clone();
        rt.spawn(async move {
            strata_store::run(member.cfg, async move { stop.notified().await })
                .await
                .expect("store runs")
        })
    };
    let (cache, mut kv) = rt.block_on(async {
        let started = Instant::now();
        let kv = loop {
            if let Ok(mut kv) = KvClient::connect(url.clone()).await {
                let put = PutRequest {
                    key: KEY.into(),
                    value: pod_json(0).into(),
                    ..Default::default()
                };
                if kv.put(put).await.is_ok() {
                    break kv;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "store did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let cfg = StoreConfig {
            endpoints: vec![url.clone()],
            request_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        let store = Store::connect(&cfg, Metrics::default())
            .await
            .expect("connect");
        let pods = strata_apiserver::registry::lookup("", "v1", "pods").expect("pods");
        let cache = Cache::start(pods, store, 1024, Metrics::default());
        while !cache.ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (cache, kv)
    });
    let filter = Filter {
        prefix: "/registry/pods/bench/".into(),
        labels: LabelSelector::everything(),
        fields: FieldSelector::everything(),
    };
    let mut g = c.benchmark_group("watch_cache_fanout");
    g.sample_size(20);
    let mut round = 1u64;
    for subscribers in [1usize, 1_000, 10_000] {
        let delivered = Arc::new(AtomicU64::new(0));
        let arrived = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        rt.block_on(async {
            for _ in 0..subscribers {
                let sub = match cache.subscribe(Some(cache.revision()), &filter) {
                    Ok(s) => s,
                    Err(_) => panic!("subscribing to a ready cache"),
                };
                let (delivered, arrived, filter) =
                    (delivered.clone(), arrived.clone(), filter.clone());
                tasks.push(tokio::spawn(async move {
                    let mut rx = sub.rx;
                    let mut bytes = 0usize;
                    while let Ok(ev) = rx.recv().await {
                        if let Some(line) = filter.view(&ev) {
                            bytes += line.len();
                            delivered.fetch_add(1, Ordering::AcqRel);
                            arrived.notify_one();
                        }
                    }
                    bytes
                }));
            }
        });
        g.throughput(Throughput::Elements(subscribers as u64));
        g.bench_function(format!("{subscribers}_subscribers_one_update"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let target = delivered.load(Ordering::Acquire) + subscribers as u64;
                    round += 1;
                    kv.put(PutRequest {
                        key: KEY.into(),
                        value: pod_json(round).into(),
                        ..Default::default()
                    })
                    .await
                    .expect("put");
                    while delivered.load(Ordering::Acquire) < target {
                        arrived.notified().await;
                    }
                })
            })
        });
        for t in tasks {
            t.abort();
        }
    }
    g.finish();
    stop.notify_one();
    rt.block_on(server).expect("store stops");
}

criterion_group!(benches, bench_watch_cache);
criterion_main!(benches);
