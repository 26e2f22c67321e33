//! The one map from [`Error`] to a gRPC status: etcd's codes and messages, so clients that match
//! on them (etcdctl, the Go client's rpctypes, kube-apiserver) behave as they do against etcd.

use tonic::{Code, Status};

use crate::error::Error;

pub fn to_status(e: Error) -> Status {
    let code = match &e {
        Error::Compacted | Error::FutureRev | Error::LeaseTtlTooLarge => Code::OutOfRange,
        Error::NoSpace | Error::TooManyRequests => Code::ResourceExhausted,
        Error::EmptyKey
        | Error::KeyNotFound
        | Error::ValueProvided
        | Error::LeaseProvided
        | Error::TooManyOps
        | Error::DuplicateKey
        | Error::RequestTooLarge
        | Error::InvalidArgument(_) => Code::InvalidArgument,
        Error::LeaseNotFound | Error::MemberNotFound => Code::NotFound,
        Error::LeaseExists
        | Error::MemberExists
        | Error::PeerUrlExists
        | Error::MemberNotLearner
        | Error::LearnerNotReady
        | Error::TooManyLearners
        | Error::NotEnoughStarted
        | Error::BadLeaderTransferee => Code::FailedPrecondition,
        Error::MemberBadUrls => Code::InvalidArgument,
        Error::LeaderTransferTimeout => Code::DeadlineExceeded,
        Error::NoLeader
        | Error::NotLeader
        | Error::Timeout
        | Error::Stopped
        | Error::NotSupportedForLearner
        | Error::MemberRemoved => Code::Unavailable,
        Error::Unsupported(_) => Code::Unimplemented,
        Error::Storage(_) | Error::Corrupt(_) => Code::Internal,
    };
    Status::new(code, e.to_string())
}

/// The error a peer's status stands for (forwarded requests answer with the leader's errors).
pub fn from_status(s: &Status) -> Error {
    let known = [
        Error::LeaseNotFound,
        Error::LeaseExists,
        Error::LeaseTtlTooLarge,
        Error::NoLeader,
        Error::NotLeader,
        Error::Timeout,
        Error::Stopped,
        Error::MemberRemoved,
    ];
    if let Some(e) = known.into_iter().find(|e| e.to_string() == s.message()) {
        return e;
    }
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Error::Timeout,
        Code::NotFound => Error::LeaseNotFound,
        _ => Error::InvalidArgument(s.message().to_string()),
    }
}
