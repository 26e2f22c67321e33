//! `strata up`: one command starts a TLS store cluster, the apiserver, the scheduler, the
//! controller-manager and kubelets; a pod runs; Ctrl-C (SIGINT) stops everything and leaves no
//! process behind; starting again resumes the same cluster with its data.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata_tests::{free_port, strata_bin};

struct Up {
    child: Option<Child>,
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `strata up` and waits for its quick start (the cluster is ready then).
fn start(dir: &Path, port: u16, clients: &str, peers: &str) -> Up {
    let mut child = Command::new(strata_bin())
        .args(["up", "--data-dir"])
        .arg(dir)
        .args([
            "--nodes",
            "2",
            "--port",
            &port.to_string(),
            "--store-client-ports",
            clients,
            "--store-peer-ports",
            peers,
        ])
        .stdout(Stdio::piped())
        .stderr(up_stderr(dir))
        .spawn()
        .expect("start strata up");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("export KUBECONFIG=") {
                let _ = tx.send(());
            }
        }
    });
    let up = Up { child: Some(child) };
    if rx.recv_timeout(Duration::from_secs(180)).is_err() {
        panic!("strata up did not come up within 180 s\n{}", logs(dir));
    }
    up
}

/// The tail of every component log, for failure messages.
/// `strata up`'s own stderr (what it says while stopping), appended next to the data dir.
fn up_stderr(dir: &Path) -> Stdio {
    let path = dir.with_extension("up-stderr.log");
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    }
}

fn logs(dir: &Path) -> String {
    let mut out = format!(
        "--- strata up's stderr\n{}",
        std::fs::read_to_string(dir.with_extension("up-stderr.log")).unwrap_or_default()
    );
    let Ok(entries) = std::fs::read_dir(dir.join("logs")) else {
        return out;
    };
    for e in entries.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        out.push_str(&format!("--- {}\n", e.path().display()));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// A client from the admin kubeconfig strata up wrote.
fn client(dir: &Path) -> (reqwest::Client, String, String) {
    let kc = std::fs::read_to_string(dir.join("kubeconfig")).expect("kubeconfig written");
    let field = |name: &str| {
        kc.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .expect(name)
    };
    let (server, ca, token) = (
        field("server:"),
        field("certificate-authority:"),
        field("token:"),
    );
    let pem = std::fs::read(&ca).expect("CA file");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA"))
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    (http, server, token)
}

async fn get(c: &(reqwest::Client, String, String), path: &str) -> (u16, Value) {
    match c
        .0
        .get(format!("{}{path}", c.1))
        .bearer_auth(&c.2)
        .send()
        .await
    {
        Ok(r) => {
            let code = r.status().as_u16();
            (code, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

async fn wait_running(c: &(reqwest::Client, String, String), dir: &Path) -> Value {
    let start = Instant::now();
    loop {
        let (_, p) = get(c, "/api/v1/namespaces/default/pods/sleeper").await;
        if p["status"]["phase"] == "Running" {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "pod not Running: {p}\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Processes whose command line mentions `dir` or whose working directory is under it.
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let cwd = std::fs::read_link(e.path().join("cwd"))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if cmd.contains(&needle) || cwd.starts_with(&needle) {
                out.push(format!("{name}: {cmd} (in {cwd})"));
            }
        }
    }
    out
}

fn stop(mut up: Up, dir: &Path) {
    let mut c = up.child.take().expect("running");
    let _ = Command::new("kill")
        .args(["-INT", &c.id().to_string()])
        .status();
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = c.try_wait() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "strata up did not stop within 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "strata up exited with {status}\n{}",
        logs(dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strata_up_starts_a_cluster_stops_cleanly_and_resumes_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let port = free_port();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let clients = format!("{},{},{}", ports[0], ports[1], ports[2]);
    let peers = format!("{},{},{}", ports[3], ports[4], ports[5]);

    let up = start(&dir, port, &clients, &peers);
    let c = client(&dir);
    let (code, nodes) = get(&c, "/api/v1/nodes").await;
    assert_eq!(code, 200);
    assert_eq!(
        nodes["items"].as_array().map(Vec::len),
        Some(2),
        "{nodes}\n{}",
        logs(&dir)
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
        "spec": {"containers": [{"name": "c", "image": "none", "command": ["sleep", "3600"]}]}});
    let r =
        c.0.post(format!("{}/api/v1/namespaces/default/pods", c.1))
            .bearer_auth(&c.2)
            .json(&pod)
            .send()
            .await
            .expect("create pod");
    assert_eq!(r.status().as_u16(), 201, "{}", logs(&dir));
    let first = wait_running(&c, &dir).await;
    // The store is TLS-only with client certificates.
    assert!(dir.join("pki/ca.crt").exists() && dir.join("pki/member.crt").exists());
    stop(up, &dir);
    let left = processes_under(&dir);
    assert!(
        left.is_empty(),
        "processes left after Ctrl-C: {left:#?}\n{}",
        logs(&dir)
    );

    // Again: the same cluster, the same pod (same uid), running again.
    let up = start(&dir, port, &clients, &peers);
    let c = client(&dir);
    let again = wait_running(&c, &dir).await;
    assert_eq!(
        first["metadata"]["uid"], again["metadata"]["uid"],
        "the pod survived the restart"
    );
    stop(up, &dir);
    let left = processes_under(&dir);
    assert!(
        left.is_empty(),
        "processes left after the second Ctrl-C: {left:#?}\n{}",
        logs(&dir)
    );
}
