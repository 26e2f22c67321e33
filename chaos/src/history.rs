//! What a run records: every client operation with its invocation and completion times and its
//! result, every watch response, every fault and every leader change, all on one clock.
//!
//! The checkers only ever see this record, never the cluster, so a saved `history.json` can be
//! checked again later (`strata chaos check DIR`) and the self-tests can feed them hand-written
//! bad histories. Times are nanoseconds since the run started ([`Clock`]).
//!
//! An operation that failed or timed out may still have been applied (the request may have been
//! committed after the client gave up), so it is recorded with `ret: None`: its completion is
//! "+infinity". Only errors that prove the request was refused before it could take effect are
//! recorded as definite failures.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Nanoseconds since the run started, from one monotonic clock shared by every task.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// A key-value as a read or a watch event returned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    pub key: String,
    pub value: String,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// What a client asked for. Every operation touches one key, so the history can be checked key
/// by key; values are unique across the run, so a value names the write that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Input {
    Put {
        key: String,
        value: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        lease: i64,
    },
    Get {
        key: String,
        serializable: bool,
    },
    /// A Txn that deletes `key` and, in the same revision, puts the unique `marker` under the
    /// run's marker prefix, so the revision history shows which delete was applied.
    Delete {
        key: String,
        marker: String,
    },
    /// Txn: if the key's value is `expect` (None: the key is absent) then put `value`, else get.
    Cas {
        key: String,
        expect: Option<String>,
        value: String,
    },
    /// LeaseRevoke of the lease that `value` (the only put that used it) was written with: deletes
    /// the key if that put is still its current value.
    Revoke {
        key: String,
        lease: i64,
        value: String,
    },
}

impl Input {
    pub fn key(&self) -> &str {
        match self {
            Input::Put { key, .. }
            | Input::Get { key, .. }
            | Input::Delete { key, .. }
            | Input::Cas { key, .. }
            | Input::Revoke { key, .. } => key,
        }
    }

    /// The unique value this operation writes (a delete's marker), if it writes one.
    pub fn written_value(&self) -> Option<&str> {
        match self {
            Input::Put { value, .. } | Input::Cas { value, .. } => Some(value),
            Input::Delete { marker, .. } => Some(marker),
            _ => None,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, Input::Get { .. })
    }
}

/// What the store answered. `rev` is the response header's revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Output {
    Put {
        rev: i64,
    },
    Get {
        rev: i64,
        kv: Option<Kv>,
    },
    Delete {
        rev: i64,
        deleted: i64,
    },
    Cas {
        rev: i64,
        succeeded: bool,
        /// The else branch's read (when the compare failed).
        current: Option<Kv>,
    },
    Revoke {
        rev: i64,
    },
    /// Refused before it could take effect (so it certainly was not applied).
    Refused {
        error: String,
    },
    /// Failed or timed out: it may or may not have been applied.
    Unknown {
        error: String,
    },
}

impl Output {
    pub fn is_unknown(&self) -> bool {
        matches!(self, Output::Unknown { .. })
    }

    pub fn revision(&self) -> Option<i64> {
        match self {
            Output::Put { rev }
            | Output::Get { rev, .. }
            | Output::Delete { rev, .. }
            | Output::Cas { rev, .. }
            | Output::Revoke { rev } => Some(*rev),
            _ => None,
        }
    }
}

/// One client operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub client: u32,
    /// Index of the member the client sent it to.
    pub member: usize,
    pub call: u64,
    /// None when the outcome is unknown (completion at +infinity).
    pub ret: Option<u64>,
    pub input: Input,
    pub output: Output,
}

/// A watch event as delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub delete: bool,
    pub kv: Kv,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Kv>,
}

/// One watch response, or the end of a watch stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WatchResponse {
    pub at: u64,
    pub rev: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canceled: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub compact_revision: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fragment: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

impl WatchResponse {
    /// A progress notification: no events, not a creation or cancellation.
    pub fn is_progress(&self) -> bool {
        self.events.is_empty() && !self.created && !self.canceled && !self.fragment
    }
}

/// One watch stream from creation until it broke or was cancelled; a watcher that reconnects
/// or resumes starts a new session that names the revision it resumed at.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WatchSession {
    pub watcher: u32,
    pub member: usize,
    pub key: String,
    pub range_end: String,
    pub start_revision: i64,
    pub prev_kv: bool,
    pub progress_notify: bool,
    /// The session ended in an error or timeout (rather than a cancel the watcher asked for).
    #[serde(default)]
    pub broken: bool,
    pub responses: Vec<WatchResponse>,
}

