//! Three-member clusters of the real `strata store` binary on loopback: leader loss under writes,
//! full restarts, a wiped member re-added and caught up by snapshot, minority partitions (through
//! a cutting proxy on each member's peer link), membership changes and leadership transfer with
//! etcdctl, and require-leader watches.
//!
//! The tests of this file run one at a time (a cluster is three processes; two clusters at once
//! on a 2-core machine would mostly test the scheduler).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions, WatchOptions};
use strata_tests::{etcdctl, require_tool, wait_until, Cluster, DEADLINE};

/// Held by each test for its whole run (a test that panics releases it on unwinding).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Flags that compact the log after 100 entries keeping 20, so a lagging member needs a snapshot.
const SNAPSHOT_OFTEN: [&str; 4] = [
    "--snapshot-count",
    "100",
    "--experimental-snapshot-catchup-entries",
    "20",
];

/// Election timeout the tests run with (the default).
const ELECTION: Duration = Duration::from_millis(1000);

async fn connect(endpoint: &str, timeout: Option<Duration>) -> Client {
    let mut opts = ConnectOptions::new().with_connect_timeout(Duration::from_secs(5));
    if let Some(t) = timeout {
        opts = opts.with_timeout(t);
    }
    let endpoints: Vec<&str> = endpoint.split(',').collect();
    Client::connect(endpoints, Some(opts))
        .await
        .expect("connect")
}

