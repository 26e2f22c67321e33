//! Helpers for the cross-process tests: start the real `strata` binary in a temporary directory,
//! find the port it bound, wait for it to be healthy, and always clean it up.

pub mod components;
pub mod kube;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous deadline for anything a loaded 2-core machine has to do.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The `strata` binary built by `cargo build --bin strata` (as `make test` does first).
pub fn strata_bin() -> PathBuf {
    if let Ok(p) = std::env::var("STRATA_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("strata");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bin strata` first (`make test` does)",
        bin.display()
    );
    bin
}

/// Whether an external tool is installed; tests that need it say so and skip when not on CI.
pub fn require_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").is_ok() {
            panic!("{name} is required on CI (make setup installs it)");
        }
        eprintln!("SKIPPED: {name} is not installed (run `make setup`)");
    }
    found
}

/// A running `strata store` member.
pub struct StoreProc {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    pub log: PathBuf,
    extra: Vec<String>,
}

impl StoreProc {
    /// Starts a one-member store with its data in `dir`, on a free port.
    pub fn start(dir: &Path, extra: &[&str]) -> StoreProc {
        let mut p = StoreProc {
            dir: dir.to_path_buf(),
            port: 0,
            child: None,
            log: dir.join("strata.log"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        p.spawn();
        p
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("create test dir");
        let url = format!("http://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(strata_bin());
        cmd.args(["store", "--name", "n1", "--data-dir"])
            .arg(self.dir.join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", "http://127.0.0.1:0"])
            .args(&self.extra)
            .env("RUST_LOG", "info,raft=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start strata store");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if !sent {
                    if let Some(port) = line.split("listening on http://127.0.0.1:").nth(1) {
                        let port: String =
                            port.chars().take_while(|c| c.is_ascii_digit()).collect();
                        if let Ok(port) = port.parse::<u16>() {
                            let _ = tx.send(port);
                            sent = true;
                        }
                    }
                }
            }
        });
        self.child = Some(child);
        let port = match rx.recv_timeout(DEADLINE) {
            Ok(p) => p,
            Err(_) => panic!(
                "strata store did not report its port; log:\n{}",
                self.log_text()
            ),
        };
        self.port = port;
        self.wait_healthy();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls /health until the member has a leader and no alarm.
    pub fn wait_healthy(&mut self) {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "strata store exited with {status}; log:\n{}",
                        self.log_text()
                    );
                }
            }
            if let Some((200, _)) = http_get(self.port, "/health") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "strata store not healthy within {DEADLINE:?}; log:\n{}",
            self.log_text()
        );
    }

    /// kill -9, then wait for the process to be gone.
    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        terminate(&mut self.child)
    }

    /// Starts the member again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for StoreProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// kill -9 the child (if any) and reap it.
