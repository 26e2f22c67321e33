//! The etcd v3 gRPC services, and `run`, which serves them on every client URL together with
//! `/metrics`, `/health` and `/version` (plain HTTP on the same port, as etcd does).
//!
//! The services are thin: decode, check, call the member, map the error in one place
//! ([`status::to_status`]), fill the response header.

mod cluster;
mod http;
mod kv;
mod lease;
mod maintenance;
pub mod status;
mod validate;
mod watch;

use std::future::Future;
use std::sync::Arc;

use strata_proto::etcdserverpb::{
    self as pb, auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tonic::service::Routes;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use strata_proto::peer::RaftRequest;

use crate::apply::Response as Applied;
use crate::config::{parse_url, StoreConfig};
use crate::error::{Error, Result};
use crate::member::Member;

/// A response the applier produces, whose header the member completes.
trait AppliedResponse: Sized {
    fn from_applied(a: Applied) -> std::result::Result<Self, Box<Applied>>;
    fn header_mut(&mut self) -> &mut Option<pb::ResponseHeader>;
}

macro_rules! applied_response {
    ($($variant:ident => $ty:ty),* $(,)?) => {$(
        impl AppliedResponse for $ty {
            fn from_applied(a: Applied) -> std::result::Result<Self, Box<Applied>> {
                match a {
                    Applied::$variant(r) => Ok(r),
                    other => Err(Box::new(other)),
                }
            }
            fn header_mut(&mut self) -> &mut Option<pb::ResponseHeader> {
                &mut self.header
            }
        }
    )*};
}

applied_response! {
    Put => pb::PutResponse,
    DeleteRange => pb::DeleteRangeResponse,
    Txn => pb::TxnResponse,
    Compaction => pb::CompactionResponse,
    LeaseGrant => pb::LeaseGrantResponse,
    LeaseRevoke => pb::LeaseRevokeResponse,
}

/// Replicates `req` and answers with its applied response, the member fields of the header filled.
async fn replicate<T: AppliedResponse>(
    m: &Member,
    req: RaftRequest,
) -> std::result::Result<tonic::Response<T>, tonic::Status> {
    let applied = m.propose(req).await.map_err(status::to_status)?;
    let mut resp = T::from_applied(applied).map_err(|other| {
        status::to_status(Error::corrupt(format!(
            "unexpected applied result {other:?}"
        )))
    })?;
    let header = resp.header_mut();
    *header = m.fill(header.take());
    Ok(tonic::Response::new(resp))
}

/// gRPC allows this much beyond --max-request-bytes for framing, as etcd does.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

fn routes(member: &Arc<Member>) -> Routes {
    let limit = member.cfg.max_request_bytes + GRPC_OVERHEAD_BYTES;
    let m = || member.clone();
    let grpc =
        Routes::new(KvServer::new(kv::KvService { member: m() }).max_decoding_message_size(limit))
            .add_service(
                WatchServer::new(watch::WatchService { member: m() })
                    .max_decoding_message_size(limit),
            )
            .add_service(
                LeaseServer::new(lease::LeaseService { member: m() })
                    .max_decoding_message_size(limit),
            )
            .add_service(ClusterServer::new(cluster::ClusterService { member: m() }))
            .add_service(MaintenanceServer::new(maintenance::MaintenanceService {
                member: m(),
            }))
            .add_service(AuthServer::new(cluster::AuthService));
    Routes::from(http::add_routes(grpc.into_axum_router(), member.clone()))
}

fn tls_config(cfg: &StoreConfig) -> Result<ServerTlsConfig> {
    if cfg.cert_file.is_empty() || cfg.key_file.is_empty() {
        return Err(Error::InvalidArgument(
            "https client URLs need --cert-file and --key-file".into(),
        ));
    }
    let read = |p: &str| {
        std::fs::read(p).map_err(|e| Error::InvalidArgument(format!("cannot read {p}: {e}")))
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(
        read(&cfg.cert_file)?,
        read(&cfg.key_file)?,
    ));
    if !cfg.trusted_ca_file.is_empty() {
        tls = tls.client_ca_root(Certificate::from_pem(read(&cfg.trusted_ca_file)?));
        tls = tls.client_auth_optional(!cfg.client_cert_auth);
    }
    Ok(tls)
}

/// Binds every client and metrics URL; fails before serving anything if one cannot be bound.
async fn bind_all(cfg: &StoreConfig) -> Result<Vec<(TcpListener, bool, bool)>> {
    let mut out = Vec::new();
    for (urls, metrics_only) in [
        (&cfg.listen_client_urls, false),
        (&cfg.listen_metrics_urls, true),
    ] {
        for u in urls.iter().filter(|u| !u.is_empty()) {
            let url = parse_url(u)?;
            let l = TcpListener::bind(&url.host_port)
                .await
                .map_err(|e| Error::InvalidArgument(format!("cannot listen on {u}: {e}")))?;
            match l.local_addr() {
                Ok(addr) => tracing::info!(
                    metrics_only,
                    "listening on {}://{addr}",
                    if url.tls { "https" } else { "http" }
                ),
                Err(e) => tracing::warn!(error = %e, "listener has no local address"),
            }
            out.push((l, url.tls, metrics_only));
        }
    }
    Ok(out)
}

/// Opens the member in `cfg.data_dir` and serves it until `shutdown` completes, then stops
/// every listener, background task and the Raft node before returning.
pub async fn run(cfg: StoreConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let listeners = bind_all(&cfg).await?;
    let member = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || Member::open(cfg))
            .await
            .map_err(Error::storage)??
    };
    let (stop_tx, stop_rx) = signal::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(member.clone().run_background(stop_rx.clone()));

    let all_routes = routes(&member);
    for (listener, tls, metrics_only) in listeners {
        let routes = if metrics_only {
            Routes::from(http::add_routes(axum::Router::new(), member.clone()))
        } else {
            all_routes.clone()
        };
        let mut builder = Server::builder().accept_http1(true).tcp_nodelay(true);
        if tls {
            builder = builder
                .tls_config(tls_config(&cfg)?)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        }
        let mut stop = stop_rx.clone();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tasks.spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = builder
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, stopped)
                .await
            {
                tracing::error!(error = %e, "client listener failed");
            }
        });
    }

    let mut raft_stopped = member.raft.applied_watch();
    tokio::select! {
        _ = shutdown => tracing::info!("shutting down"),
        // The Raft loop stops by itself only on a storage failure: stop serving too.
        _ = async { while raft_stopped.changed().await.is_ok() {} } => {
            tracing::error!("raft node stopped; shutting down");
        }
    }
    let _ = stop_tx.send(true);
    // Streams (watches, keep-alives) keep connections open; give them a moment, then go.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    let stopped = member.stop();
    drop(member);
    stopped
}
