//! A store member: the engine, MVCC store, lessor, watch hub and Raft node of one process, wired
//! together, plus the background duties of a member (lease expiry, auto-compaction, progress
//! notifications). The gRPC services in `crate::server` are thin layers over this.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use sha2::{Digest, Sha256};
use strata_proto::etcdserverpb::{
    AlarmRequest, AlarmType, CompactionRequest, LeaseRevokeRequest, ResponseHeader,
};
use strata_proto::peer::RaftRequest;
use tokio::sync::watch;

use crate::apply::{Alarms, Applier, Response, Waiters};
use crate::config::{parse_duration, StoreConfig};
use crate::engine::{Engine, EngineSize, RocksEngine};
use crate::error::{Error, Result};
use crate::lease::Lessor;
use crate::metrics::Metrics;
use crate::mvcc::MvccStore;
use crate::raft::node::Node;
use crate::raft::{NoPeers, RaftConfig, RaftHandle};
use crate::watch::WatchHub;

/// The version Status and /version report. Kubernetes checks it; Strata serves the 3.5 API.
pub const ETCD_VERSION: &str = "3.5.17";
pub const CLUSTER_VERSION: &str = "3.5.0";

/// etcd's limit on how far apply may lag commit before new requests are refused.
const MAX_APPLY_LAG: u64 = 5000;

#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

fn hash_u64(parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("sha256 is 32 bytes")).max(1)
}

pub struct Member {
    pub cfg: StoreConfig,
    pub id: u64,
    pub cluster_id: u64,
    pub members: Vec<MemberInfo>,
    pub engine: Arc<dyn Engine>,
    pub mvcc: Arc<MvccStore>,
    pub lessor: Arc<Lessor>,
    pub hub: Arc<WatchHub>,
    pub waiters: Arc<Waiters>,
    pub alarms: Arc<Alarms>,
    pub metrics: Arc<Metrics>,
    pub raft: RaftHandle,
    node: parking_lot::Mutex<Option<Node>>,
    next_id: AtomicU64,
    request_timeout: Duration,
    size_cache: parking_lot::Mutex<(Instant, EngineSize)>,
}

