//! strata-store: a Raft-replicated MVCC key-value store on RocksDB behind etcd's v3 gRPC API.
//!
//! Layers, from the wire down (each only calls the ones below it):
//! - [`server`]: the tonic services (KV, Watch, Lease, Cluster, Maintenance, Auth) and HTTP
//!   endpoints; thin, with one error-to-status map.
//! - [`member`]: one member's components wired together, proposals and linearizable reads.
//! - [`raft`]: the raft-rs Ready loop and the log in the engine; knows only a state-machine trait.
//! - [`apply`]: the state machine: committed entries become MVCC and lease changes.
//! - [`mvcc`], [`watch`], [`lease`]: the revisioned key-value history, watchers, leases.
//! - [`engine`]: the storage trait and its RocksDB implementation.

pub mod apply;
pub mod busy_poll;
pub mod config;
pub mod engine;
pub mod error;
pub mod lease;
pub mod member;
pub mod membership;
pub mod metrics;
pub mod mvcc;
pub mod raft;
pub mod server;
pub mod watch;

pub use config::StoreConfig;
pub use error::{Error, Result};
pub use server::run;
