//! Smoke tests of `strata bench`: every subcommand runs a tiny workload against a one-member
//! store (and `apiserver pods` against an apiserver over it) and prints a `--json` summary that
//! parses and accounts for every request. They check that the tool works, not how fast anything
//! is: performance figures come from `make bench`, never from tests.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use strata_tests::kube::ApiserverProc;
use strata_tests::{require_tool, strata_bin, StoreProc};

/// Runs `strata bench --endpoints EP --json ARGS...` and parses its stdout.
fn bench(endpoint: &str, args: &[&str]) -> Value {
    let out = Command::new(strata_bin())
        .args(["bench", "--endpoints", endpoint, "--json"])
        .args(args)
        .output()
        .expect("run strata bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "strata bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path:?} missing in {v:#}"))
}

/// A summary whose every request succeeded, with consistent figures.
fn assert_complete(v: &Value, requests: f64) {
    assert_eq!(num(v, &["requests"]), requests, "{v:#}");
    assert_eq!(num(v, &["errors"]), 0.0, "{v:#}");
    assert!(num(v, &["requests_per_sec"]) > 0.0, "{v:#}");
    assert!(num(v, &["fastest_ms"]) <= num(v, &["slowest_ms"]), "{v:#}");
    let hist: f64 = v["histogram"]
        .as_array()
        .expect("histogram")
        .iter()
        .map(|b| b[1].as_f64().expect("bucket count"))
        .sum();
    assert_eq!(hist, requests, "the histogram counts every request: {v:#}");
    assert_eq!(v["percentiles"].as_array().map(Vec::len), Some(8), "{v:#}");
}

#[test]
fn every_etcd_subcommand_produces_a_json_summary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = StoreProc::start(&tmp.path().join("s"), &[]);
    let ep = store.endpoint();
    let c = ["--clients", "4", "--conns", "2"];

    let put = bench(
        &ep,
        &[
            &c[..],
            &[
                "put",
                "--total",
                "60",
                "--val-size",
                "64",
                "--key-space-size",
                "20",
                "--rate",
                "1000",
            ],
        ]
        .concat(),
    );
    assert_eq!(put["workload"], "put");
    assert_complete(&put, 60.0);

    let seq = bench(
        &ep,
        &[
            "put",
            "--total",
            "10",
            "--sequential-keys",
            "--key-space-size",
            "10",
        ],
    );
    assert_complete(&seq, 10.0);

    for consistency in ["l", "s"] {
        let r = bench(
            &ep,
            &[
                &c[..],
                &[
                    "range",
                    "00000001",
                    "--total",
                    "40",
                    "--consistency",
                    consistency,
                ],
            ]
            .concat(),
        );
        assert_complete(&r, 40.0);
    }
    let counted = bench(
        &ep,
        &[
            "range",
            "0",
            "9",
            "--total",
            "5",
            "--count-only",
            "--limit",
            "3",
        ],
    );
    assert_complete(&counted, 5.0);

    let txn = bench(
        &ep,
        &[
            &c[..],
            &[
                "txn-put",
                "--total",
                "30",
                "--txn-ops",
                "3",
                "--key-space-size",
                "50",
            ],
        ]
        .concat(),
    );
    assert_complete(&txn, 30.0);

    let mixed = bench(
        &ep,
        &[
            &c[..],
            &[
                "txn-mixed",
                "--total",
                "40",
                "--rw-ratio",
                "1",
                "--key-space-size",
                "20",
                "--limit",
                "5",
            ],
        ]
        .concat(),
    );
    assert_complete(&mixed, 40.0);
    let (reads, writes) = (
        num(&mixed, &["parts", "read", "requests"]),
        num(&mixed, &["parts", "write", "requests"]),
    );
    assert_eq!(reads + writes, 40.0, "{mixed:#}");

    let lease = bench(&ep, &["--clients", "2", "lease-keepalive", "--total", "20"]);
    assert_complete(&lease, 20.0);

    let watch = bench(
        &ep,
        &[
            "--conns",
            "2",
            "watch",
            "--streams",
            "3",
            "--watch-per-stream",
            "4",
            "--put-total",
            "10",
            "--put-rate",
            "200",
        ],
    );
    assert_eq!(num(&watch, &["extra", "watchers"]), 12.0);
    assert_eq!(num(&watch, &["extra", "events_expected"]), 120.0);
    assert_eq!(
        num(&watch, &["extra", "events_delivered"]),
        120.0,
        "{watch:#}"
    );
    assert_eq!(num(&watch, &["extra", "watchers_missing_events"]), 0.0);
    assert_complete(&watch, 120.0);
    assert_complete(&watch["parts"]["create"], 12.0);
    assert_complete(&watch["parts"]["put"], 10.0);

    let by_key = bench(
        &ep,
        &[
            "watch",
            "--streams",
            "2",
            "--watch-per-stream",
            "3",
            "--watched-key-total",
            "3",
            "--put-total",
            "9",
            "--put-rate",
            "200",
        ],
    );
    assert_eq!(
        num(&by_key, &["extra", "events_delivered"]),
        18.0,
        "each of 6 watchers sees the 3 puts to its key: {by_key:#}"
    );

    let latency = bench(
        &ep,
        &[
            "--clients",
            "3",
            "watch-latency",
            "--total",
            "10",
            "--put-rate",
            "200",
        ],
    );
    assert_eq!(latency["workload"], "watch-latency");
    assert_complete(&latency, 30.0);

    let get = bench(
        &ep,
        &[
            "watch-get",
            "--watchers",
            "20",
            "--streams",
            "2",
            "--events",
            "4",
        ],
    );
    assert_eq!(num(&get, &["extra", "events_delivered"]), 80.0, "{get:#}");
    assert_eq!(num(&get, &["errors"]), 0.0);
}