pub(crate) fn kill9(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Sends SIGTERM (with the kill command rather than libc, so no unsafe code).
fn sigterm(c: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
}

/// Waits up to the deadline for the child to exit; its status (the child is gone then).
fn wait_exit(child: &mut Option<Child>) -> Option<std::process::ExitStatus> {
    let c = child.as_mut()?;
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Ok(Some(status)) = c.try_wait() {
            *child = None;
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// SIGTERM, then wait for the exit (kill -9 after the deadline); whether it exited successfully.
/// No child counts as a clean exit.
fn terminate(child: &mut Option<Child>) -> bool {
    let Some(c) = child.as_ref() else {
        return true;
    };
    sigterm(c);
    match wait_exit(child) {
        Some(status) => status.success(),
        None => {
            kill9(child);
            false
        }
    }
}

/// A minimal HTTP/1.1 GET against loopback: (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

/// Runs etcdctl (API v3) against `endpoint` with `args`, feeding `stdin`; (success, stdout+stderr).
pub fn etcdctl(endpoint: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["--command-timeout=30s", "--dial-timeout=10s"])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run etcdctl");
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin is piped");
        si.write_all(input.as_bytes()).expect("write etcdctl stdin");
    }
    let out = child.wait_with_output().expect("etcdctl output");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Waits until `cond` holds, polling, or panics with `what` after the deadline.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A loopback port that is free now and that nothing else on this machine will be handed by
/// the kernel before the child binds it. Used where a port must be known before the process
/// starts (peer URLs in --initial-cluster).
///
/// Binding port 0 is not enough: the kernel hands out the same ephemeral range for outgoing
/// connections, so a member dialling its peers can take a port chosen that way before the
/// member it was chosen for binds it ("Address already in use"). Ports are therefore taken from
/// below the ephemeral range (`ip_local_port_range`), walked from a per-process offset so that
/// concurrent test processes start far apart, never repeated within a process, and checked by
/// binding them.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
        })
        .unwrap_or(32768);
    let (low, high) = if ephemeral_low > 12_000 {
        (10_000, ephemeral_low)
    } else {
        // An unusual range leaves no room below it: fall back to the kernel's choice.
        return std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind a free loopback port");
    };
    let span = high - low;
    let offset = (std::process::id().wrapping_mul(7919)) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (low + (offset + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below the ephemeral range {low}..{high}");
}

/// A TCP proxy in front of a member's peer listener that can cut the link: while cut, existing
/// connections are shut down and new ones are closed at once. Other members reach the member
/// only through it (its advertised peer URL is the proxy's), so cutting it isolates the member
/// from everything its peers send.
pub struct FaultProxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl FaultProxy {
    pub fn start(target: u16) -> FaultProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (c, s, cs) = (cut.clone(), stop.clone(), conns.clone());
        std::thread::spawn(move || {
            for incoming in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = incoming else { continue };
                if c.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let pipes = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                );
                let (Ok(c1), Ok(s1), Ok(c2), Ok(s2)) = pipes else {
                    continue;
                };
                {
                    let mut list = cs.lock().expect("proxy connection list");
                    list.retain(|t: &TcpStream| t.peer_addr().is_ok());
                    list.push(client);
                    list.push(server);
                }
                std::thread::spawn(move || pipe(c1, s1));
                std::thread::spawn(move || pipe(s2, c2));
            }
        });
        FaultProxy {
            port,
            cut,
            stop,
            conns,
        }
    }

    /// Cuts the link: drops every connection and refuses new ones until `heal`.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::Release);
        for c in self.conns.lock().expect("proxy connection list").drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::Release);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One member of a test cluster: fixed client and peer ports (so it restarts on the same URLs),
/// its peer traffic behind a [`FaultProxy`].
pub struct ClusterMember {
    pub name: String,
    pub dir: PathBuf,
    pub client_port: u16,
    pub peer_port: u16,
    pub proxy: FaultProxy,
    pub log: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    initial_cluster: String,
    state: String,
    peer_scheme: &'static str,
}

impl ClusterMember {
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The peer URL the cluster knows this member by (its proxy).
    pub fn peer_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.peer_scheme, self.proxy.port)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn start(&mut self) {
        if self.is_running() {
            return;
        }
        std::fs::create_dir_all(&self.dir).expect("create member dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(strata_bin())
            .args(["store", "--name", &self.name, "--data-dir"])
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &self.url()])
            .args(["--advertise-client-urls", &self.url()])
            .args([
                "--listen-peer-urls",
                &format!("{}://127.0.0.1:{}", self.peer_scheme, self.peer_port),
            ])
            .args(["--initial-advertise-peer-urls", &self.peer_url()])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", &self.state])
            .args(&self.extra)
            .env("RUST_LOG", "info,raft=info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start strata store");
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    /// SIGTERM and wait for the exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        terminate(&mut self.child)
    }

    /// Sends SIGTERM without waiting (see `wait_exit`).
    pub fn sigterm(&mut self) {
        if let Some(c) = self.child.as_ref() {
            sigterm(c);
        }
    }

    /// Waits for the process to exit on its own; its exit status.
    pub fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        wait_exit(&mut self.child)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A gauge from /metrics, if the member answers.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (code, body) = http_get(self.client_port, "/metrics")?;
        if code != 200 {
            return None;
        }
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    pub fn is_leader(&self) -> bool {
        self.metric("etcd_server_is_leader") == Some(1.0)
    }

    pub fn has_leader(&self) -> bool {
        self.metric("etcd_server_has_leader") == Some(1.0)
    }

    pub fn healthy(&self) -> bool {
        matches!(http_get(self.client_port, "/health"), Some((200, _)))
    }
}

impl Drop for ClusterMember {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A store cluster of real `strata store` processes on loopback.
pub struct Cluster {
    pub dir: PathBuf,
    pub members: Vec<ClusterMember>,
    extra: Vec<String>,
    peer_scheme: &'static str,
}

impl Cluster {
    /// Starts `n` members (each with `extra` flags) and waits until every one is healthy.
    pub fn start(dir: &Path, n: usize, extra: &[&str]) -> Cluster {
        Self::start_with_scheme(dir, n, extra, "http")
    }

