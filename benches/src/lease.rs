//! `lease-keepalive`: each client grants one lease, then renews it over its own LeaseKeepAlive
//! stream, one request and its answer at a time, until `--total` renewals are done. The leases
//! are revoked at the end so a run leaves nothing behind.

use clap::Args;
use strata_proto::etcdserverpb::{
    lease_client::LeaseClient, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseRevokeRequest,
};
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic::Streaming;

use crate::conn::{status_text, ConnArgs};
use crate::load::{drive, Op, Outcome};
use crate::progress::Progress;
use crate::Summary;

#[derive(Debug, Clone, Args)]
pub struct LeaseKeepaliveArgs {
    /// Total number of keepalive requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// TTL of each client's lease, in seconds.
    #[arg(long, default_value_t = 100)]
    pub ttl: i64,
}

struct KeepAlive {
    id: i64,
    tx: mpsc::Sender<LeaseKeepAliveRequest>,
    rx: Streaming<LeaseKeepAliveResponse>,
}

impl Op for KeepAlive {
    async fn call(&mut self, _n: u64) -> Outcome {
        if self
            .tx
            .send(LeaseKeepAliveRequest { id: self.id })
            .await
            .is_err()
        {
            return Outcome::of(Err("keepalive stream closed".into()));
        }
        let r = match self.rx.message().await {
            Ok(Some(r)) if r.ttl > 0 => Ok(()),
            Ok(Some(_)) => Err("lease expired or not found".into()),
            Ok(None) => Err("keepalive stream ended".into()),
            Err(s) => Err(status_text(&s)),
        };
        Outcome::of(r)
    }
}

pub async fn keepalive(
    conn: &ConnArgs,
    args: LeaseKeepaliveArgs,
    progress: &Progress,
) -> Result<Summary, String> {
    let channels = conn.connect().await?;
    let mut ops = Vec::with_capacity(conn.clients.max(1));
    let mut leases: Vec<(LeaseClient<Channel>, i64)> = Vec::new();
    for i in 0..conn.clients.max(1) {
        let mut client = LeaseClient::new(channels[i % channels.len()].clone());
        let grant = client
            .lease_grant(LeaseGrantRequest {
                ttl: args.ttl.max(1),
                id: 0,
            })
            .await
            .map_err(|s| format!("granting a lease: {}", status_text(&s)))?
            .into_inner();
        if !grant.error.is_empty() {
            return Err(format!("granting a lease: {}", grant.error));
        }
        // The first keepalive is queued before the call: etcd's server sends the response
        // headers only with its first answer, and tonic opens the stream only once it has them.
        let (tx, rx) = mpsc::channel(1);
        tx.send(LeaseKeepAliveRequest { id: grant.id })
            .await
            .map_err(|_| "keepalive channel closed".to_string())?;
        let mut stream = client
            .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(|s| format!("opening a keepalive stream: {}", status_text(&s)))?
            .into_inner();
        stream
            .message()
            .await
            .map_err(|s| format!("first keepalive: {}", status_text(&s)))?
            .ok_or("keepalive stream ended at once")?;
        leases.push((client, grant.id));
        ops.push(KeepAlive {
            id: grant.id,
            tx,
            rx: stream,
        });
    }
    let run = drive(ops, args.total, 0.0, 1, progress).await;
    for (mut client, id) in leases {
        let _ = client.lease_revoke(LeaseRevokeRequest { id }).await;
    }
    Ok(Summary::single("lease-keepalive", &run?))
}
