//! kill -9 while a client writes: every acknowledged write survives the restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::Client;
use strata_tests::StoreProc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = StoreProc::start(dir.path(), &[]);
    let endpoint = p.endpoint();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let endpoint = endpoint.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut c = Client::connect([endpoint], None).await.expect("connect");
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k/{w}/{i}");
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    c.put(key.clone(), format!("v{i}"), None),
                )
                .await
                {
                    Ok(Ok(_)) => acked.push(key),
                    _ => break,
                }
                i += 1;
            }
            acked
        }));
    }
    // Let the writers get going, then kill the member mid-stream.
    let mut probe = Client::connect([endpoint.clone()], None)
        .await
        .expect("connect");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = probe
            .get(
                "k/",
                Some(
                    etcd_client::GetOptions::new()
                        .with_prefix()
                        .with_count_only(),
                ),
            )
            .await
            .expect("count")
            .count();
        if n >= 500 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    assert!(
        acked.len() >= 100,
        "the writers made progress ({} acked)",
        acked.len()
    );

    p.restart();
    let mut c = Client::connect([p.endpoint()], None)
        .await
        .expect("connect after restart");
    let got = c
        .get(
            "k/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_keys_only(),
            ),
        )
        .await
        .expect("get");
    let present: std::collections::HashSet<Vec<u8>> =
        got.kvs().iter().map(|kv| kv.key().to_vec()).collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|k| !present.contains(k.as_bytes()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_and_restart_keep_revisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = StoreProc::start(dir.path(), &[]);
    let mut c = Client::connect([p.endpoint()], None)
        .await
        .expect("connect");
    for i in 0..50 {
        c.put(format!("r{i}"), "v", None).await.expect("put");
    }
    let rev = c
        .get("r0", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();
    assert!(p.terminate(), "SIGTERM shuts the member down cleanly");
    p.restart();
    let mut c = Client::connect([p.endpoint()], None)
        .await
        .expect("connect");
    let got = c
        .get(
            "r",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .expect("get");
    assert_eq!(got.count(), 50);
    assert_eq!(
        got.header().expect("h").revision(),
        rev,
        "the revision is where it was"
    );
    let next = c
        .put("after", "v", None)
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    assert_eq!(next, rev + 1);
}