    /// Like `start`, with https peer URLs (`extra` must carry the --peer-* TLS flags).
    pub fn start_peer_tls(dir: &Path, n: usize, extra: &[&str]) -> Cluster {
        Self::start_with_scheme(dir, n, extra, "https")
    }

    fn start_with_scheme(
        dir: &Path,
        n: usize,
        extra: &[&str],
        peer_scheme: &'static str,
    ) -> Cluster {
        let mut members: Vec<ClusterMember> = (1..=n)
            .map(|i| {
                let peer_port = free_port();
                ClusterMember {
                    name: format!("n{i}"),
                    dir: dir.join(format!("n{i}")),
                    client_port: free_port(),
                    peer_port,
                    proxy: FaultProxy::start(peer_port),
                    log: dir.join(format!("n{i}.log")),
                    child: None,
                    extra: extra.iter().map(|s| s.to_string()).collect(),
                    initial_cluster: String::new(),
                    state: "new".into(),
                    peer_scheme,
                }
            })
            .collect();
        let initial: Vec<String> = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect();
        for m in &mut members {
            m.initial_cluster = initial.join(",");
            m.start();
        }
        let c = Cluster {
            dir: dir.to_path_buf(),
            members,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            peer_scheme,
        };
        c.wait_healthy();
        c
    }

    /// Comma-separated client endpoints of the running members.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| m.endpoint())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client endpoints of every member but those in `skip`.
    pub fn endpoints_except(&self, skip: &[usize]) -> Vec<String> {
        (0..self.members.len())
            .filter(|i| !skip.contains(i))
            .map(|i| self.members[i].endpoint())
            .collect()
    }

    pub fn wait_healthy(&self) {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if self.members.iter().all(|m| m.healthy()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cluster not healthy within {DEADLINE:?}\n{}", self.logs());
    }

    /// Index of the member that reports itself leader, if exactly one does.
    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].is_leader())
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    pub fn wait_leader(&self) -> usize {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(l) = self.leader() {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no leader within {DEADLINE:?}\n{}", self.logs());
    }

    /// Prepares a new member (not started) to join with `--initial-cluster-state existing`;
    /// its peer URL is what `etcdctl member add` must be given.
    pub fn new_member(&mut self, name: &str) -> usize {
        let peer_port = free_port();
        let m = ClusterMember {
            name: name.to_string(),
            dir: self.dir.join(name),
            client_port: free_port(),
            peer_port,
            proxy: FaultProxy::start(peer_port),
            log: self.dir.join(format!("{name}.log")),
            child: None,
            extra: self.extra.clone(),
            initial_cluster: String::new(),
            state: "existing".into(),
            peer_scheme: self.peer_scheme,
        };
        self.members.push(m);
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect();
        let i = self.members.len() - 1;
        self.members[i].initial_cluster = initial.join(",");
        i
    }

    /// Prepares member `i` (stopped, removed and added again) to join the running cluster with an
    /// empty data directory; returns `i`.
    pub fn rejoin(&mut self, i: usize) -> usize {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect();
        let m = &mut self.members[i];
        m.kill9();
        let _ = std::fs::remove_dir_all(&m.dir);
        m.state = "existing".into();
        m.initial_cluster = initial.join(",");
        i
    }

    /// Every member's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let text = m.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("----- {} -----\n", m.name));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// Waits until the async `cond` holds, polling, or panics with `what` after the deadline.
pub async fn wait_until_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A one-member Debian etcd (the reference implementation) on free loopback ports.
pub struct EtcdProc {
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl EtcdProc {
    pub fn start(dir: &Path) -> EtcdProc {
        std::fs::create_dir_all(dir).expect("etcd dir");
        let port = free_port();
        let peer = free_port();
        let client = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.join("etcd.log");
        let logf = std::fs::File::create(&log).expect("etcd log");
        let child = Command::new("etcd")
            .args(["--name", "e1", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("e1={peer_url}")])
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start etcd");
        let mut p = EtcdProc {
            port,
            child: Some(child),
            log,
        };
        let start = Instant::now();
        loop {
            if let Some((200, body)) = http_get(port, "/health") {
                if body.contains("true") {
                    break;
                }
            }
            if let Some(Ok(Some(status))) = p.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "etcd exited with {status}: {}",
                    std::fs::read_to_string(&p.log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < DEADLINE,
                "etcd not healthy: {}",
                std::fs::read_to_string(&p.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        p.port = port;
        p
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for EtcdProc {
    fn drop(&mut self) {
        kill9(&mut self.child);
    }
}
