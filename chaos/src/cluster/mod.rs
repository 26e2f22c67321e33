//! A cluster of real `strata store` processes, started, killed, paused, wiped and re-added the
//! way an operator (or a chaos tester) would, with their peer links on a [`Network`].
//!
//! Members keep their slot (name, client address, peer URL) for the whole run, so a member that
//! is removed, wiped and added back returns with the same URLs and a new member id, as
//! `etcdctl member remove` / `member add` / a fresh data directory would do it.

mod http;
pub mod ports;
pub mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_proto::etcdserverpb::{
    cluster_client::ClusterClient, MemberAddRequest, MemberListRequest, MemberRemoveRequest,
};
use tonic::transport::{Channel, Endpoint};

pub use http::http_get;
use process::Proc;

use crate::net::{Mode, Network};

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The `strata` binary.
    pub bin: PathBuf,
    /// Run directory: data and logs of every member go under it.
    pub dir: PathBuf,
    pub members: usize,
    pub mode: Mode,
    /// Extra `strata store` flags for every member.
    pub store_flags: Vec<String>,
}

pub struct Member {
    pub name: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    proc: Option<Proc>,
    /// --initial-cluster-state for the next start.
    state: &'static str,
}

pub struct Cluster {
    pub cfg: ClusterConfig,
    pub net: Network,
    pub members: Vec<Member>,
    initial_cluster: String,
}

/// Generous deadline for anything a loaded machine has to do.
pub const DEADLINE: Duration = Duration::from_secs(60);

impl Cluster {
    /// Creates the network, starts every member and waits until all are healthy.
    pub async fn start(cfg: ClusterConfig) -> Result<Cluster, String> {
        std::fs::create_dir_all(cfg.dir.join("logs"))
            .map_err(|e| format!("{}: {e}", cfg.dir.display()))?;
        let net = Network::new(cfg.mode, cfg.members).await?;
        let members = (0..cfg.members)
            .map(|i| Member {
                name: format!("n{}", i + 1),
                data_dir: cfg.dir.join("data").join(format!("n{}", i + 1)),
                log: cfg.dir.join("logs").join(format!("n{}.log", i + 1)),
                proc: None,
                state: "new",
            })
            .collect::<Vec<_>>();
        let initial_cluster = members
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{}={}", m.name, net.peer_url(i)))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            cfg,
            net,
            members,
            initial_cluster,
        };
        for i in 0..c.members.len() {
            c.spawn(i)?;
        }
        c.wait_healthy(&(0..c.members.len()).collect::<Vec<_>>(), DEADLINE)
            .await?;
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn client_addr(&self, i: usize) -> String {
        self.net.client_addr(i)
    }

    pub fn client_url(&self, i: usize) -> String {
        format!("http://{}", self.net.client_addr(i))
    }

