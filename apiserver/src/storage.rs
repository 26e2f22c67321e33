//! The etcd v3 client side: the only way the apiserver reaches the store. Every write is a Txn
//! guarded by the key's mod_revision (0 for create), as kube-apiserver's etcd3 storage does, so
//! it runs against Strata's store and against a real etcd alike.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_proto::etcdserverpb::{
    compare, kv_client::KvClient, request_op, response_op, watch_client::WatchClient, Compare,
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use strata_proto::mvccpb::KeyValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::metrics::Metrics;

/// Why a store call failed, in the terms the handlers need.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    #[error("mvcc: required revision is a future revision")]
    FutureRevision,
    /// No answer in time, no leader, or no member reachable.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

impl From<tonic::Status> for StoreError {
    fn from(s: tonic::Status) -> StoreError {
        let msg = s.message();
        if msg.contains("required revision has been compacted") {
            StoreError::Compacted
        } else if msg.contains("required revision is a future revision") {
            StoreError::FutureRevision
        } else {
            match s.code() {
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled
                | tonic::Code::Unknown => StoreError::Unavailable(format!("etcd: {msg}")),
                _ => StoreError::Other(format!("etcd: {msg}")),
            }
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How to reach the store: its client URLs and, for https URLs, the TLS material
/// (kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile).
#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    pub endpoints: Vec<String>,
    pub ca_file: Option<std::path::PathBuf>,
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
    /// Deadline of one request.
    pub request_timeout: Duration,
}

/// The outcome of a guarded write.
pub enum Written {
    /// Applied at this revision.
    Ok(i64),
    /// The guard failed: the key's current value (None when it does not exist).
    Conflict(Option<KeyValue>),
}

/// A page of a range read.
pub struct Page {
    pub kvs: Vec<KeyValue>,
    pub more: bool,
    pub count: i64,
    /// The store revision the read was served at.
    pub revision: i64,
}

/// A cloneable handle on the store's KV and Watch services over one balanced channel.
#[derive(Clone)]
pub struct Store {
    kv: KvClient<Channel>,
    channel: Channel,
    timeout: Duration,
    metrics: Metrics,
    /// The highest revision this apiserver has written (or seen in a failed guard): caches that
    /// reach it reflect every write this process acknowledged, which gives its clients
    /// read-your-writes where a check is served from a cache (a namespace being terminated).
    written: Arc<AtomicI64>,
}

/// The end of the range of keys starting with `prefix` (etcd's "prefix end").
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Store {
    pub async fn connect(cfg: &StoreConfig, metrics: Metrics) -> Result<Store, String> {
        if cfg.endpoints.is_empty() {
            return Err("--etcd-servers must name at least one store endpoint".into());
        }
        let tls = match (&cfg.ca_file, &cfg.cert_file, &cfg.key_file) {
            (None, None, None) => None,
            (ca, cert, key) => {
                let mut tls = ClientTlsConfig::new();
                if let Some(ca) = ca {
                    let pem = std::fs::read(ca)
                        .map_err(|e| format!("--etcd-cafile {}: {e}", ca.display()))?;
                    tls = tls.ca_certificate(Certificate::from_pem(pem));
                }
                match (cert, key) {
                    (Some(c), Some(k)) => {
                        let cert = std::fs::read(c)
                            .map_err(|e| format!("--etcd-certfile {}: {e}", c.display()))?;
                        let key = std::fs::read(k)
                            .map_err(|e| format!("--etcd-keyfile {}: {e}", k.display()))?;
                        tls = tls.identity(Identity::from_pem(cert, key));
                    }
                    (None, None) => {}
                    _ => return Err("--etcd-certfile and --etcd-keyfile go together".into()),
                }
                Some(tls)
            }
        };
        let mut endpoints = Vec::new();
        for url in &cfg.endpoints {
            let url = if url.contains("://") {
                url.clone()
            } else {
                format!("http://{url}")
            };
            let mut ep = Endpoint::from_shared(url.clone())
                .map_err(|e| format!("bad store endpoint {url}: {e}"))?
                .connect_timeout(Duration::from_secs(3))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true)
                .initial_stream_window_size(Some(4 << 20))
                .initial_connection_window_size(Some(16 << 20));
            if url.starts_with("https://") {
                let tls = tls.clone().unwrap_or_else(ClientTlsConfig::new);
                ep = ep
                    .tls_config(tls)
                    .map_err(|e| format!("TLS for {url}: {e}"))?;
            }
            endpoints.push(ep);
        }
        let channel = Channel::balance_list(endpoints.into_iter());
        Ok(Store {
            kv: KvClient::new(channel.clone())
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(64 << 20),
            channel,
            timeout: if cfg.request_timeout.is_zero() {
                Duration::from_secs(10)
            } else {
                cfg.request_timeout
            },
            metrics,
            written: Arc::new(AtomicI64::new(0)),
        })
    }

    /// A Watch client on the same channel.
    pub fn watch_client(&self) -> WatchClient<Channel> {
        WatchClient::new(self.channel.clone()).max_decoding_message_size(256 << 20)
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.timeout);
        r
    }

