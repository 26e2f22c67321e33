//! Wire types for Strata.
//!
//! `etcdserverpb`, `mvccpb` and `authpb` are etcd's v3 API with the same packages, services,
//! messages and field numbers as etcd 3.5, so any etcd v3 client (etcdctl, the Go client,
//! kube-apiserver, the `etcd-client` crate) talks to Strata unchanged. `peer` is Strata's own
//! member-to-member protocol and the replicated command format.
//!
//! Byte fields are generated as `bytes::Bytes`, so keys and values are shared, not copied, as
//! they move from the store to many watchers.

#![allow(clippy::all, missing_docs)]

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub mod authpb {
    tonic::include_proto!("authpb");
}

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

pub mod peer {
    tonic::include_proto!("stratapb");
}

pub use prost;
pub use prost::bytes;
