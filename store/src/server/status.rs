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
        Error::LeaseExists => Code::FailedPrecondition,
        Error::NoLeader | Error::NotLeader | Error::Timeout | Error::Stopped => Code::Unavailable,
        Error::Unsupported(_) => Code::Unimplemented,
        Error::Storage(_) | Error::Corrupt(_) => Code::Internal,
    };
    Status::new(code, e.to_string())
}
