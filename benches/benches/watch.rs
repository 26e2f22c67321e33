//! Watch fan-out: one revision published to N synced watchers on one prefix, spread over 100
//! streams, each iteration draining every queue.

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
    let _guard = rt.enter();
    let dir = tempfile::tempdir().expect("tempdir");
    let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("open"));
    let store = Arc::new(MvccStore::open(engine).expect("mvcc"));
    let mut g = c.benchmark_group("watch_fanout");
    for watchers in [1_000usize, 10_000] {
        let hub = WatchHub::new(store.clone());
        let mut streams = Vec::new();
        for _ in 0..100 {
            let (stream, rx) = hub.open_stream();
            for _ in 0..watchers / 100 {
                let spec = WatchSpec {
                    key: Bytes::from_static(b"pods/"),
                    range_end: Bytes::from_static(b"pods0"),
                    ..Default::default()
                };
                stream.create(0, spec).expect("create");
            }
            streams.push((stream, rx));
        }
        g.throughput(Throughput::Elements(watchers as u64));
        // One revision written, published to every watcher, and every queue drained, so all
        // watchers stay synced and each iteration delivers exactly `watchers` events.
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
                let mut delivered = 0;
                for (_, rx) in streams.iter_mut() {
                    while rx.try_recv().is_ok() {
                        delivered += 1;
                    }
                }
                assert_eq!(delivered, watchers, "every watcher got the event");
            })
        });
        assert_eq!(hub.counts().1, 0, "no watcher fell behind");
    }
    g.finish();
}

criterion_group!(benches, bench_fanout);
criterion_main!(benches);
