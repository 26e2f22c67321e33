//! MVCC micro-benchmarks on the real RocksDB engine: put (one revision per transaction, a round of
//! 100 transactions per engine write, as the applier batches them) and range reads.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata_store::engine::{Engine, RocksEngine};
use strata_store::mvcc::{MvccStore, ReadView, WriteTxn};

fn open() -> (tempfile::TempDir, Arc<MvccStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).expect("open"));
    (dir, Arc::new(MvccStore::open(engine).expect("mvcc")))
}

fn write_round(store: &MvccStore, start: u64, n: u64, value: &Bytes) {
    let mut round = store.begin_round();
    for i in start..start + n {
        let mut txn = WriteTxn::new(&mut round);
        txn.put(
            Bytes::from(format!("key/{:08}", i % 10_000)),
            value.clone(),
            0,
        );
        txn.commit();
    }
    let (batch, rev, _events) = round.finish();
    store.engine().write(batch, false).expect("write");
    store.publish(rev);
}

fn bench_put(c: &mut Criterion) {
    let (_dir, store) = open();
    let value = Bytes::from(vec![b'v'; 256]);
    let mut g = c.benchmark_group("mvcc_put");
    g.throughput(Throughput::Elements(100));
    let mut n = 0;
    g.bench_function("round_of_100_puts_256B", |b| {
        b.iter(|| {
            write_round(&store, n, 100, &value);
            n += 100;
        })
    });
    g.finish();
}

fn bench_range(c: &mut Criterion) {
    let (_dir, store) = open();
    let value = Bytes::from(vec![b'v'; 256]);
    for start in (0..10_000).step_by(1000) {
        write_round(&store, start, 1000, &value);
    }
    let mut g = c.benchmark_group("mvcc_range");
    g.bench_function("one_key", |b| {
        b.iter_batched(
            || store.read_at(0).expect("view"),
            |view| {
                view.range_kvs(b"key/00004242", b"", 0, 0, false)
                    .expect("range")
            },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("100_keys", |b| {
        b.iter(|| {
            let view = store.read_at(0).expect("view");
            view.range_kvs(b"key/00001000", b"key/00001100", 0, 0, false)
                .expect("range")
        })
    });
    g.bench_function("count_10k_keys", |b| {
        b.iter(|| {
            let view = store.read_at(0).expect("view");
            view.range_kvs(b"key/", b"key0", 0, 0, true).expect("count")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_put, bench_range);
criterion_main!(benches);
