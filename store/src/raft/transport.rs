//! The peer transport: Raft messages to other members over tonic streams (peer.proto).
//!
//! Each peer gets one link task owning one long-lived client stream (`Peer.Send`). The Ready loop
//! hands messages over without blocking (`try_send` into a bounded queue; a full queue drops the
//! message, which Raft recovers from by retransmitting); the link encodes and batches whatever
//! queued up while the previous batch was on the wire. A broken stream is reported to Raft
//! (`report_unreachable`, so the leader probes instead of streaming) and re-established with
//! exponential back-off; messages queued meanwhile are stale and dropped. A connection attempt
//! has a deadline, and a stream that stops taking batches for a few seconds (its flow-control
//! window shut while the connection still answers keep-alives) is abandoned for a new one, so a
//! link never stays silently stuck.
//!
//! Snapshots never share that stream: each goes on its own `Peer.SendSnapshot` call, the Raft
//! message first, then the checkpoint as a tar stream in chunks, so heartbeats and appends never
//! wait behind a snapshot. The outcome is reported to Raft (`report_snapshot`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use strata_proto::peer::{peer_client::PeerClient, MessageBatch, SnapshotChunk};
use tokio::sync::mpsc;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::RaftHandle;
use crate::error::{Error, Result};

/// Messages queued per peer before new ones are dropped.
const QUEUE: usize = 4096;
/// A batch is cut at this many messages or bytes.
const BATCH_MSGS: usize = 4096;
const BATCH_BYTES: usize = 4 << 20;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Longest a connection attempt (TCP, TLS and the HTTP/2 handshake) may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(3);
/// Longest a batch may wait to enter a connected stream before the link is re-established.
const LINK_STALL: Duration = Duration::from_secs(5);
/// Longest a snapshot transfer may take before it is reported failed (and retried).
const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(600);
/// Chunk size of a streamed snapshot.
const SNAPSHOT_CHUNK: usize = 1 << 20;
/// HTTP/2 flow-control window of peer streams (and twice that per connection).
pub const PEER_WINDOW: u32 = 8 << 20;
/// Largest gRPC message on peer links (a batch of appends can be large).
pub const MAX_PEER_MESSAGE: usize = 64 << 20;

/// Where peers are: the membership table, as the transport needs it.
pub trait PeerDirectory: Send + Sync + 'static {
    fn peer_urls(&self, id: u64) -> Vec<String>;
    /// False once `id` was removed from the cluster (its link closes).
    fn is_member(&self, id: u64) -> bool;
}

struct Inner {
    id: u64,
    directory: Arc<dyn PeerDirectory>,
    /// Where link tasks run when started outside a runtime; the Raft loop starts them on its
    /// own runtime (see `spawn`).
    runtime: tokio::runtime::Handle,
    tls: Option<ClientTlsConfig>,
    snap_dir: PathBuf,
    raft: OnceLock<RaftHandle>,
    links: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    channels: Mutex<HashMap<u64, (String, Channel)>>,
    /// Set when a peer refuses us because we were removed from the cluster.
    removed: tokio::sync::watch::Sender<bool>,
    /// Messages dropped on full peer queues (logged now and then).
    dropped: std::sync::atomic::AtomicU64,
}

/// The transport the Ready loop sends through, and a client pool for peer RPCs.
#[derive(Clone)]
pub struct PeerTransport {
    inner: Arc<Inner>,
}

impl PeerTransport {
    /// Must be created within a Tokio runtime (link tasks started outside one run there).
    pub fn new(
        id: u64,
        directory: Arc<dyn PeerDirectory>,
        tls: Option<ClientTlsConfig>,
        snap_dir: PathBuf,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                id,
                directory,
                runtime: tokio::runtime::Handle::current(),
                tls,
                snap_dir,
                raft: OnceLock::new(),
                links: Mutex::new(HashMap::new()),
                channels: Mutex::new(HashMap::new()),
                removed: tokio::sync::watch::channel(false).0,
                dropped: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Connects the transport to the node it reports to (unreachable peers, snapshot outcomes).
    pub fn attach(&self, raft: RaftHandle) {
        let _ = self.inner.raft.set(raft);
    }

    /// Completes once a peer has refused this member as removed from the cluster (it was removed
    /// while it was down, so it never applied its own removal).
    pub async fn removed(&self) {
        let mut rx = self.inner.removed.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// A client for peer RPCs to member `id` (a cached channel, reconnecting lazily).
    pub fn client(&self, id: u64) -> Result<PeerClient<Channel>> {
        let urls = self.inner.directory.peer_urls(id);
        let url = urls
            .first()
            .ok_or(Error::MemberNotFound)?
            .trim_end_matches('/')
            .to_string();
        let mut channels = self.inner.channels.lock();
        if let Some((u, ch)) = channels.get(&id) {
            if *u == url {
                return Ok(peer_client(ch.clone()));
            }
        }
        let ch = endpoint(&url, self.inner.tls.as_ref())?.connect_lazy();
        channels.insert(id, (url, ch.clone()));
        Ok(peer_client(ch))
    }

    fn link(&self, to: u64) -> mpsc::Sender<Message> {
        let mut links = self.inner.links.lock();
        if let Some(tx) = links.get(&to) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        links.insert(to, tx.clone());
        let inner = self.inner.clone();
        self.spawn(run_link(inner, to, rx));
        tx
    }

    /// Runs a link or snapshot task on the caller's runtime: the Raft thread's own, when the
    /// Ready loop sends, so its messages never wait for another thread to wake.
    fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.spawn(task),
            Err(_) => self.inner.runtime.spawn(task),
        };
    }
}

