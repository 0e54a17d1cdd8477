//! `keepr-server`: one keepr ensemble member.
//!
//! - [`member`] starts and stops everything below.
//! - [`raft`]: openraft's types, the state machine around `keepr-tree`, snapshot files and
//!   the network between members; the log itself is `keepr-log`.
//! - [`state`]: what the state machine and client connections share (tree, watches).
//! - [`zk`]: the ZooKeeper protocol listener.
//! - [`sessions`]: session liveness and expiry.
//! - [`http`] and [`metrics`]: `/metrics`, `/healthz`, `/readyz`.

pub mod config;
pub mod http;
pub mod member;
pub mod metrics;
pub mod raft;
pub mod sessions;
pub mod state;
pub mod zk;
