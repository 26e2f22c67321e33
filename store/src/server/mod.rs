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
mod peer;
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
use tonic::transport::{Certificate, ClientTlsConfig, Identity, Server, ServerTlsConfig};

use strata_proto::peer::RaftRequest;

use crate::apply::Response as Applied;
use crate::config::{parse_url, StoreConfig};
use crate::error::{Error, Result};
use crate::member::{same_urls, JoinInfo, Member};
use crate::raft::transport::{endpoint, MAX_PEER_MESSAGE, PEER_WINDOW};
use strata_proto::peer::{peer_client::PeerClient, peer_server::PeerServer, MembersRequest};

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

fn read_file(p: &str) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::InvalidArgument(format!("cannot read {p}: {e}")))
}

/// TLS for a listener from a certificate, key, optional CA and whether client certs are required.
fn server_tls(
    what: &str,
    cert: &str,
    key: &str,
    ca: &str,
    require_client_cert: bool,
) -> Result<ServerTlsConfig> {
    if cert.is_empty() || key.is_empty() {
        let flag = if what == "peer" { "--peer-" } else { "--" };
        return Err(Error::InvalidArgument(format!(
            "https {what} URLs need {flag}cert-file and {flag}key-file"
        )));
    }
    let mut tls =
        ServerTlsConfig::new().identity(Identity::from_pem(read_file(cert)?, read_file(key)?));
    if !ca.is_empty() {
        tls = tls.client_ca_root(Certificate::from_pem(read_file(ca)?));
        tls = tls.client_auth_optional(!require_client_cert);
    }
    Ok(tls)
}

fn tls_config(cfg: &StoreConfig) -> Result<ServerTlsConfig> {
    server_tls(
        "client",
        &cfg.cert_file,
        &cfg.key_file,
        &cfg.trusted_ca_file,
        cfg.client_cert_auth,
    )
}

fn peer_server_tls(cfg: &StoreConfig) -> Result<ServerTlsConfig> {
    server_tls(
        "peer",
        &cfg.peer_cert_file,
        &cfg.peer_key_file,
        &cfg.peer_trusted_ca_file,
        cfg.peer_client_cert_auth,
    )
}

