//! The in-memory key index (`KeyIndex`) alone, no engine: recording puts, the visibility lookup
//! every read makes, ranges over 100 keys, counting 100k keys, and compaction. It is the part of
//! every request that holds the index lock, so its cost bounds read and write concurrency.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata_store::mvcc::{KeyIndex, Revision};

const KEYS: u64 = 100_000;

fn key(i: u64) -> Bytes {
    Bytes::from(format!("/registry/pods/default/pod-{i:08}"))
}

/// An index of `KEYS` keys with `versions` puts each, revisions in write order.
fn filled(versions: i64) -> (KeyIndex, i64) {
    let mut ix = KeyIndex::new();
    let mut rev = 1;
    for v in 1..=versions {
        for i in 0..KEYS {
            rev += 1;
            ix.put(&key(i), Revision::new(rev, 0), 2 + i as i64, v, 0);
        }
    }
    (ix, rev)
}

fn bench_key_index(c: &mut Criterion) {
    let (mut ix, mut rev) = filled(4);
    let keys: Vec<Bytes> = (0..KEYS).map(key).collect();
    let mut g = c.benchmark_group("key_index");
    let mut n = 0u64;
    g.bench_function("put_existing_key_100k_keys", |b| {
        b.iter(|| {
            rev += 1;
            n = (n + 7919) % KEYS;
            ix.put(&keys[n as usize], Revision::new(rev, 0), 2, 5, 0);
        })
    });
    g.bench_function("visible_at_latest", |b| {
        b.iter(|| {
            n = (n + 7919) % KEYS;
            ix.get(&keys[n as usize])
                .and_then(|h| h.visible_at(i64::MAX))
        })
    });
    let mid = rev / 2;
    g.bench_function("visible_at_historical", |b| {
        b.iter(|| {
            n = (n + 7919) % KEYS;
            ix.get(&keys[n as usize]).and_then(|h| h.visible_at(mid))
        })
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("range_100_keys", |b| {
        b.iter(|| {
            n = (n + 7919) % (KEYS - 100);
            ix.range(&keys[n as usize], &keys[n as usize + 100], 0i64.max(rev), 0)
        })
    });
    g.throughput(Throughput::Elements(KEYS));
    g.bench_function("count_100k_keys", |b| {
        b.iter(|| ix.range(b"/registry/pods/", b"/registry/pods0", rev, 1).1)
    });
    g.finish();

    let mut g = c.benchmark_group("key_index_compact");
    g.sample_size(10);
    g.throughput(Throughput::Elements(KEYS));
    g.bench_function("compact_100k_keys_4_versions", |b| {
        b.iter_batched(
            || filled(4),
            |(mut ix, rev)| ix.compact(rev - 1).len(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_key_index);
criterion_main!(benches);
