//! Helpers for the cross-process tests: start the real `strata` binary in a temporary directory,
//! find the port it bound, wait for it to be healthy, and always clean it up.

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
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let pid = c.id() as i32;
        // SAFETY-free: use the kill command rather than libc to send SIGTERM.
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
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