/// How this member connects to https peers: their CA, and its own certificate as client.
fn peer_client_tls(cfg: &StoreConfig) -> Result<Option<ClientTlsConfig>> {
    if cfg.peer_trusted_ca_file.is_empty() && cfg.peer_cert_file.is_empty() {
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new();
    if !cfg.peer_trusted_ca_file.is_empty() {
        tls = tls.ca_certificate(Certificate::from_pem(read_file(&cfg.peer_trusted_ca_file)?));
    }
    if !cfg.peer_cert_file.is_empty() && !cfg.peer_key_file.is_empty() {
        tls = tls.identity(Identity::from_pem(
            read_file(&cfg.peer_cert_file)?,
            read_file(&cfg.peer_key_file)?,
        ));
    }
    Ok(Some(tls))
}

/// For `--initial-cluster-state existing` on an empty data directory: asks the other members
/// listed in --initial-cluster for the membership table (retrying for a while, as they may be
/// starting too).
async fn fetch_join_info(cfg: &StoreConfig, tls: Option<&ClientTlsConfig>) -> Result<JoinInfo> {
    let dial = crate::raft::dial::DialMap::parse(&cfg.peer_dial_urls)?;
    let others: Vec<String> = cfg
        .initial_members()?
        .into_iter()
        .filter(|(_, urls)| !same_urls(urls, &cfg.initial_advertise_peer_urls))
        .flat_map(|(_, urls)| urls)
        .map(|u| dial.rewrite(&u))
        .collect();
    if others.is_empty() {
        return Err(Error::InvalidArgument(
            "--initial-cluster-state existing needs the running members in --initial-cluster"
                .into(),
        ));
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last_error = String::new();
    // An answer that does not list this member may come from a member that has not applied the
    // `member add` yet (found by strata chaos: the replaced member asked a lagging follower and
    // exited). Keep asking for a while; then take the answer, so the caller reports "add it
    // first" for a member that really was not added.
    let mut without_us: Option<(tokio::time::Instant, JoinInfo)> = None;
    let grace = std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        for url in &others {
            let asked = async {
                let ch = endpoint(url.trim_end_matches('/'), tls)?
                    .connect()
                    .await
                    .map_err(|e| Error::storage(e.to_string()))?;
                let mut c = PeerClient::new(ch).max_decoding_message_size(MAX_PEER_MESSAGE);
                c.members(MembersRequest {})
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|s| Error::storage(s.message()))
            };
            match tokio::time::timeout(std::time::Duration::from_secs(3), asked).await {
                Ok(Ok(info))
                    if info
                        .members
                        .iter()
                        .any(|m| same_urls(&m.peer_urls, &cfg.initial_advertise_peer_urls)) =>
                {
                    return Ok(info)
                }
                Ok(Ok(info)) => {
                    let since = without_us
                        .get_or_insert((tokio::time::Instant::now(), info))
                        .0;
                    if since.elapsed() > grace {
                        return Ok(without_us.take().expect("set just above").1);
                    }
                    last_error = format!("{url}: does not list this member yet");
                }
                Ok(Err(e)) => last_error = format!("{url}: {e}"),
                Err(_) => last_error = format!("{url}: timed out"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(Error::InvalidArgument(format!(
        "could not get the member list from the running cluster ({last_error})"
    )))
}

/// A bound listener on its way to the runtime that serves it.
enum Bound {
    Tokio(TcpListener),
    Std(std::net::TcpListener),
}

impl Bound {
    /// Registers the listener with the current runtime (it must be called on that runtime).
    fn into_tokio(self) -> std::io::Result<TcpListener> {
        match self {
            Bound::Tokio(l) => Ok(l),
            Bound::Std(l) => {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Client,
    Metrics,
    Peer,
}

/// Binds every client, metrics and peer URL; fails before serving anything if one cannot be bound.
async fn bind_all(cfg: &StoreConfig) -> Result<Vec<(TcpListener, bool, Listener)>> {
    let mut out = Vec::new();
    for (urls, kind) in [
        (&cfg.listen_client_urls, Listener::Client),
        (&cfg.listen_metrics_urls, Listener::Metrics),
        (&cfg.listen_peer_urls, Listener::Peer),
    ] {
        for u in urls.iter().filter(|u| !u.is_empty()) {
            let url = parse_url(u)?;
            let l = TcpListener::bind(&url.host_port)
                .await
                .map_err(|e| Error::InvalidArgument(format!("cannot listen on {u}: {e}")))?;
            match l.local_addr() {
                Ok(addr) if kind == Listener::Peer => tracing::info!(
                    "listening for peers on {}://{addr}",
                    if url.tls { "https" } else { "http" }
                ),
                Ok(addr) => tracing::info!(
                    metrics_only = kind == Listener::Metrics,
                    "listening on {}://{addr}",
                    if url.tls { "https" } else { "http" }
                ),
                Err(e) => tracing::warn!(error = %e, "listener has no local address"),
            }
            out.push((l, url.tls, kind));
        }
    }
    Ok(out)
}

/// Opens the member in `cfg.data_dir` and serves it until `shutdown` completes, then stops
/// every listener, background task and the Raft node before returning.
pub async fn run(cfg: StoreConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let listeners = bind_all(&cfg).await?;
    let peer_tls = peer_client_tls(&cfg)?;
    let join = if cfg.initial_cluster_state == "existing"
        && !cfg.data_dir.join("db").join("CURRENT").exists()
    {
        Some(fetch_join_info(&cfg, peer_tls.as_ref()).await?)
    } else {
        None
    };
    let member = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || Member::open(cfg, join, peer_tls))
            .await
            .map_err(Error::storage)??
    };
    let (stop_tx, stop_rx) = signal::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(member.clone().run_background(stop_rx.clone()));

    let all_routes = routes(&member);
    let peer_routes = Routes::new(
        PeerServer::new(peer::PeerService {
            member: member.clone(),
        })
        .max_decoding_message_size(MAX_PEER_MESSAGE)
        .max_encoding_message_size(MAX_PEER_MESSAGE),
    );
    for (listener, tls, kind) in listeners {
        let routes = match kind {
            Listener::Metrics => {
                Routes::from(http::add_routes(axum::Router::new(), member.clone()))
            }
            Listener::Client => all_routes.clone(),
            Listener::Peer => peer_routes.clone(),
        };
        let mut builder = Server::builder()
            .accept_http1(kind != Listener::Peer)
            .tcp_nodelay(true);
        if kind == Listener::Peer {
            builder = builder
                .initial_stream_window_size(Some(PEER_WINDOW))
                .initial_connection_window_size(Some(PEER_WINDOW * 2))
                .http2_keepalive_interval(Some(std::time::Duration::from_secs(1)))
                .http2_keepalive_timeout(Some(std::time::Duration::from_secs(3)));
        }
        if tls {
            let tls = if kind == Listener::Peer {
                peer_server_tls(&cfg)?
            } else {
                tls_config(&cfg)?
            };
            builder = builder
                .tls_config(tls)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        }
        let mut stop = stop_rx.clone();
        // Peer streams are served on the Raft thread's runtime: a message from a peer reaches
        // the Ready loop without waking another thread. The listener moves there too, so its
        // connections register with that runtime's reactor.
        let (listener, runtime) = if kind == Listener::Peer {
            let std = listener.into_std().map_err(Error::storage)?;
            (Bound::Std(std), member.raft.runtime().clone())
        } else {
            (Bound::Tokio(listener), tokio::runtime::Handle::current())
        };
        tasks.spawn_on(
            async move {
                let listener = match listener.into_tokio() {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "peer listener failed");
                        return;
                    }
                };
                // The builder's tcp_nodelay applies only to listeners tonic binds itself:
                // accepted sockets of our own listener need it set here, or Nagle holds back
                // the tail of a response until the peer's delayed ACK (40 ms) whenever a reply
                // goes out in two writes.
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = builder
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(incoming, stopped)
                    .await
                {
                    tracing::error!(error = %e, "listener failed");
                }
            },
            &runtime,
        );
    }

    let mut membership = member.members.subscribe();
    let mut outcome = Ok(());
    tokio::select! {
        _ = shutdown => {
            tracing::info!("shutting down");
            member.hand_over_leadership().await;
        }
        // The Raft loop stops by itself only on a storage failure: stop serving too.
        _ = member.raft.stopped() => {
            tracing::error!("raft node stopped; shutting down");
        }
        _ = async {
            while !member.members.is_removed(member.id) {
                if membership.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        } => {
            tracing::error!("{}; shutting down", Error::MemberRemoved);
            outcome = Err(Error::MemberRemoved);
        }
        _ = member.peers.removed() => {
            tracing::error!("{}; shutting down", Error::MemberRemoved);
            outcome = Err(Error::MemberRemoved);
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
    stopped.and(outcome)
}
