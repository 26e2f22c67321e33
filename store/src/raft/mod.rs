//! Raft: the replicated log every write goes through, driven with raft-rs.
//!
//! This module knows the engine (where the log lives) and a [`StateMachine`] trait (what the log
//! is applied to), never the MVCC store. [`node`] runs raft-rs' `RawNode` on its own thread and
//! drives each `Ready` in the documented order: send messages, apply a snapshot, apply committed
//! entries, append new entries and the hard state with one fsync, send persisted messages,
//! advance. Proposals and read requests arriving while one Ready is processed are batched into
//! the next, so under load one fsync covers many writes (group commit).

pub mod dial;
mod handle;
pub mod node;
pub mod storage;
pub mod transport;

pub use node::{PeerProgress, RaftConfig, RaftHandle, RaftStatus};
pub use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, Message, Snapshot, SnapshotMetadata,
};
pub use transport::{PeerDirectory, PeerTransport};

use crate::error::Result;

/// What the log is applied to.
///
/// Contract: `apply` is called with committed entries in strictly increasing index order, each
/// exactly once across restarts (entries at or below `applied_index()` are never passed again).
/// It must make their effects and the new applied index durable together (in one engine write);
/// it returns `Err` only for non-deterministic failures, after which the member stops.
pub trait StateMachine: Send + 'static {
    /// Index of the last applied entry, as recorded durably with the applied state.
    fn applied_index(&self) -> u64;

    /// Applies a run of committed normal entries (empty ones included).
    fn apply(&mut self, entries: Vec<Entry>) -> Result<()>;

    /// Applies the committed configuration change at `index`. If the state machine accepts it, it
    /// calls `raft` to change the Raft configuration (once) before recording the change; a
    /// rejected change leaves the configuration as it was. Either way `index` is applied.
    fn apply_conf_change(
        &mut self,
        index: u64,
        cc: &ConfChange,
        raft: &mut dyn FnMut(&ConfChange) -> Result<ConfState>,
    ) -> Result<()>;

    /// Replaces the whole state with a snapshot received from the leader (its data is what a
    /// [`SnapshotSource`] produced, after the transport moved it here). `log_reset` gives the
    /// engine writes that restart the Raft log after the snapshot; the state machine must commit
    /// them in the same engine write that completes the restore, so that a crash leaves either
    /// the old state with the old log or the new state with the new log (see [`LogReset`]).
    fn restore(&mut self, snapshot: &Snapshot, log_reset: LogReset) -> Result<()>;

    /// Leadership changed: `leader` is the new leader's id (0 = none), `is_self` whether it is us.
    fn leader_changed(&mut self, leader: u64, is_self: bool);
}

/// Where Raft messages for other members go. Sending never blocks the Ready loop.
pub trait Transport: Send + 'static {
    fn send(&mut self, msgs: Vec<raft::eraftpb::Message>);
}

/// Builds the engine writes that restart the Raft log after a snapshot (see
/// [`storage::reset_to_snapshot`]); also used to finish a restore a crash interrupted.
pub type LogReset = fn(
    &dyn crate::engine::Engine,
    &raft::eraftpb::SnapshotMetadata,
) -> Result<crate::engine::WriteBatch>;

/// Captures the state machine for a snapshot a lagging follower needs. Called on the Raft thread
/// (so nothing is applied meanwhile); returns the applied index the capture reflects and a
/// descriptor of it that travels as the snapshot's data.
pub trait SnapshotSource: Send + Sync + 'static {
    fn capture(&self) -> Result<(u64, Vec<u8>)>;
}

/// The transport of a one-member cluster: there is nobody to send to.
pub struct NoPeers;

impl Transport for NoPeers {
    fn send(&mut self, msgs: Vec<raft::eraftpb::Message>) {
        for m in msgs {
            tracing::warn!(to = m.to, msg_type = ?m.msg_type, "raft message for a member this process has no link to");
        }
    }
}

/// Routes raft-rs' slog output into `tracing`.
pub(crate) struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let msg = record.msg().to_string();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::error!(target: "raft", "{msg}"),
            slog::Level::Warning => tracing::warn!(target: "raft", "{msg}"),
            slog::Level::Info => tracing::info!(target: "raft", "{msg}"),
            _ => tracing::debug!(target: "raft", "{msg}"),
        }
        Ok(())
    }
}