    /// Every member's client URL, comma separated (for --etcd-servers).
    pub fn client_urls(&self) -> String {
        (0..self.len())
            .map(|i| self.client_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts member `i` (if it is not running) with its data directory as it is.
    pub fn spawn(&mut self, i: usize) -> Result<(), String> {
        if self.running(i) {
            return Ok(());
        }
        let m = &self.members[i];
        let url = self.client_url(i);
        let peer = self.net.peer_url(i);
        let mut cmd = self.net.command(i, &self.cfg.bin);
        cmd.args(["store", "--name", &m.name, "--data-dir"])
            .arg(&m.data_dir)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", m.state])
            .args(self.net.member_flags(i))
            .args(&self.cfg.store_flags)
            // STRATA_CHAOS_MEMBER_LOG overrides the members' log filter (e.g. to debug a link).
            .env(
                "RUST_LOG",
                std::env::var("STRATA_CHAOS_MEMBER_LOG")
                    .unwrap_or_else(|_| "info,raft=info,h2=warn,tower=warn".into()),
            );
        let p = Proc::spawn(cmd, &m.log)?;
        self.members[i].proc = Some(p);
        Ok(())
    }

    pub fn running(&mut self, i: usize) -> bool {
        self.members[i].proc.as_mut().is_some_and(|p| p.running())
    }

    pub fn paused(&self, i: usize) -> bool {
        self.members[i].proc.as_ref().is_some_and(|p| p.paused())
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].proc.take() {
            p.kill9();
        }
    }

    /// SIGTERM (the member hands leadership over first); whether it exited cleanly.
    pub async fn terminate(&mut self, i: usize) -> bool {
        let Some(mut p) = self.members[i].proc.take() else {
            return true;
        };
        p.terminate(Duration::from_secs(30)).await
    }

    pub fn pause(&mut self, i: usize) -> Result<(), String> {
        self.members[i].proc.as_mut().ok_or("not running")?.pause()
    }

    pub fn resume(&mut self, i: usize) -> Result<(), String> {
        self.members[i].proc.as_mut().ok_or("not running")?.resume()
    }

    /// Removes member `i`'s data directory (it must be stopped) and makes its next start join
    /// the running cluster (`--initial-cluster-state existing`).
    pub fn wipe(&mut self, i: usize) -> Result<(), String> {
        self.kill9(i);
        let d = &self.members[i].data_dir;
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| format!("wipe {}: {e}", d.display()))?;
        }
        self.members[i].state = "existing";
        Ok(())
    }

    /// A member process that exited on its own (it crashed or refused to start).
    pub fn crashed(&mut self) -> Option<(usize, String)> {
        for i in 0..self.len() {
            if let Some(p) = self.members[i].proc.as_mut() {
                if let Some(st) = p.exited() {
                    return Some((i, st.to_string()));
                }
            }
        }
        None
    }

    pub async fn healthy(&self, i: usize) -> bool {
        matches!(
            http_get(&self.client_addr(i), "/health").await,
            Some((200, _))
        )
    }

    /// Whether member `i` reports itself leader (None: it did not answer).
    pub async fn is_leader(&self, i: usize) -> Option<bool> {
        let (code, body) = http_get(&self.client_addr(i), "/metrics").await?;
        if code != 200 {
            return None;
        }
        let line = body
            .lines()
            .find(|l| l.starts_with("etcd_server_is_leader "))?;
        Some(line.split_whitespace().nth(1)? == "1")
    }

    /// The one member that reports itself leader, if exactly one running, unpaused member does.
    pub async fn leader(&self) -> Option<usize> {
        let answers = futures::future::join_all((0..self.len()).map(|i| async move {
            if self.paused(i) {
                return false;
            }
            self.is_leader(i).await == Some(true)
        }))
        .await;
        let leaders: Vec<usize> = (0..self.len()).filter(|i| answers[*i]).collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    pub async fn wait_leader(&self, deadline: Duration) -> Result<usize, String> {
        let end = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < end {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("no leader within {deadline:?}"))
    }

    /// Waits until every member in `which` answers /health (has a leader, no alarm).
    pub async fn wait_healthy(
        &mut self,
        which: &[usize],
        deadline: Duration,
    ) -> Result<(), String> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let mut all = true;
            for &i in which {
                if let Some(st) = self.members[i].proc.as_mut().and_then(|p| p.exited()) {
                    return Err(format!(
                        "{} exited with {st}; its log ends:\n{}",
                        self.members[i].name,
                        tail(&self.members[i].log, 30)
                    ));
                }
                if !self.healthy(i).await {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(());
            }
            if tokio::time::Instant::now() > end {
                let names: Vec<&str> = which
                    .iter()
                    .map(|i| self.members[*i].name.as_str())
                    .collect();
                return Err(format!("{names:?} not healthy within {deadline:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn channel(&self, i: usize) -> Result<Channel, String> {
        Ok(Endpoint::from_shared(self.client_url(i))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(15))
            .connect_lazy())
    }

    /// The member id of slot `i` as the cluster (asked through member `via`) knows it.
    pub async fn member_id(&self, via: usize, i: usize) -> Result<Option<u64>, String> {
        let mut c = ClusterClient::new(self.channel(via)?);
        let list = c
            .member_list(MemberListRequest { linearizable: true })
            .await
            .map_err(|s| format!("member list: {}", s.message()))?
            .into_inner();
        let url = self.net.peer_url(i);
        Ok(list
            .members
            .iter()
            .find(|m| m.peer_ur_ls.iter().any(|u| u.trim_end_matches('/') == url))
            .map(|m| m.id))
    }

    /// `etcdctl member remove` of slot `i`, asked through member `via`.
    pub async fn member_remove(&self, via: usize, i: usize) -> Result<(), String> {
        let Some(id) = self.member_id(via, i).await? else {
            return Err(format!("{} is not a member", self.members[i].name));
        };
        ClusterClient::new(self.channel(via)?)
            .member_remove(MemberRemoveRequest { id })
            .await
            .map_err(|s| format!("member remove: {}", s.message()))?;
        Ok(())
    }

    /// `etcdctl member add` of slot `i`'s peer URL, asked through member `via`.
    pub async fn member_add(&self, via: usize, i: usize) -> Result<u64, String> {
        let r = ClusterClient::new(self.channel(via)?)
            .member_add(MemberAddRequest {
                peer_ur_ls: vec![self.net.peer_url(i)],
                is_learner: false,
            })
            .await
            .map_err(|s| format!("member add: {}", s.message()))?
            .into_inner();
        Ok(r.member.map(|m| m.id).unwrap_or_default())
    }

    /// Kills every member and removes the network.
    pub async fn shutdown(&mut self) {
        for i in 0..self.len() {
            self.kill9(i);
        }
        self.net.shutdown().await;
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
