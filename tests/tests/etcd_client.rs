//! The store through the `etcd-client` crate, against the real `strata store` binary:
//! MVCC reads and writes, transactions, compaction, watches, leases and etcd's errors.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, PutOptions, SortOrder,
    SortTarget, Txn, TxnOp, WatchOptions,
};
use strata_tests::StoreProc;

async fn client(p: &StoreProc) -> Client {
    Client::connect([p.endpoint()], None)
        .await
        .expect("connect")
}

/// Puts `key = value` and returns the revision of the write.
async fn put_rev(c: &mut Client, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> i64 {
    let resp = c.put(key, value, None).await.expect("put");
    resp.header().expect("header").revision()
}

fn code_and_message(e: etcd_client::Error) -> (tonic::Code, String) {
    match e {
        etcd_client::Error::GRpcStatus(s) => (s.code(), s.message().to_string()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_semantics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &[]);
    let mut c = client(&p).await;

    let r1 = put_rev(&mut c, "a", "1").await;
    let r2 = c
        .put("a", "2", Some(PutOptions::new().with_prev_key()))
        .await
        .expect("put");
    assert_eq!(r2.prev_key().expect("prev").value_str().expect("utf8"), "1");
    assert_eq!(
        r2.header().expect("header").revision(),
        r1 + 1,
        "every write is one revision"
    );
    for k in ["b", "c", "d"] {
        c.put(k, k, None).await.expect("put");
    }

    let got = c.get("a", None).await.expect("get");
    let kv = &got.kvs()[0];
    assert_eq!(
        (
            kv.value(),
            kv.version(),
            kv.create_revision(),
            kv.mod_revision()
        ),
        (&b"2"[..], 2, r1, r1 + 1)
    );
    let old = c
        .get("a", Some(GetOptions::new().with_revision(r1)))
        .await
        .expect("historical get");
    assert_eq!(old.kvs()[0].value(), b"1");

    let all = c
        .get("", Some(GetOptions::new().with_all_keys().with_limit(2)))
        .await
        .expect("limit");
    assert_eq!(all.kvs().len(), 2);
    assert!(all.more());
    assert_eq!(all.count(), 4);
    let counted = c
        .get(
            "a",
            Some(GetOptions::new().with_range("c").with_count_only()),
        )
        .await
        .expect("count");
    assert_eq!((counted.count(), counted.kvs().len()), (2, 0));
    let keys = c
        .get("a", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await
        .expect("keys only");
    assert!(keys.kvs()[0].value().is_empty());
    let desc = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_sort(SortTarget::Key, SortOrder::Descend),
            ),
        )
        .await
        .expect("sorted");
    assert_eq!(desc.kvs()[0].key(), b"d");
    let by_mod = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_sort(SortTarget::Mod, SortOrder::Ascend)
                    .with_min_mod_revision(r1 + 2),
            ),
        )
        .await
        .expect("filtered");
    assert_eq!(
        by_mod.kvs().iter().map(|kv| kv.key()).collect::<Vec<_>>(),
        vec![&b"b"[..], b"c", b"d"]
    );

    let del = c
        .delete(
            "b",
            Some(DeleteOptions::new().with_range("d").with_prev_key()),
        )
        .await
        .expect("delete");
    assert_eq!(del.deleted(), 2);
    assert_eq!(del.prev_kvs().len(), 2);

    // Transactions: compares, both branches, nested, atomic at one revision.
    let before = c
        .get("a", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();
    let txn = Txn::new()
        .when([
            Compare::value("a", CompareOp::Equal, "2"),
            Compare::version("zz", CompareOp::Equal, 0),
        ])
        .and_then([
            TxnOp::put("x", "1", None),
            TxnOp::put("y", "1", None),
            TxnOp::get("x", None),
        ])
        .or_else([TxnOp::put("failed", "1", None)]);
    let t = c.txn(txn).await.expect("txn");
    assert!(t.succeeded());
    assert_eq!(
        t.header().expect("h").revision(),
        before + 1,
        "one revision for the whole txn"
    );
    let x = c.get("x", None).await.expect("get");
    assert_eq!(
        x.kvs()[0].mod_revision(),
        c.get("y", None).await.expect("get").kvs()[0].mod_revision()
    );
    let t = c
        .txn(
            Txn::new()
                .when([Compare::mod_revision("x", CompareOp::Less, 1)])
                .or_else([TxnOp::txn(
                    Txn::new()
                        .when([Compare::create_revision("x", CompareOp::Greater, 0)])
                        .and_then([TxnOp::delete("y", None)]),
                )]),
        )
        .await
        .expect("nested txn");
    assert!(!t.succeeded());
    assert!(c.get("y", None).await.expect("get").kvs().is_empty());

    // Bad input answers with etcd's codes and messages.
    let (code, msg) = code_and_message(c.put("", "v", None).await.expect_err("empty key"));
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: key is not provided"
        )
    );
    let dup = Txn::new().and_then([TxnOp::put("k", "1", None), TxnOp::put("k", "2", None)]);
    let (_, msg) = code_and_message(c.txn(dup).await.expect_err("duplicate"));
    assert_eq!(msg, "etcdserver: duplicate key given in txn request");
    let many: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("k{i}"), "v", None))
        .collect();
    let (_, msg) = code_and_message(
        c.txn(Txn::new().and_then(many))
            .await
            .expect_err("too many"),
    );
    assert_eq!(msg, "etcdserver: too many operations in txn request");
    let (code, msg) = code_and_message(
        c.put("k", "v", Some(PutOptions::new().with_lease(12345)))
            .await
            .expect_err("lease"),
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::NotFound,
            "etcdserver: requested lease not found"
        )
    );
    let huge = vec![b'x'; 3 << 20];
    assert!(
        c.put("big", huge, None).await.is_err(),
        "oversized requests are refused"
    );
    let (_, msg) = code_and_message(
        c.put("nokey", "", Some(PutOptions::new().with_ignore_value()))
            .await
            .expect_err("ignore"),
    );
    assert_eq!(msg, "etcdserver: key not found");

    // Compaction: old revisions are gone, with etcd's errors on both sides.
    let cur = c
        .get("a", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();
    c.compact(cur - 1, None).await.expect("compact");
    let (code, msg) = code_and_message(
        c.get("a", Some(GetOptions::new().with_revision(r1)))
            .await
            .expect_err("compacted"),
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted"
        )
    );
    let (_, msg) = code_and_message(
        c.get("a", Some(GetOptions::new().with_revision(cur + 100)))
            .await
            .expect_err("future"),
    );
    assert_eq!(
        msg,
        "etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!(
        c.get("a", None).await.expect("latest survives").kvs()[0].value(),
        b"2"
    );
    let status = c.status().await.expect("status");
    assert!(
        status.version().starts_with("3.5."),
        "Kubernetes checks the version: {}",
        status.version()
    );
    assert_ne!(status.leader(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_history_live_filters_and_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &[]);
    let mut c = client(&p).await;
    let first = put_rev(&mut c, "w/a", "1").await;
    c.put("w/b", "1", None).await.expect("put");
    c.delete("w/a", None).await.expect("delete");

    // Replay from history, then live, with prev_kv.
    let (_w, mut s) = c
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(first)
                    .with_prev_key(),
            ),
        )
        .await
        .expect("watch");
    c.put("w/c", "live", None).await.expect("put");
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let resp = tokio::time::timeout(Duration::from_secs(30), s.message())
            .await
            .expect("in time")
            .expect("ok");
        let Some(resp) = resp else {
            panic!("stream ended")
        };
        for e in resp.events() {
            let kv = e.kv().expect("kv");
            seen.push((
                e.event_type(),
                kv.key_str().expect("utf8").to_string(),
                kv.mod_revision(),
            ));
            if e.event_type() == EventType::Delete {
                assert_eq!(e.prev_kv().expect("prev_kv on delete").value(), b"1");
            }
        }
    }
    let revs: Vec<i64> = seen.iter().map(|s| s.2).collect();
    assert_eq!(
        revs,
        vec![first, first + 1, first + 2, first + 3],
        "ordered, unique, nothing lost"
    );
    assert_eq!(seen[2].0, EventType::Delete);

    // NOPUT filter: only deletes arrive.
    let (_w2, mut s2) = c
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_filters([etcd_client::WatchFilterType::NoPut]),
            ),
        )
        .await
        .expect("watch");
    c.put("w/d", "1", None).await.expect("put");
    c.delete("w/d", None).await.expect("delete");
    let resp = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let r = s2.message().await.expect("ok").expect("open");
            if !r.events().is_empty() {
                return r;
            }
        }
    })
    .await
    .expect("in time");
    assert!(resp
        .events()
        .iter()
        .all(|e| e.event_type() == EventType::Delete));

    // A watch from a compacted revision is cancelled with the compact revision.
    let cur = put_rev(&mut c, "w/e", "1").await;
    c.compact(cur, None).await.expect("compact");
    let (_w3, mut s3) = c
        .watch(
            "w/",
            Some(WatchOptions::new().with_prefix().with_start_revision(first)),
        )
        .await
        .expect("watch");
    let resp = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match s3.message().await {
                Ok(Some(r)) if r.canceled() => return Ok(r),
                Ok(Some(_)) => continue,
                other => return Err(format!("{other:?}")),
            }
        }
    })
    .await
    .expect("in time");
    match resp {
        Ok(r) => assert_eq!(
            r.compact_revision(),
            cur,
            "cancelled with the compact revision"
        ),
        // The client turns a compacted cancel into an error carrying etcd's message.
        Err(e) => assert!(e.contains("compacted"), "unexpected watch outcome: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_catches_up_without_losing_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &[]);
    let mut c = client(&p).await;
    let (_w, mut s) = c
        .watch("slow/", Some(WatchOptions::new().with_prefix()))
        .await
        .expect("watch");
    // Write far more than a stream queue holds while the watcher does not read.
    let n = 3000;
    let mut writers = Vec::new();
    for w in 0..10 {
        let mut c = c.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..n / 10 {
                c.put(format!("slow/{w}/{i}"), "v", None)
                    .await
                    .expect("put");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let mut last = 0;
    let mut count = 0;
    while count < n {
        let resp = tokio::time::timeout(Duration::from_secs(60), s.message())
            .await
            .expect("in time")
            .expect("ok")
            .expect("open");
        for e in resp.events() {
            let rev = e.kv().expect("kv").mod_revision();
            assert!(
                rev > last,
                "revisions strictly increase: {rev} after {last}"
            );
            last = rev;
            count += 1;
        }
    }
    assert_eq!(count, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_and_delete_their_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(
        dir.path(),
        &["--election-timeout", "500", "--heartbeat-interval", "50"],
    );
    let mut c = client(&p).await;
    let lease = c.lease_grant(1, None).await.expect("grant");
    assert!(lease.ttl() >= 1);
    c.put(
        "leased/a",
        "1",
        Some(PutOptions::new().with_lease(lease.id())),
    )
    .await
    .expect("put");
    c.put(
        "leased/b",
        "1",
        Some(PutOptions::new().with_lease(lease.id())),
    )
    .await
    .expect("put");
    let ttl = c
        .lease_time_to_live(
            lease.id(),
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .expect("ttl");
    assert_eq!(ttl.keys().len(), 2);
    let listed = c.leases().await.expect("leases");
    assert!(listed.leases().iter().any(|l| l.id() == lease.id()));
    let (mut keeper, mut stream) = c.lease_keep_alive(lease.id()).await.expect("keepalive");
    keeper.keep_alive().await.expect("send");
    let ka = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("keep-alive answered in time")
        .expect("ok")
        .expect("resp");
    assert_eq!(ka.id(), lease.id());
    assert!(ka.ttl() > 0);

    // Expiry deletes both keys at one revision.
    let (_w, mut s) = c
        .watch("leased/", Some(WatchOptions::new().with_prefix()))
        .await
        .expect("watch");
    let resp = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let r = s.message().await.expect("ok").expect("open");
            if !r.events().is_empty() {
                return r;
            }
        }
    })
    .await
    .expect("lease expires in time");
    assert_eq!(resp.events().len(), 2, "both keys go in one revision");
    assert!(resp
        .events()
        .iter()
        .all(|e| e.event_type() == EventType::Delete));
    let ttl = c.lease_time_to_live(lease.id(), None).await.expect("ttl");
    assert_eq!(ttl.ttl(), -1);
    let (code, _) = code_and_message(c.lease_revoke(lease.id()).await.expect_err("gone"));
    assert_eq!(code, tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_raises_nospace_and_rejects_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &["--quota-backend-bytes", "2000000"]);
    let mut c = client(&p).await;
    let value = vec![b'v'; 100_000];
    let mut err = None;
    for i in 0..200 {
        if let Err(e) = c.put(format!("q{i}"), value.clone(), None).await {
            err = Some(e);
            break;
        }
    }
    let (code, msg) = code_and_message(err.expect("quota must be hit"));
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::ResourceExhausted,
            "etcdserver: mvcc: database space exceeded"
        )
    );
    let alarms = c
        .alarm(
            etcd_client::AlarmAction::Get,
            etcd_client::AlarmType::None,
            None,
        )
        .await
        .expect("alarms");
    assert!(alarms
        .alarms()
        .iter()
        .any(|a| a.alarm() == etcd_client::AlarmType::Nospace));
    assert!(
        c.put("small", "v", None).await.is_err(),
        "writes stay refused while NOSPACE is raised"
    );
    assert!(
        c.delete("q", Some(DeleteOptions::new().with_prefix()))
            .await
            .is_ok(),
        "deletes are allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_requests_and_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &[]);
    let mut c = client(&p).await;
    let rev = put_rev(&mut c, "p", "1").await;
    // The client has already consumed the created response when `watch` returns.
    let (mut w, mut s) = c.watch("p", None).await.expect("watch");
    w.request_progress().await.expect("request progress");
    let progress = tokio::time::timeout(Duration::from_secs(30), s.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("resp");
    assert!(progress.events().is_empty());
    assert_eq!(
        progress.header().expect("h").revision(),
        rev,
        "progress reports the revision seen so far"
    );

    let (code, body) = strata_tests::http_get(p.port, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    for name in [
        "etcd_server_has_leader 1",
        "etcd_disk_wal_fsync_duration_seconds_bucket",
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_debugging_mvcc_watcher_total 1",
    ] {
        assert!(body.contains(name), "/metrics lacks {name}");
    }
    let (code, body) = strata_tests::http_get(p.port, "/health").expect("health");
    assert_eq!(
        (code, body.as_str()),
        (200, "{\"health\":\"true\",\"reason\":\"\"}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_auto_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &["--auto-compaction-retention", "2s"]);
    let mut c = client(&p).await;
    let first = put_rev(&mut c, "ac", "0").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    loop {
        c.put("ac", i.to_string(), None).await.expect("put");
        i += 1;
        match c
            .get("ac", Some(GetOptions::new().with_revision(first)))
            .await
        {
            Err(e) => {
                let (_, msg) = code_and_message(e);
                assert_eq!(
                    msg,
                    "etcdserver: mvcc: required revision has been compacted"
                );
                break;
            }
            Ok(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "no auto-compaction within 60 s"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        c.get("ac", None).await.expect("get").kvs().len(),
        1,
        "the latest value survives"
    );
}
