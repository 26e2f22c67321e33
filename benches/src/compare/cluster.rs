//! A three-member cluster of real server processes on loopback: Debian's `etcd` or
//! `strata store`, started with the same flags (they share etcd's names), each member in a
//! fresh data directory. The processes are killed and their data removed (logs kept) when the
//! [`ProcCluster`] is dropped, so an interrupted comparison leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_proto::etcdserverpb::{kv_client::KvClient, PutRequest};

/// Which server a cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Etcd,
    Strata,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Etcd => "etcd",
            Server::Strata => "strata",
        }
    }
}

pub struct ProcCluster {
    pub server: Server,
    dir: PathBuf,
    children: Vec<Child>,
    pub client_ports: Vec<u16>,
}

/// How long a fresh cluster may take to accept its first write.
const START_DEADLINE: Duration = Duration::from_secs(60);

impl ProcCluster {
    /// Starts `members` members of `server` (binary `bin`) under `dir` (emptied first), client
    /// ports `base + 10 i`, peer ports `base + 10 i + 1`, and waits until a write succeeds.
    pub async fn start(
        server: Server,
        bin: &Path,
        dir: &Path,
        base: u16,
        members: usize,
    ) -> Result<ProcCluster, String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = |i: usize, off: u16| base + (i as u16 + 1) * 10 + off;
        let initial: Vec<String> = (0..members)
            .map(|i| format!("m{}=http://127.0.0.1:{}", i + 1, port(i, 1)))
            .collect();
        let mut c = ProcCluster {
            server,
            dir: dir.to_path_buf(),
            children: Vec::new(),
            client_ports: (0..members).map(|i| port(i, 0)).collect(),
        };
        for i in 0..members {
            let client = format!("http://127.0.0.1:{}", port(i, 0));
            let peer = format!("http://127.0.0.1:{}", port(i, 1));
            let log = std::fs::File::create(dir.join(format!("m{}.log", i + 1)))
                .map_err(|e| format!("member log: {e}"))?;
            let mut cmd = Command::new(bin);
            if server == Server::Strata {
                cmd.arg("store");
            }
            cmd.args(["--name", &format!("m{}", i + 1), "--data-dir"])
                .arg(dir.join(format!("m{}", i + 1)))
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            let child = cmd
                .spawn()
                .map_err(|e| format!("starting {}: {e}", bin.display()))?;
            c.children.push(child);
        }
        c.wait_writable().await?;
        Ok(c)
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.client_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    async fn wait_writable(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            for (i, c) in self.children.iter_mut().enumerate() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(format!(
                        "{} member m{} exited with {status}; see {}",
                        self.server.name(),
                        i + 1,
                        self.dir.join(format!("m{}.log", i + 1)).display()
                    ));
                }
            }
            let url = format!("http://127.0.0.1:{}", self.client_ports[0]);
            let attempt = async {
                let mut kv = KvClient::connect(url).await.map_err(|e| e.to_string())?;
                kv.put(PutRequest {
                    key: "bench-ready".into(),
                    value: "1".into(),
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
                return Ok(());
            }
            if started.elapsed() > START_DEADLINE {
                return Err(format!(
                    "{} cluster not writable within {START_DEADLINE:?}",
                    self.server.name()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resident memory of every member, in KiB (VmRSS), summed.
    pub fn rss_kib(&self) -> u64 {
        self.children.iter().filter_map(|c| rss_kib(c.id())).sum()
    }
}

impl Drop for ProcCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        // The data goes; the members' logs stay for a post-mortem.
        for i in 0..self.client_ports.len() {
            let _ = std::fs::remove_dir_all(self.dir.join(format!("m{}", i + 1)));
        }
    }
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
