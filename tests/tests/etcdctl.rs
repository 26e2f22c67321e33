//! Debian's etcdctl (API v3) against the real `strata store` binary: the commands etcd users
//! type, with their output checked.

use std::io::Read;
use std::process::{Command, Stdio};

use strata_tests::{etcdctl, require_tool, wait_until, StoreProc};

fn ok(endpoint: &str, args: &[&str]) -> String {
    let (success, out) = etcdctl(endpoint, args, None);
    assert!(success, "etcdctl {args:?} failed: {out}");
    out
}

fn revision_of(endpoint: &str, key: &str) -> i64 {
    let out = ok(endpoint, &["get", key, "-w", "json"]);
    let at = out.find("\"revision\":").expect("header revision in json") + "\"revision\":".len();
    out[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .expect("revision")
}

#[test]
fn put_get_del_txn_compaction_status_snapshot() {
    if !require_tool("etcdctl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &[]);
    let ep = p.endpoint();

    assert_eq!(ok(&ep, &["put", "foo", "bar"]).trim(), "OK");
    for (k, v) in [("foo1", "a"), ("foo2", "b"), ("fop", "c")] {
        ok(&ep, &["put", k, v]);
    }
    assert_eq!(ok(&ep, &["get", "foo"]), "foo\nbar\n");
    assert_eq!(
        ok(&ep, &["get", "--prefix", "foo", "--keys-only"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["foo", "foo1", "foo2"]
    );
    assert_eq!(
        ok(&ep, &["get", "--prefix", "foo", "--limit=2"]),
        "foo\nbar\nfoo1\na\n"
    );
    let fields = ok(&ep, &["get", "--prefix", "fo", "--limit=1", "-w", "fields"]);
    assert!(
        fields.contains("\"Count\" : 4") && fields.contains("\"More\" : true"),
        "{fields}"
    );
    let rev = revision_of(&ep, "foo");
    ok(&ep, &["put", "foo", "baz"]);
    assert_eq!(
        ok(&ep, &["get", "foo", &format!("--rev={rev}")]),
        "foo\nbar\n"
    );
    assert_eq!(ok(&ep, &["del", "--prev-kv", "fop"]), "1\nfop\nc\n");

    // An interactive transaction script on stdin.
    let script = "value(\"foo\") = \"baz\"\n\nput txnkey yes\nget foo\n\nput txnkey no\n\n";
    let (success, out) = etcdctl(&ep, &["txn"], Some(script));
    assert!(success, "txn failed: {out}");
    assert!(out.starts_with("SUCCESS"), "txn output: {out}");
    assert_eq!(
        ok(&ep, &["get", "txnkey", "--print-value-only"]).trim(),
        "yes"
    );

    // Compaction, then a read below it fails with etcd's error.
    let now = revision_of(&ep, "foo");
    assert!(
        ok(&ep, &["compaction", &now.to_string()]).contains(&format!("compacted revision {now}"))
    );
    let (success, out) = etcdctl(&ep, &["get", "foo", &format!("--rev={rev}")], None);
    assert!(!success);
    assert!(
        out.contains("etcdserver: mvcc: required revision has been compacted"),
        "{out}"
    );

    let status = ok(&ep, &["endpoint", "status", "-w", "table"]);
    assert!(status.contains("3.5."), "{status}");
    assert!(status.contains(&ep), "{status}");
    let health = ok(&ep, &["endpoint", "health"]);
    assert!(health.contains("is healthy"), "{health}");
    let members = ok(&ep, &["member", "list"]);
    assert!(
        members.contains("n1") && members.contains("started"),
        "{members}"
    );

    let snap = dir.path().join("snap.db");
    let out = ok(
        &ep,
        &["snapshot", "save", snap.to_str().expect("utf8 path")],
    );
    assert!(out.contains("Snapshot saved"), "{out}");
    assert!(std::fs::metadata(&snap).expect("snapshot file").len() > 0);
}

#[test]
fn leases_from_etcdctl() {
    if !require_tool("etcdctl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &[]);
    let ep = p.endpoint();
    let out = ok(&ep, &["lease", "grant", "30"]);
    // "lease 694d7b6e2f0c2a0b granted with TTL(30s)"
    let id = out.split_whitespace().nth(1).expect("lease id").to_string();
    assert!(out.contains("granted with TTL(30s)"), "{out}");
    ok(&ep, &["put", "--lease", &id, "leased", "v"]);
    let out = ok(&ep, &["lease", "keep-alive", "--once", &id]);
    assert!(out.contains("keepalived with TTL(30)"), "{out}");
    let out = ok(&ep, &["lease", "timetolive", "--keys", &id]);
    assert!(
        out.contains("granted with TTL(30s)") && out.contains("attached keys([leased])"),
        "{out}"
    );
    let out = ok(&ep, &["lease", "list"]);
    assert!(out.contains(&id), "{out}");
    assert!(ok(&ep, &["lease", "revoke", &id]).contains("revoked"));
    assert_eq!(
        ok(&ep, &["get", "leased"]),
        "",
        "the attached key disappears with its lease"
    );
    let out = ok(&ep, &["lease", "timetolive", &id]);
    assert!(out.contains("already expired"), "{out}");
}

#[test]
fn watch_resumes_across_a_restart() {
    if !require_tool("etcdctl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = StoreProc::start(dir.path(), &[]);
    let ep = p.endpoint();
    ok(&ep, &["put", "w/a", "1"]);
    let rev = revision_of(&ep, "w/a");
    ok(&ep, &["put", "w/a", "2"]);

    let out_path = dir.path().join("watch.out");
    let out_file = std::fs::File::create(&out_path).expect("watch output");
    let mut watch = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            format!("--endpoints={ep}"),
            "watch".into(),
            format!("--rev={rev}"),
            "--prefix".into(),
            "--prev-kv".into(),
            "w/".into(),
        ])
        .stdout(out_file)
        .stderr(Stdio::null())
        .spawn()
        .expect("etcdctl watch");
    let read = || {
        let mut s = String::new();
        std::fs::File::open(&out_path)
            .and_then(|mut f| f.read_to_string(&mut s))
            .expect("read watch output");
        s
    };
    wait_until("the replayed events", || read().matches("PUT").count() >= 2);

    p.restart();
    ok(&ep, &["put", "w/b", "3"]);
    ok(&ep, &["del", "w/a"]);
    wait_until("events after the restart", || read().contains("DELETE"));
    let _ = watch.kill();
    let _ = watch.wait();
    let text = read();
    // Replay (rev, rev+1 with prev 1), then live after the restart, nothing twice.
    assert_eq!(text.matches("PUT").count(), 3, "{text}");
    assert_eq!(
        text, "PUT\nw/a\n1\nPUT\nw/a\n1\nw/a\n2\nPUT\nw/b\n3\nDELETE\nw/a\n2\nw/a\n\n",
        "{text}"
    );
}

#[test]
fn check_perf_passes() {
    if !require_tool("etcdctl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = StoreProc::start(dir.path(), &[]);
    let (success, out) = etcdctl(&p.endpoint(), &["check", "perf"], None);
    assert!(success, "check perf failed: {out}");
    assert!(out.trim_end().ends_with("PASS"), "{out}");
}
