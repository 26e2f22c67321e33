//! Client traffic: what the store is exercised with while faults are injected, every request
//! recorded with its invocation and completion times and its result.
//!
//! - [`kv`]: clients doing puts with unique values, linearizable and serializable gets,
//!   deletes, compare-and-swap transactions and lease put/keep-alive/revoke cycles on a small
//!   key space (so operations contend);
//! - [`probe`]: a write every few milliseconds, each independent of the others, for the
//!   availability measurement;
//! - [`watch`]: watchers on keys and ranges, with prev_kv, progress notifications and
//!   RequestProgress, cancelled and resumed, and moved to another member when theirs fails; and
//!   the historian, which watches everything from revision 1 and produces the revision history;
//! - [`compact`]: periodic compaction behind the historian;
//! - [`kube`]: Kubernetes-like traffic through the apiserver.
//!
//! Every task stops when the stop signal is raised and records what it had in flight as unknown.

pub mod compact;
pub mod kube;
pub mod kube_watch;
pub mod kv;
pub mod probe;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch as signal;
use tonic::transport::{Channel, Endpoint};

use crate::history::{Clock, Kv, Output, Recorder};

/// What every traffic task shares.
pub struct Ctx {
    pub clock: Clock,
    pub rec: Recorder,
    /// One lazily connected channel per member (clients reconnect through it).
    pub channels: Vec<Channel>,
    /// The run's key prefix.
    pub prefix: String,
    pub op_timeout: Duration,
    pub stop: signal::Receiver<bool>,
}

impl Ctx {
    pub fn new(
        clock: Clock,
        rec: Recorder,
        client_urls: &[String],
        prefix: String,
        op_timeout: Duration,
        stop: signal::Receiver<bool>,
    ) -> Result<Arc<Ctx>, String> {
        let channels = client_urls
            .iter()
            .map(|u| {
                Endpoint::from_shared(u.clone())
                    .map(|e| {
                        e.connect_timeout(Duration::from_millis(500))
                            .tcp_nodelay(true)
                            .http2_keep_alive_interval(Duration::from_secs(1))
                            .keep_alive_timeout(Duration::from_secs(3))
                            .connect_lazy()
                    })
                    .map_err(|e| format!("{u}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Ctx {
            clock,
            rec,
            channels,
            prefix,
            op_timeout,
            stop,
        }))
    }

    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    pub fn kv_key(&self, i: usize) -> String {
        format!("{}kv/k{i:02}", self.prefix)
    }

    pub fn lease_key(&self, i: usize) -> String {
        format!("{}lease/l{i:02}", self.prefix)
    }

    pub fn probe_key(&self, i: usize) -> String {
        format!("{}probe/p{i}", self.prefix)
    }

    pub fn marker_key(&self, client: u32) -> String {
        format!("{}marker/c{client}", self.prefix)
    }
}

/// Classifies a failed request: refused before it could take effect, or possibly applied.
pub fn failure(status: &tonic::Status) -> Output {
    use tonic::Code::*;
    let msg = format!("{:?}: {}", status.code(), status.message());
    let refused = matches!(
        status.code(),
        InvalidArgument
            | FailedPrecondition
            | OutOfRange
            | PermissionDenied
            | Unauthenticated
            | NotFound
    ) || status.message().contains("Connection refused")
        || status.message().contains("tcp connect error");
    if refused {
        Output::Refused { error: msg }
    } else {
        Output::Unknown { error: msg }
    }
}

pub fn timed_out(limit: Duration) -> Output {
    Output::Unknown {
        error: format!("no answer within {limit:?}"),
    }
}

pub fn kv_of(kv: &strata_proto::mvccpb::KeyValue) -> Kv {
    Kv {
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        value: String::from_utf8_lossy(&kv.value).into_owned(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

/// Sleeps for `d` unless the stop signal comes first; false when stopped.
pub async fn pause(ctx: &Ctx, d: Duration) -> bool {
    let mut stop = ctx.stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => !ctx.stopped(),
        _ = crate::stop::raised(&mut stop) => false,
    }
}
