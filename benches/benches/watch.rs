//! Watch fan-out: one revision published to N synced watchers on one prefix, spread over 100
//! streams, with their queues drained concurrently (as the gRPC senders would).

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_store::engine::{Engine, RocksEngine};
use strata_store::mvcc::{MvccStore, WriteTxn};
use strata_store::watch::{WatchHub, WatchSpec};

fn bench_fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("open"));
    let store = Arc::new(MvccStore::open(engine).expect("mvcc"));
    let mut g = c.benchmark_group("watch_fanout");
    for watchers in [1_000usize, 10_000] {
        let hub = rt.block_on(async { WatchHub::new(store.clone()) });
        let mut streams = Vec::new();
        let _guard = rt.enter();
        for s in 0..100 {
            let (stream, mut rx) = hub.open_stream();
            for _ in 0..watchers / 100 {
                let spec = WatchSpec {
                    key: Bytes::from_static(b"pods/"),
                    range_end: Bytes::from_static(b"pods0"),
                    ..Default::default()
                };
                stream.create(0, spec).expect("create");
            }
            rt.spawn(async move { while rx.recv().await.is_some() {} });
            streams.push((s, stream));
        }
        g.throughput(Throughput::Elements(watchers as u64));
        g.bench_function(format!("{watchers}_watchers_one_event"), |b| {
            b.iter(|| {
                let mut round = store.begin_round();
                let mut txn = WriteTxn::new(&mut round);
                txn.put(
                    Bytes::from_static(b"pods/default/p"),
                    Bytes::from(vec![b'v'; 256]),
                    0,
                );
                txn.commit();
                let (batch, rev, events) = round.finish();
                store.engine().write(batch, false).expect("write");
                store.publish(rev);
                hub.publish(&events, rev);
            })
        });
        drop(streams);
    }
    g.finish();
}

criterion_group!(benches, bench_fanout);
criterion_main!(benches);
