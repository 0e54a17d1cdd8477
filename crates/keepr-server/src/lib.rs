//! `keepr-server`: one keepr ensemble member.
//!
//! - [`member`] starts and stops everything below.
//! - [`config`]: what a member is told at start; [`address`]: `HOST:PORT` syntax, and
//!   resolving listen addresses (names are resolved at each connect, never cached).
//! - [`raft`]: openraft's types, the state machine around `keepr-tree`, snapshot files and
//!   the network between members; the log itself is `keepr-log`.
//! - [`state`]: what the state machine and client connections share (tree, watches).
//! - [`zk`]: the ZooKeeper protocol listener.
//! - [`peer`]: the transport between members (Raft RPCs, forwarded writes, session reports).
//! - [`identity`]: which node and cluster a data directory belongs to.
//! - [`sessions`]: session liveness and expiry; [`quorum`]: whether the leader may expire
//!   anything (its quorum held without a lapse).
//! - [`admin`]: the admin gRPC API (status, membership changes).
//! - [`http`] and [`metrics`]: `/metrics`, `/healthz`, `/readyz`.

pub mod address;
pub mod admin;
pub mod config;
pub mod http;
pub mod identity;
pub mod member;
pub mod metrics;
pub mod peer;
pub mod quorum;
pub mod raft;
pub mod sessions;
pub mod state;
pub mod zk;
