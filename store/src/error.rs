//! The store's one error type.
//!
//! Every failure a client can see is a variant here, carrying etcd's own message, and
//! `server::status` maps each to the gRPC code etcd uses, in one place. An error also knows
//! whether it is *deterministic*: a failed compare or a compacted revision happens identically on
//! every member applying the same entry, so it is answered to the client. A non-deterministic
//! one (I/O, corruption) while applying must stop the member instead, or replicas would diverge.

use std::fmt;

/// Result alias used throughout the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // --- mvcc ---
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,

    // --- request validation (etcd's v3rpc checks) ---
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,

    // --- leases ---
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,

    // --- cluster ---
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStarted,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: request timed out, leader transfer took too long")]
    LeaderTransferTimeout,
    #[error("etcdserver: the member has been permanently removed from the cluster")]
    MemberRemoved,
    #[error("etcdserver: unsupported: {0}")]
    Unsupported(String),
    #[error("etcdserver: {0}")]
    InvalidArgument(String),

    // --- non-deterministic ---
    #[error("storage error: {0}")]
    Storage(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl Error {
    /// True when every member applying the same log entry fails the same way, so the error is an
    /// answer to the client rather than a reason to stop the member.
    pub fn is_deterministic(&self) -> bool {
        !matches!(self, Error::Storage(_) | Error::Corrupt(_))
    }

    pub fn storage(e: impl fmt::Display) -> Self {
        Error::Storage(e.to_string())
    }

    pub fn corrupt(e: impl fmt::Display) -> Self {
        Error::Corrupt(e.to_string())
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Storage(e.into_string())
    }
}

impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Self {
        Error::Corrupt(e.to_string())
    }
}
