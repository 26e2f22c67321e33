//! A store member: the engine, MVCC store, lessor, watch hub and Raft node of one process, wired
//! together, plus the background duties of a member (lease expiry, auto-compaction, progress
//! notifications). The gRPC services in `crate::server` are thin layers over this.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use sha2::{Digest, Sha256};
use strata_proto::etcdserverpb::{
    AlarmRequest, AlarmType, CompactionRequest, LeaseRevokeRequest, ResponseHeader,
};
use strata_proto::peer::{Member as PbMember, RaftRequest};
use tokio::sync::watch;
use tonic::transport::ClientTlsConfig;

use crate::apply::{Alarms, Applier, Parts, Response, Snapshotter, Waiters};
use crate::config::{parse_duration, StoreConfig};
use crate::engine::{Engine, EngineSize, RocksEngine};
use crate::error::{Error, Result};
use crate::lease::Lessor;
use crate::membership::{self, Membership};
use crate::metrics::Metrics;
use crate::mvcc::MvccStore;
use crate::raft::node::Node;
use crate::raft::{PeerDirectory, PeerTransport, RaftConfig, RaftHandle};
use crate::watch::WatchHub;

/// The version Status and /version report. Kubernetes checks it; Strata serves the 3.5 API.
pub const ETCD_VERSION: &str = "3.5.17";
pub const CLUSTER_VERSION: &str = "3.5.0";

/// etcd's limit on how far apply may lag commit before new requests are refused.
const MAX_APPLY_LAG: u64 = 5000;

fn hash_u64(parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("sha256 is 32 bytes")).max(1)
}

/// A member id derived from peer URLs (and, for members added later, the time), as etcd does.
pub fn member_id(peer_urls: &[String], token: &str, salt: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    if salt.is_empty() {
        hash_u64(&[&urls.join(","), token])
    } else {
        hash_u64(&[&urls.join(","), token, salt])
    }
}

/// What a joining member learned from the running cluster.
pub type JoinInfo = strata_proto::peer::MembersResponse;

pub struct Member {
    pub cfg: StoreConfig,
    pub id: u64,
    pub cluster_id: u64,
    pub members: Arc<Membership>,
    pub engine: Arc<dyn Engine>,
    pub mvcc: Arc<MvccStore>,
    pub lessor: Arc<Lessor>,
    pub hub: Arc<WatchHub>,
    pub waiters: Arc<Waiters>,
    /// Whether a lone writer polls for its answer rather than sleeping.
    reply_poll: crate::busy_poll::BusyPoll,
    pub alarms: Arc<Alarms>,
    pub metrics: Arc<Metrics>,
    pub raft: RaftHandle,
    pub peers: PeerTransport,
    pub snap_dir: PathBuf,
    node: parking_lot::Mutex<Option<Node>>,
    next_id: AtomicU64,
    pub request_timeout: Duration,
    size_cache: parking_lot::Mutex<(Instant, EngineSize)>,
}

/// The members of a new cluster as --initial-cluster describes them, and the cluster id.
fn initial_table(cfg: &StoreConfig) -> Result<(u64, Vec<PbMember>)> {
    let mut members = Vec::new();
    for (name, peer_urls) in cfg.initial_members()? {
        let id = member_id(&peer_urls, &cfg.initial_cluster_token, "");
        // Identical on every founding member; client URLs are published through the log.
        members.push(PbMember {
            id,
            name,
            peer_urls,
            client_urls: vec![],
            is_learner: false,
        });
    }
    let mut ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    ids.sort();
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let cluster_id = hash_u64(&[&ids.join(","), &cfg.initial_cluster_token]);
    Ok((cluster_id, members))
}