    /// Retries an idempotent call while the store is unavailable, up to the request timeout.
    async fn retry<T, F, Fut>(&self, op: &'static str, mut f: F) -> StoreResult<T>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        let start = Instant::now();
        let mut backoff = Duration::from_millis(20);
        loop {
            let r = f(self.kv.clone()).await;
            match r {
                Err(StoreError::Unavailable(e)) if start.elapsed() + backoff < self.timeout => {
                    tracing::debug!(op, error = %e, "store unavailable, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                other => {
                    self.metrics.storage_latency(op, start.elapsed());
                    return other;
                }
            }
        }
    }

    /// The highest store revision this apiserver's writes have reached.
    pub fn written_revision(&self) -> i64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Reads one key (linearizable).
    pub async fn get(&self, key: &str) -> StoreResult<(Option<KeyValue>, i64)> {
        let key = Bytes::copy_from_slice(key.as_bytes());
        self.retry("get", |mut kv| {
            let req = self.request(RangeRequest {
                key: key.clone(),
                ..Default::default()
            });
            async move {
                let resp = kv.range(req).await?.into_inner();
                let rev = resp.header.map(|h| h.revision).unwrap_or(0);
                Ok((resp.kvs.into_iter().next(), rev))
            }
        })
        .await
    }

    /// The store's current revision (a linearizable read of one key).
    pub async fn current_revision(&self) -> StoreResult<i64> {
        Ok(self.get("/registry/").await?.1)
    }

    /// Reads `[start, end)` at `revision` (0 = current), at most `limit` keys (0 = all).
    pub async fn range(
        &self,
        start: &[u8],
        end: &[u8],
        revision: i64,
        limit: i64,
    ) -> StoreResult<Page> {
        let start = Bytes::copy_from_slice(start);
        let end = Bytes::copy_from_slice(end);
        self.retry("list", |mut kv| {
            let req = self.request(RangeRequest {
                key: start.clone(),
                range_end: end.clone(),
                revision,
                limit,
                ..Default::default()
            });
            async move {
                let resp = kv.range(req).await?.into_inner();
                Ok(Page {
                    revision: resp.header.map(|h| h.revision).unwrap_or(0),
                    kvs: resp.kvs,
                    more: resp.more,
                    count: resp.count,
                })
            }
        })
        .await
    }

    fn mod_guard(key: &Bytes, rev: i64) -> Compare {
        Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Mod as i32,
            key: key.clone(),
            range_end: Bytes::new(),
            target_union: Some(compare::TargetUnion::ModRevision(rev)),
        }
    }

    /// One guarded Txn: `success` when the key's mod_revision is `expected`, else a read of it.
    async fn guarded(
        &self,
        op: &'static str,
        key: &str,
        expected: i64,
        success: request_op::Request,
    ) -> StoreResult<Written> {
        let key = Bytes::copy_from_slice(key.as_bytes());
        let start = Instant::now();
        let req = self.request(TxnRequest {
            compare: vec![Self::mod_guard(&key, expected)],
            success: vec![RequestOp {
                request: Some(success),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: key.clone(),
                    ..Default::default()
                })),
            }],
        });
        // Writes are not retried: a timed-out write may have been applied, and the caller's
        // guard would then fail on the retry with a misleading conflict.
        let resp = self.kv.clone().txn(req).await;
        self.metrics.storage_latency(op, start.elapsed());
        let resp = resp?.into_inner();
        let rev = resp.header.map(|h| h.revision).unwrap_or(0);
        self.written.fetch_max(rev, Ordering::Relaxed);
        if resp.succeeded {
            return Ok(Written::Ok(rev));
        }
        let current = resp.responses.into_iter().find_map(|r| match r.response {
            Some(response_op::Response::ResponseRange(r)) => r.kvs.into_iter().next(),
            _ => None,
        });
        Ok(Written::Conflict(current))
    }

    /// Creates `key` if it does not exist.
    pub async fn create(&self, key: &str, value: Bytes) -> StoreResult<Written> {
        let put = request_op::Request::RequestPut(PutRequest {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value,
            ..Default::default()
        });
        self.guarded("create", key, 0, put).await
    }

    /// Replaces `key` if its mod_revision is still `expected`.
    pub async fn update(&self, key: &str, value: Bytes, expected: i64) -> StoreResult<Written> {
        let put = request_op::Request::RequestPut(PutRequest {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value,
            ..Default::default()
        });
        self.guarded("update", key, expected, put).await
    }

    /// Deletes `key` if its mod_revision is still `expected`.
    pub async fn delete(&self, key: &str, expected: i64) -> StoreResult<Written> {
        let del = request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: Bytes::copy_from_slice(key.as_bytes()),
            ..Default::default()
        });
        self.guarded("delete", key, expected, del).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