impl WatchSession {
    pub fn covers(&self, key: &str) -> bool {
        in_range(key, &self.key, &self.range_end)
    }
}

/// etcd's range rule: `end` empty means the one key; "\0" means every key from `start`.
pub fn in_range(key: &str, start: &str, end: &str) -> bool {
    if end.is_empty() {
        return key == start;
    }
    key >= start && (end == "\0" || key < end)
}

/// One lease's life as a client saw it: granted (acknowledged or not), kept alive, revoked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: i64,
    pub client: u32,
    pub ttl: i64,
    pub grant_call: u64,
    /// When the grant was acknowledged (None: it failed or timed out).
    pub grant_ret: Option<u64>,
    pub keepalives: Vec<KeepAlive>,
    /// When the revoke was sent.
    pub revoke_call: Option<u64>,
}

/// One keep-alive: the TTL it answered (None: no answer; 0 or less: the lease was not found).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeepAlive {
    pub call: u64,
    pub ret: Option<u64>,
    pub ttl: Option<i64>,
}

/// A fault as it was injected and healed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultRecord {
    pub kind: String,
    /// Human-readable target ("n2 (leader)", "n1,n3 | n2", ...).
    pub target: String,
    pub start: u64,
    /// When it was healed (None: still active when the run ended).
    pub end: Option<u64>,
    /// Members made unavailable (killed, paused, isolated), for the timeline.
    pub members: Vec<usize>,
}

/// Leadership as observed: `leader` from `at` on (None: no single leader seen).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaderChange {
    pub at: u64,
    pub leader: Option<usize>,
}

/// Everything a run recorded.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    pub ops: Vec<Op>,
    pub watches: Vec<WatchSession>,
    #[serde(default)]
    pub leases: Vec<LeaseRecord>,
    pub faults: Vec<FaultRecord>,
    pub leaders: Vec<LeaderChange>,
    /// Kubernetes objects written through the apiserver, in the same op format (see traffic::kube).
    #[serde(default)]
    pub kube_ops: Vec<crate::traffic::kube::KubeOp>,
    #[serde(default)]
    pub kube_watches: Vec<crate::traffic::kube::KubeWatchSession>,
    /// Store key prefix of the Kubernetes objects (`/registry/configmaps/<namespace>/`).
    #[serde(default)]
    pub kube_prefix: String,
    /// Key prefix of this run (every chaos key is under it).
    pub prefix: String,
    /// The reference revision history: every event of every key, as the historian watched it.
    pub revisions: Vec<Event>,
    /// Start revision of each of the historian's watch streams (it resumes after failures).
    #[serde(default)]
    pub historian_sessions: Vec<i64>,
    /// Revision the run's final state was read at, and that state (key -> kv), after every
    /// member restarted.
    pub final_revision: i64,
    /// The cluster's revision right after every member restarted.
    #[serde(default)]
    pub restart_revision: i64,
    pub final_state: Vec<Kv>,
    /// Per member: (member name, events replayed from its own store after the restart, from
    /// `replay_from`).
    pub replayed: Vec<(String, Vec<Event>)>,
    pub replay_from: i64,
    /// Per member: (name, HashKV at final_revision).
    pub hashes: Vec<(String, u32)>,
    /// Compactions requested during the run: (revision, when it was sent). One that timed out
    /// may still have been applied, so every request is listed.
    pub compactions: Vec<(i64, u64)>,
    pub end: u64,
}

/// A shared, append-only recorder the traffic tasks write into.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<History>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
    counts: Arc<Counts>,
}

/// Running totals for the progress line.
#[derive(Default)]
pub struct Counts {
    pub ok: std::sync::atomic::AtomicU64,
    pub unknown: std::sync::atomic::AtomicU64,
    pub refused: std::sync::atomic::AtomicU64,
    pub writes_ok: std::sync::atomic::AtomicU64,
}

impl Recorder {
    pub fn op(&self, mut op: Op) {
        use std::sync::atomic::Ordering::Relaxed;
        op.id = self.next_id.fetch_add(1, Relaxed);
        match &op.output {
            Output::Unknown { .. } => self.counts.unknown.fetch_add(1, Relaxed),
            Output::Refused { .. } => self.counts.refused.fetch_add(1, Relaxed),
            _ => {
                if !op.input.is_read() {
                    self.counts.writes_ok.fetch_add(1, Relaxed);
                }
                self.counts.ok.fetch_add(1, Relaxed)
            }
        };
        self.inner.lock().ops.push(op);
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut History) -> R) -> R {
        f(&mut self.inner.lock())
    }

    pub fn take(&self) -> History {
        std::mem::take(&mut *self.inner.lock())
    }
}
