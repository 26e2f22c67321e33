//! `strata apiserver`: a Kubernetes-compatible REST API over the etcd v3 gRPC API.
//!
//! The apiserver reaches the store only through the etcd v3 API (`storage`), so it runs
//! against Strata's store and against a real etcd alike. `registry` is the resource table;
//! `cache` the watch cache per resource; `handlers` the REST verbs; `auth` JWT
//! authentication and RBAC; `server` the flags, TLS and the accept loop.

pub mod auth;
pub mod cache;
pub mod handlers;
pub mod metrics;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod status;
pub mod storage;
pub mod table;
pub mod validation;

pub use server::{run, ApiserverConfig};