/// True when two URL lists name the same URLs (order and trailing slashes aside).
pub fn same_urls(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v
            .iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

impl Member {
    /// Opens the data directory and starts the Raft node. Services are started by `server::run`.
    /// `join` is the membership learned from the cluster when this member joins an existing one.
    /// Must be called within a Tokio runtime (e.g. from `spawn_blocking`).
    pub fn open(
        cfg: StoreConfig,
        join: Option<JoinInfo>,
        peer_tls: Option<ClientTlsConfig>,
    ) -> Result<Arc<Self>> {
        if cfg.heartbeat_interval == 0 || cfg.election_timeout < cfg.heartbeat_interval * 5 {
            return Err(Error::InvalidArgument(
                "--election-timeout must be at least 5 times --heartbeat-interval".into(),
            ));
        }
        let (new_cluster_id, new_members) = initial_table(&cfg)?;
        // This member's id in the cluster it joins, found before anything is written: a member
        // that was not added yet must not leave a data directory behind (the next start would
        // take it for a restart).
        let joined_as = match &join {
            Some(join) => Some(
                join.members
                    .iter()
                    .find(|m| same_urls(&m.peer_urls, &cfg.initial_advertise_peer_urls))
                    .map(|m| m.id)
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "this member's peer URLs {:?} are not in the cluster; add it first (etcdctl member add {} --peer-urls=...)",
                            cfg.initial_advertise_peer_urls, cfg.name
                        ))
                    })?,
            ),
            None => None,
        };
        std::fs::create_dir_all(&cfg.data_dir).map_err(Error::storage)?;
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(&cfg.data_dir.join("db"))?);
        let snap_dir = cfg.data_dir.join("snap");
        crate::apply::finish_interrupted_restore(
            engine.as_ref(),
            &snap_dir,
            crate::raft::storage::reset_to_snapshot,
        )?;
        // Checkpoints sent or received before a restart are of no use any more.
        let _ = std::fs::remove_dir_all(&snap_dir);
        std::fs::create_dir_all(&snap_dir).map_err(Error::storage)?;

        let members = Arc::new(Membership::load(engine.as_ref())?);
        let id = match membership::local_id(engine.as_ref())? {
            Some(id) => id,
            None if cfg.initial_cluster_state == "existing" => {
                let (Some(join), Some(id)) = (join, joined_as) else {
                    return Err(Error::InvalidArgument(
                        "--initial-cluster-state existing: no member of --initial-cluster answered"
                            .into(),
                    ));
                };
                members.bootstrap(
                    engine.as_ref(),
                    join.cluster_id,
                    join.members,
                    &join.removed,
                    id,
                )?;
                id
            }
            None => {
                let id = new_members
                    .iter()
                    .find(|m| m.name == cfg.name)
                    .map(|m| m.id)
                    .expect("validated by initial_members");
                members.bootstrap(engine.as_ref(), new_cluster_id, new_members, &[], id)?;
                id
            }
        };
        // Used only if the log was never written (so a crash right after the membership
        // bootstrap above still bootstraps the log on the next start).
        let initial_voters = if cfg.initial_cluster_state == "new" {
            members.voters()
        } else {
            Vec::new()
        };
        if members.is_removed(id) {
            return Err(Error::MemberRemoved);
        }
        let cluster_id = members.cluster_id();

        let metrics = Arc::new(Metrics::default());
        let mvcc = Arc::new(MvccStore::open(engine.clone())?);
        // etcd's minimum lease TTL: 1.5 election timeouts, rounded up to whole seconds.
        let min_ttl = (cfg.election_timeout * 3 / 2).div_ceil(1000) as i64;
        let lessor = Arc::new(Lessor::open(engine.as_ref(), min_ttl)?);
        crate::apply::attach_lease_keys(&mvcc, &lessor);
        let hub = WatchHub::new(mvcc.clone());
        let waiters = Arc::new(Waiters::default());
        let alarms = Arc::new(Alarms::load(engine.as_ref())?);
        let applier = Applier::new(Parts {
            engine: engine.clone(),
            mvcc: mvcc.clone(),
            lessor: lessor.clone(),
            hub: hub.clone(),
            waiters: waiters.clone(),
            alarms: alarms.clone(),
            metrics: metrics.clone(),
            members: members.clone(),
            snap_dir: snap_dir.clone(),
        })?;
        let busy_poll = crate::config::parse_duration(&cfg.busy_poll, Duration::from_micros(1))
            .map_err(|_| {
                Error::InvalidArgument(format!(
                    "--experimental-busy-poll: invalid duration {:?}",
                    cfg.busy_poll
                ))
            })?;
        let raft_cfg = RaftConfig {
            id,
            initial_voters,
            heartbeat: Duration::from_millis(cfg.heartbeat_interval),
            election_ticks: (cfg.election_timeout / cfg.heartbeat_interval) as usize,
            snapshot_count: cfg.snapshot_count,
            catch_up_entries: cfg.snapshot_catchup_entries,
            busy_poll,
        };
        let directory = crate::raft::dial::DialMap::parse(&cfg.peer_dial_urls)?
            .wrap(members.clone() as Arc<dyn PeerDirectory>);
        let peers = PeerTransport::new(id, directory, peer_tls, snap_dir.clone());
        let snapshots: Arc<dyn crate::raft::SnapshotSource> =
            Arc::new(Snapshotter::new(engine.clone(), snap_dir.clone()));
        let node = Node::start(
            raft_cfg,
            engine.clone(),
            applier,
            peers.clone(),
            Some(snapshots),
            metrics.clone(),
        )?;
        let raft = node.handle.clone();
        peers.attach(raft.clone());
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let engine_size = engine.size();
        let request_timeout =
            Duration::from_secs(5) + Duration::from_millis(cfg.election_timeout) * 2;
        tracing::info!(name = %cfg.name, member_id = format!("{id:x}"), cluster_id = format!("{cluster_id:x}"), members = members.list().len(), revision = mvcc.current_revision(), "store member started");
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
            reply_poll: crate::busy_poll::BusyPoll::new(busy_poll),
            alarms,
            metrics,
            raft,
            peers,
            snap_dir,
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

    /// Learners replicate the log but serve only serializable reads, as in etcd.
    pub fn refuse_learner(&self) -> Result<()> {
        if self.members.is_learner(self.id) {
            return Err(Error::NotSupportedForLearner);
        }
        Ok(())
    }

    /// Proposes a membership change and waits for it to be applied; answers the member table.
    pub async fn propose_conf_change(
        &self,
        change_type: crate::raft::ConfChangeType,
        member: PbMember,
    ) -> Result<Vec<PbMember>> {
        let request_id = self.next_id();
        let ctx = strata_proto::peer::ConfChangeContext {
            request_id,
            member: Some(member.clone()),
        };
        let mut cc = crate::raft::ConfChange::default();
        cc.set_change_type(change_type);
        cc.node_id = member.id;
        cc.context = ctx.encode_to_vec().into();
        let applied = self
            .await_applied(request_id, self.raft.propose_conf_change(cc))
            .await;
        match applied? {
            Response::Members(m) => Ok(m),
            other => Err(Error::corrupt(format!(
                "unexpected applied result {other:?}"
            ))),
        }
    }

    /// Renews a lease on the leader: here if this member leads, else forwarded to the leader.
    /// As etcd does, a renewal rides over a leader change: it is retried (every 50 ms, waiting
    /// for a leader) until it succeeds or the request timeout passes.
    pub async fn lease_renew(&self, id: i64) -> Result<i64> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        loop {
            let attempt = match self.lessor.renew(id) {
                Err(Error::NotLeader) => self.forward_renew(id, deadline).await,
                r => return r,
            };
            match attempt {
                Ok(ttl) => return Ok(ttl),
                Err(Error::LeaseNotFound) => return Err(Error::LeaseNotFound),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn forward_renew(&self, id: i64, deadline: tokio::time::Instant) -> Result<i64> {
        let mut client = self.leader_client()?;
        let req = strata_proto::etcdserverpb::LeaseKeepAliveRequest { id };
        self.leader_answer(deadline, client.lease_renew(req))
            .await
            .map(|r| r.ttl)
    }

    /// The leader's answer to a forwarded call, by `deadline`, with its errors mapped back.
    async fn leader_answer<T>(
        &self,
        deadline: tokio::time::Instant,
        call: impl std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(crate::server::status::from_status(&s)),
            Err(_) => Err(self.raft.unavailable()),
        }
    }

    /// LeaseTimeToLive as the leader (which tracks deadlines) answers it.
    pub async fn lease_time_to_live(
        &self,
        req: strata_proto::etcdserverpb::LeaseTimeToLiveRequest,
    ) -> Result<strata_proto::etcdserverpb::LeaseTimeToLiveResponse> {
        use strata_proto::etcdserverpb::LeaseTimeToLiveResponse;
        if !self.raft.is_leader() {
            let mut client = self.leader_client()?;
            let deadline = tokio::time::Instant::now() + self.request_timeout;
            return self
                .leader_answer(deadline, client.lease_time_to_live(req))
                .await;
        }
        self.linearizable_barrier().await?;
        let header = Some(self.header(self.mvcc.current_revision()));
        Ok(match self.lessor.info(req.id, req.keys) {
            Some(info) => LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: info.remaining,
                granted_ttl: info.granted_ttl,
                keys: info.keys,
            },
            None => LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: -1,
                ..Default::default()
            },
        })
    }

    pub fn leader_client(
        &self,
    ) -> Result<strata_proto::peer::peer_client::PeerClient<tonic::transport::Channel>> {
        let leader = self.raft.status().leader;
        if leader == 0 {
            return Err(Error::NoLeader);
        }
        if leader == self.id {
            // Became leader a moment ago; the client retries.
            return Err(Error::NotLeader);
        }
        self.peers.client(leader)
    }

    /// Publishes this member's name and client URLs to the membership table (etcd's publish),
    /// if the table does not have them yet.
    async fn publish_attributes(&self) -> bool {
        let Some(me) = self.members.get(self.id) else {
            return false;
        };
        if me.name == self.cfg.name && me.client_urls == self.cfg.advertise_client_urls {
            return true;
        }
        if self.raft.status().leader == 0 {
            return false;
        }
        let req = RaftRequest {
            member_attributes: Some(PbMember {
                id: self.id,
                name: self.cfg.name.clone(),
                client_urls: self.cfg.advertise_client_urls.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        match self.propose(req).await {
            Ok(_) => {
                tracing::info!(name = %self.cfg.name, "published this member's client URLs");
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "publishing member attributes failed; will retry");
                false
            }
        }
    }

    /// On a clean shutdown of a leader: hand leadership to the most up-to-date voter and wait
    /// (up to an election timeout) for it to take over, so clients see no election gap.
    pub async fn hand_over_leadership(&self) {
        if !self.raft.is_leader() || self.members.voters().len() < 2 {
            return;
        }
        let target = self.raft.hand_over().await;
        if target == 0 {
            return;
        }
        tracing::info!(
            to = format!("{target:x}"),
            "handing leadership over before shutting down"
        );
        let mut leader = self.raft.leader_watch();
        let moved = tokio::time::timeout(
            Duration::from_millis(self.cfg.election_timeout) * 2,
            leader.wait_for(|l| *l != self.id && *l != 0),
        )
        .await;
        if !matches!(moved, Ok(Ok(_))) {
            tracing::warn!("leadership hand-over did not complete in time");
        }
    }

    /// Replicates `req` through Raft and waits for its applied result.
    pub async fn propose(&self, mut req: RaftRequest) -> Result<Response> {
        if req.member_attributes.is_none() {
            self.refuse_learner()?;
        }
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
        // Handed to the Raft thread without waiting for its acceptance: a refusal answers the
        // waiter directly, so an accepted put wakes this task once, with its applied result.
        let rx = self.waiters.register(id);
        let waiters = self.waiters.clone();
        let submitted = self
            .raft
            .submit(data, Box::new(move |e| waiters.trigger(id, Err(e))));
        let result = match submitted {
            Ok(()) => self.reply(rx).await,
            Err(e) => Err(e),
        };
        self.waiters.cancel(id);
        result
    }

    /// The applied result of the proposal just submitted. A lone writer whose answers have been
    /// coming back to back polls for it first ([`crate::busy_poll`]): its request is the only
    /// one in flight, so the poll keeps this worker from nothing but a wake-up.
    async fn reply(
        &self,
        mut rx: tokio::sync::oneshot::Receiver<crate::apply::ApplyResult>,
    ) -> Result<Response> {
        let start = Instant::now();
        let polled = match self.reply_poll.deadline(start) {
            Some(deadline) if self.waiters.len() == 1 => {
                crate::busy_poll::poll_recv(&mut rx, deadline)
            }
            _ => None,
        };
        let r = match polled {
            Some(Ok(r)) => r,
            Some(Err(())) => Err(Error::Stopped),
            None => self.applied_result(rx).await,
        };
        self.reply_poll.record(start, Instant::now());
        r
    }

    /// The applied result a registered waiter receives, within the request timeout.
    async fn applied_result(
        &self,
        rx: tokio::sync::oneshot::Receiver<crate::apply::ApplyResult>,
    ) -> Result<Response> {
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(self.raft.unavailable()),
        }
    }

    /// Waits for the applied result of request `id`, which `proposed` (not yet polled) hands to
    /// Raft: the waiter is registered first, so an entry applied at once is not missed.
    async fn await_applied(
        &self,
        id: u64,
        proposed: impl std::future::Future<Output = Result<()>>,
    ) -> Result<Response> {
        let rx = self.waiters.register(id);
        let result = async {
            proposed.await?;
            self.applied_result(rx).await
        }
        .await;
        self.waiters.cancel(id);
        result
    }

    /// Waits until this member may serve a linearizable read.
    pub async fn linearizable_barrier(&self) -> Result<()> {
        self.refuse_learner()?;
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
        let mut publish_tick = tokio::time::interval(Duration::from_millis(500));
        let mut published = false;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = publish_tick.tick(), if !published => {
                    published = self.publish_attributes().await;
                }
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