fn peer_client(ch: Channel) -> PeerClient<Channel> {
    PeerClient::new(ch)
        .max_decoding_message_size(MAX_PEER_MESSAGE)
        .max_encoding_message_size(MAX_PEER_MESSAGE)
}

/// A gRPC endpoint for a peer URL, with TLS for https URLs.
pub fn endpoint(url: &str, tls: Option<&ClientTlsConfig>) -> Result<Endpoint> {
    let mut ep = Endpoint::from_shared(url.to_string())
        .map_err(|e| Error::InvalidArgument(format!("bad peer URL {url:?}: {e}")))?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        // HTTP/2's default 64 KiB windows would make a burst of appends wait for window updates.
        .initial_stream_window_size(Some(PEER_WINDOW))
        .initial_connection_window_size(Some(PEER_WINDOW * 2))
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(3))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let tls = tls.cloned().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "peer URL {url} is https but no --peer-trusted-ca-file/--peer-cert-file is set"
            ))
        })?;
        ep = ep
            .tls_config(tls)
            .map_err(|e| Error::InvalidArgument(format!("peer TLS: {e}")))?;
    }
    Ok(ep)
}

impl super::Transport for PeerTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            if m.to == self.inner.id {
                continue;
            }
            if m.get_msg_type() == MessageType::MsgSnapshot {
                let inner = self.inner.clone();
                self.spawn(async move {
                    let to = m.to;
                    let result = send_snapshot(&inner, m).await;
                    if let Err(e) = &result {
                        tracing::warn!(to = format!("{to:x}"), error = %e, "sending a snapshot failed");
                    }
                    if let Some(r) = inner.raft.get() {
                        r.report_snapshot(to, result.is_ok());
                    }
                });
                continue;
            }
            let to = m.to;
            match self.link(to).try_send(m) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let n = self
                        .inner
                        .dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n.is_multiple_of(10_000) {
                        tracing::warn!(
                            to = format!("{to:x}"),
                            dropped = n + 1,
                            "peer queue full; dropping raft messages"
                        );
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.inner.links.lock().remove(&to);
                }
            }
        }
    }
}

fn encode(m: &Message) -> Bytes {
    Bytes::from(
        m.write_to_bytes()
            .expect("encoding a raft message into memory cannot fail"),
    )
}

/// Takes what is queued (after `first`) into one batch.
fn take_batch(first: Message, rx: &mut mpsc::Receiver<Message>) -> MessageBatch {
    let mut bytes = 0;
    let mut messages = Vec::with_capacity(16);
    let b = encode(&first);
    bytes += b.len();
    messages.push(b);
    while messages.len() < BATCH_MSGS && bytes < BATCH_BYTES {
        match rx.try_recv() {
            Ok(m) => {
                let b = encode(&m);
                bytes += b.len();
                messages.push(b);
            }
            Err(_) => break,
        }
    }
    MessageBatch { messages }
}