/// Waits until the member at `endpoint` holds exactly `n` keys under `prefix` locally.
async fn wait_local_keys(c: &Cluster, endpoint: &str, prefix: &str, n: usize, what: &str) {
    let start = Instant::now();
    while local_keys(endpoint, prefix).await.len() != n {
        assert!(start.elapsed() < DEADLINE, "{what}\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keys under `prefix` as a member sees them locally (serializable read).
async fn local_keys(endpoint: &str, prefix: &str) -> BTreeSet<String> {
    let mut c = connect(endpoint, Some(Duration::from_secs(10))).await;
    let resp = c
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_serializable()),
        )
        .await
        .expect("serializable get");
    resp.kvs()
        .iter()
        .map(|kv| kv.key_str().expect("utf8 key").to_string())
        .collect()
}

async fn applied_index(endpoint: &str) -> Option<u64> {
    let mut c = Client::connect(
        [endpoint],
        Some(ConnectOptions::new().with_timeout(Duration::from_secs(2))),
    )
    .await
    .ok()?;
    c.status().await.ok().map(|s| s.raft_applied_index())
}

/// Waits until every member listed has applied the same index.
async fn wait_converged(endpoints: &[String]) {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        let mut seen = Vec::new();
        for e in endpoints {
            seen.push(applied_index(e).await);
        }
        if seen.iter().all(|s| s.is_some() && *s == seen[0]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("members did not converge within {DEADLINE:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leader_while_writing_loses_no_acknowledged_write() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Cluster::start(dir.path(), 3, &[]);
    let endpoints: Vec<String> = c.members.iter().map(|m| m.endpoint()).collect();

    // One writer per member, each writing unique keys and recording what was acknowledged.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, ep) in endpoints.iter().enumerate() {
        let (acked, stop, ep) = (acked.clone(), stop.clone(), ep.clone());
        writers.push(tokio::spawn(async move {
            let mut client = connect(&ep, Some(Duration::from_millis(500))).await;
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                let key = format!("w/{w}/{n:06}");
                n += 1;
                if client.put(key.clone(), "v", None).await.is_ok() {
                    acked.lock().expect("acked").push(key);
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }
    wait_until("writes acknowledged before the kill", || {
        acked.lock().expect("acked").len() >= 100
    });

    let leader = c.wait_leader();
    let killed_at = Instant::now();
    c.members[leader].kill9();

    // Probe the survivors with short-deadline writes until one is acknowledged.
    let survivors = c.endpoints_except(&[leader]);
    let mut probes = Vec::new();
    for ep in &survivors {
        probes.push(connect(ep, Some(Duration::from_millis(200))).await);
    }
    let resumed = loop {
        let mut done = None;
        for p in probes.iter_mut() {
            if p.put("probe", "x", None).await.is_ok() {
                done = Some(killed_at.elapsed());
                break;
            }
        }
        if let Some(d) = done {
            break d;
        }
        assert!(
            killed_at.elapsed() < DEADLINE,
            "writes never resumed\n{}",
            c.logs()
        );
    };
    eprintln!("writes resumed {resumed:?} after kill -9 of the leader");
    assert!(
        resumed < ELECTION * 2,
        "a new leader must serve writes within 2x the election timeout; took {resumed:?}\n{}",
        c.logs()
    );

    // Keep writing through the new leader for a moment, then stop and bring the old leader back.
    let before = acked.lock().expect("acked").len();
    wait_until("writes acknowledged after the kill", || {
        acked.lock().expect("acked").len() >= before + 50
    });
    stop.store(true, Ordering::Release);
    for w in writers {
        w.await.expect("writer");
    }
    c.members[leader].start();
    c.wait_healthy();
    wait_converged(&endpoints).await;

    let acked: BTreeSet<String> = acked.lock().expect("acked").iter().cloned().collect();
    for ep in &endpoints {
        let keys = local_keys(ep, "w/").await;
        let missing: Vec<&String> = acked.difference(&keys).take(5).collect();
        assert!(
            missing.is_empty(),
            "member {ep} lacks acknowledged writes, e.g. {missing:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_and_restarting_every_member_keeps_the_data() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Cluster::start(dir.path(), 3, &[]);
    let mut client = connect(&c.endpoints(), Some(Duration::from_secs(10))).await;
    let mut last_rev = 0;
    for i in 0..200 {
        let r = client
            .put(format!("k/{i:04}"), format!("v{i}"), None)
            .await
            .expect("put");
        last_rev = r.header().expect("header").revision();
    }
    drop(client);
    for m in c.members.iter_mut() {
        assert!(m.terminate(), "clean shutdown of {}", m.name);
    }
    for m in c.members.iter_mut() {
        m.start();
    }
    c.wait_healthy();
    for m in &c.members {
        let mut client = connect(&m.endpoint(), Some(Duration::from_secs(10))).await;
        let resp = client
            .get("k/", Some(GetOptions::new().with_prefix()))
            .await
            .expect("linearizable get after restart");
        assert_eq!(resp.kvs().len(), 200, "member {}", m.name);
        assert_eq!(
            resp.header().expect("header").revision(),
            last_rev,
            "member {}",
            m.name
        );
        assert_eq!(resp.kvs()[7].value_str().expect("utf8"), "v7");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_member_removed_and_re_added_catches_up_by_snapshot() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Cluster::start(dir.path(), 3, &SNAPSHOT_OFTEN);
    let leader = c.wait_leader();
    let victim = (leader + 1) % 3;
    let others = c.endpoints_except(&[victim]);
    let mut client = connect(&others.join(","), Some(Duration::from_secs(10))).await;
    for i in 0..400 {
        client
            .put(format!("s/{i:04}"), "v", None)
            .await
            .expect("put");
    }

    // Find the victim's id, kill it, wipe it, remove it, add it back.
    let list = client.member_list().await.expect("member list");
    let peer_url = c.members[victim].peer_url();
    let old_id = list
        .members()
        .iter()
        .find(|m| m.peer_urls().contains(&peer_url))
        .expect("victim listed")
        .id();
    c.members[victim].kill9();
    std::fs::remove_dir_all(&c.members[victim].dir).expect("wipe data dir");
    client.member_remove(old_id).await.expect("member remove");
    let added = client
        .member_add([peer_url.clone()], None)
        .await
        .expect("member add");
    let new_id = added.member().expect("added member").id();
    assert_ne!(new_id, old_id, "a re-added member gets a new id");
    for i in 400..450 {
        client
            .put(format!("s/{i:04}"), "v", None)
            .await
            .expect("put");
    }

    let name = c.members[victim].name.clone();
    let j = c.rejoin(victim);
    assert_eq!(c.members[j].name, name);
    c.members[j].start();
    c.wait_healthy();
    let ep = c.members[j].endpoint();
    wait_local_keys(&c, &ep, "s/", 450, "re-added member did not catch up").await;
    let log = c.members[j].log_text();
    assert!(
        log.contains("installing a snapshot from the leader"),
        "the re-added member must catch up from a snapshot:\n{log}"
    );
    let list = client.member_list().await.expect("member list");
    assert_eq!(list.members().len(), 3);
    assert!(list.members().iter().any(|m| m.id() == new_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_partition_cannot_acknowledge_writes_or_linearizable_reads() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = Cluster::start(dir.path(), 3, &[]);
    let leader = c.wait_leader();
    let minority = (leader + 1) % 3;
    let m_ep = c.members[minority].endpoint();
    let majority = c.endpoints_except(&[minority]);
    let mut majority_client = connect(&majority.join(","), Some(Duration::from_secs(10))).await;
    majority_client
        .put("before", "1", None)
        .await
        .expect("put before the partition");
    wait_converged(&[m_ep.clone(), majority[0].clone(), majority[1].clone()]).await;

    // A watch that requires a leader, on the member about to be cut off.
    let mut watcher = Client::connect(
        [m_ep.as_str()],
        Some(ConnectOptions::new().with_require_leader(true)),
    )
    .await
    .expect("connect watcher");
    let (_w, mut watch_stream) = watcher
        .watch("before", Some(WatchOptions::new()))
        .await
        .expect("watch with require-leader");

    c.members[minority].proxy.cut();
    let mut m_client = connect(&m_ep, None).await;

    // Writes through the cut-off member fail with etcd's errors within a bounded time.
    let started = Instant::now();
    let put = tokio::time::timeout(DEADLINE, m_client.put("during", "x", None)).await;
    let err = match put {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => panic!("a member cut off from the majority acknowledged a write"),
        Err(_) => panic!("a write to a cut-off member hung for {DEADLINE:?}"),
    };
    assert!(
        err.contains("request timed out") || err.contains("no leader"),
        "unexpected error: {err}"
    );
    eprintln!(
        "write on the minority failed after {:?}: {err}",
        started.elapsed()
    );

    let get = tokio::time::timeout(DEADLINE, m_client.get("before", None)).await;
    match get {
        Ok(Err(e)) => {
            let e = e.to_string();
            assert!(
                e.contains("request timed out") || e.contains("no leader"),
                "unexpected error: {e}"
            );
        }
        Ok(Ok(_)) => panic!("a cut-off member served a linearizable read"),
        Err(_) => panic!("a linearizable read on a cut-off member hung"),
    }
    // Serializable reads are local and still answered.
    let local = m_client
        .get("before", Some(GetOptions::new().with_serializable()))
        .await
        .expect("serializable get on the minority");
    assert_eq!(local.kvs().len(), 1);

    // The require-leader watch ends with "no leader".
    let ended = tokio::time::timeout(DEADLINE, async {
        loop {
            match watch_stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return "stream closed".to_string(),
                Err(e) => return e.to_string(),
            }
        }
    })
    .await
    .expect("a require-leader watch must end when its member has no leader");
    assert!(ended.contains("no leader"), "watch ended with: {ended}");

    // The majority keeps serving.
    majority_client
        .put("during-majority", "y", None)
        .await
        .expect("the majority acknowledges writes during the partition");

    c.members[minority].proxy.heal();
    let caught_up = "the healed member did not catch up";
    wait_local_keys(&c, &m_ep, "during-majority", 1, caught_up).await;
    m_client
        .put("after", "z", None)
        .await
        .expect("writes through the healed member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_steps_down_and_the_majority_elects_another() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = Cluster::start(dir.path(), 3, &[]);
    let old = c.wait_leader();
    c.members[old].proxy.cut();
    let start = Instant::now();
    let new = loop {
        let leaders: Vec<usize> = (0..3)
            .filter(|i| *i != old && c.members[*i].is_leader())
            .collect();
        if leaders.len() == 1 {
            break leaders[0];
        }
        assert!(start.elapsed() < DEADLINE, "no new leader\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut client = connect(&c.members[new].endpoint(), Some(Duration::from_secs(10))).await;
    client.put("k", "v", None).await.expect("put on new leader");
    wait_until("the isolated leader to step down", || {
        !c.members[old].is_leader()
    });
    c.members[old].proxy.heal();
    let ep = c.members[old].endpoint();
    wait_local_keys(&c, &ep, "k", 1, "old leader did not catch up").await;
    assert_eq!(c.leader(), Some(new), "one leader after healing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_member_commands_move_leader_and_hand_over_on_shutdown() {
    if !require_tool("etcdctl") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Cluster::start(dir.path(), 3, &[]);
    let eps = c.endpoints();

    // Add a learner, start it, promote it once it has caught up.
    let j = c.new_member("n4");
    let url = c.members[j].peer_url();
    let (ok, out) = etcdctl(
        &eps,
        &[
            "member",
            "add",
            "n4",
            "--learner",
            &format!("--peer-urls={url}"),
        ],
        None,
    );
    assert!(ok, "member add --learner: {out}");
    assert!(out.contains("added to cluster"), "{out}");
    let id = out
        .split_whitespace()
        .nth(1)
        .expect("etcdctl prints the new member id")
        .to_string();
    c.members[j].start();
    wait_until("the learner to report a leader", || c.members[j].healthy());
    wait_until("the learner to publish its name", || {
        etcdctl(&eps, &["member", "list"], None)
            .1
            .contains(&format!("{id}, started, n4"))
    });
    let (_, out) = etcdctl(&eps, &["member", "list"], None);
    assert!(
        out.lines().any(|l| l.contains("n4") && l.ends_with("true")),
        "learner: {out}"
    );
    // Promote through a follower: it forwards to the leader, which checks the learner's progress.
    let follower = (c.wait_leader() + 1) % 3;
    let via_follower = c.members[follower].endpoint();
    let mut promoted = false;
    for _ in 0..100 {
        let (ok, out) = etcdctl(&via_follower, &["member", "promote", &id], None);
        if ok {
            assert!(out.contains("promoted"), "{out}");
            promoted = true;
            break;
        }
        assert!(
            out.contains("in sync with leader"),
            "unexpected promote failure: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(promoted, "learner never became ready to promote");
    let (ok, out) = etcdctl(
        &eps,
        &["member", "update", &id, &format!("--peer-urls={url}")],
        None,
    );
    assert!(ok, "member update: {out}");

    // endpoint status on all members agrees on the leader.
    let all = c.endpoints();
    let (ok, out) = etcdctl(&all, &["endpoint", "status", "-w", "table"], None);
    assert!(ok, "endpoint status: {out}");
    let leaders = out.lines().filter(|l| l.contains("|      true |")).count();
    assert_eq!(leaders, 1, "exactly one leader in:\n{out}");

    // Move leadership to a chosen member.
    let leader = c.wait_leader();
    let target = (leader + 1) % c.members.len();
    let target_id = {
        let (_, out) = etcdctl(&c.members[target].endpoint(), &["endpoint", "status"], None);
        out.split(',').nth(1).expect("id column").trim().to_string()
    };
    let (ok, out) = etcdctl(
        &c.members[leader].endpoint(),
        &["move-leader", &target_id],
        None,
    );
    assert!(ok, "move-leader: {out}");
    wait_until("the chosen member to lead", || {
        c.members[target].is_leader()
    });

    // A leader shutting down cleanly hands over: the others have a new leader well within an
    // election timeout.
    let leader = target;
    let stopped_at = Instant::now();
    c.members[leader].sigterm();
    let new_leader_after = loop {
        if (0..c.members.len()).any(|i| i != leader && c.members[i].is_leader()) {
            break stopped_at.elapsed();
        }
        assert!(stopped_at.elapsed() < DEADLINE, "no leader after hand-over");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        new_leader_after < ELECTION,
        "a cleanly stopping leader hands over without an election timeout; took {new_leader_after:?}"
    );
    let exit = c.members[leader]
        .wait_exit()
        .expect("the stopped leader exits");
    assert!(exit.success(), "clean shutdown exit status {exit}");
    assert!(
        c.members[leader]
            .log_text()
            .contains("handing leadership over"),
        "{}",
        c.members[leader].log_text()
    );
    eprintln!("leader after clean shutdown: {new_leader_after:?}");
    c.members[leader].start();
    c.wait_healthy();

    // Remove the current leader: it stops, the rest elect a new leader and keep serving.
    let leader = c.wait_leader();
    let leader_id = {
        let (_, out) = etcdctl(&c.members[leader].endpoint(), &["endpoint", "status"], None);
        out.split(',').nth(1).expect("id column").trim().to_string()
    };
    let (ok, out) = etcdctl(&eps, &["member", "remove", &leader_id], None);
    assert!(ok, "member remove leader: {out}");
    let status = c.members[leader].wait_exit();
    assert!(
        status.is_some(),
        "a removed member stops\n{}",
        c.members[leader].log_text()
    );
    let rest = c.endpoints_except(&[leader]);
    let (ok, out) = etcdctl(&rest.join(","), &["put", "after-remove", "1"], None);
    assert!(ok, "put after removing the leader: {out}");
    let (_, out) = etcdctl(&rest.join(","), &["member", "list"], None);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_kept_alive_through_a_follower_survive_a_leader_kill() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Cluster::start(dir.path(), 3, &[]);
    let leader = c.wait_leader();
    let follower = (leader + 1) % 3;
    let mut client = connect(
        &c.members[follower].endpoint(),
        Some(Duration::from_secs(10)),
    )
    .await;
    // The minimum TTL is 1.5 election timeouts rounded up: 2 s here. Ask for 3 s.
    let lease = client.lease_grant(3, None).await.expect("grant").id();
    client
        .put(
            "leased",
            "v",
            Some(etcd_client::PutOptions::new().with_lease(lease)),
        )
        .await
        .expect("put with lease");
    let (mut keeper, mut responses) = client.lease_keep_alive(lease).await.expect("keep-alive");
    let keeping = tokio::spawn(async move {
        let mut failures = 0;
        loop {
            let ok = keeper.keep_alive().await.is_ok()
                && matches!(responses.message().await, Ok(Some(r)) if r.ttl() > 0);
            if !ok {
                failures += 1;
                if failures > 50 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    c.members[leader].kill9();
    // Through the failover and well past the TTL, the lease (renewed via the follower, which
    // forwards to whoever leads) must hold.
    let until = Instant::now() + Duration::from_secs(8);
    let mut reader = connect(
        &c.members[follower].endpoint(),
        Some(Duration::from_secs(10)),
    )
    .await;
    while Instant::now() < until {
        let got = reader
            .get("leased", Some(GetOptions::new().with_serializable()))
            .await
            .expect("serializable get");
        assert_eq!(
            got.kvs().len(),
            1,
            "a kept-alive lease expired across a leader change\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    keeping.abort();
    let ttl = reader
        .lease_time_to_live(lease, None)
        .await
        .expect("time to live via a follower");
    assert!(ttl.ttl() > 0, "lease still alive, ttl {}", ttl.ttl());
    // Without keep-alives it does expire (on the new leader's clock).
    let start = Instant::now();
    loop {
        let got = reader
            .get("leased", Some(GetOptions::new().with_serializable()))
            .await
            .expect("serializable get");
        if got.kvs().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "an abandoned lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_survive_losing_two_including_the_leader() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Cluster::start(dir.path(), 5, &[]);
    let mut client = connect(&c.endpoints(), Some(Duration::from_secs(10))).await;
    for i in 0..50 {
        client
            .put(format!("f/{i:03}"), "v", None)
            .await
            .expect("put on five members");
    }
    drop(client);
    let leader = c.wait_leader();
    let other = (leader + 1) % 5;
    c.members[leader].kill9();
    c.members[other].kill9();
    let alive = c.endpoints_except(&[leader, other]);
    let mut client = connect(&alive.join(","), Some(Duration::from_secs(10))).await;
    let start = Instant::now();
    loop {
        if client.put("f/after", "v", None).await.is_ok() {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "three of five members did not serve writes\n{}",
            c.logs()
        );
    }
    let got = client
        .get("f/", Some(GetOptions::new().with_prefix()))
        .await
        .expect("linearizable get with two members down");
    assert_eq!(got.kvs().len(), 51);
    // Bring them back: they catch up.
    c.members[leader].start();
    c.members[other].start();
    c.wait_healthy();
    let all: Vec<String> = c.members.iter().map(|m| m.endpoint()).collect();
    wait_converged(&all).await;
    for ep in &all {
        assert_eq!(local_keys(ep, "f/").await.len(), 51, "member {ep}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_on_a_member_restored_from_a_snapshot_misses_nothing() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = Cluster::start(dir.path(), 3, &SNAPSHOT_OFTEN);
    let leader = c.wait_leader();
    let lagging = (leader + 1) % 3;
    let l_ep = c.members[lagging].endpoint();
    let majority = c.endpoints_except(&[lagging]);

    // A watcher on the member that will fall behind, from before it does.
    let mut watcher = connect(&l_ep, None).await;
    let (_w, mut events) = watcher
        .watch("r/", Some(WatchOptions::new().with_prefix()))
        .await
        .expect("watch");

    c.members[lagging].proxy.cut();
    let mut client = connect(&majority.join(","), Some(Duration::from_secs(10))).await;
    for i in 0..300 {
        client
            .put(format!("r/{i:04}"), "v", None)
            .await
            .expect("put on the majority");
    }
    c.members[lagging].proxy.heal();

    // The watcher sees every put, in order, once.
    let mut seen = Vec::new();
    let got_all = tokio::time::timeout(DEADLINE, async {
        while seen.len() < 300 {
            let resp = events
                .message()
                .await
                .expect("watch stream")
                .expect("watch stream open");
            assert!(
                !resp.canceled(),
                "watch cancelled: {}",
                resp.cancel_reason()
            );
            for ev in resp.events() {
                let kv = ev.kv().expect("event kv");
                seen.push(kv.key_str().expect("utf8").to_string());
            }
        }
    })
    .await;
    assert!(
        got_all.is_ok(),
        "watcher got {} of 300 events\n{}",
        seen.len(),
        c.logs()
    );
    let want: Vec<String> = (0..300).map(|i| format!("r/{i:04}")).collect();
    assert_eq!(seen, want, "events in order, none missing or repeated");
    assert!(
        c.members[lagging]
            .log_text()
            .contains("installing a snapshot from the leader"),
        "the lagging member must have caught up by snapshot:\n{}",
        c.members[lagging].log_text()
    );
}
