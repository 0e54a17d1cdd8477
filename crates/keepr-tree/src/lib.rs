//! `keepr-tree`: the znode tree as a deterministic state machine with ZooKeeper's semantics.
//!
//! This crate is the pure core of keepr, like etcd's `raft` package: no I/O, no clocks, no
//! threads, no randomness that reaches a result. Every member of the Raft ensemble applies
//! the same [`Command`]s in the same order with [`Tree::apply`] and reaches the same tree
//! and the same results; the zxid, the time and the caller's session and identities travel
//! inside each command. Validation (NONODE, BADVERSION, NODEEXISTS, ACLs, sizes) happens at
//! apply time, on every member.
//!
//! - [`Tree`]: nodes, Stats, ACLs, sessions and their ephemeral nodes; writes via
//!   [`Tree::apply`], reads ([`Tree::get_data`], [`Tree::get_children`], …) on `&self` with
//!   the caller's identities; [`Tree::reapable`] lists container and TTL nodes to remove;
//!   snapshots via [`Tree::encode_snapshot`] / [`Tree::decode_snapshot`].
//! - [`Command`] / [`TxnOp`]: what the Raft log stores, with a stable binary encoding
//!   ([`Command::encode`], [`Command::decode`]).
//! - [`Triggers`]: the watch triggers a change fires; [`WatchManager`] turns them into
//!   events for the connections of one member.
//! - [`acl`], [`digest`]: ACL validation and checks, the digest scheme's id helper.
//!
//! Behaviour follows ZooKeeper 3.9 (`DataTree`, `PrepRequestProcessor`,
//! `FinalRequestProcessor`, `WatchManager`); where 3.8 differs for security (exists needs
//! READ, watch events are filtered by READ) 3.9 wins.

pub mod acl;
mod acl_cache;
mod apply;
mod codec;
mod command;
pub mod digest;
mod index;
mod ip;
mod multi;
mod node;
pub mod path;
mod read;
mod reap;
mod snapshot;
mod tree;
mod trigger;
mod watch;

pub use acl_cache::AclList;
pub use apply::MAX_TTL;
pub use codec::{CommandDecodeError, COMMAND_FORMAT};
pub use command::{Command, MultiOp, OpResult, TxnOp, TxnResult, SET_SESSION_OWNER};
pub use read::{NodeData, ReadOp, ReadResult};
pub use snapshot::SnapshotError;
pub use tree::{Tree, TreeConfig, TreeMetrics};
pub use trigger::{EventType, Trigger, Triggers};
pub use watch::{WatchEvent, WatchKind, WatchManager, WatchSummary, WatchedRead, WatcherId};

#[cfg(test)]
mod tests {
    #[test]
    fn state_can_be_shared_across_threads() {
        // The server keeps the tree behind a lock and moves watch managers between tasks.
        fn shareable<T: Send + Sync>() {}
        shareable::<super::Tree>();
        shareable::<super::WatchManager>();
        shareable::<super::Triggers>();
        shareable::<super::Command>();
    }
}