async fn run_link(inner: Arc<Inner>, to: u64, mut rx: mpsc::Receiver<Message>) {
    let mut backoff = MIN_BACKOFF;
    let mut attempt = 0usize;
    let peer = format!("{to:x}");
    // Connections in a row that carried nothing, and why the last one ended: a link that keeps
    // failing says so in the log (once after ten attempts, then about once a minute).
    let mut failures = 0u32;
    let mut why = String::new();
    loop {
        let mut delivered = false;
        if !inner.directory.is_member(to) {
            tracing::info!(peer, "closing the link to a removed member");
            inner.links.lock().remove(&to);
            return;
        }
        let urls = inner.directory.peer_urls(to);
        if !urls.is_empty() {
            let url = urls[attempt % urls.len()].trim_end_matches('/').to_string();
            attempt += 1;
            let connected = match endpoint(&url, inner.tls.as_ref()) {
                Ok(ep) => match tokio::time::timeout(CONNECT_DEADLINE, ep.connect()).await {
                    Ok(c) => c.map_err(|e| e.to_string()),
                    Err(_) => Err("connecting took too long".to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            match connected {
                Ok(ch) => {
                    tracing::debug!(peer, url, "peer link connected");
                    let (btx, brx) = mpsc::channel::<MessageBatch>(4);
                    let mut client = peer_client(ch);
                    let call = client.send(tokio_stream::wrappers::ReceiverStream::new(brx));
                    tokio::pin!(call);
                    let mut pending: Option<MessageBatch> = None;
                    let mut stalled = false;
                    let ended = loop {
                        match pending.take() {
                            None => tokio::select! {
                                r = &mut call => break r.err(),
                                m = rx.recv() => match m {
                                    Some(m) => pending = Some(take_batch(m, &mut rx)),
                                    None => return,
                                },
                            },
                            Some(batch) => tokio::select! {
                                r = &mut call => break r.err(),
                                permit = btx.reserve() => match permit {
                                    Ok(p) => {
                                        p.send(batch);
                                        backoff = MIN_BACKOFF;
                                        if failures >= 10 {
                                            tracing::info!(peer, after = failures, "peer link works again");
                                        }
                                        failures = 0;
                                        delivered = true;
                                    }
                                    Err(_) => break None,
                                },
                                // The stream takes nothing (its flow-control window stays shut)
                                // although the connection itself answers keep-alives: start over
                                // on a new connection rather than hold the peer's traffic.
                                _ = tokio::time::sleep(LINK_STALL) => {
                                    tracing::warn!(peer, "peer link stalled; reconnecting");
                                    stalled = true;
                                    break None;
                                }
                            },
                        }
                    };
                    match ended {
                        Some(s) if s.code() == tonic::Code::PermissionDenied => {
                            tracing::warn!(peer, reason = s.message(), "peer refused our messages");
                            if s.message().contains("permanently removed") {
                                inner.removed.send_replace(true);
                            }
                        }
                        Some(s) => {
                            tracing::debug!(peer, error = %s, "peer link broke");
                            why = format!("stream ended: {s}");
                        }
                        None => {
                            tracing::debug!(peer, "peer link closed");
                            why = if stalled {
                                "the stream stopped taking batches".to_string()
                            } else {
                                "stream closed".to_string()
                            };
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(peer, url, error = e, "cannot reach peer");
                    why = format!("cannot connect to {url}: {e}");
                }
            }
        }
        if !delivered {
            failures += 1;
            if failures == 10 || (failures > 10 && failures.is_multiple_of(60)) {
                tracing::warn!(
                    peer,
                    attempts = failures,
                    last = why,
                    "peer link keeps failing"
                );
            }
        }
        if let Some(r) = inner.raft.get() {
            r.report_unreachable(to);
        }
        // What queued while disconnected is stale; Raft sends again what still matters.
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Feeds bytes written by the tar builder (on a blocking thread) into the chunk stream.
struct ChunkWriter {
    tx: mpsc::Sender<SnapshotChunk>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn flush_chunk(&mut self, last: bool) -> std::io::Result<()> {
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(SNAPSHOT_CHUNK),
        ));
        self.tx
            .blocking_send(SnapshotChunk {
                message: Bytes::new(),
                data,
                last,
            })
            .map_err(|_| std::io::Error::other("snapshot stream closed"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= SNAPSHOT_CHUNK {
            self.flush_chunk(false)?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn send_snapshot(inner: &Arc<Inner>, m: Message) -> Result<()> {
    let to = m.to;
    let name = String::from_utf8_lossy(&m.get_snapshot().data).into_owned();
    let dir = inner.snap_dir.join(&name);
    if name.is_empty() || name.contains('/') || !dir.is_dir() {
        return Err(Error::storage(format!(
            "snapshot {name:?} is not available"
        )));
    }
    let url = inner
        .directory
        .peer_urls(to)
        .first()
        .cloned()
        .ok_or(Error::MemberNotFound)?;
    let ch = endpoint(url.trim_end_matches('/'), inner.tls.as_ref())?
        .connect()
        .await
        .map_err(Error::storage)?;
    let (tx, rx) = mpsc::channel::<SnapshotChunk>(4);
    tx.send(SnapshotChunk {
        message: encode(&m),
        data: Bytes::new(),
        last: false,
    })
    .await
    .map_err(Error::storage)?;
    tracing::info!(
        to = format!("{to:x}"),
        index = m.get_snapshot().get_metadata().index,
        "sending a snapshot"
    );
    let packer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut tar = tar::Builder::new(ChunkWriter {
            tx,
            buf: Vec::with_capacity(SNAPSHOT_CHUNK),
        });
        tar.append_dir_all(".", &dir)?;
        let mut w = tar.into_inner()?;
        w.flush_chunk(true)
    });
    let mut client = peer_client(ch);
    let call = client.send_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
    // A receiver that stalls must not hold the follower in Raft's snapshot state forever.
    let call = async {
        match tokio::time::timeout(SNAPSHOT_DEADLINE, call).await {
            Ok(r) => r,
            Err(_) => Err(tonic::Status::deadline_exceeded(
                "snapshot transfer took too long",
            )),
        }
    };
    let (sent, packed) = tokio::join!(call, packer);
    packed.map_err(Error::storage)?.map_err(Error::storage)?;
    sent.map_err(|s| Error::storage(s.message()))?;
    Ok(())
}