impl Member {
    /// Opens the data directory and starts the Raft node. Services are started by `server::run`.
    pub fn open(cfg: StoreConfig) -> Result<Arc<Self>> {
        let initial = cfg.initial_members()?;
        if initial.len() > 1 || cfg.initial_cluster_state == "existing" {
            return Err(Error::Unsupported(
                "multi-member clusters (replication across members is not implemented yet)".into(),
            ));
        }
        if cfg.heartbeat_interval == 0 || cfg.election_timeout < cfg.heartbeat_interval * 5 {
            return Err(Error::InvalidArgument(
                "--election-timeout must be at least 5 times --heartbeat-interval".into(),
            ));
        }
        let mut ids: Vec<u64> = Vec::new();
        let mut members = Vec::new();
        for (name, peer_urls) in &initial {
            let mut urls = peer_urls.clone();
            urls.sort();
            let id = hash_u64(&[&urls.join(","), &cfg.initial_cluster_token]);
            ids.push(id);
            let client_urls = if *name == cfg.name {
                cfg.advertise_client_urls.clone()
            } else {
                vec![]
            };
            members.push(MemberInfo {
                id,
                name: name.clone(),
                peer_urls: peer_urls.clone(),
                client_urls,
            });
        }
        let id = members
            .iter()
            .find(|m| m.name == cfg.name)
            .map(|m| m.id)
            .expect("validated by initial_members");
        let mut sorted = ids.clone();
        sorted.sort();
        let sorted: Vec<String> = sorted.iter().map(|i| i.to_string()).collect();
        let cluster_id = hash_u64(&[&sorted.join(","), &cfg.initial_cluster_token]);

        std::fs::create_dir_all(&cfg.data_dir).map_err(Error::storage)?;
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(&cfg.data_dir.join("db"))?);
        let metrics = Arc::new(Metrics::default());
        let mvcc = Arc::new(MvccStore::open(engine.clone())?);
        // etcd's minimum lease TTL: 1.5 election timeouts, rounded up to whole seconds.
        let min_ttl = (cfg.election_timeout * 3 / 2).div_ceil(1000) as i64;
        let lessor = Arc::new(Lessor::open(engine.as_ref(), min_ttl)?);
        {
            let index = mvcc.index.read();
            index.for_each_in(&[0], &[0], |k, h| {
                if h.lease != 0 && h.latest().is_some() {
                    lessor.reattach(k, 0, h.lease);
                }
                true
            });
        }
        let hub = WatchHub::new(mvcc.clone());
        let waiters = Arc::new(Waiters::default());
        let alarms = Arc::new(Alarms::load(engine.as_ref())?);
        let applier = Applier::new(
            engine.clone(),
            mvcc.clone(),
            lessor.clone(),
            hub.clone(),
            waiters.clone(),
            alarms.clone(),
            metrics.clone(),
        )?;
        let raft_cfg = RaftConfig {
            id,
            initial_voters: ids,
            heartbeat: Duration::from_millis(cfg.heartbeat_interval),
            election_ticks: (cfg.election_timeout / cfg.heartbeat_interval) as usize,
            snapshot_count: cfg.snapshot_count,
            catch_up_entries: 5000,
        };
        let node = Node::start(raft_cfg, engine.clone(), applier, NoPeers, metrics.clone())?;
        let raft = node.handle.clone();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let engine_size = engine.size();
        let request_timeout =
            Duration::from_secs(5) + Duration::from_millis(cfg.election_timeout) * 2;
        tracing::info!(name = %cfg.name, member_id = format!("{id:x}"), cluster_id = format!("{cluster_id:x}"), revision = mvcc.current_revision(), "store member started");
        Ok(Arc::new(Self {
            cfg,
            id,
            cluster_id,
            members,
            engine,
            mvcc,
            lessor,
            hub,
            waiters,
            alarms,
            metrics,
            raft,
            node: parking_lot::Mutex::new(Some(node)),
            // Unique across restarts: the member's bits, then a time-based counter.
            next_id: AtomicU64::new(((id & 0xffff) << 48) | ((now_ms & 0xff_ffff_ffff) << 8)),
            request_timeout,
            size_cache: parking_lot::Mutex::new((Instant::now(), engine_size)),
        }))
    }

    /// A new request or lease id, unique across this member's lifetime and across members.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) & (i64::MAX as u64)
    }

    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.id,
            revision,
            raft_term: self.raft.status().term,
        }
    }

    /// Fills the member fields of a header the applier produced (or creates one).
    pub fn fill(&self, header: Option<ResponseHeader>) -> Option<ResponseHeader> {
        let rev = header.map_or_else(|| self.mvcc.current_revision(), |h| h.revision);
        Some(self.header(rev))
    }

    /// Refuses writes when the backend is over quota (raising NOSPACE), as etcd does.
    pub async fn check_quota(&self, request_bytes: usize) -> Result<()> {
        if self.alarms.has(AlarmType::Nospace) {
            return Err(Error::NoSpace);
        }
        let size = self.engine_size().total + request_bytes as u64;
        if size > self.cfg.quota_bytes() {
            tracing::warn!(
                size,
                quota = self.cfg.quota_bytes(),
                "backend quota exceeded; raising NOSPACE"
            );
            let alarm = AlarmRequest {
                action: 1,
                member_id: self.id,
                alarm: AlarmType::Nospace as i32,
            };
            let _ = self
                .propose(RaftRequest {
                    alarm: Some(alarm),
                    ..Default::default()
                })
                .await;
            return Err(Error::NoSpace);
        }
        Ok(())
    }

    /// The engine's size, re-read at most every 100 ms (reading it takes a dozen RocksDB property
    /// lookups, too many for every write).
    pub fn engine_size(&self) -> EngineSize {
        let mut cached = self.size_cache.lock();
        if cached.0.elapsed() > Duration::from_millis(100) {
            *cached = (Instant::now(), self.engine.size());
        }
        cached.1
    }

    /// Replicates `req` through Raft and waits for its applied result.
    pub async fn propose(&self, mut req: RaftRequest) -> Result<Response> {
        let st = self.raft.status();
        if st.commit.saturating_sub(st.applied) > MAX_APPLY_LAG {
            return Err(Error::TooManyRequests);
        }
        req.id = self.next_id();
        let id = req.id;
        let data = req.encode_to_vec();
        if data.len() > self.cfg.max_request_bytes + 1024 {
            return Err(Error::RequestTooLarge);
        }
        let rx = self.waiters.register(id);
        let result = async {
            self.raft.propose(data).await?;
            match tokio::time::timeout(self.request_timeout, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(Error::Stopped),
                Err(_) => Err(self.raft.unavailable()),
            }
        }
        .await;
        self.waiters.cancel(id);
        result
    }

    /// Waits until this member may serve a linearizable read.
    pub async fn linearizable_barrier(&self) -> Result<()> {
        self.raft.read_index().await
    }

    /// Runs the member's background duties until `shutdown` fires.
    pub async fn run_background(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let progress = parse_duration(
            &self.cfg.watch_progress_notify_interval,
            Duration::from_secs(1),
        )
        .unwrap_or(Duration::from_secs(600))
        .max(Duration::from_millis(100));
        let mut lease_tick = tokio::time::interval(Duration::from_millis(500));
        let mut progress_tick = tokio::time::interval(progress);
        let mut compactor = AutoCompactor::new(&self.cfg);
        let mut compact_tick = tokio::time::interval(
            compactor
                .as_ref()
                .map_or(Duration::from_secs(3600), |c| c.tick),
        );
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = lease_tick.tick() => self.revoke_expired().await,
                _ = progress_tick.tick() => self.hub.notify_progress(),
                _ = compact_tick.tick() => {
                    if let Some(c) = compactor.as_mut() {
                        if let Some(rev) = c.target(self.mvcc.current_revision()) {
                            if self.raft.is_leader() && rev > self.mvcc.compact_revision() {
                                let req = RaftRequest { compaction: Some(CompactionRequest { revision: rev, physical: false }), ..Default::default() };
                                match self.propose(req).await {
                                    Ok(_) => tracing::info!(revision = rev, "auto-compacted"),
                                    Err(e) => tracing::warn!(error = %e, revision = rev, "auto-compaction failed"),
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Leader only: proposes the revocation of every expired lease.
    async fn revoke_expired(&self) {
        if !self.raft.is_leader() {
            return;
        }
        let expired = self.lessor.expired(500);
        let revokes = expired.into_iter().map(|id| async move {
            let req = RaftRequest {
                lease_revoke: Some(LeaseRevokeRequest { id }),
                ..Default::default()
            };
            match self.propose(req).await {
                Ok(_) | Err(Error::LeaseNotFound) => {}
                Err(e) => tracing::warn!(lease = id, error = %e, "failed to revoke expired lease"),
            }
        });
        futures::future::join_all(revokes).await;
    }

    /// Stops the Raft node and waits for its thread (services must be stopped first).
    pub fn stop(&self) -> Result<()> {
        match self.node.lock().take() {
            Some(node) => node.stop(),
            None => Ok(()),
        }
    }
}

/// etcd's auto-compaction: periodic (keep `retention` of history, compacting every tenth of it)
/// or revision (keep the last N revisions, checked every 5 minutes).
struct AutoCompactor {
    tick: Duration,
    mode: CompactMode,
}

enum CompactMode {
    Periodic {
        samples: std::collections::VecDeque<i64>,
        keep: usize,
    },
    Revision(i64),
}

impl AutoCompactor {
    fn new(cfg: &StoreConfig) -> Option<Self> {
        if cfg.auto_compaction_mode == "revision" {
            let n: i64 = cfg.auto_compaction_retention.trim().parse().ok()?;
            return (n > 0).then_some(Self {
                tick: Duration::from_secs(300),
                mode: CompactMode::Revision(n),
            });
        }
        let retention =
            parse_duration(&cfg.auto_compaction_retention, Duration::from_secs(3600)).ok()?;
        if retention.is_zero() {
            return None;
        }
        let tick = (retention / 10).max(Duration::from_millis(100));
        Some(Self {
            tick,
            mode: CompactMode::Periodic {
                samples: Default::default(),
                keep: 10,
            },
        })
    }

    /// Called every tick with the current revision; the revision to compact to, if any.
    fn target(&mut self, current: i64) -> Option<i64> {
        match &mut self.mode {
            CompactMode::Revision(n) => (current - *n > 0).then_some(current - *n),
            CompactMode::Periodic { samples, keep } => {
                samples.push_back(current);
                if samples.len() > *keep {
                    samples.pop_front()
                } else {
                    None
                }
            }
        }
    }
}
