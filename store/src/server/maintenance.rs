//! The Maintenance service: status, alarms, hashes, defragmentation and snapshots.

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use sha2::{Digest, Sha256};
use strata_proto::etcdserverpb::{
    alarm_request::AlarmAction, maintenance_server::Maintenance, AlarmRequest, AlarmResponse,
    AlarmType, DefragmentRequest, DefragmentResponse, DowngradeRequest, DowngradeResponse,
    HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use strata_proto::peer::RaftRequest;
use tonic::{Request, Response, Status};

use super::status::to_status;
use crate::apply::Response as Applied;
use crate::engine::Cf;
use crate::error::{Error, Result};
use crate::member::{Member, ETCD_VERSION};
use crate::mvcc::Revision;

pub struct MaintenanceService {
    pub member: Arc<Member>,
}

type SnapshotOut = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

const SNAPSHOT_CHUNK: usize = 32 * 1024;

fn alarm_name(a: i32) -> &'static str {
    match AlarmType::try_from(a) {
        Ok(AlarmType::Nospace) => "NOSPACE",
        Ok(AlarmType::Corrupt) => "CORRUPT",
        _ => "NONE",
    }
}

/// CRC-32 (Castagnoli would match etcd's polynomial; any stable hash serves to compare members)
/// over the MVCC history up to `rev`, from the compacted revision on.
fn hash_kv(m: &Member, rev: i64) -> Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let end = Revision::start_key(rev + 1);
    let mut failure = None;
    m.engine.scan(
        Cf::Kv,
        &[],
        Some(&end),
        &mut |k, v| match Revision::from_key(k) {
            Ok(_) => {
                h.update(k);
                h.update(v);
                true
            }
            Err(e) => {
                failure = Some(e);
                false
            }
        },
    )?;
    match failure {
        Some(e) => Err(e),
        None => Ok(h.finalize()),
    }
}

impl MaintenanceService {
    /// Packs a consistent checkpoint of the engine as a tar stream followed by its SHA-256
    /// (etcd likewise appends a SHA-256 to its snapshot stream).
    fn write_snapshot(m: &Member) -> Result<std::fs::File> {
        let dir = m.cfg.data_dir.join(format!("snapshot-tmp-{}", m.next_id()));
        m.engine.checkpoint(&dir)?;
        let packed = (|| -> std::io::Result<std::fs::File> {
            let mut file = tempfile::tempfile_in(&m.cfg.data_dir)?;
            {
                let mut tar = tar::Builder::new(&mut file);
                tar.append_dir_all("db", &dir)?;
                tar.finish()?;
            }
            use std::io::{Seek, SeekFrom, Write};
            file.seek(SeekFrom::Start(0))?;
            let mut sha = Sha256::new();
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
            }
            file.write_all(&sha.finalize())?;
            file.seek(SeekFrom::Start(0))?;
            Ok(file)
        })();
        let _ = std::fs::remove_dir_all(&dir);
        packed.map_err(Error::storage)
    }
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let m = &self.member;
        let r = req.into_inner();
        let alarms = if r.action == AlarmAction::Get as i32 {
            m.alarms.list()
        } else {
            match m
                .propose(RaftRequest {
                    alarm: Some(r),
                    ..Default::default()
                })
                .await
                .map_err(to_status)?
            {
                Applied::Alarm(a) => a,
                other => {
                    return Err(to_status(Error::corrupt(format!(
                        "unexpected applied result {other:?}"
                    ))))
                }
            }
        };
        Ok(Response::new(AlarmResponse {
            header: Some(m.header(m.mvcc.current_revision())),
            alarms,
        }))
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let m = &self.member;
        let st = m.raft.status();
        let size = m.engine.size();
        let errors = m
            .alarms
            .list()
            .iter()
            .map(|a| format!("memberID:{} alarm:{} ", a.member_id, alarm_name(a.alarm)))
            .collect();
        Ok(Response::new(StatusResponse {
            header: Some(m.header(m.mvcc.current_revision())),
            version: ETCD_VERSION.to_string(),
            db_size: size.total as i64,
            leader: st.leader,
            raft_index: st.commit,
            raft_term: st.term,
            raft_applied_index: st.applied,
            errors,
            db_size_in_use: size.in_use as i64,
            is_learner: m.members.is_learner(m.id),
        }))
    }

    async fn defragment(
        &self,
        _req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        let m = self.member.clone();
        tokio::task::spawn_blocking(move || m.engine.compact_all())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        let m = &self.member;
        Ok(Response::new(DefragmentResponse {
            header: Some(m.header(m.mvcc.current_revision())),
        }))
    }

    async fn hash(&self, _req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let m = self.member.clone();
        let rev = m.mvcc.current_revision();
        let hash = tokio::task::spawn_blocking(move || hash_kv(&m, rev))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        Ok(Response::new(HashResponse {
            header: Some(self.member.header(rev)),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let m = self.member.clone();
        let rev = m
            .mvcc
            .check_revision(req.get_ref().revision)
            .map_err(to_status)?;
        let compact_revision = m.mvcc.compact_revision();
        let hash = tokio::task::spawn_blocking(move || hash_kv(&m, rev))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        let m = &self.member;
        Ok(Response::new(HashKvResponse {
            header: Some(m.header(m.mvcc.current_revision())),
            hash,
            compact_revision,
        }))
    }

    type SnapshotStream = SnapshotOut;

    async fn snapshot(
        &self,
        _req: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotOut>, Status> {
        let m = self.member.clone();
        let file = tokio::task::spawn_blocking(move || MaintenanceService::write_snapshot(&m))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        let total = file
            .metadata()
            .map_err(|e| Status::internal(e.to_string()))?
            .len();
        let header = Some(self.member.header(self.member.mvcc.current_revision()));
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let mut file = file;
            let mut sent = 0u64;
            let mut first = true;
            loop {
                let mut buf = vec![0; SNAPSHOT_CHUNK];
                let n = match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(e.to_string())));
                        return;
                    }
                };
                buf.truncate(n);
                sent += n as u64;
                let resp = SnapshotResponse {
                    header: if first { header } else { None },
                    remaining_bytes: total - sent,
                    blob: buf.into(),
                };
                first = false;
                if tx.blocking_send(Ok(resp)).is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        let m = &self.member;
        let target = req.get_ref().target_id;
        let Some(t) = m.members.get(target) else {
            return Err(to_status(Error::BadLeaderTransferee));
        };
        if t.is_learner {
            return Err(to_status(Error::BadLeaderTransferee));
        }
        if !m.raft.is_leader() {
            return Err(to_status(Error::NotLeader));
        }
        if target != m.id {
            m.raft.transfer_leader(target).map_err(to_status)?;
            // etcd's MoveLeader returns once the transferee leads (or gives up).
            let mut leader = m.raft.leader_watch();
            let moved = tokio::time::timeout(
                std::time::Duration::from_millis(m.cfg.election_timeout) * 2,
                leader.wait_for(|l| *l == target),
            )
            .await;
            if !matches!(moved, Ok(Ok(_))) {
                return Err(to_status(Error::LeaderTransferTimeout));
            }
        }
        Ok(Response::new(MoveLeaderResponse {
            header: Some(m.header(m.mvcc.current_revision())),
        }))
    }

    async fn downgrade(
        &self,
        _req: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(to_status(Error::Unsupported(
            "cluster version downgrade".into(),
        )))
    }
}