#[test]
fn bad_flags_and_unreachable_servers_are_clear_errors() {
    let out = Command::new(strata_bin())
        .args([
            "bench",
            "--endpoints",
            "127.0.0.1:1",
            "--dial-timeout",
            "2",
            "put",
            "--total",
            "1",
        ])
        .output()
        .expect("run strata bench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");
    let out = Command::new(strata_bin())
        .args(["bench", "range", "k", "--consistency", "x"])
        .output()
        .expect("run strata bench");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_pods_reports_each_phase() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = StoreProc::start(&tmp.path().join("s"), &[]);
    let api = ApiserverProc::start(&tmp.path().join("api"), &store.url(), &[]).await;
    let token = api.token("admin", &["system:masters"]);
    let server = format!("https://127.0.0.1:{}", api.port);
    let ca = api.ca.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(strata_bin())
            .args([
                "bench",
                "--clients",
                "3",
                "--json",
                "apiserver",
                "--server",
                &server,
            ])
            .args(["--token", &token, "--ca"])
            .arg(&ca)
            .args(["--namespace", "smoke", "pods", "--total", "12"])
            .output()
            .expect("run strata bench apiserver")
    })
    .await
    .expect("bench thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).expect("JSON summary");
    for phase in ["create", "update", "delete"] {
        assert_complete(&v["parts"][phase], 12.0);
    }
}

#[test]
fn compare_writes_a_report_with_charts() {
    if !require_tool("etcd") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("report");
    // A one-member cluster uses base+10 (client) and base+11 (peer): two adjacent free ports,
    // taken through free_port so no other test of this process is handed them.
    let base = loop {
        let (a, b) = (strata_tests::free_port(), strata_tests::free_port());
        if b == a + 1 && a > 10 {
            break a - 10;
        }
    };
    let out = Command::new(strata_bin())
        .args([
            "bench",
            "compare",
            "--members",
            "1",
            "--watchers",
            "20",
            "--scale",
            "0.002",
        ])
        .arg("--out-dir")
        .arg(&out_dir)
        .arg("--work-dir")
        .arg(tmp.path().join("work"))
        .args(["--base-port", &base.to_string()])
        .output()
        .expect("run strata bench compare");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(out_dir.join("report.md")).expect("report.md");
    for row in [
        "put, 256 B, 100 clients",
        "range, serializable",
        "watch, one prefix",
        "memory per 10,000 watchers",
    ] {
        assert!(md.contains(row), "{row} missing from\n{md}");
    }
    for svg in ["throughput.svg", "latency.svg"] {
        let text = std::fs::read_to_string(out_dir.join(svg)).expect("chart");
        assert!(
            text.starts_with("<svg") && text.contains("etcd"),
            "{svg}: {text:.200}"
        );
    }
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("results.json")).expect("results.json"),
    )
    .expect("results parse");
    assert_eq!(
        results["runs"].as_array().map(Vec::len),
        Some(10),
        "5 workloads x 2 servers"
    );
    assert!(Path::new(&out_dir).join("report.md").exists());
}
