//! What a client connection needs from the member it is connected to.
//!
//! The connection logic only reads the local tree (through [`Shared`]), proposes writes and
//! asks a few questions about the member. Putting that behind a trait keeps the protocol
//! handling independent of Raft, so it can be driven by the fuzzer and by unit tests with a
//! member that applies writes directly.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use keepr_tree::Command;

use crate::raft::types::WriteReply;
use crate::sessions::{SessionIds, SessionTracker};
use crate::state::Shared;

/// The member's role as `srvr`/`stat`/`mntr` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An ensemble of one.
    Standalone,
    Leader,
    Follower,
    /// Not part of a working quorum at the moment.
    Looking,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Looking => "looking",
        }
    }
}

/// A write that was applied on this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its log index: the zxid of the reply.
    pub index: u64,
    pub reply: WriteReply,
}

/// Why a write has no known outcome. The client is disconnected, as ZooKeeper does when it
/// loses its leader with requests in flight (ConnectionLoss: the write may or may not have
/// happened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("no leader to accept writes")]
    NoLeader,
    #[error("write outcome unknown: {0}")]
    Unknown(String),
}

/// The protocol settings of a member (from [`crate::config::Config`]).
#[derive(Debug, Clone)]
pub struct ZkSettings {
    pub node_id: u64,
    pub tick: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// `user:base64(sha1(user:password))` of the super user.
    pub super_digest: Option<String>,
    /// `jute.maxbuffer`.
    pub max_frame: usize,
    /// Enabled four-letter words (`*` for all).
    pub four_letter_words: std::collections::BTreeSet<String>,
    pub client_addr: String,
    pub data_dir: String,
}

impl From<&crate::config::Config> for ZkSettings {
    fn from(c: &crate::config::Config) -> ZkSettings {
        ZkSettings {
            node_id: c.id,
            tick: c.tick,
            min_session_timeout: c.min_session_timeout,
            max_session_timeout: c.max_session_timeout,
            super_digest: c.super_digest.clone(),
            max_frame: c.max_frame,
            four_letter_words: c.four_letter_words.clone(),
            client_addr: c.zk_addr.clone(),
            data_dir: c.data_dir.display().to_string(),
        }
    }
}

impl ZkSettings {
    /// ZooKeeper's negotiation: the requested timeout clamped to the configured bounds.
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        let min = self.min_session_timeout.as_millis() as i32;
        let max = self.max_session_timeout.as_millis() as i32;
        requested_ms.clamp(min, max.max(min))
    }

    pub fn four_letter_word_enabled(&self, word: &str) -> bool {
        self.four_letter_words.contains("*") || self.four_letter_words.contains(word)
    }
}

pub trait Backend: Send + Sync + 'static {
    fn shared(&self) -> &Arc<Shared>;
    fn settings(&self) -> &ZkSettings;
    fn sessions(&self) -> &SessionTracker;
    fn session_ids(&self) -> &SessionIds;
    fn mode(&self) -> Mode;
    /// Whether the member has lost its quorum and serves only read-only clients
    /// (`isro` answers `ro`), as a partitioned ZooKeeper server in read-only mode does.
    fn read_only(&self) -> bool;

    /// Queues a write behind every write queued before it (so one session's writes keep
    /// their order), and resolves once this member has applied it.
    fn propose(&self, cmd: Command) -> BoxFuture<'static, Result<Applied, ProposeError>>;

    /// Resolves once this member has applied everything the leader had committed when it
    /// was called (ZooKeeper's `sync`).
    fn sync(&self) -> BoxFuture<'static, Result<(), ProposeError>>;

    /// Carries out ZooKeeper's incremental `reconfig`; answers the new configuration text.
    /// The caller has checked the client is the super user.
    fn reconfig(
        &self,
        req: keepr_wire::ReconfigRequest,
    ) -> BoxFuture<'static, Result<String, keepr_wire::ErrorCode>>;
}
